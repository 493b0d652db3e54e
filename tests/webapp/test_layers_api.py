"""The JSON behind the maps: locate through the in-memory index, incident figures per area."""

from __future__ import annotations

from datetime import datetime

import pytest
from factories import add_incident

from geogrid import area_stats, quicklocate
from geogrid.workdays import SHANGHAI

NOVEMBER = datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI)
DECEMBER = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)

#: Inside a grid, on the edge of two, near an edge, outside, and outside with lat/lon swapped.
POINTS = [
    (119.005, 36.71),
    (119.01, 36.71),
    (119.0101, 36.71),
    (119.05, 36.71),
    (36.71, 119.005),
]


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_locate_through_the_index_answers_as_postgis_does(client, city, lon, lat):
    url = f"/api/locate?lon={lon}&lat={lat}&crs=wgs84"
    by_postgis = client.get(url)
    # The first lookup built the index (at once, in tests); the second one uses it.
    assert quicklocate.prepared_keys()
    by_index = client.get(url)
    if by_postgis.status_code != 200:
        assert by_index.status_code == by_postgis.status_code
        return
    first, second = by_postgis.get_json(), by_index.get_json()
    if first["nearest"]:
        assert second["nearest"]["distance_m"] == pytest.approx(
            first["nearest"]["distance_m"], abs=1e-6
        )
        first["nearest"]["distance_m"] = second["nearest"]["distance_m"]
    assert second == first


def test_locate_in_a_draft_is_always_postgis(client, city, db):
    from geogrid.models import Generation

    draft = Generation(status="draft", description="redraw", created_by="tests", metric_srid=4549)
    db.add(draft)
    db.flush()
    client.get(f"/api/locate?lon=119.005&lat=36.71&crs=wgs84&generation={draft.id}")
    assert not quicklocate.prepared_keys()


@pytest.fixture
def incidents(db, city):
    add_incident(db, grid_code="370705001001001", reported_at=NOVEMBER)
    add_incident(db, grid_code="370705001001001", reported_at=NOVEMBER, state="evaluated")
    add_incident(
        db,
        grid_code="370705001001002",
        reported_at=NOVEMBER,
        resolved_at=NOVEMBER,
        state="resolved",
    )
    add_incident(db, grid_code="370705002001001", reported_at=NOVEMBER, category="noise")
    add_incident(db, grid_code="370705002001001", reported_at=DECEMBER)
    add_incident(db, grid_code=None, reported_at=NOVEMBER)


def test_figures_per_grid_for_a_month(client, auth_headers, incidents):
    headers = auth_headers("official-1", "official", "370705")
    figures = client.get("/api/maps/stats?level=grid&period=2026-11", headers=headers).get_json()
    assert figures == {
        "370705001001001": {"count": 2, "open": 1, "resolved": 0},
        "370705001001002": {"count": 1, "open": 1, "resolved": 1},
        "370705002001001": {"count": 1, "open": 1, "resolved": 0},
    }


def test_figures_per_township_within_and_by_category(client, auth_headers, incidents):
    headers = auth_headers("official-1", "official", "370705")
    townships = client.get("/api/maps/stats?level=township&period=2026-11", headers=headers)
    assert {code: f["count"] for code, f in townships.get_json().items()} == {
        "370705001": 3,
        "370705002": 1,
    }
    noise = client.get(
        "/api/maps/stats?level=grid&period=2026-11&within=370705002&category=noise",
        headers=headers,
    ).get_json()
    assert list(noise) == ["370705002001001"]
    week = client.get("/api/maps/stats?level=grid&period=2026-W49", headers=headers).get_json()
    assert week == {"370705002001001": {"count": 1, "open": 1, "resolved": 0}}


def test_figures_are_limited_to_the_scope(client, auth_headers, incidents):
    headers = auth_headers("worker-1", "grid_worker", "370705001001002")
    figures = client.get("/api/maps/stats?level=grid&period=2026-11", headers=headers).get_json()
    assert list(figures) == ["370705001001002"]


def test_figures_follow_new_incidents(client, auth_headers, incidents, db, monkeypatch):
    monkeypatch.setattr(area_stats, "CHANGE_CHECK_SECONDS", 0)  # no second's grace
    headers = auth_headers("official-1", "official", "370705")
    url = "/api/maps/stats?level=grid&period=2026-11"
    assert client.get(url, headers=headers).get_json()["370705001001002"]["count"] == 1
    add_incident(db, grid_code="370705001001002", reported_at=NOVEMBER)
    assert client.get(url, headers=headers).get_json()["370705001001002"]["count"] == 2


def test_figures_need_a_signed_in_user(client, incidents):
    assert client.get("/api/maps/stats?level=grid").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("level=parish", "level"),
        ("level=grid&period=2026-13", "period"),
        ("level=grid&period=soon", "period"),
        ("level=community&within=370705001001001", "within"),
    ],
)
def test_figures_explain_bad_parameters(client, auth_headers, city, query, field):
    headers = auth_headers("official-1", "official", "370705")
    response = client.get(f"/api/maps/stats?{query}", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_a_revoked_token_is_refused_once_its_trust_runs_out(app, client, auth_headers, db):
    from geogrid.users import revoke_token

    headers = auth_headers("official-2", "official", "370705")
    url = "/api/maps/stats?level=grid&period=2026-11"
    assert client.get(url, headers=headers).status_code == 200
    revoke_token(db, headers["Authorization"].removeprefix("Bearer "))
    # Trusted for a few seconds without a database round trip (web/auth.py) ...
    assert client.get(url, headers=headers).status_code == 200
    # ... and refused as soon as that trust is over.
    app.config["TOKEN_TRUST_SECONDS"] = 0
    from web import auth

    auth._trusted_tokens.clear()
    assert client.get(url, headers=headers).status_code == 401


def test_figures_are_gzipped_when_the_client_accepts_it(client, auth_headers, incidents):
    import gzip
    import json

    headers = {**auth_headers("official-1", "official", "370705"), "Accept-Encoding": "gzip"}
    response = client.get("/api/maps/stats?level=grid&period=2026-11", headers=headers)
    assert response.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.data))["370705001001001"]["count"] == 2
