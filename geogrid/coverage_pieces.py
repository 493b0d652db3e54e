"""Pieces of tracks: the fixes of a team's tracks within each of its shift windows.

Coverage measures each grid-shift from the part of the team's tracks inside the shift's
window; a window that opens or closes between two fixes gets a fix placed there along
the leg in proportion to the time, as PostGIS's ``ST_LocateBetween`` on M places it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Pieces:
    """Track pieces as arrays: piece ``i`` is fixes ``start[i]:stop[i]`` of ``x, y, t``."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    start: np.ndarray
    stop: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def shift_pieces(
    fixes: pd.DataFrame, rows: pd.DataFrame
) -> tuple[Pieces, np.ndarray, np.ndarray, np.ndarray]:
    """Each team's tracks cut to each of its windows, and which pieces serve which row.

    ``rows`` (team_id, ``_from``, ``_to`` in epoch seconds) are the grid-shifts. Returns
    the pieces, the (row, piece) pairs and each piece's team.
    """
    track_id = fixes["track_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, track_id[1:] != track_id[:-1]]) if len(fixes) else []
    starts = np.asarray(starts, dtype=np.int64)
    rows = rows.astype({"team_id": np.int64})
    stops = np.append(starts[1:], len(fixes)) if len(starts) else starts
    t = fixes["t"].to_numpy(dtype=float)
    track_table = pd.DataFrame(
        {
            "track": np.arange(len(starts)),
            "team_id": fixes["team_id"].to_numpy(dtype=np.int64)[starts],
            "t_first": t[starts],
            "t_last": t[stops - 1],
        }
    )
    windows = rows[["team_id", "_from", "_to"]].drop_duplicates().reset_index(drop=True)
    windows["team_id"] = windows["team_id"].astype(np.int64)
    windows["window"] = np.arange(len(windows))
    requests = windows.merge(track_table, on="team_id")
    requests = requests[
        (requests["t_first"] < requests["_to"]) & (requests["t_last"] > requests["_from"])
    ]
    requests = requests.reset_index(drop=True)
    pieces = clip_pieces(
        fixes["x"].to_numpy(dtype=float),
        fixes["y"].to_numpy(dtype=float),
        t,
        starts,
        stops,
        requests["track"].to_numpy(),
        requests["_from"].to_numpy(),
        requests["_to"].to_numpy(),
    )
    row_window = rows.merge(windows, on=["team_id", "_from", "_to"], how="left")["window"]
    pairs = (
        pd.DataFrame({"row": np.arange(len(rows)), "window": row_window.to_numpy()})
        .merge(
            pd.DataFrame({"window": requests["window"], "piece": np.arange(len(requests))}),
            on="window",
        )
        .sort_values(["row", "piece"])
    )
    return (
        pieces,
        pairs["row"].to_numpy(dtype=np.int64),
        pairs["piece"].to_numpy(dtype=np.int64),
        requests["team_id"].to_numpy(),
    )


def clip_pieces(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    track_start: np.ndarray,
    track_stop: np.ndarray,
    request_track: np.ndarray,
    request_from: np.ndarray,
    request_to: np.ndarray,
) -> Pieces:
    """The part of track ``request_track[i]`` between two times, one piece per request.

    A window that starts or ends between two fixes gets a fix there, placed along the leg
    in proportion to the time (as PostGIS's ``ST_LocateBetween`` on M does).
    """
    request_track = np.asarray(request_track, dtype=np.int64)
    lo, hi = np.empty(len(request_track), np.int64), np.empty(len(request_track), np.int64)
    requests = zip(request_track, request_from, request_to, strict=True)
    for i, (track, t_from, t_to) in enumerate(requests):
        a, b = int(track_start[track]), int(track_stop[track])
        lo[i] = a + np.searchsorted(t[a:b], t_from, side="left")
        hi[i] = a + np.searchsorted(t[a:b], t_to, side="right")
    first, stop = track_start[request_track], track_stop[request_track]
    last_fix = len(t) - 1
    # A window ending between two fixes needs one there; ending on a fix, not.
    head = (lo > first) & (lo < stop) & (t[np.minimum(lo, last_fix)] != request_from)
    tail = (hi < stop) & (hi > first) & (t[np.maximum(hi - 1, 0)] != request_to)
    middle = hi - lo
    counts = head + middle + tail
    out_start = np.cumsum(counts) - counts
    total = int(counts.sum())
    out_x, out_y, out_t = np.empty(total), np.empty(total), np.empty(total)
    rank = ranks(middle)
    target = np.repeat(out_start + head, middle) + rank
    source = np.repeat(lo, middle) + rank
    out_x[target], out_y[target], out_t[target] = x[source], y[source], t[source]
    # The leg a window's start or end falls on begins one fix before ``lo`` or ``hi``.
    for mask, at, leg_after, when in (
        (head, out_start, lo, request_from),
        (tail, out_start + head + middle, hi, request_to),
    ):
        leg = leg_after[mask] - 1
        when = np.asarray(when, dtype=float)[mask]
        share = (when - t[leg]) / (t[leg + 1] - t[leg])
        out_x[at[mask]] = x[leg] + share * (x[leg + 1] - x[leg])
        out_y[at[mask]] = y[leg] + share * (y[leg + 1] - y[leg])
        out_t[at[mask]] = when
    return Pieces(out_x, out_y, out_t, out_start, out_start + counts)


def merge_intervals(
    key: np.ndarray, starts: np.ndarray, ends: np.ndarray, *, gap: float = 0.0
) -> pd.DataFrame:
    """Intervals of one key that overlap or lie less than ``gap`` apart, as one."""
    frame = pd.DataFrame({"key": key, "starts": starts, "ends": ends})
    frame = frame.sort_values(["key", "starts"], kind="stable")
    running_end = frame.groupby("key", sort=False)["ends"].cummax()
    previous_end = running_end.groupby(frame["key"], sort=False).shift()
    new = previous_end.isna() | (frame["starts"] - previous_end >= gap)
    if gap <= 0:
        new = previous_end.isna() | (frame["starts"] > previous_end)
    group = new.cumsum()
    merged = frame.groupby(group, sort=False).agg(
        key=("key", "first"), starts=("starts", "min"), ends=("ends", "max")
    )
    return merged.reset_index(drop=True)


def ranks(counts: np.ndarray) -> np.ndarray:
    """0..n-1 for each count n, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
