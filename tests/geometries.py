"""A zoo of tiny named geometries, drawn in metres and placed near Weifang.

Shapes are written in local metres east and north of ``ORIGIN`` (lon 119.1, lat 36.7) in
the CGCS2000 Gauss-Krüger zone on 120°E (EPSG:4549), so that known answers (a 2 m gap,
a 10 m² sliver) can be read off the coordinates; :func:`lonlat` places them in the
storage CRS (EPSG:4490). Shared edges stay exactly shared: the same local vertex always
becomes the same lon/lat.

    200 +---------+---------+
        |  NW     |  NE     |      SQUARE = the whole 200 m x 200 m square
    100 +---------+---------+      QUADRANTS = SW, SE, NW, NE
        |  SW     |  SE     |
      0 +---------+---------+
        0        100       200
"""

from __future__ import annotations

from functools import cache

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from shapely import Polygon, box

ORIGIN = (119.1, 36.7)
LOCAL_EPSG = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
STORAGE_EPSG = 4490

SQUARE = box(0, 0, 200, 200)
SW, SE, NW, NE = (
    box(0, 0, 100, 100),
    box(100, 0, 200, 100),
    box(0, 100, 100, 200),
    box(100, 100, 200, 200),
)
QUADRANTS = (SW, SE, NW, NE)
WEST_HALF, EAST_HALF = box(0, 0, 100, 200), box(100, 0, 200, 200)
#: A figure of eight: its edges cross at (50, 50).
BOWTIE = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
BOWTIE_CROSSING = (50.0, 50.0)


@cache
def _transformers() -> tuple[Transformer, Transformer]:
    to_local = Transformer.from_crs(STORAGE_EPSG, LOCAL_EPSG, always_xy=True)
    return to_local, Transformer.from_crs(LOCAL_EPSG, STORAGE_EPSG, always_xy=True)


def _origin() -> tuple[float, float]:
    return _transformers()[0].transform(*ORIGIN)


def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """A shape in local metres as lon/lat in the storage CRS."""
    x0, y0 = _origin()
    back = _transformers()[1]
    return shapely.transform(geom, lambda x, y: back.transform(x + x0, y + y0), interleaved=False)


def local_point(x: float, y: float) -> tuple[float, float]:
    """The lon/lat of a local point (metres east and north of the origin)."""
    point = lonlat(shapely.Point(x, y))
    return point.x, point.y


def local_xy(lon: float, lat: float) -> tuple[float, float]:
    """The local metres of a lon/lat point."""
    x0, y0 = _origin()
    x, y = _transformers()[0].transform(lon, lat)
    return x - x0, y - y0


def boundary_set(rows: list[tuple], crs: str = f"EPSG:{STORAGE_EPSG}") -> gpd.GeoDataFrame:
    """Areas from ``(code, level, local_geometry[, households])`` rows, placed in lon/lat."""
    records = []
    for code, level, geom, *rest in rows:
        records.append(
            {
                "code": code,
                "level": level,
                "parent_code": None,
                "name": f"area {code}",
                "kind": "comprehensive",
                "households": rest[0] if rest else None,
                "geometry": None if geom is None else lonlat(geom),
            }
        )
    return gpd.GeoDataFrame(records, geometry="geometry", crs=crs)


def voronoi_city(
    grids: int = 15_000,
    per_community: int = 10,
    communities_per_township: int = 12,
    microgrids_per_grid: int = 0,
    *,
    side_m: float = 60_000.0,
    seed: int = 1,
) -> gpd.GeoDataFrame:
    """A synthetic county of Voronoi cells: townships, communities, grids (and micro-grids).

    The finest cells are Voronoi cells of random points; each coarser level groups the
    cells of the level below by the nearest of fewer random seeds and dissolves them with
    a coverage union, so every level tiles the county and nests exactly: a clean boundary
    set of the default scheme, in lon/lat.
    """
    rng = np.random.default_rng(seed)
    finest = grids * max(microgrids_per_grid, 1)
    points = shapely.points(rng.uniform(0, side_m, (finest, 2)))
    frame = box(0, 0, side_m, side_m)
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame, ordered=True)
    cells = shapely.intersection(shapely.get_parts(cells), frame)
    labels = {"microgrid": np.arange(finest)} if microgrids_per_grid else {}
    labels["grid"] = (
        _grouped(points, grids, labels["microgrid"], side_m, rng)
        if microgrids_per_grid
        else np.arange(finest)
    )
    labels["community"] = _grouped(points, grids // per_community, labels["grid"], side_m, rng)
    townships = grids // per_community // communities_per_township
    labels["township"] = _grouped(points, townships, labels["community"], side_m, rng)
    rows = [("370705", "county", shapely.coverage_union_all(cells))]
    _add_children(
        rows,
        cells,
        labels,
        ["township", "community", "grid", "microgrid"],
        np.arange(finest),
        "370705",
    )
    return boundary_set(rows)


_WIDTH = {"township": 3, "community": 3, "grid": 3, "microgrid": 2}


def _grouped(
    points: np.ndarray,
    count: int,
    finer: np.ndarray | None,
    side_m: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each cell's group: the nearest seed to the first cell of its finer group."""
    seeds = shapely.points(rng.uniform(0, side_m, (max(count, 1), 2)))
    nearest = shapely.STRtree(seeds).query_nearest(points, all_matches=False)[1]
    if finer is None:
        return nearest
    first = np.zeros(finer.max() + 1, dtype=int)
    uniques, index = np.unique(finer, return_index=True)
    first[uniques] = index
    return nearest[first[finer]]


def _add_children(
    rows: list, cells: np.ndarray, labels: dict, levels: list[str], inside: np.ndarray, prefix: str
) -> None:
    """Rows for the areas of ``levels[0]`` among the cells ``inside``, then their children."""
    level, rest = levels[0], levels[1:]
    if level not in labels:
        return
    order = inside[np.argsort(labels[level][inside], kind="stable")]
    groups = np.split(order, np.flatnonzero(np.diff(labels[level][order])) + 1)
    for number, members in enumerate(groups, 1):
        code = f"{prefix}{number:0{_WIDTH[level]}d}"
        rows.append((code, level, shapely.coverage_union_all(cells[members])))
        if rest:
            _add_children(rows, cells, labels, rest, members, code)
