"""Reach: the share of a grid's area within a distance of a team's track pieces.

The reach of a piece is its buffer in the generation's metric CRS, made by GEOS exactly
as PostGIS's ``ST_Buffer(piece, reach)`` makes it (round caps and joins, 8 segments a
quarter circle): the same library draws the same polygon, so the shares agree with the
straightforward SQL (buffer, union, intersect with the grid) far inside a millionth
(3e-8 at worst over the 14,911 grid-shifts of ``python -m benchmarks coverage``). The
reach is measured from the track as a line, not from its fixes, so a cyclist's 60 m
between fixes is covered too.

How it is quick: each piece is buffered once, however many grids it serves, and only
its intersection with each grid it serves is computed; pieces of one grid and shift are
united only when there are several (two members, or a track split by a gap). Buffers
and intersections run on several threads (GEOS releases the GIL).

Why not buffer each leg and unite the legs' buffers: a leg's round caps are drawn from
its own direction, a line's joins from both, so the two polygons differ at every turn
(by about 1e-4 of a grid's share on city tracks), and uniting hundreds of capsules per
grid costs GEOS more than buffering the line whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import shapely

from geogrid.coverage_pieces import Pieces

#: Segments per quarter circle, PostGIS's default for ``ST_Buffer``.
QUAD_SEGS = 8


def default_workers() -> int:
    """Threads for the geometry work: the machine's cores, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def piece_lines(pieces: Pieces, which: np.ndarray) -> np.ndarray:
    """The pieces ``which`` as shapely lines (a piece of one fix is a point)."""
    which = np.asarray(which, dtype=np.int64)
    counts = pieces.stop[which] - pieces.start[which]
    owner = np.repeat(np.arange(len(which)), counts)
    fix = np.repeat(pieces.start[which], counts) + (
        np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    lines = np.empty(len(which), dtype=object)
    long = counts >= 2
    keep = long[owner]
    if long.any():
        lines[long] = shapely.linestrings(
            pieces.x[fix[keep]], pieces.y[fix[keep]], indices=np.cumsum(long)[owner[keep]] - 1
        )
    single = np.flatnonzero(~long & (counts == 1))
    if len(single):
        lines[single] = shapely.points(
            pieces.x[pieces.start[which[single]]], pieces.y[pieces.start[which[single]]]
        )
    return lines


def reach_shares(
    pieces: Pieces,
    polygons: np.ndarray,
    pair_row: np.ndarray,
    pair_piece: np.ndarray,
    row_polygon: np.ndarray,
    *,
    reach_m: float,
    workers: int | None = None,
) -> np.ndarray:
    """Per row: the share of its polygon within ``reach_m`` of the pieces paired with it.

    ``pair_row`` and ``pair_piece`` say which pieces serve which row; a row with no piece
    has share 0.
    """
    polygons = np.asarray(polygons, dtype=object)
    pair_row = np.asarray(pair_row, dtype=np.int64)
    pair_piece = np.asarray(pair_piece, dtype=np.int64)
    row_polygon = np.asarray(row_polygon, dtype=np.int64)
    shares = np.zeros(len(row_polygon))
    if not len(pair_row):
        return shares
    used, piece_slot = np.unique(pair_piece, return_inverse=True)
    workers = workers or default_workers()
    with ThreadPoolExecutor(workers) as pool:
        lines = piece_lines(pieces, used)
        buffers = _parallel(
            pool, workers, lambda g: shapely.buffer(g, reach_m, quad_segs=QUAD_SEGS), lines
        )
        grid = polygons[row_polygon[pair_row]]
        clipped = _parallel(pool, workers, shapely.intersection, buffers[piece_slot], grid)
        covered = _union_by_row(pool, workers, pair_row, clipped, len(row_polygon))
    areas = shapely.area(polygons[row_polygon])
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(areas > 0, covered / areas, 0.0)
    return shares


def _union_by_row(
    pool: ThreadPoolExecutor, workers: int, pair_row: np.ndarray, clipped: np.ndarray, rows: int
) -> np.ndarray:
    """Covered area per row: a single piece's area, or the area of the union of several."""
    areas = shapely.area(clipped)
    count = np.bincount(pair_row, minlength=rows)
    covered = np.bincount(pair_row, weights=areas, minlength=rows)
    shared = np.flatnonzero(count > 1)
    if len(shared):
        many = np.isin(pair_row, shared)
        slot = np.searchsorted(shared, pair_row[many])
        collections = shapely.geometrycollections(clipped[many], indices=slot)
        covered[shared] = _parallel(pool, workers, _union_areas, collections)
    return covered


def _union_areas(collections: np.ndarray) -> np.ndarray:
    return shapely.area(np.array([shapely.union_all(c) for c in collections], dtype=object))


def _parallel(
    pool: ThreadPoolExecutor, workers: int, work: Callable[..., Any], *arrays: np.ndarray
) -> Any:
    """``work`` over slices of ``arrays`` on the pool's threads, results in order."""
    n = len(arrays[0])
    if n == 0:
        return np.asarray(work(*arrays))
    # Several slices a thread, so one slow slice (a long, tangled track) does not idle the rest.
    slices = max(1, min(n, 4 * workers))
    cuts = np.linspace(0, n, slices + 1).astype(int)
    parts = pool.map(
        lambda bounds: work(*(a[bounds[0] : bounds[1]] for a in arrays)),
        zip(cuts[:-1], cuts[1:], strict=True),
    )
    return np.concatenate([np.asarray(part) for part in parts])
