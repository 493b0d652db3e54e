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

INSIDE, NEAR_EDGE, EDGE, OUTSIDE = 0, 1, 2, 3
STATUS_NAMES = ("inside", "near_edge", "edge", "outside")
STORAGE_EPSG = 4490

Projector = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
#: (row, value) pairs sorted by row, then value.
Pairs = tuple[np.ndarray, np.ndarray]
Floats = np.ndarray | float

#: Orientation signs are trusted only beyond this relative size; the rounding error
#: bound is about 3.3e-16 (Shewchuk's ccwerrboundA).
_SIGN_EPS = 1e-12
#: Degrees (0.1 mm) added around cells, so rounding in mapping a point to its cell can
#: never put it outside the cell that was classified.
_PAD = 1e-9
#: The reference point of a cell as fractions of its sides: irrational, so it does not
#: land on the axis-parallel or lattice edges that test data likes.
_REF = (0.3819660112501051, 0.4142135623730950)
#: Finest cells are this many times ``near_m`` wide, at least the floor (metres), and
#: wide enough that the ring segments' total length is this many of them: the build
#: then stays near a million leaves, however long the boundaries.
_FINEST_CELL, _FINEST_CELL_FLOOR_M, _FINEST_CELLS_ALONG = 1.5, 2.0, 2_000_000
#: Cells whose only open question is one edge stop splitting this many levels early.
_EDGE_LEVELS = 2
_MAX_DEPTH = 24
#: Cells of the level with at most this many cells are looked up directly.
_TABLE_SIZE = 1 << 23
_CHUNK = 1 << 20
#: The status of a leaf whose points are tested one by one.
_TESTED = 255


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


def _project(project: Projector, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mx, my = project(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(mx, dtype=float), np.asarray(my, dtype=float)


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


# --- numeric kernels: exact answers, or "unsure" ---------------------------------------


def _orient(ax: Floats, ay: Floats, bx: Floats, by: Floats, cx: Floats, cy: Floats) -> np.ndarray:
    """Side of c from the line a→b: +1 left, -1 right, 0 when rounding could flip it."""
    left, right = (bx - ax) * (cy - ay), (by - ay) * (cx - ax)
    det, bound = left - right, _SIGN_EPS * (np.abs(left) + np.abs(right))
    return (det > bound).astype(np.int8) - (det < -bound)


def _crossing(
    rx: Floats, ry: Floats, px: Floats, py: Floats, segment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whether the way r→p properly crosses each segment, and where that is unsure.

    Unsure covers every touch (p or r on a segment, the way through a vertex), so a
    sure answer everywhere means the parity of crossings is the change of membership.
    """
    ax, ay, bx, by = segment.T
    sr, sp = _orient(ax, ay, bx, by, rx, ry), _orient(ax, ay, bx, by, px, py)
    sa, sb = _orient(rx, ry, px, py, ax, ay), _orient(rx, ry, px, py, bx, by)
    crosses = (sr * sp == -1) & (sa * sb == -1)
    apart = ((sr == sp) & (sr != 0)) | ((sa == sb) & (sa != 0))
    return crosses, ~crosses & ~apart


def _distance(px: Floats, py: Floats, segment: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point to its segment."""
    ax, ay, bx, by = segment.T
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(ax + t * dx - px, ay + t * dy - py)


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


def _odd(keys: np.ndarray) -> np.ndarray:
    """The keys that occur an odd number of times in sorted ``keys``."""
    starts = _group_starts(keys)
    return keys[starts][np.diff(np.r_[starts, len(keys)]) % 2 == 1]


@dataclass(frozen=True)
class _Csr:
    """Lists of values per row: ``values[offsets[r]:offsets[r + 1]]``."""

    offsets: np.ndarray
    values: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: Pairs, n: int) -> _Csr:
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(pairs[0], minlength=n), out=offsets[1:])
        return cls(offsets, pairs[1])

    def gather(self, rows: np.ndarray) -> Pairs:
        """(position in ``rows``, value) for every entry of the given rows, in order."""
        starts, counts = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        which = np.repeat(np.arange(len(rows)), counts)
        shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return which, self.values[np.arange(len(which)) + shift]


@dataclass
class _Geometry:
    """The areas, numbered in code order, in both CRSs; their segments; error budgets."""

    order: np.ndarray  # area number -> position in the codes given to build
    polygons: np.ndarray
    metric: np.ndarray
    metric_tree: shapely.STRtree
    boundary: _Boundary
    segments: np.ndarray  # lon/lat rows (x0, y0, x1, y1), in area order
    bounds: np.ndarray  # each segment's (xmin, ymin, xmax, ymax)
    metric_segments: np.ndarray
    segment_area: np.ndarray
    segment_edge: np.ndarray  # the same number for copies of one edge (shared boundaries)
    project: Projector
    near_m: float
    degrees_per_m: tuple[float, float]  # lon, lat: at least this, anywhere (with margin)
    margin: tuple[float, float]  # lon, lat degrees holding every point within near_m
    stretch: float  # metres per degree, at most, in any direction
    bend: float  # metres per degree squared: the projection is within bend/2 * |Δ|² of linear
    tolerance: float  # metres by which our distances may differ from GEOS's
    bow_m: float  # how far a projected lon/lat edge strays from the straight metric edge
    far_m: float  # a segment distance beyond this settles "not near"

    @classmethod
    def from_areas(
        cls, codes: np.ndarray, polygons: np.ndarray, project: Projector, near_m: float
    ) -> _Geometry:
        """Number areas by code, project them, and measure how degrees and metres relate."""
        order = np.argsort(codes.astype(str), kind="stable")
        polygons = polygons[order]
        metric = shapely.transform(polygons, lambda xy: np.column_stack(_project(project, *xy.T)))
        shapely.prepare(polygons)
        shapely.prepare(metric)
        segments, segment_area = _ring_segments(polygons)
        metric_segments = np.column_stack(
            _project(project, segments[:, 0], segments[:, 1])
            + _project(project, segments[:, 2], segments[:, 3])
        )
        # A straight lon/lat segment projects to a slight curve, not to the straight
        # metric segment: containment in the two CRSs can differ within this bow.
        mid = _project(project, segments[:, 0::2].mean(axis=1), segments[:, 1::2].mean(axis=1))
        bow = np.hypot(mid[0] - metric_segments[:, 0::2].mean(axis=1),
                       mid[1] - metric_segments[:, 1::2].mean(axis=1))  # fmt: skip
        bow_m = 2.0 * float(bow.max())
        tolerance = 1e-6 + 1e-12 * float(np.abs(metric_segments).max())
        degrees_per_m, stretch, bend = _degree_scale(project, segments)
        reach = near_m + bow_m + tolerance
        return cls(
            order=order,
            polygons=polygons,
            metric=metric,
            metric_tree=shapely.STRtree(metric),
            boundary=_Boundary.of(metric),
            segments=segments,
            bounds=np.c_[
                np.minimum(segments[:, :2], segments[:, 2:]),
                np.maximum(segments[:, :2], segments[:, 2:]),
            ],
            metric_segments=metric_segments,
            segment_area=segment_area,
            segment_edge=_edge_numbers(segments)[0],
            project=project,
            near_m=near_m,
            degrees_per_m=degrees_per_m,
            margin=(degrees_per_m[0] * reach, degrees_per_m[1] * reach),
            stretch=stretch,
            bend=bend,
            tolerance=tolerance,
            bow_m=bow_m,
            far_m=max(near_m, bow_m) + tolerance,
        )

    def position(self, area: np.ndarray) -> np.ndarray:
        """Area numbers (-1 for none) as positions in the codes given to build."""
        return np.where(area >= 0, self.order[np.maximum(area, 0)], -1)

    def covering(
        self, x: np.ndarray, y: np.ndarray, ref: tuple[np.ndarray, np.ndarray],
        ref_cover: Pairs, crossing: Pairs,
    ) -> Pairs:  # fmt: skip
        """(point, area) for every area covering each point.

        Point ``q``'s reference point ``ref[.][q]`` is covered by ``ref_cover`` and lies
        in the same cell; membership of an area flips at each of its boundaries that the
        way there crosses, and ``crossing`` lists every segment that might. Points whose
        way touches a segment or a vertex are tested by shapely instead.
        """
        areas, (cq, segment), (rq, ra) = len(self.polygons), crossing, ref_cover
        crosses, unsure = _crossing(ref[0][cq], ref[1][cq], x[cq], y[cq], self.segments[segment])
        hard = np.zeros(len(x), dtype=bool)
        hard[cq[unsure]] = True
        flips = crosses & ~hard[cq]
        keys = rq[~hard[rq]] * areas + ra[~hard[rq]]
        if flips.any():
            keys = np.sort(
                np.r_[keys, _odd(cq[flips] * areas + self.segment_area[segment[flips]])],
                kind="stable",
            )
            keys = _odd(keys)
        if hard.any():
            # Any area covering such a point covers its reference or has a segment here.
            of_ref = rq[hard[rq]] * areas + ra[hard[rq]]
            of_segments = cq[hard[cq]] * areas + self.segment_area[segment[hard[cq]]]
            maybe = np.unique(np.r_[of_ref, of_segments])
            q, area = maybe // areas, maybe % areas
            hits = maybe[shapely.intersects_xy(self.polygons[area], x[q], y[q])]
            keys = np.sort(np.r_[keys, hits], kind="stable")
        return keys // areas, keys % areas

    def near(self, mx: np.ndarray, my: np.ndarray, tested: Pairs, cover_keys: np.ndarray) -> Pairs:
        """(point, area) for the ``tested`` areas within near_m of each metric point.

        Areas that cover the point (``cover_keys``: point * areas + area) are skipped.
        """
        areas, (q, segment) = len(self.polygons), tested
        keys = q * areas + self.segment_area[segment]
        keep = ~_isin_sorted(keys, cover_keys)
        q, segment, keys = q[keep], segment[keep], keys[keep]
        starts = _group_starts(keys)
        if not len(starts):
            return starts, starts
        gap = np.minimum.reduceat(_distance(mx[q], my[q], self.metric_segments[segment]), starts)
        q, area = q[starts], self.segment_area[segment[starts]]
        near = gap <= self.near_m - self.tolerance
        unsure = ~near & (gap <= self.far_m)
        if unsure.any():
            points = shapely.points(mx[q[unsure]], my[q[unsure]])
            near[unsure] = shapely.dwithin(self.metric[area[unsure]], points, self.near_m)
        return q[near], area[near]

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest area in metres (the smallest code on ties) and its distance."""
        index, distance = np.full(len(lon), -1, dtype=np.int64), np.full(len(lon), np.nan)
        mx, my = _project(self.project, lon, lat)
        # Points the metric CRS cannot project (far outside its zone) have no distance.
        found = np.flatnonzero(np.isfinite(mx) & np.isfinite(my))
        if not len(found):
            return index, distance
        mx, my = mx[found], my[found]
        near, gap, unsure = self.boundary.nearest(mx, my, self.tolerance)
        index[found], distance[found] = near, gap
        # Within the bow a point may lie inside a projected area (distance 0), and near
        # ties need GEOS's own distances to order them as the brute force does.
        hard = np.flatnonzero(unsure | (gap <= self.bow_m + 2 * self.tolerance))
        if len(hard):
            points = shapely.points(mx[hard], my[hard])
            (q, area), gap = self.metric_tree.query_nearest(points, return_distance=True)
            order = np.lexsort((area, q))
            first = order[_group_starts(q[order])]
            index[found[hard[q[first]]]] = area[first]
            distance[found[hard[q[first]]]] = gap[first]
        return index, distance


@dataclass(frozen=True)
class _Boundary:
    """The segments of the boundary of the areas' union, in the metric CRS.

    The nearest point of the nearest area to a point outside every area lies there, so
    they are all a nearest search needs.
    """

    segments: np.ndarray
    area: np.ndarray
    tree: shapely.STRtree
    bin_m: float  # points are searched for by bins of this side

    @classmethod
    def of(cls, metric: np.ndarray) -> _Boundary:
        segments, area = _ring_segments(shapely.orient_polygons(metric))
        # With rings oriented alike, an edge run both ways has areas on both sides.
        edge, backwards = _edge_numbers(segments)
        both = (np.bincount(edge, backwards) > 0) & (np.bincount(edge, ~backwards) > 0)
        segments, area = segments[~both[edge]], area[~both[edge]]
        lines = shapely.linestrings(segments.reshape(-1, 2, 2))
        # Bins a few segments long keep each point's candidates few.
        length = np.hypot(*(segments[:, 2:] - segments[:, :2]).T)
        width = float(np.sqrt(shapely.area(metric).sum() / len(metric)))
        return cls(
            segments, area, shapely.STRtree(lines), min(2 * width, 8 * float(np.median(length)))
        )

    def nearest(
        self, x: np.ndarray, y: np.ndarray, tolerance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest area and distance of each point, and whether another area is as near.

        Points are binned; one GEOS query per bin finds how far its farthest point may
        be from the boundary, and numpy measures each point against the segments
        within that reach of the bin.
        """
        bx, by = (
            np.floor(x / self.bin_m).astype(np.int64),
            np.floor(y / self.bin_m).astype(np.int64),
        )
        key = (bx - bx.min()) * (by.max() - by.min() + 1) + (by - by.min())
        _, first, point_bin = np.unique(key, return_index=True, return_inverse=True)
        x0, y0 = bx[first] * self.bin_m, by[first] * self.bin_m
        half = self.bin_m / 2
        centres = shapely.points(x0 + half, y0 + half)
        (which, _), gap = self.tree.query_nearest(centres, return_distance=True, all_matches=False)
        # Every point of a bin is within this of the segment nearest to its centre.
        reach = np.empty(len(first))
        reach[which] = gap + half * np.sqrt(2) + tolerance
        boxes = shapely.box(
            x0 - reach, y0 - reach, x0 + self.bin_m + reach, y0 + self.bin_m + reach
        )
        which, segment = self.tree.query(boxes)
        # The box is a square around a disc: keep what the disc around the centre holds.
        keep = _distance(x0[which] + half, y0[which] + half, self.segments[segment])
        keep = keep <= reach[which] + half * np.sqrt(2) + tolerance
        which, segment = which[keep], segment[keep]
        order = np.lexsort((segment, which))
        candidates = _Csr.from_pairs((which[order], segment[order]), len(first))
        q, segment = candidates.gather(point_bin.ravel())
        gap = _distance(x[q], y[q], self.segments[segment])
        starts = _group_starts(q)
        closest = np.minimum.reduceat(gap, starts)
        tie = gap <= closest[q] + 2 * tolerance
        area = np.where(tie, self.area[segment], len(self.segments) + np.iinfo(np.int32).max)
        index = np.minimum.reduceat(area, starts)
        other = np.maximum.reduceat(np.where(tie, self.area[segment], -1), starts)
        return index, closest, other != index


def _edge_numbers(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A number per segment, the same for the same two ends either way; and which way."""
    start, end = segments[:, :2], segments[:, 2:]
    backwards = (start[:, 0] > end[:, 0]) | ((start[:, 0] == end[:, 0]) & (start[:, 1] > end[:, 1]))
    ends = np.where(backwards[:, None], np.c_[end, start], np.c_[start, end])
    return np.unique(ends, axis=0, return_inverse=True)[1].ravel(), backwards


def _one_edge(geometry: _Geometry, tested: Pairs, n: int) -> np.ndarray:
    """Which of ``n`` cells test their points against copies of one edge only."""
    starts = _group_starts(tested[0])
    one = np.zeros(n, dtype=bool)
    if len(starts):
        edge = geometry.segment_edge[tested[1]]
        same = np.minimum.reduceat(edge, starts) == np.maximum.reduceat(edge, starts)
        one[tested[0][starts]] = same
    return one


def _ring_segments(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ring segment (x0, y0, x1, y1) with its area, in area order."""
    parts, part_area = shapely.get_parts(polygons, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[1:] == ring[:-1]
    segments = np.column_stack([xy[:-1], xy[1:]])[same_ring]
    area = part_area[ring_part[ring[:-1][same_ring]]].astype(np.int64)
    real = (segments[:, 0] != segments[:, 2]) | (segments[:, 1] != segments[:, 3])
    return segments[real], area[real]


def _degree_scale(
    project: Projector, segments: np.ndarray
) -> tuple[tuple[float, float], float, float]:
    """How degrees and metres relate: degrees holding a metre, metres per degree, bend.

    From the projection's first and second derivatives (finite differences) at the
    vertices and across their bounds, with safety factors for the variation in between:
    1.5 on degrees of lon and lat that hold a metre in any direction, 1.05 on the most
    metres per degree, 2 on the bend (metres per degree squared) that bounds how far the
    projection strays from its tangent map.
    """
    step = max(1, len(segments) // 50_000)
    x, y = segments[::step, 0], segments[::step, 1]
    across = np.meshgrid(np.linspace(x.min(), x.max(), 9), np.linspace(y.min(), y.max(), 9))
    x, y = np.r_[x, across[0].ravel()], np.r_[y, across[1].ravel()]
    k = 1e-3
    shifts = [(0, 0), (k, 0), (-k, 0), (0, k), (0, -k), (k, k), (k, -k), (-k, k), (-k, -k)]
    mx, my = _project(project, np.concatenate([x + i for i, _ in shifts]),
                      np.concatenate([y + j for _, j in shifts]))  # fmt: skip
    at = [np.stack([mx, my]).reshape(2, len(shifts), len(x))[:, s] for s in range(len(shifts))]
    east, north = (at[1] - at[2]) / (2 * k), (at[3] - at[4]) / (2 * k)
    (a, c), (b, d) = east, north
    det = np.abs(a * d - b * c)
    # A disc of radius r pulled back through [[a, b], [c, d]] spans r * these in lon, lat.
    per_m = (1.5 * float(np.max(np.hypot(b, d) / det)), 1.5 * float(np.max(np.hypot(a, c) / det)))
    square = a * a + b * b + c * c + d * d
    largest = np.sqrt((square + np.sqrt(np.maximum(square**2 - 4 * det**2, 0.0))) / 2)
    xx, yy = (at[1] - 2 * at[0] + at[2]) / k**2, (at[3] - 2 * at[0] + at[4]) / k**2
    xy = (at[5] - at[6] - at[7] + at[8]) / (4 * k**2)
    bend = np.sqrt((xx**2 + 2 * xy**2 + yy**2).sum(axis=0))
    return per_m, 1.05 * float(largest.max()), 2.0 * float(bend.max())


@dataclass(frozen=True)
class _Grid:
    """The quadtree's frame: finest cell size, depth, and the root cells (2**depth finest)."""

    origin: tuple[float, float]
    finest: tuple[float, float]
    depth: int
    roots: tuple[int, int]

    @classmethod
    def for_geometry(cls, geometry: _Geometry) -> _Grid:
        """Finest cells about near_m wide; root cells about one area wide."""
        x0, y0, x1, y1 = shapely.total_bounds(geometry.polygons)
        (mx, my), (px, py) = geometry.margin, geometry.degrees_per_m
        # Without a floor, near_m = 0 would ask for cells of no size along every edge.
        delta = geometry.metric_segments[:, 2:] - geometry.metric_segments[:, :2]
        along = float(np.hypot(delta[:, 0], delta[:, 1]).sum()) / _FINEST_CELLS_ALONG
        side = max(_FINEST_CELL * geometry.near_m, _FINEST_CELL_FLOOR_M, along)
        finest = (px * side, py * side)
        width, height = (x1 - x0 + 2 * mx) / finest[0], (y1 - y0 + 2 * my) / finest[1]
        per_area = width * height / len(geometry.polygons)
        depth = int(np.clip(np.round(np.log2(np.sqrt(per_area))), 0, _MAX_DEPTH))
        roots = (int(np.ceil(width / 2**depth)), int(np.ceil(height / 2**depth)))
        return cls((x0 - mx, y0 - my), finest, depth, roots)

    def box(self, cx: np.ndarray, cy: np.ndarray, level: Any) -> tuple[np.ndarray, ...]:
        """The cells' boxes, by the same arithmetic that maps points to cells."""
        size, (ox, oy), (fx, fy) = 2 ** (self.depth - level), self.origin, self.finest
        x0, y0 = ox + (cx * size) * fx, oy + (cy * size) * fy
        return x0, y0, ox + ((cx + 1) * size) * fx, oy + ((cy + 1) * size) * fy

    def point_in(
        self, cx: np.ndarray, cy: np.ndarray, level: int, at: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A point of each cell, ``at`` fractions of the way across it."""
        x0, y0, x1, y1 = self.box(cx, cy, level)
        return x0 + at[0] * (x1 - x0), y0 + at[1] * (y1 - y0)

    def ref_reach(self, level: np.ndarray) -> np.ndarray:
        """How far (degrees) a point of a cell can be from the cell's reference point."""
        size = 2.0 ** (self.depth - level)
        far = (
            max(_REF[0], 1 - _REF[0]) * self.finest[0],
            max(_REF[1], 1 - _REF[1]) * self.finest[1],
        )
        return size * float(np.hypot(*far))

    def reach_m(self, level: int, stretch: float) -> float:
        """How far (metres) a point of a cell at ``level`` can be from the cell centre."""
        size = 1 << (self.depth - level)
        return stretch * size * float(np.hypot(*self.finest)) / 2

    def cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Finest-cell coordinates of points, and which points fall in the frame at all."""
        (ox, oy), (fx, fy) = self.origin, self.finest
        ix, iy = (x - ox) / fx, (y - oy) / fy
        inside = (ix >= 0) & (iy >= 0) & (ix < self.roots[0] << self.depth)
        inside &= iy < self.roots[1] << self.depth
        if not inside.all():
            ix, iy = ix[inside], iy[inside]
        # Truncation is the floor here: every coordinate left is >= 0.
        return ix.astype(np.int64), iy.astype(np.int64), inside


@dataclass
class _Answer:
    """The placement of some points in area numbers; candidates as (point, area) pairs."""

    status: np.ndarray
    index: np.ndarray
    candidates: Pairs
    nearest_index: np.ndarray | None = None
    nearest_distance_m: np.ndarray | None = None
    swapped_index: np.ndarray | None = None

    def replace(self, rows: np.ndarray, other: _Answer) -> None:
        """Take ``other``'s answer for ``rows``, which have no candidates here."""
        self.status[rows], self.index[rows] = other.status, other.index
        point, area = self.candidates
        self.candidates = (
            np.r_[point, rows[other.candidates[0]]],
            np.r_[area, other.candidates[1]],
        )


def _assemble(areas: int, n: int, cover: Pairs, near: Pairs) -> _Answer:
    """Apply the rules to the covering and the near areas (disjoint) of ``n`` points."""
    point, area = cover
    first = _group_starts(point)
    index = np.full(n, -1, dtype=np.int64)
    index[point[first]] = area[first]  # areas are numbered in code order
    covers = np.bincount(point, minlength=n)
    others = np.ones(len(point), dtype=bool)
    others[first] = False
    keys = np.sort(
        np.r_[point[others] * areas + area[others], near[0] * areas + near[1]], kind="stable"
    )
    keys = keys[covers[keys // areas] > 0]
    status = np.full(n, OUTSIDE, dtype=np.uint8)
    one = covers == 1
    status[one] = np.where(np.bincount(near[0], minlength=n)[one] > 0, NEAR_EDGE, INSIDE)
    status[covers > 1] = EDGE
    return _Answer(status, index, (keys // areas, keys % areas))


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


@dataclass
class _Tree:
    """The quadtree: nodes lead to four children or to a leaf; leaves hold answers or tests."""

    geometry: _Geometry
    grid: _Grid
    first_child: np.ndarray  # per node, -1 for a leaf
    strides: np.ndarray  # per level: child in quadrant q is first_child + q * stride
    node_leaf: np.ndarray
    ref: tuple[np.ndarray, np.ndarray]  # per leaf
    resolved: np.ndarray
    cover: _Csr  # of the reference point
    crossing: _Csr  # segments
    tested: _Csr  # segments of areas whose nearness varies within the leaf
    near: _Csr  # areas near every point of the leaf
    stored: _Stored  # answers of resolved leaves; _TESTED for the others
    edges: _EdgeLeaves
    table: np.ndarray  # per cell of level table_level: leaf, or -1 - node
    table_level: int

    @classmethod
    def build(cls, geometry: _Geometry) -> _Tree:
        """Classify cells level by level; split those whose answer varies."""
        grid, leaves = _Grid.for_geometry(geometry), _Leaves()
        first_child, strides, table = [], [], _LookupTable(grid)
        cx, cy = (
            a.ravel() for a in np.meshgrid(np.arange(grid.roots[0]), np.arange(grid.roots[1]))
        )
        ref = grid.point_in(cx, cy, 0, _REF)
        cover, margin = _root_cover(geometry, ref), _root_margin(geometry, grid)
        crossing = _crossing_pairs(geometry, margin, grid.box(cx, cy, 0))
        for level in range(grid.depth + 1):
            n = len(cx)
            tested, near, unsettled = _settle(
                geometry, grid, level, (cx, cy), cover, margin, crossing
            )
            one_edge = _one_edge(geometry, tested, n) & (level >= grid.depth - _EDGE_LEVELS)
            leaf = ~unsettled | one_edge | (level == grid.depth)
            leaves.add(np.flatnonzero(leaf), ref, ~unsettled, level, (cx, cy),
                       cover=cover, crossing=crossing, tested=tested, near=near)  # fmt: skip
            node = sum(map(len, first_child)) + np.arange(n)
            table.fill(level, cx, cy, np.where(leaf, leaves.number[-1], -1 - node))
            # Children are numbered quadrant by quadrant (all first quadrants, then all
            # second ...), so that every child list comes out already in order.
            split = np.flatnonzero(~leaf)
            rank = np.cumsum(~leaf) - 1
            first_child.append(np.where(leaf, -1, node[-1] + 1 + rank))
            strides.append(len(split))
            if not len(split):
                break
            quadrant = np.repeat(np.arange(4), len(split))
            parent = np.tile(split, 4)
            cx, cy = 2 * cx[parent] + (quadrant & 1), 2 * cy[parent] + (quadrant >> 1)
            child_ref = grid.point_in(cx, cy, level + 1, _REF)
            cover = geometry.covering(
                *child_ref, (ref[0][parent], ref[1][parent]),
                _to_children(cover, rank, leaf), _to_children(crossing, rank, leaf),
            )  # fmt: skip
            middle = grid.box(cx[: len(split)], cy[: len(split)], level + 1)[2:]
            margin = _split(geometry, middle, margin, rank, leaf, geometry.margin)
            crossing = _split(geometry, middle, crossing, rank, leaf, (_PAD, _PAD))
            crossing = _filter(
                crossing, _line_meets(geometry, crossing, grid.box(cx, cy, level + 1))
            )
            ref = child_ref
        return cls._from_leaves(geometry, grid, np.concatenate(first_child), strides, leaves, table)

    @classmethod
    def _from_leaves(
        cls, geometry: _Geometry, grid: _Grid, first_child: np.ndarray, strides: list[int],
        leaves: _Leaves, table: _LookupTable,
    ) -> _Tree:  # fmt: skip
        # One last, empty leaf stands for every point off the frame.
        nothing = np.zeros(1, dtype=np.int64)
        leaves.add(nothing, (np.zeros(1), np.zeros(1)), np.ones(1, bool), 0, (nothing, nothing))
        cover, near, tested = leaves.csr("cover"), leaves.csr("near"), leaves.csr("tested")
        crossing, resolved = leaves.csr("crossing"), np.concatenate(leaves.resolved)
        rows = np.flatnonzero(resolved)
        answer = _assemble(
            len(geometry.polygons), leaves.count, _rows_of(cover, rows), _rows_of(near, rows)
        )
        answer.status[~resolved] = _TESTED
        return cls(
            geometry=geometry,
            grid=grid,
            first_child=first_child,
            strides=np.array(strides + [0] * (grid.depth + 1 - len(strides)), dtype=np.int64),
            node_leaf=np.concatenate(leaves.number),
            ref=(np.concatenate(leaves.ref_x), np.concatenate(leaves.ref_y)),
            resolved=resolved,
            cover=cover,
            crossing=crossing,
            tested=tested,
            near=near,
            stored=_Stored.of(answer, geometry.order),
            edges=_EdgeLeaves.of(geometry, grid, leaves, cover, crossing, tested, near),
            table=table.cells,
            table_level=table.level,
        )

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> _Answer:
        """Place one chunk of points: look up, pick an edge leaf's answer, or test."""
        leaf = self.leaf_of(lon, lat)
        answer = self.stored.answer(leaf)
        todo = np.flatnonzero(answer.status == _TESTED)
        edge = self.edges.number[leaf[todo]]
        quick, todo = todo[edge >= 0], todo[edge < 0]
        if len(quick):
            rows, unsure = self.edges.variant(self, lon[quick], lat[quick], leaf[quick])
            answer.replace(quick[~unsure], self.edges.stored.answer(rows[~unsure]))
            todo = np.r_[todo, quick[unsure]]
        if len(todo):
            tested = self.tested_answer(lon[todo], lat[todo], leaf[todo])
            tested.index = self.geometry.position(tested.index)
            tested.candidates = (tested.candidates[0], self.geometry.position(tested.candidates[1]))
            answer.replace(todo, tested)
        self._place_outside(answer, lon, lat)
        return answer

    def _place_outside(self, answer: _Answer, lon: np.ndarray, lat: np.ndarray) -> None:
        outside = np.flatnonzero(answer.status == OUTSIDE)
        nearest, distance = self.geometry.nearest(lon[outside], lat[outside])
        swapped = self.smallest_covering(lat[outside], lon[outside])
        answer.nearest_index = np.full(len(lon), -1, dtype=np.int32)
        answer.nearest_distance_m = np.full(len(lon), np.nan)
        answer.swapped_index = np.full(len(lon), -1, dtype=np.int32)
        answer.nearest_index[outside] = self.geometry.position(nearest)
        answer.nearest_distance_m[outside] = distance
        answer.swapped_index[outside] = self.geometry.position(swapped)
        self._outside_candidates(answer, lon, lat, outside[distance <= self.geometry.near_m])

    def _outside_candidates(
        self, answer: _Answer, lon: np.ndarray, lat: np.ndarray, close: np.ndarray
    ) -> None:
        """Outside points list the areas within near_m as candidates, as PostGIS does.

        Only points whose nearest area is that close can have any, and they are few,
        so GEOS decides them directly.
        """
        if not len(close):
            return
        geometry = self.geometry
        mx, my = _project(geometry.project, lon[close], lat[close])
        q, area = geometry.metric_tree.query(
            shapely.points(mx, my), predicate="dwithin", distance=geometry.near_m
        )
        order = np.lexsort((area, q))  # areas are numbered in code order
        point, area = close[q[order]], geometry.position(area[order])
        answer.candidates = (
            np.r_[answer.candidates[0], point],
            np.r_[answer.candidates[1], area],
        )

    def leaf_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The leaf holding each point (the last, empty leaf for points off the frame)."""
        grid, level = self.grid, self.table_level
        ix, iy, inside = grid.cells(x, y)
        shift = grid.depth - level
        found = self.table[(iy >> shift) * (grid.roots[0] << level) + (ix >> shift)]
        deeper = np.flatnonzero(found < 0)
        if len(deeper):
            node = self._descend(-1 - found[deeper], ix[deeper], iy[deeper], level, grid.depth)
            found[deeper] = self.node_leaf[node]
        if inside.all():
            return found
        leaf = np.full(len(x), len(self.resolved) - 1, dtype=np.int64)
        leaf[inside] = found
        return leaf

    def _descend(
        self, node: np.ndarray, ix: np.ndarray, iy: np.ndarray, start: int, stop: int
    ) -> np.ndarray:
        """Follow each point's node (at level ``start``) down to a leaf, or to ``stop``."""
        node, active = node.copy(), np.arange(len(node))
        for level in range(start, stop):
            child = self.first_child[node[active]]
            inner = child >= 0
            active, child = active[inner], child[inner]
            if not len(active):
                break
            shift = self.grid.depth - level - 1
            quadrant = ((ix[active] >> shift) & 1) + 2 * ((iy[active] >> shift) & 1)
            node[active] = child + quadrant * self.strides[level]
        return node

    def tested_answer(self, lon: np.ndarray, lat: np.ndarray, leaf: np.ndarray) -> _Answer:
        """Answers for points of unresolved leaves, tested against the leaves' lists."""
        geometry, n = self.geometry, len(lon)
        cover = self.covering(lon, lat, leaf)
        covered = np.flatnonzero(np.bincount(cover[0], minlength=n) > 0)
        mx, my = np.zeros(n), np.zeros(n)
        mx[covered], my[covered] = _project(geometry.project, lon[covered], lat[covered])
        which, segment = self.tested.gather(leaf[covered])
        cover_keys = cover[0] * len(geometry.polygons) + cover[1]
        near = geometry.near(mx, my, (covered[which], segment), cover_keys)
        which, area = self.near.gather(leaf[covered])
        near = (np.r_[near[0], covered[which]], np.r_[near[1], area])
        return _assemble(len(geometry.polygons), n, cover, near)

    def covering(self, x: np.ndarray, y: np.ndarray, leaf: np.ndarray) -> Pairs:
        """(point, area) for every area covering each point of the given leaves."""
        ref = (self.ref[0][leaf], self.ref[1][leaf])
        return self.geometry.covering(
            x, y, ref, self.cover.gather(leaf), self.crossing.gather(leaf)
        )

    def smallest_covering(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The covering area with the smallest code, -1 if none or not a lon/lat."""
        out = np.full(len(x), -1, dtype=np.int64)
        valid = np.flatnonzero((np.abs(x) <= 180) & (np.abs(y) <= 90))
        point, area = self.covering(x[valid], y[valid], self.leaf_of(x[valid], y[valid]))
        first = _group_starts(point)
        out[valid[point[first]]] = area[first]
        return out


@dataclass(frozen=True)
class _Stored:
    """Answers stored by row: a leaf, or a variant of an edge leaf."""

    status: np.ndarray
    index: np.ndarray
    candidates: _Csr

    @classmethod
    def of(cls, answer: _Answer, order: np.ndarray) -> _Stored:
        """Store ``answer``, its area numbers turned into positions in the codes (``order``)."""
        n = len(answer.status)
        index = np.where(answer.index >= 0, order[np.maximum(answer.index, 0)], -1)
        candidates = _Csr.from_pairs((answer.candidates[0], order[answer.candidates[1]]), n)
        # Stored answers speak in positions already, so that looking up needs no mapping.
        return cls(answer.status, index.astype(np.int32), candidates)

    def answer(self, rows: np.ndarray) -> _Answer:
        """The stored answers of ``rows``, one per row."""
        status = self.status[rows]
        # Only near_edge and edge answers have candidates.
        with_candidates = np.flatnonzero((status == NEAR_EDGE) | (status == EDGE))
        which, area = self.candidates.gather(rows[with_candidates])
        return _Answer(status, self.index[rows], (with_candidates[which], area))


@dataclass(frozen=True)
class _EdgeLeaves:
    """Leaves whose points differ only by one boundary line: which side, and how near.

    The line is one edge, or a chain of edges, with the same areas on its two sides.
    Such a leaf stores four answers, one per (across the line from the reference point
    or not) x (within near_m of it or not). A point needs a crossing test and a
    distance per edge. For a single edge it needs less: which side of the edge's line a
    point lies is affine in lon/lat, and so, nearly, is the metric distance to the line;
    the leaf keeps both as affine functions with error bounds, so a point needs two dot
    products, and the exact projection only within the bounds.
    """

    number: np.ndarray  # per leaf: its number among edge leaves, or -1
    edges: _Csr  # per edge leaf: one copy of each of its edges
    crossed: np.ndarray  # per edge leaf: whether the line crosses it
    affine: np.ndarray  # per edge leaf: whether it is decided by the affine model
    model: np.ndarray  # rows over edge leaves: side (3), its bound, gap (3), near and far limits
    stored: _Stored  # row 4 * number + 2 * across + near

    @classmethod
    def of(
        cls, geometry: _Geometry, grid: _Grid, leaves: _Leaves, cover: _Csr, crossing: _Csr,
        tested: _Csr, near: _Csr,
    ) -> _EdgeLeaves:  # fmt: skip
        """Find the edge leaves, their four answers and their affine models."""
        n, areas = len(cover.offsets) - 1, len(geometry.polygons)
        rows, edges, owners = _one_line(geometry, tested, n)
        number = np.full(n, -1, dtype=np.int64)
        number[rows] = np.arange(len(rows))
        # The four answers: (across, near) = 00, 01, 10, 11 in rows 4 * number + 0 ... 3.
        base = _pair_keys(cover.gather(rows), areas)
        across = _odd(np.sort(np.r_[base, owners], kind="stable"))  # its areas flip
        fixed = _pair_keys(near.gather(rows), areas)
        covers = [base, base, across, across]
        nears = [fixed, np.r_[fixed, owners[~_isin_sorted(owners, base)]],
                 fixed, np.r_[fixed, owners[~_isin_sorted(owners, across)]]]  # fmt: skip
        cover_keys = np.sort(np.concatenate([_variant(k, v, areas) for v, k in enumerate(covers)]))
        near_keys = np.sort(np.concatenate([_variant(k, v, areas) for v, k in enumerate(nears)]))
        answer = _assemble(areas, 4 * len(rows), (cover_keys // areas, cover_keys % areas),
                           (near_keys // areas, near_keys % areas))  # fmt: skip
        crossed = np.diff(crossing.offsets)[rows] > 0
        single = np.flatnonzero(np.diff(edges.offsets) == 1)
        segment = edges.values[edges.offsets[single]]
        ref = np.concatenate(leaves.ref_x)[rows[single]], np.concatenate(leaves.ref_y)[rows[single]]
        level, cell = (
            np.concatenate(leaves.level)[rows[single]],
            np.concatenate(leaves.cell)[rows[single]],
        )
        box = grid.box(cell[:, 0], cell[:, 1], level)
        box = tuple(side + pad for side, pad in zip(box, (-_PAD, -_PAD, _PAD, _PAD), strict=True))
        side, valid = _side_model(geometry, box, segment, ref, crossed[single])
        gap = _gap_model(geometry, ref, grid.ref_reach(level), segment, box)
        model = np.zeros((9, len(rows)))
        model[:, single] = np.vstack([side, gap])
        affine = np.zeros(len(rows), dtype=bool)
        affine[single[valid]] = True
        return cls(number, edges, crossed, affine, model, _Stored.of(answer, geometry.order))

    def variant(
        self, tree: _Tree, lon: np.ndarray, lat: np.ndarray, leaf: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each point's answer row, and whether it is too close to call that way."""
        number = self.number[leaf]
        across, near, unsure = (np.zeros(len(lon), dtype=bool) for _ in range(3))
        by_model = self.affine[number]
        for rows, decide in (
            (np.flatnonzero(by_model), self._by_model),
            (np.flatnonzero(~by_model), self._by_edges),
        ):
            if len(rows):
                across[rows], near[rows], unsure[rows] = decide(
                    tree, lon[rows], lat[rows], leaf[rows]
                )
        return 4 * number + 2 * across + near, unsure

    def _by_model(
        self, tree: _Tree, lon: np.ndarray, lat: np.ndarray, leaf: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        geometry, number = tree.geometry, self.number[leaf]
        m = np.take(self.model, number, axis=1)
        side = m[0] + m[1] * lon + m[2] * lat
        unsure = np.abs(side) <= m[3]
        gap = np.abs(m[4] + m[5] * lon + m[6] * lat)
        near = gap <= m[7]
        exact = np.flatnonzero(~near & (gap <= m[8]))
        if len(exact):
            metric = _project(geometry.project, lon[exact], lat[exact])
            segment = self.edges.values[self.edges.offsets[number[exact]]]
            gap = _distance(*metric, geometry.metric_segments[segment])
            near[exact] = gap <= geometry.near_m - geometry.tolerance
            unsure[exact] |= ~near[exact] & (gap <= geometry.far_m)
        return side < 0, near, unsure

    def _by_edges(
        self, tree: _Tree, lon: np.ndarray, lat: np.ndarray, leaf: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        geometry, number = tree.geometry, self.number[leaf]
        q, segment = self.edges.gather(number)
        starts = _group_starts(q)
        crosses, unsure = np.zeros(len(q), dtype=bool), np.zeros(len(q), dtype=bool)
        pairs = np.flatnonzero(self.crossed[number[q]])
        at = leaf[q[pairs]]
        crosses[pairs], unsure[pairs] = _crossing(
            tree.ref[0][at], tree.ref[1][at], lon[q[pairs]], lat[q[pairs]],
            geometry.segments[segment[pairs]],
        )  # fmt: skip
        across = np.add.reduceat(crosses.astype(np.int64), starts) % 2 == 1
        mx, my = _project(geometry.project, lon, lat)
        gap = np.minimum.reduceat(
            _distance(mx[q], my[q], geometry.metric_segments[segment]), starts
        )
        near = gap <= geometry.near_m - geometry.tolerance
        unsure = np.logical_or.reduceat(unsure, starts) | (~near & (gap <= geometry.far_m))
        return across, near, unsure


def _one_line(geometry: _Geometry, tested: _Csr, n: int) -> tuple[np.ndarray, _Csr, np.ndarray]:
    """The leaves whose tested segments are copies of some edges, each from the same areas.

    Returns those leaves, one copy of each of their edges, and their (leaf number, area)
    keys of the areas on the line.
    """
    areas, edge_count = len(geometry.polygons), int(geometry.segment_edge.max()) + 1
    leaf = np.repeat(np.arange(n), np.diff(tested.offsets))
    area, edge = geometry.segment_area[tested.values], geometry.segment_edge[tested.values]
    owners = leaf * areas + area  # sorted: segments are in area order
    owners, owner_count = (
        owners[_group_starts(owners)],
        np.bincount(owners[_group_starts(owners)] // areas, minlength=n),
    )
    edges, first, copies = np.unique(
        leaf * edge_count + edge, return_index=True, return_counts=True
    )
    edge_leaf = edges // edge_count
    # Every edge has a copy from each area (an area has an edge at most once).
    regular = np.ones(n, dtype=bool)
    regular[edge_leaf[copies != owner_count[edge_leaf]]] = False
    regular &= np.diff(tested.offsets) > 0
    rows = np.flatnonzero(regular)
    number = np.full(n, -1, dtype=np.int64)
    number[rows] = np.arange(len(rows))
    keep = regular[edge_leaf]
    line = _Csr.from_pairs((number[edge_leaf[keep]], tested.values[first[keep]]), len(rows))
    keep = regular[owners // areas]
    return rows, line, number[owners[keep] // areas] * areas + owners[keep] % areas


def _side_model(
    geometry: _Geometry, box: tuple[np.ndarray, ...], segment: np.ndarray,
    ref: tuple[np.ndarray, np.ndarray], crossed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Which side of the edge's line, as an affine function: > 0 on the reference side.

    Returns its three coefficients and a bound on its rounding anywhere in the (padded)
    cell, and whether a side change is a crossing: the edge must run right through the
    cell (its ends outside) and the reference point must be clearly on one side. An
    edge that does not cross the cell gets a constant 1: every point is on the
    reference side.
    """
    ax, ay, bx, by = geometry.segments[segment].T
    x0, y0, x1, y1 = box
    inside = [(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) for x, y in ((ax, ay), (bx, by))]
    ref_side = _orient(ax, ay, bx, by, *ref)
    valid = ~crossed | (~inside[0] & ~inside[1] & (ref_side != 0))
    dx, dy, sign = bx - ax, by - ay, np.where(crossed, ref_side, 0)
    # The terms of (b - a) x (p - a) expanded; their sizes bound the rounding.
    size = np.abs(dy * ax) + np.abs(dx * ay)
    size += np.abs(dy) * np.maximum(np.abs(x0), np.abs(x1)) + np.abs(dx) * np.maximum(
        np.abs(y0), np.abs(y1)
    )
    model = np.vstack([sign * (dy * ax - dx * ay), -sign * dy, sign * dx, _SIGN_EPS * size])
    model[:, ~crossed] = np.array([[1.0], [0.0], [0.0], [0.0]])
    return model, valid


def _pair_keys(pairs: Pairs, areas: int) -> np.ndarray:
    return pairs[0] * areas + pairs[1]


def _variant(keys: np.ndarray, variant: int, areas: int) -> np.ndarray:
    """(edge leaf, area) keys as (answer row, area) keys of one of its four answers."""
    return (4 * (keys // areas) + variant) * areas + keys % areas


def _gap_model(
    geometry: _Geometry, ref: tuple[np.ndarray, np.ndarray], reach: np.ndarray,
    segment: np.ndarray, box: tuple[np.ndarray, ...],
) -> np.ndarray:  # fmt: skip
    """Distance to each edge's line as an affine function of lon/lat, and its limits.

    The projection's tangent map at the reference point comes from forward differences
    of step h; Taylor's bound with the bend gives the slack for points within ``reach``
    degrees of it (plus the error of the differences). Below the near limit a point is
    near; the distance to the line is the distance to the edge only where the position
    along it stays within the edge, so a cell reaching past an end gets no near limit.
    Beyond the far limit a point is not near.
    """
    n, h = len(segment), 1e-5
    mx, my = _project(
        geometry.project, np.r_[ref[0], ref[0] + h, ref[0]], np.r_[ref[1], ref[1], ref[1] + h]
    )
    at = np.column_stack([mx[:n], my[:n]])
    east = (np.column_stack([mx[n : 2 * n], my[n : 2 * n]]) - at) / h
    north = (np.column_stack([mx[2 * n :], my[2 * n :]]) - at) / h
    start = geometry.metric_segments[segment, :2]
    delta = geometry.metric_segments[segment, 2:] - start
    length = np.hypot(delta[:, 0], delta[:, 1])
    slack = 0.5 * geometry.bend * (reach**2 + h * reach) + 3 * geometry.tolerance
    affine = []
    for axis in (
        np.column_stack([-delta[:, 1], delta[:, 0]]) / length[:, None],
        delta / length[:, None] ** 2,
    ):
        slope = (east * axis).sum(1), (north * axis).sum(1)
        affine.append(
            (((at - start) * axis).sum(1) - slope[0] * ref[0] - slope[1] * ref[1], *slope)
        )
    x0, y0, x1, y1 = box
    along = [affine[1][0] + affine[1][1] * x + affine[1][2] * y for x in (x0, x1) for y in (y0, y1)]
    within = (np.min(along, axis=0) >= slack / length) & (
        np.max(along, axis=0) <= 1 - slack / length
    )
    near = np.where(within, geometry.near_m - geometry.tolerance - slack, -np.inf)
    return np.vstack([*affine[0], near, geometry.far_m + slack])


class _LookupTable:
    """Per cell of one level: its leaf, or -1 - its node when points descend further.

    Looking points up here saves descending through the levels above.
    """

    def __init__(self, grid: _Grid) -> None:
        roots = grid.roots[0] * grid.roots[1]
        self.level = int(np.clip(np.log2(_TABLE_SIZE / roots) // 2, 0, grid.depth))
        self.width = grid.roots[0] << self.level
        self.cells = np.zeros((grid.roots[1] << self.level) * self.width, dtype=np.int32)

    def fill(self, level: int, cx: np.ndarray, cy: np.ndarray, value: np.ndarray) -> None:
        """Enter the cells of ``level``: leaves cover blocks; inner nodes only at our level."""
        if level > self.level:
            return
        side = 1 << (self.level - level)
        keep = (value >= 0) | (level == self.level)
        block = (np.arange(side)[:, None] * self.width + np.arange(side)).ravel()
        corner = cy[keep] * side * self.width + cx[keep] * side
        self.cells[corner[:, None] + block] = value[keep, None]


class _Leaves:
    """What the build keeps per leaf, gathered level by level."""

    def __init__(self) -> None:
        self.number: list[np.ndarray] = []
        self.ref_x: list[np.ndarray] = []
        self.ref_y: list[np.ndarray] = []
        self.resolved: list[np.ndarray] = []
        self.level: list[np.ndarray] = []
        self.cell: list[np.ndarray] = []
        self.pairs: dict[str, list[Pairs]] = {}
        self.count = 0

    def add(
        self,
        cells: np.ndarray,
        ref: tuple[np.ndarray, np.ndarray],
        resolved: np.ndarray,
        level: int,
        where: tuple[np.ndarray, np.ndarray],
        **pairs: Pairs,
    ) -> None:
        """Record ``cells`` of a level as leaves, with their per-cell lists."""
        number = np.full(len(ref[0]), -1, dtype=np.int64)
        number[cells] = self.count + np.arange(len(cells))
        self.count += len(cells)
        self.number.append(number)
        self.ref_x.append(ref[0][cells])
        self.ref_y.append(ref[1][cells])
        self.resolved.append(resolved[cells])
        self.level.append(np.full(len(cells), level))
        self.cell.append(np.column_stack([where[0][cells], where[1][cells]]))
        for name, (cell, value) in pairs.items():
            kept = number[cell] >= 0
            self.pairs.setdefault(name, []).append((number[cell[kept]], value[kept]))

    def csr(self, name: str) -> _Csr:
        rows, values = zip(*self.pairs[name], strict=True)
        return _Csr.from_pairs((np.concatenate(rows), np.concatenate(values)), self.count)


def _rows_of(csr: _Csr, rows: np.ndarray) -> Pairs:
    which, values = csr.gather(rows)
    return rows[which], values


def _filter(pairs: Pairs, keep: np.ndarray) -> Pairs:
    return pairs[0][keep], pairs[1][keep]


def _to_children(pairs: Pairs, rank: np.ndarray, leaf: np.ndarray) -> Pairs:
    """Each child's copy of its parent's list, children numbered quadrant by quadrant."""
    cell, value = _filter(pairs, ~leaf[pairs[0]])
    count = int((~leaf).sum())
    return np.concatenate([rank[cell] + q * count for q in range(4)]), np.tile(value, 4)


def _split(
    geometry: _Geometry, middle: tuple[np.ndarray, ...], pairs: Pairs, rank: np.ndarray,
    leaf: np.ndarray, grow: tuple[float, float],
) -> Pairs:  # fmt: skip
    """The children's (cell, segment) pairs whose bounding boxes meet the cell grown.

    A child inherits its parent's pairs, less the segments beyond its inner edges
    (the parent's ``middle``, as the children's own arithmetic puts it).
    """
    cell, segment = _filter(pairs, ~leaf[pairs[0]])
    k, count, bounds = rank[cell], int((~leaf).sum()), geometry.bounds
    xm, ym = middle[0][k], middle[1][k]
    west, east = bounds[segment, 0] <= xm + grow[0], bounds[segment, 2] >= xm - grow[0]
    south, north = bounds[segment, 1] <= ym + grow[1], bounds[segment, 3] >= ym - grow[1]
    keep = [west & south, east & south, west & north, east & north]
    return (np.concatenate([k[keep[q]] + q * count for q in range(4)]),
            np.concatenate([segment[keep[q]] for q in range(4)]))  # fmt: skip


def _crossing_pairs(geometry: _Geometry, pairs: Pairs, box: tuple[np.ndarray, ...]) -> Pairs:
    """The pairs whose segment may meet the (padded) cell."""
    bounds = geometry.bounds[pairs[1]]
    x0, y0, x1, y1 = (side[pairs[0]] for side in box)
    near = (bounds[:, 0] <= x1 + _PAD) & (bounds[:, 2] >= x0 - _PAD)
    near &= (bounds[:, 1] <= y1 + _PAD) & (bounds[:, 3] >= y0 - _PAD)
    pairs = _filter(pairs, near)
    return _filter(pairs, _line_meets(geometry, pairs, box))


def _line_meets(geometry: _Geometry, pairs: Pairs, box: tuple[np.ndarray, ...]) -> np.ndarray:
    """Whether each segment's line may meet its (padded) cell: not all corners on one side."""
    ax, ay, bx, by = geometry.segments[pairs[1]].T
    x0, y0, x1, y1 = (side[pairs[0]] for side in box)
    corners = (
        (x0 - _PAD, y0 - _PAD),
        (x1 + _PAD, y0 - _PAD),
        (x0 - _PAD, y1 + _PAD),
        (x1 + _PAD, y1 + _PAD),
    )
    side = [_orient(ax, ay, bx, by, x, y) for x, y in corners]
    return ~((side[0] != 0) & (side[0] == side[1]) & (side[0] == side[2]) & (side[0] == side[3]))


def _root_cover(geometry: _Geometry, ref: tuple[np.ndarray, np.ndarray]) -> Pairs:
    cell, area = shapely.STRtree(geometry.polygons).query(
        shapely.points(*ref), predicate="intersects"
    )
    order = np.lexsort((area, cell))
    return cell[order].astype(np.int64), area[order].astype(np.int64)


def _root_margin(geometry: _Geometry, grid: _Grid) -> Pairs:
    """(root cell, segment) for every segment whose bounding box comes within the margin."""
    size = np.array(grid.finest) * 2**grid.depth
    low = np.floor((geometry.bounds[:, :2] - geometry.margin - grid.origin) / size).astype(np.int64)
    high = np.floor((geometry.bounds[:, 2:] + geometry.margin - grid.origin) / size).astype(
        np.int64
    )
    low, high = np.maximum(low, 0), np.minimum(high, np.array(grid.roots) - 1)
    wide = high[:, 0] - low[:, 0] + 1
    count = wide * (high[:, 1] - low[:, 1] + 1)
    segment = np.repeat(np.arange(len(count)), count)
    k = np.arange(len(segment)) - np.repeat(np.cumsum(count) - count, count)
    cell = (
        (low[segment, 1] + k // wide[segment]) * grid.roots[0] + low[segment, 0] + k % wide[segment]
    )
    order = np.lexsort((segment, cell))
    return cell[order], segment[order]


def _settle(
    geometry: _Geometry, grid: _Grid, level: int, cells: tuple[np.ndarray, np.ndarray],
    cover: Pairs, margin: Pairs, crossing: Pairs,
) -> tuple[Pairs, Pairs, np.ndarray]:  # fmt: skip
    """Sort each cell's nearby areas into settled near, settled far, and tested per point.

    An area crossing the cell is tested per point. Any other area covers all of the cell
    (when it covers the reference point) or none of it, and every point's distance to
    it is within ``reach`` of the centre's, which often settles nearness for the cell.
    Segments of tested areas that are far from every point are not tested either.
    Returns the tested (cell, segment) pairs, the near (cell, area) pairs, and which
    cells have anything to test.
    """
    n, areas = len(cells[0]), len(geometry.polygons)
    cell, segment = margin
    keys = cell * areas + geometry.segment_area[segment]
    starts = _group_starts(keys)
    sizes = np.diff(np.r_[starts, len(keys)])
    unsettled = np.zeros(n, dtype=bool)
    unsettled[crossing[0]] = True
    crosses = _isin_sorted(keys[starts], crossing[0] * areas + geometry.segment_area[crossing[1]])
    whole = ~crosses & _isin_sorted(keys[starts], cover[0] * areas + cover[1])
    # A crossed cell is split anyway, unless it may be a leaf: then its lists are kept.
    may_be_leaf = level >= grid.depth - _EDGE_LEVELS
    measured = np.repeat(may_be_leaf | ~unsettled[cell[starts]], sizes)
    gap = np.full(len(keys), np.inf)
    if measured.any():
        at = cell[measured]
        at = at[_group_starts(at)]
        centre = grid.point_in(cells[0][at], cells[1][at], level, (0.5, 0.5))
        mx, my = np.zeros(n), np.zeros(n)
        mx[at], my[at] = _project(geometry.project, *centre)
        at = cell[measured]
        gap[measured] = _distance(mx[at], my[at], geometry.metric_segments[segment[measured]])
    reach = grid.reach_m(level, geometry.stretch)
    far_pair = gap - reach > geometry.far_m
    closest = np.minimum.reduceat(gap, starts) if len(starts) else gap
    open_ = (
        ~crosses & ~whole & np.logical_and.reduceat(measured, starts) if len(starts) else crosses
    )
    near = open_ & (closest + reach <= geometry.near_m - geometry.tolerance)
    test = ~(whole | near | (open_ & (closest - reach > geometry.far_m)))
    unsettled[cell[starts[test]]] = True
    area = geometry.segment_area[segment[starts]]
    tested = np.repeat(test, sizes) & ~far_pair
    return _filter(margin, tested), (cell[starts[near]], area[near]), unsettled
