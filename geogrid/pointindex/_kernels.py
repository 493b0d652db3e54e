"""Numeric kernels: orientation signs with error bounds, crossings, distances, sorted keys.

Separate because they know nothing of areas, cells or answers: arrays in, arrays out,
with "unsure" wherever rounding could decide. Every other module leans on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (row, value) pairs sorted by row, then value.
Pairs = tuple[np.ndarray, np.ndarray]
Floats = np.ndarray | float

#: Orientation signs are trusted only beyond this relative size; the rounding error
#: bound is about 3.3e-16 (Shewchuk's ccwerrboundA).
_SIGN_EPS = 1e-12


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
