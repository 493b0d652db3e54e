"""Locating points through PostGIS: statuses, the edge rule, coordinate types, bad input."""

from __future__ import annotations

import math

import pytest
from factories import load_tiny_city

from geogrid.crs import wgs84_to_bd09, wgs84_to_gcj02
from geogrid.errors import CodeError, CoordinateError, NotFound
from geogrid.geocode import locate

LAT = 36.71
#: Metres per degree of longitude at LAT, close enough to place test points 10 or 20 m away.
M_PER_DEG_LON = 111_320 * math.cos(math.radians(LAT))
G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    return db


def test_no_active_generation_is_a_clear_error(db, settings):
    with pytest.raises(NotFound, match="no generation is active"):
        locate(db, settings, 119.005, LAT, "wgs84")


def test_inside_gives_every_level(city, settings):
    where = locate(city, settings, 119.005, LAT, "wgs84")
    assert (where.status, where.grid_code, where.candidates) == ("inside", G1, [])
    assert where.codes == {
        "county": "370705",
        "township": "370705001",
        "community": "370705001001",
        "grid": G1,
    }
    assert list(where.codes) == ["county", "township", "community", "grid"]
    assert where.names["township"] == "东关街道"


def test_a_point_on_a_shared_edge_goes_to_the_smallest_code(city, settings):
    where = locate(city, settings, 119.01, LAT, "wgs84")
    assert (where.status, where.grid_code, where.candidates) == ("edge", G1, [G2])
    corner = locate(city, settings, 119.02, 36.70, "wgs84")  # a vertex of two grids
    assert (corner.status, corner.grid_code, corner.candidates) == ("edge", G2, [G3])


def test_near_edge_within_the_configured_distance(city, settings):
    ten_m = locate(city, settings, 119.01 + 10 / M_PER_DEG_LON, LAT, "wgs84")
    assert (ten_m.status, ten_m.grid_code, ten_m.candidates) == ("near_edge", G2, [G1])
    twenty_m = locate(city, settings, 119.01 + 20 / M_PER_DEG_LON, LAT, "wgs84")
    assert (twenty_m.status, twenty_m.grid_code) == ("inside", G2)
    wider = settings.with_(near_edge_m=25.0)
    assert locate(city, wider, 119.01 + 20 / M_PER_DEG_LON, LAT, "wgs84").status == "near_edge"


def test_outside_keeps_the_point_and_names_the_nearest(city, settings):
    where = locate(city, settings, 119.05, LAT, "wgs84")
    assert where.status == "outside" and where.grid_code is None
    assert where.nearest["code"] == G4
    assert where.nearest["distance_m"] == pytest.approx(0.01 * M_PER_DEG_LON, rel=5e-3)


def test_gcj02_and_bd09_inputs_are_converted_first(city, settings):
    # Converted to GCJ-02 the point moves hundreds of metres: read as WGS84 it would miss.
    gcj_lon, gcj_lat = wgs84_to_gcj02(119.015, LAT)
    assert locate(city, settings, gcj_lon, gcj_lat, "gcj02").grid_code == G2
    assert locate(city, settings, gcj_lon, gcj_lat, "wgs84").grid_code != G2
    bd_lon, bd_lat = wgs84_to_bd09(119.015, LAT)
    assert locate(city, settings, bd_lon, bd_lat, "bd09").grid_code == G2


def test_other_levels_and_old_generations(city, settings):
    assert locate(city, settings, 119.005, LAT, "wgs84", level="township").grid_code == "370705001"
    with pytest.raises(CodeError, match="unknown level") as info:
        locate(city, settings, 119.005, LAT, "wgs84", level="beat")
    assert info.value.field == "level"


@pytest.mark.parametrize(
    ("lon", "lat", "crs", "field", "message"),
    [
        (119.005, LAT, None, "crs", "required|missing"),
        (119.005, LAT, "mars", "crs", "mars"),
        (float("nan"), LAT, "wgs84", "lon", "not a finite number"),
        (LAT, 119.005, "wgs84", "lat", "swapped"),
        (200.0, LAT, "wgs84", "lon", "outside \\[-180, 180\\]"),
    ],
)
def test_bad_coordinates_name_the_field(city, settings, lon, lat, crs, field, message):
    with pytest.raises(CoordinateError, match=message) as info:
        locate(city, settings, lon, lat, crs)
    assert info.value.field == field
