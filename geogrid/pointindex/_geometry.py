"""What the index knows of the areas before any cell is classified, and the cells' frame.

``_Geometry`` holds the areas in storage lon/lat and in the metric CRS, their ring
segments and the error budgets relating the two; ``_Boundary`` the boundary of their
union for nearest-area searches; ``_Grid`` the quadtree's frame sized from them.
Separate from the tree because they are fixed once built and say nothing of leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from geogrid.pointindex._kernels import (
    Pairs,
    _crossing,
    _Csr,
    _distance,
    _group_starts,
    _isin_sorted,
    _odd,
)

Projector = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
#: The reference point of a cell as fractions of its sides: irrational, so it does not
#: land on the axis-parallel or lattice edges that test data likes.
_REF = (0.3819660112501051, 0.4142135623730950)
#: Finest cells are this many times ``near_m`` wide, at least the floor (metres), and
#: wide enough that the ring segments' total length is this many of them: the build
#: then stays near a million leaves, however long the boundaries.
_FINEST_CELL, _FINEST_CELL_FLOOR_M, _FINEST_CELLS_ALONG = 1.5, 2.0, 2_000_000
_MAX_DEPTH = 24


def _project(project: Projector, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mx, my = project(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(mx, dtype=float), np.asarray(my, dtype=float)


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


#: Bins whose centre is farther than this many bin widths from the boundary are
#: searched point by point with GEOS (their reach would hold too many segments).
_FAR_BINS = 4.0


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

        Points near the boundary are measured in bins (:meth:`_nearest_binned`). Far
        away, a bin's reach holds so many segments that GEOS's own nearest search, one
        query per point, is much faster; it is exact, so no tie is left unsure.
        """
        bx, by = np.floor(x / self.bin_m), np.floor(y / self.bin_m)
        _, first, point_bin = np.unique(
            np.column_stack([bx, by]), axis=0, return_index=True, return_inverse=True
        )
        centres = shapely.points((bx[first] + 0.5) * self.bin_m, (by[first] + 0.5) * self.bin_m)
        (which, _), gap = self.tree.query_nearest(centres, return_distance=True, all_matches=False)
        far_bin = np.zeros(len(first), dtype=bool)
        far_bin[which] = gap > _FAR_BINS * self.bin_m
        far_points = far_bin[point_bin.ravel()]
        if not far_points.any():
            return self._nearest_binned(x, y, tolerance)
        index = np.empty(len(x), dtype=np.int64)
        closest = np.empty(len(x))
        unsure = np.zeros(len(x), dtype=bool)
        near = ~far_points
        if near.any():
            index[near], closest[near], unsure[near] = self._nearest_binned(
                x[near], y[near], tolerance
            )
        index[far_points], closest[far_points] = self._nearest_exact(x[far_points], y[far_points])
        return index, closest, unsure

    def _nearest_exact(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GEOS's nearest segment per point; the smallest area number among exact ties."""
        (q, segment), gap = self.tree.query_nearest(
            shapely.points(x, y), return_distance=True, all_matches=True
        )
        area = self.area[segment]
        order = np.lexsort((area, q))
        first = order[_group_starts(q[order])]
        index = np.empty(len(x), dtype=np.int64)
        closest = np.empty(len(x))
        index[q[first]], closest[q[first]] = area[first], gap[first]
        return index, closest

    def _nearest_binned(
        self, x: np.ndarray, y: np.ndarray, tolerance: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points are binned; one GEOS query per bin finds how far its farthest point may
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
