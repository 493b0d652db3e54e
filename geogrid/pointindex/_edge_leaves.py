"""Edge leaves: leaves whose points differ only by one boundary line.

Each stores four answers and picks one per point by a crossing test and a distance
per edge, or, for a single edge, by two affine functions of lon/lat with error bounds
(``_side_model``, ``_gap_model``). Separate because it is the one kind of leaf with a
model of its own; the tree only asks it for an answer row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from geogrid.pointindex._answers import _assemble, _Stored
from geogrid.pointindex._cells import _PAD
from geogrid.pointindex._geometry import _project
from geogrid.pointindex._kernels import (
    _SIGN_EPS,
    Pairs,
    _crossing,
    _Csr,
    _distance,
    _group_starts,
    _isin_sorted,
    _odd,
    _orient,
)

if TYPE_CHECKING:
    from geogrid.pointindex._cells import _Leaves
    from geogrid.pointindex._geometry import _Geometry, _Grid
    from geogrid.pointindex._tree import _Tree


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
