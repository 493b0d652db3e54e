"""Time inside grids: the legs of track pieces split where they cross a grid's boundary.

A *leg* joins two consecutive fixes of a track; a patrol is taken to move along it in a
straight line at constant speed, so the time a leg spends inside a grid is its inside
length share times its duration, and the moment it crosses the boundary is interpolated
linearly along it. Inside is the closed polygon: a leg along the boundary street is in
the grid (and in its neighbour).

How it is exact and still quick. Each (piece, grid) pair is worked out in metres in the
generation's metric CRS, with numpy over all pairs at once:

* legs whose box misses the grid's box are outside;
* the other legs are tested against every edge of the grid; the parameters where a leg
  meets the boundary (crossing, touching or running along it) split it, and each part is
  classified by its midpoint (crossing number, a band along the boundary counting as on
  it);
* a leg that meets no edge is inside or outside as a whole, and so is every leg up to the
  next one that meets the boundary: its state comes from the part of its neighbour that
  touches it, so only legs at the boundary are classified point by point.

A point within a micrometre of the boundary is on it (coordinates of millions of metres
carry about a nanometre of rounding).

Meeting is tested generously (a billionth of a length): a false alarm only classifies a
leg point by point, where a missed touch would pass the wrong state on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from geogrid.coverage_pieces import Pieces, ranks

#: Relative slack of the meeting test; see the module docstring.
_EPS = 1e-9
#: A point this close (metres) to the boundary is on it; see the module docstring.
_ON_EDGE_M = 1e-6
#: Leg-edge tests are done this many at a time, to bound memory.
_CHUNK = 1 << 20
#: Edges are indexed in square cells this wide (metres): a leg looks only at the edges of
#: its cells. About a leg's length, so most legs see one or two cells and no edge.
_CELL_M = 64.0


@dataclass(frozen=True)
class Edges:
    """The boundary edges of polygons: polygon ``j`` owns edges ``first[j]:first[j + 1]``."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    first: np.ndarray
    bounds: np.ndarray
    #: Each polygon's box is cut into square cells, a raster of its own: columns
    #: ``column0`` on, ``columns`` wide, rows ``row0`` on, numbered from ``cell_start``.
    #: The edges through cell ``k`` are ``cell_edge[cell_first[k]:cell_first[k + 1]]``.
    origin: tuple[float, float]
    column0: np.ndarray
    row0: np.ndarray
    columns: np.ndarray
    rows: np.ndarray
    cell_start: np.ndarray
    cell_first: np.ndarray
    cell_edge: np.ndarray

    @classmethod
    def of(cls, polygons: np.ndarray) -> Edges:
        """Every ring edge of each (multi)polygon: exteriors and holes."""
        polygons = np.asarray(polygons, dtype=object)
        parts, part_owner = shapely.get_parts(polygons, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        ring_owner = part_owner[ring_part]
        coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
        # Consecutive coordinates of one ring make an edge; rings are closed.
        same_ring = ring_of_coord[1:] == ring_of_coord[:-1]
        owner = ring_owner[ring_of_coord[:-1][same_ring]]
        order = np.argsort(owner, kind="stable")
        a, b = coords[:-1][same_ring][order], coords[1:][same_ring][order]
        counts = np.bincount(owner, minlength=len(polygons))
        first = np.concatenate([[0], np.cumsum(counts)])
        bounds = shapely.bounds(polygons).reshape(-1, 4)
        west, south = np.min(bounds[:, :2], axis=0) - _CELL_M if len(bounds) else (0.0, 0.0)
        origin = (float(west), float(south))
        column0, row0, column1, row1 = _cell_range(bounds, origin)
        columns, rows = column1 - column0 + 1, row1 - row0 + 1
        cell_start = np.cumsum(columns * rows) - columns * rows
        raster = (origin, column0, row0, columns, rows, cell_start)
        edge_box = np.hstack([np.minimum(a, b), np.maximum(a, b)])
        cells, which = _cells(edge_box, np.sort(owner), raster)
        order = np.argsort(cells, kind="stable")
        total = int((columns * rows).sum())
        cell_first = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=total))])
        return cls(
            a[:, 0], a[:, 1], b[:, 0], b[:, 1], first, bounds, *raster, cell_first, which[order]
        )

    @property
    def raster(self) -> tuple:
        """What :func:`_cells` needs to find cells."""
        return (self.origin, self.column0, self.row0, self.columns, self.rows, self.cell_start)


@dataclass(frozen=True)
class Inside:
    """Where pieces were inside polygons: spells of pairs, in epoch seconds."""

    #: One row per spell: ``pair``, ``starts``, ``ends`` (contiguous time inside).
    spells: pd.DataFrame
    #: Seconds inside per pair.
    seconds: np.ndarray


def inside_spells(
    pieces: Pieces, edges: Edges, pair_piece: np.ndarray, pair_polygon: np.ndarray
) -> Inside:
    """The spells each piece spends inside each polygon of the (piece, polygon) pairs."""
    pair_piece = np.asarray(pair_piece, dtype=np.int64)
    pair_polygon = np.asarray(pair_polygon, dtype=np.int64)
    seconds = np.zeros(len(pair_piece))
    spells = []
    # Pairs go in batches of about a million legs: numpy's temporaries then stay small
    # enough to be reused rather than mapped afresh, which costs more than the sums.
    legs_per_pair = np.maximum(pieces.stop[pair_piece] - pieces.start[pair_piece] - 1, 0)
    for lo, hi in _chunks(legs_per_pair):
        batch = np.arange(lo, hi)
        segments = _inside_segments(pieces, edges, pair_piece[batch], pair_polygon[batch])
        seconds[lo:hi] = np.bincount(
            segments.pair, weights=segments.ends - segments.starts, minlength=hi - lo
        )
        found = _spells(segments)
        found["pair"] += lo
        spells.append(found)
    return Inside(pd.concat(spells, ignore_index=True) if spells else _no_spells(), seconds)


def _inside_segments(pieces: Pieces, edges: Edges, pair_piece, pair_polygon) -> _Segments:
    legs = _legs(pieces, edges, pair_piece, pair_polygon)
    breaks = _meetings(pieces, edges, legs)
    parts = _parts(pieces, edges, legs, breaks)
    state_start, state_end = _boundary_states(legs, parts)
    whole = _whole_leg_states(legs, state_start, state_end, pieces, edges)
    return _segments(pieces, legs, parts, whole)


def _no_spells() -> pd.DataFrame:
    return pd.DataFrame({"pair": np.zeros(0, np.int64), "starts": np.zeros(0), "ends": np.zeros(0)})


# -- legs and where they meet the boundary ------------------------------------------------


@dataclass(frozen=True)
class _Legs:
    """Legs of all pairs in order; ``fix`` is the leg's first fix, ``near`` its box test."""

    pair: np.ndarray
    polygon: np.ndarray
    fix: np.ndarray
    near: np.ndarray


def _legs(pieces: Pieces, edges: Edges, pair_piece, pair_polygon) -> _Legs:
    counts = np.maximum(pieces.stop[pair_piece] - pieces.start[pair_piece] - 1, 0)
    pair = np.repeat(np.arange(len(pair_piece)), counts)
    fix = np.repeat(pieces.start[pair_piece], counts) + ranks(counts)
    polygon = pair_polygon[pair]
    x0, y0, x1, y1 = pieces.x[fix], pieces.y[fix], pieces.x[fix + 1], pieces.y[fix + 1]
    box = edges.bounds[polygon]
    slack = _ON_EDGE_M + _EPS * (np.abs(box[:, 2]) + np.abs(box[:, 3]))
    near = (
        (np.maximum(x0, x1) >= box[:, 0] - slack)
        & (np.minimum(x0, x1) <= box[:, 2] + slack)
        & (np.maximum(y0, y1) >= box[:, 1] - slack)
        & (np.minimum(y0, y1) <= box[:, 3] + slack)
    )
    return _Legs(pair, polygon, fix, near)


def _meetings(pieces: Pieces, edges: Edges, legs: _Legs) -> pd.DataFrame:
    """Parameters (0..1 along the leg) where near legs meet their polygon's boundary."""
    near = np.flatnonzero(legs.near)
    fix = legs.fix[near]
    x0, y0, x1, y1 = pieces.x[fix], pieces.y[fix], pieces.x[fix + 1], pieces.y[fix + 1]
    box = np.column_stack(
        [np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)]
    )
    cells, which = _cells(box, legs.polygon[near], edges.raster)
    lo = edges.cell_first[cells]
    n = edges.cell_first[cells + 1] - lo
    leg = near[np.repeat(which, n)]
    edge = edges.cell_edge[np.repeat(lo, n) + ranks(n)]
    leg_hit, s = _meet(pieces, edges, legs.fix[leg], edge)
    return pd.DataFrame({"leg": leg[leg_hit], "s": s})


def _cell_range(box: np.ndarray, origin) -> tuple[np.ndarray, ...]:
    """First and last column and row of the cells each box (xmin, ymin, xmax, ymax) covers."""
    pad = _ON_EDGE_M * 1000  # a meeting on a cell border must not fall between cells
    column0 = np.floor((box[:, 0] - pad - origin[0]) / _CELL_M).astype(np.int64)
    row0 = np.floor((box[:, 1] - pad - origin[1]) / _CELL_M).astype(np.int64)
    column1 = np.floor((box[:, 2] + pad - origin[0]) / _CELL_M).astype(np.int64)
    row1 = np.floor((box[:, 3] + pad - origin[1]) / _CELL_M).astype(np.int64)
    return column0, row0, column1, row1


def _cells(box: np.ndarray, owner: np.ndarray, raster: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The cells of its owner's raster each box covers (by number), and whose box it is.

    Cells beyond the owner's raster hold none of its edges and are left out.
    """
    origin, column0, row0, columns, rows, cell_start = raster
    c0, r0, c1, r1 = _cell_range(box, origin)
    c0 = np.maximum(c0, column0[owner])
    c1 = np.minimum(c1, column0[owner] + columns[owner] - 1)
    r0 = np.maximum(r0, row0[owner])
    r1 = np.minimum(r1, row0[owner] + rows[owner] - 1)
    wide = np.maximum(c1 - c0 + 1, 0)
    n = wide * np.maximum(r1 - r0 + 1, 0)
    which = np.repeat(np.arange(len(owner)), n)
    rank = ranks(n)
    step = np.maximum(wide[which], 1)
    mine = owner[which]
    column, row = c0[which] + rank % step, r0[which] + rank // step
    return cell_start[mine] + (row - row0[mine]) * columns[mine] + column - column0[mine], which


def _meet(pieces: Pieces, edges: Edges, fix: np.ndarray, edge: np.ndarray):
    """Which (leg, edge) meet, and where along the leg (overlaps give both ends)."""
    px, py = pieces.x[fix], pieces.y[fix]
    dx, dy = pieces.x[fix + 1] - px, pieces.y[fix + 1] - py
    ax, ay = edges.x0[edge], edges.y0[edge]
    ex, ey = edges.x1[edge] - ax, edges.y1[edge] - ay
    wx, wy = ax - px, ay - py
    denom = dx * ey - dy * ex
    scale = np.hypot(dx, dy) * np.hypot(ex, ey)
    crossing = np.abs(denom) > _EPS * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (wx * ey - wy * ex) / denom
        u = (wx * dy - wy * dx) / denom
    lo, hi = -_EPS, 1 + _EPS
    hit = crossing & (s >= lo) & (s <= hi) & (u >= lo) & (u <= hi)
    # Parallel: the edge may run along the leg; its ends, projected, split the leg.
    leg_len2 = dx * dx + dy * dy
    # Parallel, or so nearly that a crossing could hide in rounding: within the edge's
    # length times the slack, or a micrometre, of the leg's line, it runs along the leg.
    near_line = _ON_EDGE_M + 2 * _EPS * np.hypot(ex, ey)
    parallel = ~crossing & (np.abs(wx * dy - wy * dx) <= near_line * np.sqrt(leg_len2))
    parallel &= leg_len2 > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sa = (wx * dx + wy * dy) / leg_len2
        sb = ((wx + ex) * dx + (wy + ey) * dy) / leg_len2
    overlap = parallel & (np.maximum(sa, sb) >= lo) & (np.minimum(sa, sb) <= hi)
    legs = np.concatenate([np.flatnonzero(hit), np.flatnonzero(overlap), np.flatnonzero(overlap)])
    params = np.concatenate([s[hit], sa[overlap], sb[overlap]])
    order = np.argsort(legs, kind="stable")
    return legs[order], np.clip(params[order], 0.0, 1.0)


# -- parts of legs that meet the boundary -------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    """Legs cut at their meetings: part ``k`` of leg ``leg[k]`` runs from ``s0`` to ``s1``."""

    leg: np.ndarray
    s0: np.ndarray
    s1: np.ndarray
    inside: np.ndarray


def _parts(pieces: Pieces, edges: Edges, legs: _Legs, breaks: pd.DataFrame) -> _Parts:
    met = np.unique(breaks["leg"].to_numpy())
    cuts = pd.concat(
        [breaks, pd.DataFrame({"leg": np.repeat(met, 2), "s": np.tile([0.0, 1.0], len(met))})]
    )
    cuts = cuts.drop_duplicates().sort_values(["leg", "s"], kind="stable")
    leg, s = cuts["leg"].to_numpy(), cuts["s"].to_numpy()
    same = leg[1:] == leg[:-1]
    leg, s0, s1 = leg[:-1][same], s[:-1][same], s[1:][same]
    keep = s1 > s0
    leg, s0, s1 = leg[keep], s0[keep], s1[keep]
    mid = (s0 + s1) / 2
    fix = legs.fix[leg]
    mx = pieces.x[fix] + mid * (pieces.x[fix + 1] - pieces.x[fix])
    my = pieces.y[fix] + mid * (pieces.y[fix + 1] - pieces.y[fix])
    inside = _covers(edges, legs.polygon[leg], mx, my)
    return _Parts(leg, s0, s1, inside)


def _covers(edges: Edges, polygon: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each point lies in (or on the boundary of) its polygon: crossing number."""
    counts = np.diff(edges.first)[polygon]
    odd = np.zeros(len(x), dtype=bool)
    on = np.zeros(len(x), dtype=bool)
    for lo, hi in _chunks(counts):
        n = counts[lo:hi]
        point = np.repeat(np.arange(lo, hi), n)
        edge = np.repeat(edges.first[polygon[lo:hi]], n) + ranks(n)
        px, py = x[point], y[point]
        ax, ay, bx, by = edges.x0[edge], edges.y0[edge], edges.x1[edge], edges.y1[edge]
        straddles = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross_x = ax + (py - ay) * (bx - ax) / (by - ay)
        toggles = straddles & (px < cross_x)
        odd[lo:hi] ^= np.bitwise_xor.reduceat(toggles, _starts(n)) & (n > 0)
        ex, ey = bx - ax, by - ay
        length = np.hypot(ex, ey)
        along = (px - ax) * ex + (py - ay) * ey
        near = (np.abs((px - ax) * ey - (py - ay) * ex) <= _ON_EDGE_M * length) & (
            along >= -_ON_EDGE_M * length
        )
        near &= along <= length * length + _ON_EDGE_M * length
        on[lo:hi] |= np.logical_or.reduceat(near, _starts(n)) & (n > 0)
    return odd | on


def _boundary_states(legs: _Legs, parts: _Parts) -> tuple[np.ndarray, np.ndarray]:
    """Per leg: inside at its start and at its end (1/0), or -1 when it met no boundary."""
    start = np.where(legs.near, -1, 0).astype(np.int8)
    end = start.copy()
    if len(parts.leg):
        first = np.r_[True, parts.leg[1:] != parts.leg[:-1]]
        last = np.r_[parts.leg[1:] != parts.leg[:-1], True]
        start[parts.leg[first]] = parts.inside[first]
        end[parts.leg[last]] = parts.inside[last]
    return start, end


def _whole_leg_states(legs: _Legs, start, end, pieces: Pieces, edges: Edges) -> np.ndarray:
    """Inside (1) or not (0) for legs that met no boundary, from the neighbour touching them."""
    unknown = start < 0
    n = len(start)
    positions = np.arange(n)
    new_pair = np.r_[True, legs.pair[1:] != legs.pair[:-1]] if n else np.zeros(0, bool)
    end_pair = np.r_[new_pair[1:], True] if n else np.zeros(0, bool)
    pair_start = np.maximum.accumulate(np.where(new_pair, positions, 0))
    pair_stop = np.minimum.accumulate(np.where(end_pair, positions, n)[::-1])[::-1]
    # The nearest known leg of the pair before: its state at its end carries on ...
    known_before = np.maximum.accumulate(np.where(unknown, -1, positions))
    before_ok = known_before >= pair_start
    # ... or, for legs at the start of a pair, the nearest after: its state at its start.
    known_after = np.minimum.accumulate(np.where(unknown, n, positions)[::-1])[::-1]
    after_ok = known_after <= pair_stop
    state = np.where(unknown, -1, start).astype(np.int8)
    from_before = unknown & before_ok
    state[from_before] = end[known_before[from_before]]
    from_after = unknown & ~before_ok & after_ok
    state[from_after] = start[known_after[from_after]]
    alone = np.flatnonzero(state < 0)
    if len(alone):
        # A pair near its polygon all along and never meeting the boundary: one test.
        fix = legs.fix[alone]
        mx = (pieces.x[fix] + pieces.x[fix + 1]) / 2
        my = (pieces.y[fix] + pieces.y[fix + 1]) / 2
        state[alone] = _covers(edges, legs.polygon[alone], mx, my)
    return state


# -- segments of time, spells -----------------------------------------------------------


@dataclass(frozen=True)
class _Segments:
    """Inside time in order: pair, starts, ends (epoch seconds)."""

    pair: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


def _segments(pieces: Pieces, legs: _Legs, parts: _Parts, whole: np.ndarray) -> _Segments:
    t = pieces.t
    split = np.zeros(len(legs.fix), dtype=bool)
    split[parts.leg] = True
    plain = np.flatnonzero((whole == 1) & ~split)
    part = np.flatnonzero(parts.inside)
    leg = parts.leg[part]
    t0, t1 = t[legs.fix[leg]], t[legs.fix[leg] + 1]
    # Ends of legs keep their fixes' own times, so touching segments meet exactly.
    a = np.where(parts.s0[part] == 0, t0, t0 + parts.s0[part] * (t1 - t0))
    b = np.where(parts.s1[part] == 1, t1, t0 + parts.s1[part] * (t1 - t0))
    order_key = np.concatenate([plain.astype(float), leg + parts.s0[part] / 2])
    pair = np.concatenate([legs.pair[plain], legs.pair[leg]])
    starts = np.concatenate([t[legs.fix[plain]], a])
    ends = np.concatenate([t[legs.fix[plain] + 1], b])
    order = np.lexsort((order_key, pair))
    return _Segments(pair[order], starts[order], ends[order])


def _spells(segments: _Segments) -> pd.DataFrame:
    """Segments that follow on without a break, joined."""
    pair, starts, ends = segments.pair, segments.starts, segments.ends
    new = np.r_[True, (pair[1:] != pair[:-1]) | (starts[1:] != ends[:-1])]
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(pair) - 1] if len(pair) else first
    del group
    return pd.DataFrame({"pair": pair[first], "starts": starts[first], "ends": ends[last]})


# -- small array helpers ----------------------------------------------------------------


def _starts(counts: np.ndarray) -> np.ndarray:
    """Where each group of ``counts`` starts, for ``reduceat`` (empty groups point anywhere)."""
    starts = np.cumsum(counts) - counts
    return np.minimum(starts, max(int(counts.sum()) - 1, 0))


def _chunks(counts: np.ndarray):
    """Ranges of items whose expanded counts stay near ``_CHUNK``."""
    total = np.cumsum(counts)
    lo = 0
    while lo < len(counts):
        base = total[lo - 1] if lo else 0
        hi = int(np.searchsorted(total, base + _CHUNK, side="right"))
        hi = max(hi, lo + 1)
        yield lo, hi
        lo = hi
