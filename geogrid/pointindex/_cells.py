"""Classifying the cells of one level during the build, and handing lists to children.

Per cell: the segments that may cross it, the areas settled near or far for all of it,
and what is left to test per point (``_settle``); cells split 2 x 2 pass their lists
on (``_split``, ``_to_children``); ``_Leaves`` gathers what the leaves keep. Separate
from ``_tree`` because this is the build's bookkeeping, not how points are placed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from geogrid.pointindex._geometry import _project
from geogrid.pointindex._kernels import (
    Pairs,
    _Csr,
    _distance,
    _group_starts,
    _isin_sorted,
    _orient,
)

if TYPE_CHECKING:
    from geogrid.pointindex._geometry import _Geometry, _Grid

#: Degrees (0.1 mm) added around cells, so rounding in mapping a point to its cell can
#: never put it outside the cell that was classified.
_PAD = 1e-9
#: Cells whose only open question is one edge stop splitting this many levels early.
_EDGE_LEVELS = 2


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


def _one_edge(geometry: _Geometry, tested: Pairs, n: int) -> np.ndarray:
    """Which of ``n`` cells test their points against copies of one edge only."""
    starts = _group_starts(tested[0])
    one = np.zeros(n, dtype=bool)
    if len(starts):
        edge = geometry.segment_edge[tested[1]]
        same = np.minimum.reduceat(edge, starts) == np.maximum.reduceat(edge, starts)
        one[tested[0][starts]] = same
    return one


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
