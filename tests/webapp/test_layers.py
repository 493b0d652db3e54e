"""``/api/layers/<generation>/<level>.geojson``: simplified outlines that still meet, per zoom."""

from __future__ import annotations

import gzip
import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geogrid import outlines, quicklocate

WAVY_WEST, WAVY_EAST, WAVY_SOUTH, WAVY_NORTH = 119.00, 119.04, 36.70, 36.72


@pytest.fixture(autouse=True)
def _fresh_outlines():
    # Answers are kept per process; each test's generation ids are new, but keep it tidy.
    yield
    outlines.forget()


@pytest.fixture
def official(login_as):
    return login_as("official", "370705")


def wavy_city() -> gpd.GeoDataFrame:
    """A county, one township, one community and two grids whose shared edge wiggles.

    The edge between the grids runs north along lon 119.02 with 400 vertices swinging
    ±0.0001° (about 9 m): detail a map of the whole county need not draw.
    """
    lat = np.linspace(WAVY_SOUTH, WAVY_NORTH, 401)
    lon = 119.02 + 0.0001 * np.sin(np.arange(401) * 0.7)
    lon[0] = lon[-1] = 119.02
    edge = list(zip(lon, lat, strict=True))
    west = shapely.Polygon(
        [(WAVY_WEST, WAVY_SOUTH), *edge, (WAVY_WEST, WAVY_NORTH), (WAVY_WEST, WAVY_SOUTH)]
    )
    east = shapely.Polygon(
        [(WAVY_EAST, WAVY_SOUTH), (WAVY_EAST, WAVY_NORTH), *edge[::-1], (WAVY_EAST, WAVY_SOUTH)]
    )
    whole = shapely.box(WAVY_WEST, WAVY_SOUTH, WAVY_EAST, WAVY_NORTH)
    rows = [
        ("370705", "county", None, "奎文区", whole),
        ("370705001", "township", "370705", "东关街道", whole),
        ("370705001001", "community", "370705001", "东关第1社区", whole),
        ("370705001001001", "grid", "370705001001", "西网格", west),
        ("370705001001002", "grid", "370705001001", "东网格", east),
    ]
    columns = ["code", "level", "parent_code", "name", "geometry"]
    frame = gpd.GeoDataFrame(
        [dict(zip(columns, row, strict=True)) for row in rows], geometry="geometry", crs=4490
    )
    frame["households"] = None
    return frame


def features_of(response) -> dict[str, shapely.Geometry]:
    body = response.get_json()
    return {
        f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in body["features"]
    }


def test_a_level_is_geojson_with_code_and_name(official, city):
    response = official.get(f"/api/layers/{city.id}/grid.geojson?z=14")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    body = response.get_json()
    assert body["type"] == "FeatureCollection"
    assert (body["generation"], body["level"], body["z"]) == (city.id, "grid", 14)
    names = {f["properties"]["code"]: f["properties"]["name"] for f in body["features"]}
    assert names == {
        "370705001001001": "东关第1网格",
        "370705001001002": "东关第2网格",
        "370705002001001": "大虞第1网格",
        "370705002001002": "大虞第2网格",
    }
    for feature in body["features"]:
        assert shapely.geometry.shape(feature["geometry"]).is_valid


def test_within_and_level_choose_the_areas(official, city):
    under = features_of(official.get(f"/api/layers/{city.id}/grid.geojson?within=370705002&z=12"))
    assert sorted(under) == ["370705002001001", "370705002001002"]
    townships = features_of(official.get(f"/api/layers/{city.id}/township.geojson?z=12"))
    assert sorted(townships) == ["370705001", "370705002"]
    itself = features_of(official.get(f"/api/layers/{city.id}/township.geojson?within=370705001"))
    assert list(itself) == ["370705001"]


def test_a_tile_chunk_holds_the_areas_that_meet_it(official, city):
    # At zoom 14 the tiny city spans tiles x 13607-13609 (x 13607 is 118.982-119.004°)
    # and y 6393-6394.
    west = features_of(official.get(f"/api/layers/{city.id}/grid.geojson?z=16&tile=14/13607/6393"))
    assert list(west) == ["370705001001001"]
    nothing = features_of(official.get(f"/api/layers/{city.id}/grid.geojson?z=16&tile=14/0/0"))
    assert nothing == {}


def test_outlines_are_simplified_per_zoom_and_neighbours_still_meet(
    official, db, city, make_generation
):
    city.status = "retired"  # one generation may be active; the wavy one takes its place
    db.flush()
    generation = make_generation(wavy_city())
    coarse = features_of(official.get(f"/api/layers/{generation.id}/grid.geojson?z=10"))
    fine = features_of(official.get(f"/api/layers/{generation.id}/grid.geojson?z=18"))
    west = coarse["370705001001001"]
    # The wiggle is below a pixel at zoom 10 and is drawn as (nearly) a straight line.
    assert shapely.get_num_coordinates(west) < 20
    assert shapely.get_num_coordinates(fine["370705001001001"]) > 300
    for pair in (coarse, fine):
        left, right = pair["370705001001001"], pair["370705001001002"]
        # No gap and no overlap: the shared edge was simplified once, for both.
        assert left.intersection(right).area == pytest.approx(0, abs=1e-14)
        union = shapely.union(left, right)
        assert union.area == pytest.approx(
            shapely.box(WAVY_WEST, WAVY_SOUTH, WAVY_EAST, WAVY_NORTH).area, rel=1e-9
        )
        assert len(shapely.get_parts(union)) == 1 and not list(union.interiors)


def test_answers_are_gzipped_with_an_etag_and_kept_for_a_year(official, city):
    url = f"/api/layers/{city.id}/county.geojson?z=12"
    response = official.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.data))["features"][0]["properties"]["code"] == (
        "370705"
    )
    assert "immutable" in response.headers["Cache-Control"]
    assert "max-age=31536000" in response.headers["Cache-Control"]
    again = official.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_a_draft_is_served_fresh_and_not_kept(official, db, city):
    from geogrid.models import Generation

    draft = Generation(status="draft", description="redraw", created_by="tests", metric_srid=4549)
    db.add(draft)
    db.flush()
    response = official.get(f"/api/layers/{draft.id}/grid.geojson?z=12")
    assert response.status_code == 200
    assert response.get_json()["features"] == []
    assert response.headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("/grid.geojson?z=99", 400, "z"),
        ("/grid.geojson?z=ten", 400, "z"),
        ("/parish.geojson", 400, "level"),
        ("/grid.geojson?tile=14/13607", 400, "tile"),
        ("/grid.geojson?tile=3/9/0", 400, "tile"),
        ("/grid.geojson?within=37070", 400, "within"),
        ("/township.geojson?within=370705001001", 400, "within"),
        ("/grid.geojson?within=370799", 404, "within"),
    ],
)
def test_clear_errors(official, city, query, status, field):
    response = official.get(f"/api/layers/{city.id}{query}")
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["field"] == field and error["message"]


def test_an_unknown_generation_is_not_found(official, city):
    response = official.get(f"/api/layers/{city.id + 1000}/grid.geojson")
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "generation"


def test_outlines_need_a_signed_in_user(client, city):
    response = client.get(f"/api/layers/{city.id}/grid.geojson")
    assert response.status_code == 401


def test_a_token_works_too(client, city, auth_headers):
    headers = auth_headers("planner-1", "planner", "370705")
    assert client.get(f"/api/layers/{city.id}/county.geojson", headers=headers).status_code == 200


def test_layer_url_builds_the_endpoint(app, city):
    from web.layers import layer_url

    with app.test_request_context():
        assert layer_url(city.id, "grid") == f"/api/layers/{city.id}/grid.geojson"
        assert layer_url(city.id, "grid", within="370705", z=12) == (
            f"/api/layers/{city.id}/grid.geojson?within=370705&z=12"
        )


def test_warming_prepares_outlines_and_the_point_index(app, official, city):
    from web.layers import warm_up

    outlines.forget()
    quicklocate.forget()
    warm_up(app).join(timeout=60)
    # Every level of the tiny city is small enough to be drawn whole: all buckets.
    kept = {key[2:] for key in outlines._levels._items if key[1] == city.id}
    assert ("county", 6) in kept and ("grid", 18) in kept
    assert any(generation == city.id for generation, _ in quicklocate.prepared_keys())


def test_the_server_prepares_the_maps_once_before_forking(settings):
    from web.server import gunicorn_options

    options = gunicorn_options(settings)
    # Built in the master and shared by the workers, which then warm the rest themselves.
    assert options["preload_app"] is True
    assert callable(options["post_worker_init"])


def test_each_worker_freezes_what_its_warm_up_made(app, official, city):
    import gc
    import logging
    import time
    from types import SimpleNamespace

    from web.server import gunicorn_options

    # What gunicorn hands its hook: the worker, with the app and its logger.
    worker = SimpleNamespace(wsgi=app, log=logging.getLogger("test-worker"))
    gc.unfreeze()
    try:
        gunicorn_options(app.extensions["geogrid"].settings)["post_worker_init"](worker)
        deadline = time.monotonic() + 60
        while not gc.get_freeze_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The warm-up's outlines, index and weights are out of the collector's sight.
        assert gc.get_freeze_count() > 0
        assert any(generation == city.id for generation, _ in quicklocate.prepared_keys())
    finally:
        gc.unfreeze()
