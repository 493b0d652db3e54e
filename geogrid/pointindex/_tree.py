"""The quadtree: built level by level, then walked to place each chunk of points.

``_Tree.build`` classifies cells and splits those whose answer varies;
``_Tree.locate`` finds each point's leaf (through ``_LookupTable`` and a descent),
takes a stored answer, asks the edge leaves, or tests the point against its leaf's
lists, and finds outside points their nearest area. Separate from ``_cells`` (the
build's per-level bookkeeping) and ``_edge_leaves`` (one kind of leaf).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geogrid.pointindex._answers import OUTSIDE, _Answer, _assemble, _Stored
from geogrid.pointindex._cells import (
    _EDGE_LEVELS,
    _PAD,
    _crossing_pairs,
    _filter,
    _Leaves,
    _line_meets,
    _one_edge,
    _root_cover,
    _root_margin,
    _rows_of,
    _settle,
    _split,
    _to_children,
)
from geogrid.pointindex._edge_leaves import _EdgeLeaves
from geogrid.pointindex._geometry import _REF, _Geometry, _Grid, _project
from geogrid.pointindex._kernels import Pairs, _Csr, _group_starts

#: Cells of the level with at most this many cells are looked up directly.
_TABLE_SIZE = 1 << 23
#: The status of a leaf whose points are tested one by one.
_TESTED = 255


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
        answer.nearest_index = np.full(len(lon), -1, dtype=np.int32)
        answer.nearest_distance_m = np.full(len(lon), np.nan)
        answer.swapped_index = np.full(len(lon), -1, dtype=np.int32)
        if not len(outside):
            # Most single lookups: the searches below cost a server's lookup a third.
            return
        nearest, distance = self.geometry.nearest(lon[outside], lat[outside])
        swapped = self.smallest_covering(lat[outside], lon[outside])
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
