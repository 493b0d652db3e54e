"""Bulk placement of points into grids, agreeing with the PostGIS lookup point by point.

The rules are those of :mod:`geogrid.geocode`: containment on the closed polygon in
storage lon/lat; ``edge`` (several cover, the smallest code wins), ``near_edge`` (one
covers, others within ``near_m`` metres in the metric CRS), ``inside``, and ``outside``
(with the nearest area, its distance, and the area the point falls in with lat and lon
exchanged).

How it is fast and still exact. :meth:`GridIndex.build` cuts the extent into a
quadtree: a root grid of cells about one area wide, split 2 x 2 while a cell's answer
varies, down to cells about ``near_m`` wide. Each cell has a reference point whose
covering areas are known, the ring segments that may cross it, and the segments near
enough to matter. A leaf is of one of three kinds:

* resolved: no boundary crosses it and every other area is near, or far, from all of
  it; its one answer is looked up;
* edge leaf: all that varies is one boundary line (an edge, or a chain of edges, with
  the same areas on its sides); it stores four answers, (across the line from the
  reference point or not) x (near it or not), and a point picks one with a crossing
  test and a distance per edge, or, for a single edge, with two affine functions of
  lon/lat that carry error bounds;
* tested: a point's covering is the reference covering flipped by every boundary the
  way to the point crosses, and nearness is its metric distance to the segments left.

Signs carry a bound on their rounding and distances a tolerance; whatever is too close
to call goes to shapely (``intersects_xy``, ``dwithin``, STRtree nearest), so every
decision is the one the brute-force rules make. The nearest area of an outside point
is searched among the segments of the boundary of all areas' union, in numpy, by bins.

Sampled, not proven: the projection's scale and bend (how far it strays from its
tangent map) are measured by finite differences at the vertices and across the extent,
with safety factors; they size the degree margins and the slack of the affine models.

The package's modules, each one idea: ``_kernels`` (signs, crossings, distances with
error bounds), ``_geometry`` (the areas in both CRSs and the quadtree's frame),
``_answers`` (statuses and the rules that turn coverings into answers), ``_cells``
(classifying the cells of one level during the build), ``_tree`` (the quadtree and how
points find their leaves) and ``_edge_leaves`` (leaves split by one boundary line).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from geogrid.errors import CoordinateError
from geogrid.pointindex._answers import (
    EDGE,
    INSIDE,
    NEAR_EDGE,
    OUTSIDE,
    STATUS_NAMES,
    _Answer,
)
from geogrid.pointindex._geometry import Projector, _Geometry
from geogrid.pointindex._kernels import _Csr
from geogrid.pointindex._tree import _Tree

__all__ = [
    "EDGE",
    "INSIDE",
    "NEAR_EDGE",
    "OUTSIDE",
    "STATUS_NAMES",
    "STORAGE_EPSG",
    "GridIndex",
    "Placement",
    "Projector",
]

STORAGE_EPSG = 4490
#: Points are located this many at a time, to bound the memory of one pass.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Placement:
    """Where each point falls, as arrays over the points; indexes refer to ``codes``.

    ``-1`` means none. The candidates of point ``i``, sorted by code, are
    ``candidate_index[candidate_offsets[i]:candidate_offsets[i + 1]]``. ``nearest_*``
    and ``swapped_index`` are set for outside points only.
    """

    codes: np.ndarray
    index: np.ndarray
    status: np.ndarray
    candidate_offsets: np.ndarray
    candidate_index: np.ndarray
    nearest_index: np.ndarray
    nearest_distance_m: np.ndarray
    swapped_index: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def status_names(self) -> np.ndarray:
        """The status of every point by name (``inside``, ``near_edge`` …)."""
        return np.asarray(STATUS_NAMES, dtype=object)[self.status]

    def grid_codes(self) -> np.ndarray:
        """The assigned code of every point, ``None`` when outside."""
        return _codes_or_none(self.codes, self.index)

    def nearest_codes(self) -> np.ndarray:
        """The nearest area's code for outside points, else ``None``."""
        return _codes_or_none(self.codes, self.nearest_index)

    def swapped_codes(self) -> np.ndarray:
        """For outside points, the code they get with lat and lon exchanged, else ``None``."""
        return _codes_or_none(self.codes, self.swapped_index)

    def candidates(self, point: int) -> list[str]:
        """The candidate codes of one point, sorted."""
        start, stop = self.candidate_offsets[point], self.candidate_offsets[point + 1]
        return [str(code) for code in self.codes[self.candidate_index[start:stop]]]

    def to_frame(self) -> pd.DataFrame:
        """One row per point, with the columns of a single PostGIS lookup."""
        joined = np.full(len(self), "", dtype=object)
        for point in np.flatnonzero(np.diff(self.candidate_offsets)):
            joined[point] = ";".join(self.candidates(point))
        columns = {
            "grid_code": self.grid_codes(),
            "status": self.status_names(),
            "candidates": joined,
            "nearest_code": self.nearest_codes(),
            "nearest_distance_m": self.nearest_distance_m,
            "swapped_code": self.swapped_codes(),
        }
        # Object columns keep None for "no code", as a single lookup reports it.
        return pd.DataFrame(
            {name: pd.Series(values, dtype=values.dtype) for name, values in columns.items()}
        )


def _codes_or_none(codes: np.ndarray, index: np.ndarray) -> np.ndarray:
    out = np.full(len(index), None, dtype=object)
    out[index >= 0] = codes[index[index >= 0]]
    return out


class GridIndex:
    """The areas of one level, ready to place many points with :meth:`locate`."""

    def __init__(self, codes: np.ndarray, tree: _Tree) -> None:
        self.codes = codes
        self._tree = tree

    @classmethod
    def build(
        cls,
        codes: Sequence[str],
        polygons: Any,
        *,
        metric_epsg: int | None = None,
        transformer: pyproj.Transformer | Projector | None = None,
        near_m: float = 15.0,
    ) -> GridIndex:
        """Index areas given in storage lon/lat; distances are metres in a metric CRS.

        Give the metric CRS as ``metric_epsg`` (projected from EPSG:4490), or give a
        ``transformer`` from the polygons' lon/lat to it: a pyproj ``Transformer`` built
        with ``always_xy=True``, or a function ``(lon, lat) -> (x, y)`` over arrays.
        Codes must be unique and polygons valid, as the database keeps them.
        """
        codes_array = np.asarray(codes, dtype=object)
        polygons = np.asarray(polygons, dtype=object)
        _check_areas(codes_array, polygons, near_m)
        project = _projector(metric_epsg, transformer)
        geometry = _Geometry.from_areas(codes_array, polygons, project, near_m)
        return cls(codes_array, _Tree.build(geometry))

    def locate(
        self, lon: Any, lat: Any, *, progress: bool | Callable[[int], None] | None = None
    ) -> Placement:
        """Place points given in storage lon/lat.

        ``progress`` is True for a progress bar, or a function told how many more
        points are done.
        """
        lon, lat = np.asarray(lon, dtype=float).ravel(), np.asarray(lat, dtype=float).ravel()
        _check_points(lon, lat)
        report, bar = _progress(progress, len(lon))
        parts = []
        for start in range(0, max(len(lon), 1), _CHUNK):
            stop = min(start + _CHUNK, len(lon))
            parts.append(self._tree.locate(lon[start:stop], lat[start:stop]))
            report(stop - start)
        if bar is not None:
            bar.close()
        return _join(self.codes, parts)


def _join(codes: np.ndarray, parts: list[_Answer]) -> Placement:
    """One placement from the chunks' answers."""
    starts = np.cumsum([0] + [len(part.status) for part in parts])
    point = np.concatenate(
        [part.candidates[0] + start for part, start in zip(parts, starts, strict=False)]
    )
    area = np.concatenate([part.candidates[1] for part in parts])
    by_point = np.argsort(point, kind="stable")

    def glue(name: str) -> np.ndarray:
        return np.concatenate([getattr(part, name) for part in parts])

    return Placement(
        codes=codes,
        index=glue("index"),
        status=glue("status"),
        candidate_offsets=_Csr.from_pairs((point[by_point], area), int(starts[-1])).offsets,
        candidate_index=area[by_point].astype(np.int32),
        nearest_index=glue("nearest_index"),
        nearest_distance_m=glue("nearest_distance_m"),
        swapped_index=glue("swapped_index"),
    )


def _check_areas(codes: np.ndarray, polygons: np.ndarray, near_m: float) -> None:
    if codes.ndim != 1 or codes.shape != polygons.shape or not len(codes):
        raise ValueError("codes and polygons must be non-empty sequences of the same length")
    if len(set(codes.tolist())) != len(codes):
        raise ValueError("codes must be unique: the smallest code decides shared edges")
    kind = shapely.get_type_id(polygons)
    polygonal = (kind == shapely.GeometryType.POLYGON) | (kind == shapely.GeometryType.MULTIPOLYGON)
    if not polygonal.all() or shapely.is_empty(polygons).any():
        raise ValueError("every area must be a non-empty Polygon or MultiPolygon")
    if not shapely.is_valid(polygons).all():
        raise ValueError("every area must be valid, as the database keeps it (ST_IsValid)")
    if not (np.isfinite(near_m) and near_m >= 0):
        raise ValueError("near_m must be a finite distance >= 0")


def _check_points(lon: np.ndarray, lat: np.ndarray) -> None:
    if lon.shape != lat.shape:
        raise ValueError("lon and lat must have the same length")
    # The same range check as a single lookup (geogrid.crs.check_lonlat).
    bad = ~(np.abs(lon) <= 180) | ~(np.abs(lat) <= 90)
    if bad.any():
        point = int(np.argmax(bad))
        raise CoordinateError(
            f"point {point}: ({lon[point]}, {lat[point]}) is not a lon/lat",
            field="lon" if not np.abs(lon[point]) <= 180 else "lat",
            index=point,
        )


def _projector(
    metric_epsg: int | None, transformer: pyproj.Transformer | Projector | None
) -> Projector:
    if (metric_epsg is None) == (transformer is None):
        raise ValueError("give exactly one of metric_epsg and transformer")
    if metric_epsg is not None:
        transformer = pyproj.Transformer.from_crs(STORAGE_EPSG, metric_epsg, always_xy=True)
    if isinstance(transformer, pyproj.Transformer):
        return transformer.transform
    assert transformer is not None
    return transformer


def _progress(
    progress: bool | Callable[[int], None] | None, total: int
) -> tuple[Callable[[int], Any], Any]:
    if callable(progress):
        return progress, None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="pt", unit_scale=True)
        return bar.update, bar
    return lambda done: None, None
