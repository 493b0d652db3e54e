"""The in-memory bulk path (geogrid.pointindex) against known answers and brute force.

Pure tests: no database. Known answers use the shared zoo (shapes in local metres of
EPSG:4549 near Weifang) and a few squares drawn in degrees, whose shared edges are
exactly representable, so that a point can lie exactly on one. The agreement tests
compare every field with a brute-force reading of the rules of geogrid.geocode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from geometries import LOCAL_EPSG, NE, NW, SE, SQUARE, STORAGE_EPSG, SW, local_point, lonlat
from shapely import MultiPolygon, Polygon, box

from geogrid.errors import CoordinateError
from geogrid.pointindex import GridIndex, Placement

CHICAGO = Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago"
#: Two squares of 0.001 degrees side by side: they share the edge lon = 119.101 exactly.
WEST_DEG, EAST_DEG = box(119.100, 36.700, 119.101, 36.701), box(119.101, 36.700, 119.102, 36.701)


def _to_metric(epsg: int = LOCAL_EPSG, source: int = STORAGE_EPSG) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, epsg, always_xy=True)


def _local_index(areas: dict[str, shapely.Geometry], near_m: float = 15.0) -> GridIndex:
    """An index of shapes drawn in local metres."""
    codes = list(areas)
    return GridIndex.build(
        codes, [lonlat(g) for g in areas.values()], metric_epsg=LOCAL_EPSG, near_m=near_m
    )


def _place_local(index: GridIndex, *points: tuple[float, float]) -> Placement:
    lon, lat = zip(*(local_point(x, y) for x, y in points), strict=True)
    return index.locate(np.array(lon), np.array(lat))


def _summary(placement: Placement, point: int = 0) -> tuple:
    codes = placement.grid_codes()
    return codes[point], placement.status_names()[point], placement.candidates(point)


# --- known answers -------------------------------------------------------------------


def test_a_point_on_a_shared_edge_goes_to_the_smaller_code() -> None:
    index = GridIndex.build(["B", "A"], [EAST_DEG, WEST_DEG], metric_epsg=LOCAL_EPSG)
    placement = index.locate([119.101, 119.101], [36.7005, 36.700])
    assert _summary(placement, 0) == ("A", "edge", ["B"])
    assert _summary(placement, 1) == ("A", "edge", ["B"])  # a shared corner


def test_the_vertex_of_four_squares_is_in_all_four() -> None:
    index = _local_index({"4": SW, "3": SE, "2": NW, "1": NE})
    assert _summary(_place_local(index, (100, 100))) == ("1", "edge", ["2", "3", "4"])


def test_near_the_neighbour_is_flagged_beyond_it_is_not() -> None:
    index = _local_index({"A": SW, "B": SE})
    placement = _place_local(index, (90, 50), (80, 50), (114.9, 50), (115.1, 50))
    assert _summary(placement, 0) == ("A", "near_edge", ["B"])
    assert _summary(placement, 1) == ("A", "inside", [])
    assert _summary(placement, 2) == ("B", "near_edge", ["A"])
    assert _summary(placement, 3) == ("B", "inside", [])


def test_near_a_corner_the_distance_is_to_the_corner_not_the_lines() -> None:
    index = _local_index({"Q": NE, "A": SW})  # they touch at (100, 100) only
    placement = _place_local(index, (105, 105), (112, 112), (112, 150))
    assert _summary(placement, 0) == ("Q", "near_edge", ["A"])  # 7.1 m from the corner
    assert _summary(placement, 1) == ("Q", "inside", [])  # 17 m, though 12 m from both lines
    assert _summary(placement, 2) == ("Q", "inside", [])


def test_a_hole_is_outside_and_an_island_in_it_is_a_neighbour() -> None:
    hole = box(50, 50, 150, 150)
    ring = Polygon(SQUARE.exterior.coords, [hole.exterior.coords])
    alone = _place_local(_local_index({"R": ring}), (100, 100), (40, 100))
    assert alone.status_names().tolist() == ["outside", "inside"]
    assert alone.nearest_codes()[0] == "R"
    assert alone.nearest_distance_m[0] == pytest.approx(50.0, abs=1e-3)
    with_island = _place_local(_local_index({"R": ring, "I": hole}), (100, 100), (40, 100))
    assert _summary(with_island, 0) == ("I", "inside", [])
    assert _summary(with_island, 1) == ("R", "near_edge", ["I"])


def test_multipolygons_meeting_at_a_vertex() -> None:
    index = _local_index({"N": MultiPolygon([SE, NW]), "M": MultiPolygon([SW, NE])})
    placement = _place_local(index, (100, 100), (50, 50), (150, 50))
    assert _summary(placement, 0) == ("M", "edge", ["N"])
    assert _summary(placement, 1) == ("M", "inside", [])
    assert _summary(placement, 2) == ("N", "inside", [])


def test_outside_points_get_the_nearest_area_and_its_distance() -> None:
    index = _local_index({"A": SW, "B": SE})
    placement = _place_local(index, (250, 50), (-30, -40), (100, -20))
    assert placement.status_names().tolist() == ["outside"] * 3
    assert placement.grid_codes().tolist() == [None] * 3
    assert placement.nearest_codes().tolist() == ["B", "A", "A"]  # the last one is a tie
    assert placement.nearest_distance_m == pytest.approx([50.0, 50.0, 20.0], abs=1e-3)
    assert placement.swapped_codes().tolist() == [None] * 3  # lat 119 is not a latitude


def test_swapped_coordinates_are_recognised() -> None:
    area = box(80.0, 40.0, 80.01, 40.01)  # where lat and lon exchanged are still a lon/lat
    index = GridIndex.build(["X"], [area], metric_epsg=32644)
    placement = index.locate([40.005, 80.005], [80.005, 40.005])
    assert placement.status_names().tolist() == ["outside", "inside"]
    assert placement.swapped_codes().tolist() == ["X", None]
    assert math.isnan(placement.nearest_distance_m[1])


def test_placement_as_a_frame() -> None:
    index = GridIndex.build(["B", "A"], [EAST_DEG, WEST_DEG], metric_epsg=LOCAL_EPSG)
    frame = index.locate([119.101, 119.1005, 119.2], [36.7005, 36.7005, 36.7]).to_frame()
    assert list(frame.columns) == [
        "grid_code",
        "status",
        "candidates",
        "nearest_code",
        "nearest_distance_m",
        "swapped_code",
    ]
    assert frame["grid_code"].tolist() == ["A", "A", None]
    assert frame["status"].tolist() == ["edge", "inside", "outside"]
    assert frame["candidates"].tolist() == ["B", "", ""]
    assert frame["nearest_code"].tolist() == [None, None, "B"]
    assert frame["nearest_distance_m"].notna().tolist() == [False, False, True]


def test_no_points_and_progress() -> None:
    index = GridIndex.build(["A"], [WEST_DEG], metric_epsg=LOCAL_EPSG)
    done: list[int] = []
    assert len(index.locate([], [], progress=done.append)) == 0
    assert len(index.locate([119.1005] * 3, [36.7005] * 3, progress=done.append)) == 3
    assert done == [0, 3]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        GridIndex.build(["A", "A"], [WEST_DEG, EAST_DEG], metric_epsg=LOCAL_EPSG)
    with pytest.raises(ValueError, match="valid"):
        bowtie = Polygon([(119.1, 36.7), (119.2, 36.8), (119.2, 36.7), (119.1, 36.8)])
        GridIndex.build(["A"], [bowtie], metric_epsg=LOCAL_EPSG)
    with pytest.raises(ValueError, match="exactly one"):
        GridIndex.build(["A"], [WEST_DEG])
    index = GridIndex.build(["A"], [WEST_DEG], metric_epsg=LOCAL_EPSG)
    with pytest.raises(CoordinateError):
        index.locate([119.1, 36.7], [36.7, 119.1])
    with pytest.raises(CoordinateError):
        index.locate([np.nan], [36.7])


# --- agreement with brute force ------------------------------------------------------


@dataclass
class _Expected:
    index: int
    status: str
    candidates: list[int]
    nearest: int = -1
    distance: float = math.nan
    swapped: int = -1


def _brute_force(
    codes: list[str],
    polygons: np.ndarray,
    to_metric: pyproj.Transformer,
    lon: np.ndarray,
    lat: np.ndarray,
    near_m: float,
) -> list[_Expected]:
    """The rules of geogrid.geocode, point by point, over every area in code order."""
    metric = shapely.transform(polygons, lambda xy: np.column_stack(to_metric.transform(*xy.T)))
    in_order = sorted(range(len(codes)), key=lambda i: codes[i])
    mx, my = to_metric.transform(lon, lat)
    expected = []
    for x, y, point in zip(lon, lat, shapely.points(mx, my), strict=True):
        covers = shapely.intersects_xy(polygons, x, y)
        distance = shapely.distance(metric, point)
        covering = [i for i in in_order if covers[i]]
        if covering:
            others = [
                i for i in in_order if i != covering[0] and (covers[i] or distance[i] <= near_m)
            ]
            status = "edge" if len(covering) > 1 else "near_edge" if others else "inside"
            expected.append(_Expected(covering[0], status, others))
            continue
        nearest = min(in_order, key=lambda i: distance[i])  # the first in code order on ties
        swapped = -1
        if abs(y) <= 180 and abs(x) <= 90:
            swapped = next((i for i in in_order if shapely.intersects_xy(polygons[i], y, x)), -1)
        close = [i for i in in_order if distance[i] <= near_m]
        expected.append(_Expected(-1, "outside", close, nearest, float(distance[nearest]), swapped))
    return expected


def _assert_agrees(placement: Placement, expected: list[_Expected]) -> None:
    names = placement.status_names()
    for point, want in enumerate(expected):
        start, stop = placement.candidate_offsets[point], placement.candidate_offsets[point + 1]
        got = _Expected(
            int(placement.index[point]),
            names[point],
            placement.candidate_index[start:stop].tolist(),
            int(placement.nearest_index[point]),
            float(placement.nearest_distance_m[point]),
            int(placement.swapped_index[point]),
        )
        # Our distances may differ from GEOS's in the last bits (they never decide alone).
        assert got.distance == pytest.approx(want.distance, abs=1e-6, nan_ok=True), point
        got.distance = want.distance
        assert got == want, point


def _tessellation(cells: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Voronoi cells in a 0.02-degree box near Weifang, coded in shuffled order."""
    rng = np.random.default_rng(seed)
    frame = box(119.09, 36.69, 119.11, 36.71)
    seeds = shapely.multipoints(rng.uniform((119.09, 36.69), (119.11, 36.71), (cells, 2)))
    polygons = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame
    )
    codes = [f"3707050070{n:05d}" for n in rng.permutation(len(polygons))]
    return codes, polygons


def _testing_points(
    polygons: np.ndarray, to_metric: pyproj.Transformer, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random points, shared vertices, and points at set distances from the edges."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = shapely.total_bounds(polygons)
    spread = rng.uniform((x0 - 0.002, y0 - 0.002), (x1 + 0.002, y1 + 0.002), (600, 2))
    vertices = shapely.get_coordinates(polygons)
    on_vertices = vertices[rng.integers(0, len(vertices), 200)]
    start = rng.integers(0, len(vertices) - 1, 600)
    along = vertices[start] + rng.uniform(0, 1, (600, 1)) * (vertices[start + 1] - vertices[start])
    mx, my = to_metric.transform(along[:, 0], along[:, 1])
    gap = rng.choice([0.0, 5.0, 14.99, 15.0, 15.01, 20.0, 40.0], 600) + rng.uniform(
        -0.01, 0.01, 600
    )
    angle = rng.uniform(0, 2 * np.pi, 600)
    back = pyproj.Transformer.from_crs(to_metric.target_crs, STORAGE_EPSG, always_xy=True)
    near = np.column_stack(back.transform(mx + gap * np.cos(angle), my + gap * np.sin(angle)))
    points = np.concatenate([spread, on_vertices, along, near])
    return points[:, 0], points[:, 1]


@pytest.mark.parametrize(("seed", "near_m"), [(1, 15.0), (2, 15.0), (3, 0.0), (4, 40.0)])
def test_agrees_with_brute_force_on_a_tessellation(seed: int, near_m: float) -> None:
    codes, polygons = _tessellation(80, seed)
    to_metric = _to_metric()
    lon, lat = _testing_points(polygons, to_metric, seed)
    index = GridIndex.build(codes, polygons, metric_epsg=LOCAL_EPSG, near_m=near_m)
    placement = index.locate(lon, lat)
    _assert_agrees(placement, _brute_force(codes, polygons, to_metric, lon, lat, near_m))
    assert {"inside", "edge", "outside"} <= set(placement.status_names())


@pytest.mark.skipif(not (CHICAGO / "beats.geojson").exists(), reason="Chicago data not available")
def test_agrees_with_brute_force_on_chicago_beats() -> None:
    import geopandas as gpd

    beats = gpd.read_file(CHICAGO / "beats.geojson")
    crimes = pd.read_csv(CHICAGO / "crimes_sample.csv", usecols=["Longitude", "Latitude"]).dropna()
    codes, polygons = beats["beat_num"].astype(str).tolist(), np.asarray(beats.geometry.values)
    to_metric = _to_metric(32616, source=4326)
    rng = np.random.default_rng(7)
    sample = crimes.sample(2000, random_state=7)
    vertices = shapely.get_coordinates(polygons)[
        rng.integers(0, len(shapely.get_coordinates(polygons)), 300)
    ]
    lon = np.r_[sample["Longitude"].to_numpy(), vertices[:, 0], vertices[:, 0] + 2e-4]
    lat = np.r_[sample["Latitude"].to_numpy(), vertices[:, 1], vertices[:, 1] - 1e-4]
    placement = GridIndex.build(codes, polygons, transformer=to_metric).locate(lon, lat)
    _assert_agrees(placement, _brute_force(codes, polygons, to_metric, lon, lat, 15.0))
