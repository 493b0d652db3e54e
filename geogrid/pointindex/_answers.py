"""Answers: the statuses, the rules that make them, and answers stored per row.

``_assemble`` applies the rules of :mod:`geogrid.geocode` to the covering and near
areas of some points; ``_Answer`` holds the result in area numbers; ``_Stored`` keeps
answers precomputed for leaves, in positions of the codes. Separate because the tree
and the edge leaves both make and store answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geogrid.pointindex._kernels import Pairs, _Csr, _group_starts

INSIDE, NEAR_EDGE, EDGE, OUTSIDE = 0, 1, 2, 3
STATUS_NAMES = ("inside", "near_edge", "edge", "outside")


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
