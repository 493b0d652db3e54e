"""Repeat places: incidents where an earlier incident of the same category happened.

An incident *repeats* when an earlier one (by report time, then id) of the same
category lies within ``distance_m`` metres and was reported at most ``window_s``
seconds before it. Over a city's month that is a self-join of some 10^5 points, done
here in numpy: points are binned into square cells ``distance_m`` wide, keyed by
category and cell, and each incident is compared only with the incidents of its own
and the eight neighbouring cells of its category.
"""

from __future__ import annotations

import numpy as np

#: Bits of a cell key per axis: 2^20 cells of at least a metre each covers any city.
_AXIS_BITS = 21


def repeat_flags(
    x: np.ndarray,
    y: np.ndarray,
    categories: np.ndarray,
    times: np.ndarray,
    ids: np.ndarray,
    asking: np.ndarray,
    *,
    distance_m: float,
    window_s: float,
) -> np.ndarray:
    """For each point, whether it repeats an earlier one; only ``asking`` points are checked.

    ``x``/``y`` are metres, ``categories`` small non-negative integers, ``times`` seconds,
    ``ids`` break ties of time. Points not asking can still be the earlier incident.
    """
    repeated = np.zeros(len(x), dtype=bool)
    asked = np.flatnonzero(asking)
    if distance_m <= 0 or asked.size == 0:
        return repeated
    rank = np.empty(len(x), dtype=np.int64)
    rank[np.lexsort((ids, times))] = np.arange(len(x))
    keys = _cell_keys(x, y, categories, distance_m)
    # Each distinct key once, with where its points start in key order and how many.
    by_key = np.argsort(keys, kind="stable")
    cells, starts, sizes = np.unique(keys[by_key], return_index=True, return_counts=True)
    # Asking points in key order, so that each search below walks the cells in order.
    asked = asked[np.argsort(keys[asked], kind="stable")]
    limit = distance_m * distance_m
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            wanted = keys[asked] + (dx << _AXIS_BITS) + dy
            cell = np.minimum(np.searchsorted(cells, wanted), len(cells) - 1)
            counts = np.where(cells[cell] == wanted, sizes[cell], 0)
            later, earlier = _pairs(asked, starts[cell], counts, by_key)
            close = (x[later] - x[earlier]) ** 2 + (y[later] - y[earlier]) ** 2 <= limit
            found = (
                close & (rank[earlier] < rank[later]) & (times[later] - times[earlier] <= window_s)
            )
            repeated[later[found]] = True
    return repeated


def _cell_keys(x: np.ndarray, y: np.ndarray, categories: np.ndarray, size: float) -> np.ndarray:
    """One int64 per point: category, then column, then row of its cell."""
    # Cells start at 1 so that the neighbour to the left or below is never negative.
    column = np.floor((x - x.min()) / size).astype(np.int64) + 1
    row = np.floor((y - y.min()) / size).astype(np.int64) + 1
    if max(column.max(), row.max()) + 1 >= 1 << _AXIS_BITS:
        raise ValueError("points too far apart for the cell keys; use a larger distance")
    return (categories.astype(np.int64) << (2 * _AXIS_BITS)) | (column << _AXIS_BITS) | row


def _pairs(
    asked: np.ndarray, first: np.ndarray, counts: np.ndarray, by_key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (asking point, candidate) pair, from each asking point's run of candidates."""
    total = int(counts.sum())
    later = np.repeat(asked, counts)
    starts = np.repeat(first - (np.cumsum(counts) - counts), counts)
    return later, by_key[starts + np.arange(total)]
