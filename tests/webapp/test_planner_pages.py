"""Planner pages on the tiny city: generations, reports on the map, import, activation, compare."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from factories import level_file, tiny_city
from sqlalchemy import func, select

from geogrid import generations
from geogrid.models import Area, Generation
from geogrid.planner_maps import CHANGE_COLOURS, CHECK_COLOURS

#: 东关's two grids with their shared edge moved from 119.01 to 119.015.
REDRAWN_EDGE = {
    "370705001001001": (119.00, 36.70, 119.015, 36.72),
    "370705001001002": (119.015, 36.70, 119.02, 36.72),
}
#: 大虞's two grids likewise, in the other township.
DAYU_REDRAWN = {
    "370705002001001": (119.02, 36.70, 119.035, 36.72),
    "370705002001002": (119.035, 36.70, 119.04, 36.72),
}


def grids(boxes: dict[str, tuple[float, ...]] | None = None) -> gpd.GeoDataFrame:
    """The tiny city's grids, some redrawn as boxes."""
    areas = tiny_city().query("level == 'grid'").copy()
    for code, box in (boxes or {}).items():
        areas.loc[areas["code"] == code, "geometry"] = shapely.box(*box)
    return areas


def geojson_bytes(areas: gpd.GeoDataFrame, tmp_path: Path) -> bytes:
    return level_file(tmp_path, "grid", areas).read_bytes()


def upload(client, content: bytes, filename: str, **form):
    data = {
        "file": (io.BytesIO(content), filename),
        "level": "grid",
        "crs": "cgcs2000",
        "csrf_token": client.csrf_token,
        **form,
    }
    return client.post("/planner/import", data=data, content_type="multipart/form-data")


def activate(client, generation_id: int, **form):
    data = {"confirm": "yes", "csrf_token": client.csrf_token, **form}
    return client.post(f"/planner/generations/{generation_id}/activate", data=data)


def script_of(html: str) -> str:
    return html[html.index("L.map(") :]


def draft_of(db) -> Generation | None:
    db.expire_all()
    return generations.draft_generation(db)


# -- who may open the pages ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["planner", "administrator"])
def test_the_generations_list_shows_status_counts_and_validation(login_as, city, role):
    client = login_as(role, *(("370705",) if role == "planner" else ()))
    response = client.get("/planner")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "边界版本" in html and "现行" in html
    assert f'href="/planner/generations/{city.id}"' in html
    assert "网格 4" in html and "区县 1" in html
    assert "通过" in html  # the stored validation verdict


def test_pages_are_in_english_on_request(login_as, city):
    client = login_as("planner", "370705")
    html = client.get("/planner?lang=en").get_data(as_text=True)
    assert "Boundary generations" in html and "active" in html and "边界版本" not in html
    page = client.get(f"/planner/generations/{city.id}?lang=en").get_data(as_text=True)
    assert "Validation report" in page and "passes" in page
    assert "Import a boundary file" in client.get("/planner/import?lang=en").get_data(as_text=True)


@pytest.mark.parametrize(
    "url", ["/planner", "/planner/generations/{id}", "/planner/compare", "/planner/import"]
)
def test_other_roles_get_403_and_visitors_the_login_page(login_as, client, city, url):
    url = url.format(id=city.id)
    official = login_as("official", "370705")
    response = official.get(url)
    assert response.status_code == 403
    assert "planner" in response.get_data(as_text=True)
    visitor = client.get(url)
    assert visitor.status_code == 302 and "/login?next=" in visitor.location


def test_a_generation_page_draws_its_levels_with_tooltips(login_as, city):
    client = login_as("planner", "370705")
    html = client.get(f"/planner/generations/{city.id}").get_data(as_text=True)
    script = script_of(html)
    for code in ("370705001001001", "370705002001002"):
        assert code in script
    assert 'let fields = ["code", "name"];' in script
    assert "L.control.layers" in script
    assert "已检查 9 个区域" in html


# -- an invalid draft ---------------------------------------------------------------------


def test_an_invalid_draft_shows_its_errors_in_the_report_and_on_the_map(login_as, city, tmp_path):
    client = login_as("planner", "370705")
    # Grid 001 widened over half of grid 002, which is left as it was: they overlap.
    overlapping = grids({"370705001001001": (119.00, 36.70, 119.015, 36.72)})
    response = upload(client, geojson_bytes(overlapping, tmp_path), "grids.geojson")
    assert response.status_code == 303
    html = client.get(response.location).get_data(as_text=True)
    assert "未通过" in html
    row = re.search(r'<tr class="gg-planner-error"[^>]*>(.*?)</tr>', html, re.S)
    assert row and "重叠" in row.group(1) and "370705001001001" in row.group(1)
    assert "网格" in row.group(1)  # the level of the area named
    assert "overlap by" in row.group(1)
    script = script_of(html)
    assert json.dumps("重叠 (1)") in script  # the overlap layer, named with its count
    assert CHECK_COLOURS["overlap"] in script
    assert "不能启用" in html and 'name="confirm"' in html  # no activation, only discarding
    assert "/activate" not in html


def test_activating_an_invalid_draft_is_refused_and_keeps_its_report(db, login_as, city, tmp_path):
    client = login_as("administrator")
    overlapping = grids({"370705001001001": (119.00, 36.70, 119.015, 36.72)})
    draft_id = int(
        upload(client, geojson_bytes(overlapping, tmp_path), "g.geojson").location.split("/")[-1]
    )
    response = activate(client, draft_id)
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "未启用" in page
    assert draft_of(db).id == draft_id
    assert generations.current_generation(db).id == city.id


# -- importing ----------------------------------------------------------------------------


def _as_gpkg(areas: gpd.GeoDataFrame, tmp_path: Path) -> bytes:
    path = tmp_path / "grids.gpkg"
    areas.to_file(path, driver="GPKG")
    return path.read_bytes()


def _as_zipped_shapefile(areas: gpd.GeoDataFrame, tmp_path: Path) -> bytes:
    folder = tmp_path / "shp"
    folder.mkdir()
    # A shapefile's field names have at most 10 characters.
    shapefile = areas.drop(columns="parent_code")
    shapefile.to_file(folder / "grids.shp", encoding="utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in folder.iterdir():
            archive.write(part, part.name)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "write"),
    [
        ("东关网格.geojson", geojson_bytes),
        ("grids.gpkg", _as_gpkg),
        ("grids.zip", _as_zipped_shapefile),
    ],
)
def test_a_redrawn_file_becomes_a_draft_and_nothing_active_changes(
    db, login_as, city, tmp_path, filename, write
):
    client = login_as("planner", "370705001")
    response = upload(client, write(grids(REDRAWN_EDGE).iloc[:2], tmp_path), filename)
    assert response.status_code == 303, response.get_data(as_text=True)
    draft = draft_of(db)
    assert draft is not None and response.location.endswith(f"/planner/generations/{draft.id}")
    assert generations.current_generation(db).id == city.id  # until activation
    html = client.get(response.location).get_data(as_text=True)
    assert f"导入草稿第 {draft.id} 版：新增 0，替换 2" in html
    assert "重划 2" in html and "通过" in html
    assert f"/planner/generations/{draft.id}/activate" in html


def test_activation_needs_csrf_the_role_and_a_confirmation(db, login_as, city, tmp_path):
    planner = login_as("planner", "370705")
    upload(planner, geojson_bytes(grids(REDRAWN_EDGE), tmp_path), "grids.geojson")
    draft = draft_of(db)
    url = f"/planner/generations/{draft.id}/activate"
    assert planner.post(url, data={"confirm": "yes"}).status_code == 403  # no CSRF token
    official = login_as("official", "370705")
    assert activate(official, draft.id).status_code == 403
    assert planner.post(url, data={"csrf_token": planner.csrf_token}).status_code == 400
    assert draft_of(db).id == draft.id

    response = activate(planner, draft.id)
    assert response.status_code == 303
    assert response.location.endswith(f"/planner/compare?a={city.id}&b={draft.id}")
    db.expire_all()
    assert generations.current_generation(db).id == draft.id
    assert db.get(Generation, city.id).status == "retired"

    html = planner.get(response.location).get_data(as_text=True)
    assert f"第 {draft.id} 版已启用，记录了 3 条沿革" in html
    lineage = html[html.index("gg-planner-lineage") :]
    # Half of old grid 002 went to new grid 001, with half of its 280 households.
    moved = re.search(
        r"<code>370705001001002</code>.*?<code>370705001001001</code>.*?</tr>", lineage, re.S
    )
    assert moved and "50.0%" in moved.group(0) and ">140<" in moved.group(0)
    assert re.search(r'data-change="redrawn">2<', html)
    assert re.search(r'data-change="unchanged">2<', html)
    script = script_of(html)
    assert script.count("L.map(") == 2 and "geogridSynchronised" in script
    assert CHANGE_COLOURS["redrawn"] in script
    # By default the current generation is compared with the one it superseded.
    for url in ("/planner/compare", f"/planner/compare?b={draft.id}"):
        default = planner.get(url).get_data(as_text=True)
        assert f'<option value="{city.id}" selected>' in default
        assert f'<option value="{draft.id}" selected>' in default
        assert "gg-planner-lineage" in default


def test_discarding_a_draft(db, login_as, city, tmp_path):
    planner = login_as("planner", "370705")
    upload(planner, geojson_bytes(grids(REDRAWN_EDGE), tmp_path), "grids.geojson")
    draft = draft_of(db)
    data = {"confirm": "yes", "reason": "wrong edge", "csrf_token": planner.csrf_token}
    response = planner.post(f"/planner/generations/{draft.id}/retire", data=data)
    assert response.status_code == 303
    assert draft_of(db) is None
    assert db.get(Generation, draft.id).retired_reason == "wrong edge"


def test_a_file_in_the_wrong_encoding_is_refused_and_writes_nothing(db, login_as, city, tmp_path):
    client = login_as("planner", "370705")
    text = geojson_bytes(grids(REDRAWN_EDGE), tmp_path).decode("utf-8")
    response = upload(client, text.encode("utf-16"), "grids.geojson")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "neither UTF-8 nor GBK/GB18030" in html and "UTF-16" in html
    assert "未导入任何内容" in html
    assert draft_of(db) is None


def test_invalid_geometries_and_unknown_codes_name_their_record_and_field(
    db, login_as, city, tmp_path
):
    client = login_as("planner", "370705")
    areas = grids()
    areas.loc[areas.index[1], "code"] = "37070500100100"  # 14 digits
    areas.loc[areas.index[2], "geometry"] = shapely.Polygon(
        [(119.02, 36.70), (119.03, 36.72), (119.03, 36.70), (119.02, 36.72)]
    )
    response = upload(client, geojson_bytes(areas, tmp_path), "grids.geojson")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    rows = re.findall(r"<tr><td>(\d+)</td><td><code>(\w*)</code></td><td>(.*?)</td></tr>", html)
    by_record = {(int(record), field): message for record, field, message in rows}
    assert "14 digits" in by_record[(2, "code")]
    assert "Self-intersection" in by_record[(3, "geometry")]
    assert draft_of(db) is None
    assert (
        db.scalar(select(func.count()).select_from(Area).where(Area.generation_low > city.id)) == 0
    )


def test_a_file_of_an_unreadable_kind_is_refused(db, login_as, city):
    client = login_as("planner", "370705")
    response = upload(client, b"not a boundary", "grids.docx")
    assert response.status_code == 400
    assert "GeoPackage" in response.get_data(as_text=True)
    assert draft_of(db) is None


def test_an_upload_needs_a_csrf_token(db, login_as, city, tmp_path):
    client = login_as("planner", "370705")
    content = geojson_bytes(grids(REDRAWN_EDGE), tmp_path)
    response = client.post(
        "/planner/import",
        data={"file": (io.BytesIO(content), "g.geojson"), "level": "grid", "crs": "cgcs2000"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 403
    assert draft_of(db) is None


# -- scope ---------------------------------------------------------------------------------


def test_a_planner_imports_only_inside_their_scope(db, login_as, city, tmp_path):
    client = login_as("planner", "370705001")
    other_township = grids(DAYU_REDRAWN).iloc[2:]
    response = upload(client, geojson_bytes(other_township, tmp_path), "dayu.geojson")
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "370705002001001" in html and "未导入任何内容" in html
    assert draft_of(db) is None
    # Replacing a whole level is for administrators.
    own = grids(REDRAWN_EDGE).iloc[:2]
    refused = upload(client, geojson_bytes(own, tmp_path), "g.geojson", replace_level="yes")
    assert refused.status_code == 403 and draft_of(db) is None


def test_a_planner_sees_only_their_areas_and_cannot_activate_others_changes(
    db, login_as, city, tmp_path
):
    administrator = login_as("administrator")
    both = grids({**REDRAWN_EDGE, **DAYU_REDRAWN})
    upload(administrator, geojson_bytes(both, tmp_path), "both.geojson")
    draft = draft_of(db)

    planner = login_as("planner", "370705001")
    html = planner.get(f"/planner/generations/{draft.id}").get_data(as_text=True)
    assert "370705001001001" in script_of(html) and "370705002001001" not in script_of(html)
    assert "重划 2" in html  # only the two 东关 grids count
    assert "不在您管辖范围内" in html and "/activate" not in html
    assert activate(planner, draft.id).status_code == 403
    assert draft_of(db).id == draft.id
    compare = planner.get(f"/planner/compare?a={city.id}&b={draft.id}").get_data(as_text=True)
    assert "370705002001001" not in compare
    assert re.search(r'data-change="redrawn">2<', compare)


def test_an_area_outside_the_scope_is_forbidden(login_as, city):
    client = login_as("planner", "370705001")
    response = client.get(f"/planner/generations/{city.id}?area=370705002")
    assert response.status_code == 403
    inside = client.get(f"/planner/generations/{city.id}?area=370705001001")
    assert inside.status_code == 200


def test_the_compare_page_asks_for_generations_that_exist(login_as, city):
    client = login_as("planner", "370705")
    assert client.get(f"/planner/compare?a={city.id}&b=99").status_code == 404
    assert client.get(f"/planner/compare?a={city.id}&b={city.id}&level=street").status_code == 400
    assert client.get("/planner/compare?a=x").status_code == 400
    # Numbers past PostgreSQL's integers name no generation: 404, not a database error.
    huge = "9" * 23
    assert client.get(f"/planner/compare?a={huge}").status_code == 404
    assert client.get(f"/planner/generations/{huge}").status_code == 404
    activate_huge = activate(client, int(huge))
    assert activate_huge.status_code == 404


def test_a_file_named_in_chinese_keeps_its_name(login_as, city, tmp_path):
    # A file named in Chinese keeps its name in the draft's description.
    client = login_as("administrator")
    response = upload(client, geojson_bytes(grids(REDRAWN_EDGE), tmp_path), "网格 重划.geojson")
    assert response.status_code == 303
    listing = client.get("/planner").get_data(as_text=True)
    assert "import of 网格 重划.geojson" in listing


def test_many_areas_are_fetched_from_the_layers_endpoint(app, login_as, city, monkeypatch):
    if "layers.areas" not in app.view_functions:
        pytest.skip("the layers endpoint (web/layers.py) is not there")
    from web import planner

    monkeypatch.setattr(planner, "INLINE_AREAS", 1)
    client = login_as("planner", "370705001")
    html = client.get(f"/planner/compare?a={city.id}&b={city.id}").get_data(as_text=True)
    script = script_of(html)
    assert script.count("new GeogridAreas(") == 2
    assert f"/api/layers/{city.id}/grid.geojson?within=370705001" in script
    # The changes travel with the layer, joined onto the fetched areas by code.
    assert "370705001001002" in script and "unchanged" in script
    assert "370705002001001" not in script
