"""On GCJ-02 base tiles the filing map is a GCJ-02 map: clicks are recorded and converted so."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from geogrid.crs import wgs84_to_gcj02
from geogrid.models import Incident
from web import create_app

G2 = "370705001001002"
AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&style=8&x={x}&y={y}&z={z}"


@pytest.fixture
def app(settings, session_factory):
    """The app on Amap's tiles, which are GCJ-02."""
    tiles = settings.with_(secret_key="test-secret", tiles=AMAP, tiles_attribution="© 高德地图")
    app = create_app(tiles, session_factory=session_factory)
    app.config.update(TESTING=True)
    return app


def test_a_click_on_gcj02_tiles_is_filed_as_gcj02(login_as, db):
    official = login_as("official", "370705")
    html = official.get("/incidents/new").get_data(as_text=True)
    assert "坐标按 gcj02 记录" in html
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    # Where a person sees a spot in G2 on Amap's tiles: 500 m east of it in WGS84 terms,
    # which read as WGS84 would fall in the next township's grid.
    lon, lat = wgs84_to_gcj02(119.0175, 36.71)
    response = official.post(
        "/incidents/new",
        data={
            "csrf_token": official.csrf_token,
            "idempotency_key": key,
            "category": "environment",
            "description": "路灯不亮",
            "lon": f"{lon:.7f}",
            "lat": f"{lat:.7f}",
            # Whatever a page says, the server records the type of the map it served.
            "coord_type": "wgs84",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    incident = db.scalar(select(Incident))
    assert (incident.grid_code, incident.coord_type) == (G2, "gcj02")
    # The incident page draws it back where it was clicked, on the same tiles.
    page = official.get(response.location).get_data(as_text=True)
    assert "autonavi.com" in page
    drawn = re.search(r"L\.circleMarker\(\s*\[([-\d.]+), ([-\d.]+)\]", page)
    assert (float(drawn[1]), float(drawn[2])) == pytest.approx((lat, lon), abs=1e-6)
