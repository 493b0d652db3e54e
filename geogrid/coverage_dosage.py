"""The dose a grid got against a target, gaps between visits, and per-team totals.

See :mod:`geogrid.coverage` for the definitions and the finding behind the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geogrid.coverage_pieces import Pieces, merge_intervals
from geogrid.errors import InputError


@dataclass(frozen=True)
class DosageTarget:
    """Visits of ``min_visit_min`` minutes or more, no more than ``max_gap_min`` apart.

    Visits longer than ``max_visit_min`` still count; they are reported, as time past the
    point of diminishing returns that could go to another hot grid.
    """

    min_visit_min: float = 10.0
    max_visit_min: float = 15.0
    max_gap_min: float = 120.0

    def __post_init__(self) -> None:
        for name in ("min_visit_min", "max_visit_min", "max_gap_min"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number, not {value!r}", field=name)
        if self.max_visit_min < self.min_visit_min:
            raise InputError("max_visit_min is below min_visit_min", field="max_visit_min")


DOSAGE_COLUMNS = [
    "shift",
    "team_mark",
    "grid_code",
    "starts_at",
    "ends_at",
    "visits",
    "qualifying_visits",
    "longest_visit_min",
    "longest_gap_min",
    "visits_over_max",
    "met",
    "why",
]


def gap_minutes(
    rows: int,
    key: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    window_from: pd.Series | np.ndarray,
    window_to: pd.Series | np.ndarray,
) -> np.ndarray:
    """Per row, the longest time (minutes) with no visit, shift start and end included.

    ``key``, ``starts`` and ``ends`` are the visits (epoch seconds), each row's visits in
    time order and not overlapping.
    """
    window_from = np.asarray(window_from, dtype=float)
    window_to = np.asarray(window_to, dtype=float)
    longest = window_to - window_from  # no visit: the whole shift
    if len(key):
        first = np.r_[True, key[1:] != key[:-1]]
        last = np.r_[key[1:] != key[:-1], True]
        before = np.where(first, starts - window_from[key], starts - np.r_[0.0, ends[:-1]])
        gaps = pd.Series(before).groupby(key).max()
        after = pd.Series(window_to[key[last]] - ends[last], index=key[last])
        longest[gaps.index] = np.maximum(gaps.to_numpy(), after.reindex(gaps.index).to_numpy())
    return np.maximum(longest, 0) / 60


def dosage_rows(hot: pd.DataFrame, visits: pd.DataFrame, target: DosageTarget) -> pd.DataFrame:
    """Per grid-shift of ``hot``: whether the target was met, and why (not)."""
    if hot.empty:
        return pd.DataFrame(columns=DOSAGE_COLUMNS)
    shift_ids = hot.index.to_numpy()
    mine = visits[visits["shift"].isin(shift_ids)]
    good = mine[mine["minutes"] >= target.min_visit_min]
    slot = pd.Series(np.arange(len(hot)), index=shift_ids)
    key = slot[good["shift"]].to_numpy()
    gaps = gap_minutes(
        len(hot), key, good["_from"].to_numpy(), good["_to"].to_numpy(), hot["_from"], hot["_to"]
    )
    by_shift = mine.groupby("shift")["minutes"]
    table = pd.DataFrame(
        {
            "shift": shift_ids,
            "team_mark": hot["team_mark"].to_numpy() if "team_mark" in hot else None,
            "grid_code": hot["grid_code"].to_numpy(),
            "starts_at": hot["starts_at"].to_numpy(),
            "ends_at": hot["ends_at"].to_numpy(),
            "visits": by_shift.size().reindex(shift_ids, fill_value=0).to_numpy(),
            "qualifying_visits": np.bincount(key, minlength=len(hot)),
            "longest_visit_min": by_shift.max().reindex(shift_ids).to_numpy(),
            "longest_gap_min": gaps,
            "visits_over_max": (mine["minutes"] > target.max_visit_min)
            .groupby(mine["shift"])
            .sum()
            .reindex(shift_ids, fill_value=0)
            .to_numpy(),
        }
    )
    table["met"] = (table["qualifying_visits"] > 0) & (
        table["longest_gap_min"] <= target.max_gap_min
    )
    table["why"] = [_why(row, target) for row in table.itertuples()]
    return table[DOSAGE_COLUMNS]


def _why(row, target: DosageTarget) -> str:
    if row.visits == 0:
        return "no visit"
    if row.qualifying_visits == 0:
        return (
            f"no visit of {target.min_visit_min:g} min or more "
            f"(longest {row.longest_visit_min:.0f} min)"
        )
    gap = f"longest gap {_duration(row.longest_gap_min)}"
    if row.longest_gap_min > target.max_gap_min:
        limit = _duration(target.max_gap_min)
        return f"{gap} without a visit of {target.min_visit_min:g} min or more, over {limit}"
    return f"met: {row.qualifying_visits} visits of {target.min_visit_min:g} min or more, {gap}"


def _duration(minutes: float) -> str:
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


def team_rows(shifts: pd.DataFrame, pieces: Pieces, piece_team: np.ndarray) -> pd.DataFrame:
    """Per team: shifts, hours on patrol within them, grids assigned, visited and not."""
    columns = [
        "team_id",
        "team_mark",
        "shifts",
        "hours_on_patrol",
        "minutes_inside",
        "grids_assigned",
        "grids_visited",
        "grids_not_visited",
    ]
    if shifts.empty:
        return pd.DataFrame(columns=columns)
    on_patrol = merge_intervals(
        np.asarray(piece_team, dtype=np.int64),
        pieces.t[pieces.start],
        pieces.t[np.maximum(pieces.stop - 1, pieces.start)],
    )
    hours = (on_patrol["ends"] - on_patrol["starts"]).groupby(on_patrol["key"]).sum() / 3600
    grouped = shifts.groupby("team_id", sort=True)
    visited = shifts[shifts["visits"] > 0].groupby("team_id")["grid_code"].agg(set)
    assigned = grouped["grid_code"].agg(set)
    table = pd.DataFrame(
        {
            "team_id": assigned.index,
            "team_mark": grouped["team_mark"].first().to_numpy() if "team_mark" in shifts else None,
            "shifts": grouped.size().to_numpy(),
            "hours_on_patrol": hours.reindex(assigned.index, fill_value=0.0).to_numpy(),
            "minutes_inside": grouped["minutes_inside"].sum().to_numpy(),
            "grids_assigned": assigned.map(len).to_numpy(),
        }
    )
    seen = visited.reindex(assigned.index).map(lambda s: s if isinstance(s, set) else set())
    table["grids_visited"] = seen.map(len).to_numpy()
    table["grids_not_visited"] = [
        sorted(a - s) for a, s in zip(assigned.to_numpy(), seen.to_numpy(), strict=True)
    ]
    return table[columns]
