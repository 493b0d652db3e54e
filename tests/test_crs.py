"""Coordinate types and conversions, held to prcoords and to published test vectors.

Pure tests (no database). prcoords takes and returns (lat, lon); geogrid is lon, lat.
"""

import math

import numpy as np
import prcoords
import pytest
import shapely
from geometries import ORIGIN, SQUARE, lonlat
from pyproj import CRS, Geod, Transformer

from geogrid import crs
from geogrid.errors import CoordinateError, InputError

GEOD = Geod(ellps="GRS80")  # the CGCS2000 ellipsoid; WGS84's differs by 0.1 mm

# China's extent, South China Sea included.
CHINA_LON = (73.5, 135.1)
CHINA_LAT = (3.8, 53.6)

# Published WGS84 -> GCJ-02 vectors (lon, lat), from eviltransform's test suite.
PUBLISHED_GCJ = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing, Xidan
]

CHICAGO = (-87.7, 41.9)
OUTSIDE_CHINA = [CHICAGO, (-0.13, 51.5), (151.2, -33.9), (139.7, 35.7), (0.0, 0.0)]


def metres(lon_a, lat_a, lon_b, lat_b) -> np.ndarray:
    return GEOD.inv(lon_a, lat_a, lon_b, lat_b)[2]


def china_sample(n: int, seed: int = 20240501) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(*CHINA_LON, n), rng.uniform(*CHINA_LAT, n)


def china_grid(step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    # Off the round numbers, so no row sits where every wave term is zero.
    lon, lat = np.meshgrid(
        np.arange(CHINA_LON[0] + 0.0137, CHINA_LON[1], step),
        np.arange(CHINA_LAT[0] + 0.0071, CHINA_LAT[1], step),
    )
    return lon.ravel(), lat.ravel()


# --- coordinate types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wgs84", crs.WGS84),
        ("WGS84", crs.WGS84),
        (" cgcs2000 ", crs.CGCS2000),
        ("GCJ02", crs.GCJ02),
        ("bd09", crs.BD09),
        ("EPSG:4326", crs.WGS84),
        ("epsg:4490", crs.CGCS2000),
        ("EPSG:4549", crs.CoordType("EPSG:4549", 4549)),
        ("epsg:3857", crs.CoordType("EPSG:3857", 3857)),
    ],
)
def test_parse_coord_type(text, expected):
    assert crs.parse_coord_type(text) == expected


def test_parsed_types_carry_a_canonical_name_and_epsg():
    assert crs.parse_coord_type("Gcj02").name == "gcj02"
    assert crs.parse_coord_type("gcj02").epsg is None
    assert crs.parse_coord_type("EPSG:4549").name == "EPSG:4549"
    assert crs.parse_coord_type("cgcs2000").epsg == 4490


@pytest.mark.parametrize("text", [None, "", "  ", "wgs", "gcj-02", "EPSG:", "EPSG:abc", "4490"])
def test_unknown_or_missing_coord_type_names_the_field_and_the_choices(text):
    with pytest.raises(CoordinateError) as caught:
        crs.parse_coord_type(text, field="coord_type")
    assert caught.value.field == "coord_type"
    assert "gcj02" in caught.value.message and "EPSG:n" in caught.value.message
    assert isinstance(caught.value, InputError)
    assert caught.value.as_dict()["code"] == "invalid_coordinate"


@pytest.mark.parametrize("text", ["EPSG:999999", "EPSG:5773"])  # unknown; a vertical CRS
def test_epsg_codes_must_be_horizontal_crs_that_pyproj_knows(text):
    with pytest.raises(CoordinateError) as caught:
        crs.parse_coord_type(text)
    assert caught.value.field == "crs"


def test_proj_itself_treats_wgs84_and_cgcs2000_as_the_same_numbers():
    to_cgcs = Transformer.from_crs(4326, 4490, always_xy=True)
    assert "Ballpark" in to_cgcs.description
    assert to_cgcs.transform(119.1, 36.7) == (119.1, 36.7)


# --- GCJ-02 and BD-09 --------------------------------------------------------------------


@pytest.mark.parametrize(("wgs", "gcj"), PUBLISHED_GCJ)
def test_published_gcj02_vectors(wgs, gcj):
    assert crs.wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-12)
    back = crs.gcj02_to_wgs84(*gcj)
    assert metres(*back, *wgs) < 1e-4
    assert 100 < metres(*wgs, *gcj) < 700  # the offset the design warns about


def test_forward_formulas_match_prcoords():
    lon, lat = china_sample(3000)
    gcj_lon, gcj_lat = crs.wgs84_to_gcj02(lon, lat)
    bd_lon, bd_lat = crs.gcj02_to_bd09(gcj_lon, gcj_lat)
    want_gcj = np.array([prcoords.wgs_gcj((b, a)) for a, b in zip(lon, lat, strict=True)])
    want_bd = np.array([prcoords.gcj_bd((b, a)) for a, b in zip(gcj_lon, gcj_lat, strict=True)])
    np.testing.assert_allclose(gcj_lon, want_gcj[:, 1], rtol=0, atol=1e-11)
    np.testing.assert_allclose(gcj_lat, want_gcj[:, 0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(bd_lon, want_bd[:, 1], rtol=0, atol=1e-11)
    np.testing.assert_allclose(bd_lat, want_bd[:, 0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(crs.wgs84_to_bd09(lon, lat), (bd_lon, bd_lat), rtol=0, atol=1e-12)


def test_inverses_agree_with_prcoords_precise_inverses():
    gcj_lon, gcj_lat = china_sample(1000, seed=7)
    bd_lon, bd_lat = crs.gcj02_to_bd09(gcj_lon, gcj_lat)
    want_wgs = np.array(
        [prcoords.gcj_wgs_bored((b, a)) for a, b in zip(gcj_lon, gcj_lat, strict=True)]
    )
    want_gcj = np.array(
        [prcoords.bd_gcj_bored((b, a)) for a, b in zip(bd_lon, bd_lat, strict=True)]
    )
    # prcoords stops iterating at ~1e-5 degrees of miss, which leaves a few millimetres.
    wgs_lon, wgs_lat = crs.gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert metres(wgs_lon, wgs_lat, want_wgs[:, 1], want_wgs[:, 0]).max() < 0.01
    back_lon, back_lat = crs.bd09_to_gcj02(bd_lon, bd_lat)
    assert metres(back_lon, back_lat, want_gcj[:, 1], want_gcj[:, 0]).max() < 0.01


def test_round_trips_stay_under_5_cm_across_china():
    lon, lat = china_grid(step=0.1)
    assert lon.size > 250_000
    via_gcj = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    via_bd = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    gcj_error = metres(*via_gcj, lon, lat)
    bd_error = metres(*via_bd, lon, lat)
    assert gcj_error.max() < 0.05
    assert bd_error.max() < 0.05
    # Much better than required: the inverses are iterated to convergence.
    assert max(gcj_error.max(), bd_error.max()) < 1e-3


def test_round_trips_from_the_offset_side():
    gcj_lon, gcj_lat = china_grid(step=0.25)
    again = crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(gcj_lon, gcj_lat))
    assert metres(*again, gcj_lon, gcj_lat).max() < 1e-3
    again = crs.gcj02_to_bd09(*crs.bd09_to_gcj02(gcj_lon, gcj_lat))
    assert metres(*again, gcj_lon, gcj_lat).max() < 1e-3


@pytest.mark.parametrize("point", OUTSIDE_CHINA)
def test_gcj02_is_plain_wgs84_outside_china(point):
    assert crs.wgs84_to_gcj02(*point) == point
    assert crs.gcj02_to_wgs84(*point) == point


def test_bd09_shift_applies_everywhere_as_in_prcoords():
    lon, lat = CHICAGO
    want_lat, want_lon = prcoords.gcj_bd((lat, lon))
    assert crs.wgs84_to_bd09(lon, lat) == pytest.approx((want_lon, want_lat), abs=1e-12)
    assert crs.bd09_to_wgs84(want_lon, want_lat) == pytest.approx(CHICAGO, abs=1e-10)


def test_mixed_arrays_convert_only_the_points_in_china():
    lon = np.array([ORIGIN[0], CHICAGO[0]])
    lat = np.array([ORIGIN[1], CHICAGO[1]])
    gcj_lon, gcj_lat = crs.wgs84_to_gcj02(lon, lat)
    assert (gcj_lon[1], gcj_lat[1]) == CHICAGO
    assert metres(gcj_lon[0], gcj_lat[0], *ORIGIN) > 100


def test_scalars_give_floats_and_arrays_keep_their_shape():
    lon, lat = crs.wgs84_to_gcj02(*ORIGIN)
    assert isinstance(lon, float) and isinstance(lat, float)
    grid_lon, grid_lat = np.meshgrid([118.0, 119.0, 120.0], [36.0, 37.0])
    out_lon, out_lat = crs.bd09_to_wgs84(grid_lon, grid_lat)
    assert out_lon.shape == out_lat.shape == (2, 3)
    assert crs.bd09_to_wgs84(118.0, 36.0) == pytest.approx((out_lon[0, 0], out_lat[0, 0]))
    empty = crs.gcj02_to_wgs84(np.array([]), np.array([]))
    assert empty[0].shape == (0,)


def test_one_point_takes_the_plain_float_path_and_agrees_with_the_arrays():
    gcj_lon, gcj_lat = china_sample(2000, seed=11)
    arrays = np.column_stack(crs.gcj02_to_wgs84(gcj_lon, gcj_lat))
    one_by_one = np.array(
        [crs.gcj02_to_wgs84(float(a), float(b)) for a, b in zip(gcj_lon, gcj_lat, strict=True)]
    )
    # The same formula and stopping rule, but math's sin is not numpy's to the last ulp.
    np.testing.assert_allclose(one_by_one, arrays, rtol=0, atol=1e-12)
    assert isinstance(crs.gcj02_to_wgs84(119.1, 36.7)[0], float)
    assert crs.gcj02_to_wgs84(120, 36) == pytest.approx(crs.gcj02_to_wgs84(120.0, 36.0))
    assert crs.gcj02_to_wgs84(*CHICAGO) == CHICAGO
    lon, lat = crs.gcj02_to_wgs84(math.nan, 36.7)
    assert math.isnan(lon) and lat == 36.7


def test_nan_passes_through_without_warnings():
    lon, lat = crs.gcj02_to_wgs84(np.array([np.nan, 119.1]), np.array([36.7, np.nan]))
    assert np.isnan(lon[0]) and np.isnan(lat[1])


def test_a_million_points_convert_and_come_back():
    lon, lat = china_sample(1_000_000, seed=3)
    bd_lon, bd_lat = crs.wgs84_to_bd09(lon, lat)
    back_lon, back_lat = crs.bd09_to_wgs84(bd_lon, bd_lat)
    # 5e-7 degrees is under 5.6 cm along either axis.
    assert np.abs(back_lon - lon).max() < 5e-7
    assert np.abs(back_lat - lat).max() < 5e-7


# --- storage -----------------------------------------------------------------------------


@pytest.mark.parametrize("coord_type", [crs.WGS84, crs.CGCS2000])
def test_wgs84_and_cgcs2000_are_stored_as_given(coord_type):
    assert crs.to_storage(*ORIGIN, coord_type) == ORIGIN
    assert crs.from_storage(*ORIGIN, coord_type) == ORIGIN


def test_offset_types_are_converted_to_storage_and_back():
    gcj = crs.from_storage(*ORIGIN, crs.GCJ02)
    bd = crs.from_storage(*ORIGIN, crs.BD09)
    assert gcj == crs.wgs84_to_gcj02(*ORIGIN)
    assert bd == crs.wgs84_to_bd09(*ORIGIN)
    assert metres(*crs.to_storage(*gcj, crs.GCJ02), *ORIGIN) < 1e-4
    assert metres(*crs.to_storage(*bd, crs.BD09), *ORIGIN) < 1e-4


def test_epsg_types_go_through_pyproj_in_lon_lat_order():
    gauss_kruger = crs.parse_coord_type("EPSG:4549")
    x, y = crs.from_storage(*ORIGIN, gauss_kruger)
    assert (x, y) == Transformer.from_crs(4490, 4549, always_xy=True).transform(*ORIGIN)
    assert 400_000 < x < 500_000 and 4_000_000 < y < 4_100_000  # just west of 120E, 36.7N
    assert crs.to_storage(x, y, gauss_kruger) == pytest.approx(ORIGIN, abs=1e-9)
    mercator = crs.parse_coord_type("EPSG:3857")
    x, _ = crs.from_storage(np.array([180.0]), np.array([0.0]), mercator)
    assert x[0] == pytest.approx(20_037_508.34, abs=0.01)


def test_geometries_convert_vertex_by_vertex():
    stored = lonlat(SQUARE)
    as_gcj = crs.geometry_from_storage(stored, crs.GCJ02)
    want = crs.wgs84_to_gcj02(*shapely.get_coordinates(stored).T)
    np.testing.assert_array_equal(shapely.get_coordinates(as_gcj).T, want)
    back = crs.geometry_to_storage(as_gcj, crs.GCJ02)
    assert shapely.equals_exact(back, stored, tolerance=1e-9)


def test_geometry_arrays_keep_missing_and_empty_entries():
    geoms = np.array([lonlat(SQUARE), None, shapely.Point()], dtype=object)
    out = crs.geometry_to_storage(geoms, crs.BD09)
    assert out[1] is None and out[2].is_empty
    assert shapely.hausdorff_distance(out[0], geoms[0]) > 0.005  # hundreds of metres
    assert crs.geometry_to_storage(geoms, crs.WGS84) is geoms


# --- checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "field"),
    [
        (math.nan, 36.7, "lon"),
        (119.1, math.nan, "lat"),
        (119.1, math.inf, "lat"),
        (-math.inf, 36.7, "lon"),
        (180.5, 36.7, "lon"),
        (119.1, -90.5, "lat"),
        (200.0, 100.0, "lon"),
        (None, 36.7, "lon"),
        (119.1, "north", "lat"),
    ],
)
def test_check_lonlat_names_the_field_at_fault(lon, lat, field):
    with pytest.raises(CoordinateError) as caught:
        crs.check_lonlat(lon, lat)
    assert caught.value.field == field
    assert field in caught.value.message


def test_check_lonlat_uses_the_callers_field_names():
    with pytest.raises(CoordinateError) as caught:
        crs.check_lonlat(math.nan, 36.7, lon_field="经度", lat_field="纬度")
    assert caught.value.field == "经度"


def test_check_lonlat_accepts_the_edges_of_the_globe():
    crs.check_lonlat(180.0, 90.0)
    crs.check_lonlat(np.array([-180.0, 0.0, 119.1]), np.array([-90.0, 0.0, 36.7]))


def test_swapped_chinese_coordinates_are_called_swapped():
    with pytest.raises(CoordinateError) as caught:
        crs.check_lonlat(36.7, 119.1, lat_field="y")
    error = caught.value
    assert error.field == "y"
    assert "lat/lon look swapped" in error.message and "China" in error.message
    assert error.details["swapped"] is True


def test_swapped_coordinates_elsewhere_are_also_called_swapped():
    with pytest.raises(CoordinateError) as caught:
        crs.check_lonlat(-33.9, 151.2)
    assert "lat/lon look swapped" in caught.value.message
    assert "China" not in caught.value.message


def test_array_check_reports_the_first_bad_point():
    lon = np.array([119.1, 119.2, 119.3, np.nan])
    lat = np.array([36.7, 36.8, 136.9, 36.9])
    with pytest.raises(CoordinateError) as caught:
        crs.check_lonlat(lon, lat)
    assert caught.value.details["index"] == 2
    assert caught.value.field == "lat"
    assert caught.value.message.startswith("point 2:")


@pytest.mark.parametrize(
    ("lon", "lat", "swapped"),
    [
        (36.7, 119.1, True),  # Weifang, latitude first
        (119.1, 36.7, False),  # Weifang
        (30.0, 80.0, True),  # valid (Arctic), but as lat, lon it is Tibet
        (CHICAGO[0], CHICAGO[1], False),
        (CHICAGO[1], CHICAGO[0], False),
    ],
)
def test_looks_swapped(lon, lat, swapped):
    assert crs.looks_swapped(lon, lat) is swapped


# --- metres ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "epsg", "name"),
    [
        (119.1, 36.7, 4549, "CGCS2000 / 3-degree Gauss-Kruger CM 120E"),  # Weifang
        (87.6, 43.8, 4538, "CGCS2000 / 3-degree Gauss-Kruger CM 87E"),  # Urumqi
        (126.6, 45.8, 4551, "CGCS2000 / 3-degree Gauss-Kruger CM 126E"),  # Harbin
        (108.95, 34.27, 4545, "CGCS2000 / 3-degree Gauss-Kruger CM 108E"),  # Xi'an
        (118.5, 36.0, 4549, "CGCS2000 / 3-degree Gauss-Kruger CM 120E"),  # zone edge goes east
        (72.5, 39.0, 4534, "CGCS2000 / 3-degree Gauss-Kruger CM 75E"),
        (137.0, 45.0, 4554, "CGCS2000 / 3-degree Gauss-Kruger CM 135E"),
        (-87.7, 41.9, 32616, "WGS 84 / UTM zone 16N"),  # Chicago
        (151.2, -33.9, 32756, "WGS 84 / UTM zone 56S"),  # Sydney
        (180.0, 10.0, 32660, "WGS 84 / UTM zone 60N"),
    ],
)
def test_metric_crs_for(lon, lat, epsg, name):
    assert crs.metric_crs_for(lon, lat) == epsg
    assert CRS.from_epsg(epsg).name == name


def test_metric_crs_for_rejects_bad_coordinates():
    with pytest.raises(CoordinateError) as caught:
        crs.metric_crs_for(math.nan, 36.7)
    assert caught.value.field == "lon"


def test_metric_transformer_is_cached_and_lon_lat_ordered():
    transformer = crs.metric_transformer(4549)
    assert crs.metric_transformer(4549) is transformer
    x, y = transformer.transform(120.0, 36.7)
    assert x == pytest.approx(500_000, abs=1e-6)  # on the central meridian


def test_metric_distances_and_areas_match_the_ellipsoid():
    epsg = crs.metric_crs_for(*ORIGIN)
    x, y = crs.to_metric(np.array([119.1, 119.11]), np.array([36.7, 36.71]), epsg)
    geodesic = metres(119.1, 36.7, 119.11, 36.71)
    assert math.hypot(x[1] - x[0], y[1] - y[0]) == pytest.approx(geodesic, rel=2e-4)
    square = crs.geometry_to_metric(lonlat(SQUARE), epsg)
    assert square.area == pytest.approx(200 * 200, rel=1e-9)
    area, _ = GEOD.geometry_area_perimeter(lonlat(SQUARE))
    assert abs(area) == pytest.approx(200 * 200, rel=5e-4)
