"""Emerging hotspots: how each area's Gi* hotspot status has moved over weekly or monthly slices.

The period is cut into whole ISO weeks or calendar months (Asia/Shanghai). In each
slice, incidents are counted per area and tested with Gi* exactly as a single map is
(:mod:`geogrid.hotspots`: the same weights, seed and FDR correction, fewer permutations
by default). A slice is *hot* for an area when its bin is positive (90% confidence or
more after the correction), *cold* when negative. The trend of the area's Gi* z-scores
over the slices is the Mann-Kendall test (Kendall's S with the tie-corrected variance,
continuity-corrected normal approximation, two-sided); ``trend_tau`` is S over the
number of pairs of slices.

The categories are ESRI's hot spot patterns as defined in the ArcGIS Pro documentation,
"How Emerging Hot Spot Analysis works" (Space Time Pattern Mining toolbox), with n
slices, the final slice the last one, and "90%" meaning at least 90% of the slices:

* ``new``: hot in the final slice and in no slice before;
* ``consecutive``: hot in an unbroken run of at least two slices ending with the
  final one, in no slice before that run, and in fewer than 90% of slices;
* ``intensifying``: hot in at least 90% of slices including the final one, with a
  significant upward trend;
* ``persistent``: the same, with no significant trend;
* ``diminishing``: the same, with a significant downward trend;
* ``sporadic``: hot in the final slice, on and off before, in fewer than 90% of
  slices, and never cold;
* ``oscillating``: hot in the final slice, cold in some earlier one, and hot in fewer
  than 90% of slices;
* ``historical``: not hot in the final slice but hot in at least 90% of slices;
* ``no pattern``: none of these.

Where two definitions meet — a cold slice before a new or consecutive hot run — the
area is ``oscillating``: "new" and "consecutive" also require no significant slice
before, as the R package sfdep reads ESRI's rules. A trend is significant at p < 0.05.
ESRI's mirror-image coldspot patterns are not reported (they are ``no pattern`` here).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid.errors import InputError
from geogrid.hotspots import (
    SEED,
    ResultCache,
    check_options,
    check_period,
    data_version,
    database_key,
    gi_star,
    level_codes,
)
from geogrid.models import Incident
from geogrid.neighbours import level_contiguity
from geogrid.periods import MONTHLY, WEEKLY, Period
from geogrid.report_counts import query_frame
from geogrid.workdays import SHANGHAI

SLICE_KINDS = {"week": WEEKLY, "month": MONTHLY}
PERMUTATIONS = 199
#: A trend of the z-scores is significant below this two-sided p-value.
TREND_ALPHA = 0.05
#: Share of slices that makes a hotspot persistent (or intensifying, diminishing, historical).
MOSTLY = 0.9
#: The fewest slices a trend can be read from.
MIN_SLICES = 3
CATEGORIES = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
    "no pattern",
)
COLUMNS = ["category", "trend_tau", "trend_p", "slices_hot", "slices_cold", "last_bin", "last_z"]

_cache = ResultCache(16)


@dataclass(frozen=True)
class Trend:
    """Mann-Kendall trend of each row of a (areas x slices) array."""

    s: np.ndarray
    tau: np.ndarray
    z: np.ndarray
    p: np.ndarray


def emerging_hotspots(
    session: Session,
    *,
    generation_id: int,
    level: str = "grid",
    within: str | None = None,
    start: datetime,
    end: datetime,
    slice: str = "week",
    category: str | None = None,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> pd.DataFrame:
    """Each area's emerging hotspot category over the period's slices (see the module)."""
    check_period(start, end)
    check_options(permutations, 0.05)
    slices = time_slices(start, end, slice)
    key = (
        database_key(session),
        generation_id,
        level,
        within,
        start,
        end,
        slice,
        category,
        permutations,
        seed,
        data_version(session),
    )

    def compute() -> pd.DataFrame:
        started = time.perf_counter()
        counts = slice_counts(
            session, generation_id, level, within, start, end, slices, category=category
        )
        graph = level_contiguity(session, generation_id, level).star_graph(counts.index)
        z = np.empty(counts.shape)
        bins = np.empty(counts.shape, dtype=int)
        for column, first_day in enumerate(counts.columns):
            frame = gi_star(counts[first_day], graph, permutations=permutations, seed=seed)
            z[:, column] = frame["z"].to_numpy()
            bins[:, column] = frame["bin"].to_numpy()
        result = classify(z, bins, index=counts.index)
        result.attrs.update(
            slices=[Period(SLICE_KINDS[slice], day).label for day in counts.columns],
            permutations=permutations,
            seed=seed,
            seconds=time.perf_counter() - started,
        )
        return result

    return _cache.get_or_compute(key, compute).copy()


def time_slices(start: datetime, end: datetime, slice: str) -> list[Period]:
    """The weeks or months from the one holding ``start`` to the one holding the end."""
    if slice not in SLICE_KINDS:
        raise InputError(f"slices are week or month, not {slice!r}", field="slice")
    periods = [Period.containing(SLICE_KINDS[slice], start)]
    while periods[-1].end < end:
        periods.append(Period.containing(SLICE_KINDS[slice], periods[-1].end))
    if len(periods) < MIN_SLICES:
        raise InputError(
            f"a trend needs at least {MIN_SLICES} slices; the period has {len(periods)} {slice}s",
            field="slice",
        )
    return periods


def slice_counts(
    session: Session,
    generation_id: int,
    level: str,
    within: str | None,
    start: datetime,
    end: datetime,
    slices: list[Period],
    category: str | None = None,
) -> pd.DataFrame:
    """Incidents per area (rows, every area) and slice (columns, by first day), in one query."""
    codes = level_codes(session, generation_id, level, within)
    unit = func.substr(Incident.grid_code, 1, len(codes[0]))
    local = func.timezone(str(SHANGHAI), Incident.reported_at)
    first_day = func.date_trunc(_TRUNC[slices[0].kind], local)
    query = (
        select(unit.label("code"), first_day.label("first_day"), func.count().label("count"))
        .where(Incident.reported_at >= start, Incident.reported_at < end)
        .where(Incident.grid_code.is_not(None), Incident.state != "merged")
        .group_by(unit, first_day)
    )
    if within:
        query = query.where(Incident.grid_code.startswith(within, autoescape=True))
    if category:
        query = query.where(Incident.category == category)
    counted = query_frame(session, query)
    days: list[date] = [period.first_day for period in slices]
    counted = counted.assign(
        code=counted["code"].astype(object),
        first_day=[moment.date() for moment in counted["first_day"]],
    )
    table = counted.pivot_table(
        index="code", columns="first_day", values="count", aggfunc="sum", fill_value=0
    )
    table = table.reindex(index=pd.Index(codes, name="code"), columns=days, fill_value=0)
    return table.astype(np.int64)


def mann_kendall(series: np.ndarray) -> Trend:
    """Mann-Kendall trend test of each row (values in time order), ties corrected."""
    series = np.atleast_2d(np.asarray(series, dtype=float))
    n = series.shape[1]
    later, earlier = np.triu_indices(n, k=1)[::-1]
    s = np.sign(series[:, later] - series[:, earlier]).sum(axis=1)
    # Each value tied with t-1 others stands for its tie group: sum (t-1)(2t+5) per value
    # equals sum t(t-1)(2t+5) per group.
    tied = (series[:, :, None] == series[:, None, :]).sum(axis=2)
    ties = ((tied - 1) * (2 * tied + 5)).sum(axis=1)
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, s - 1, np.where(s < 0, s + 1, 0)) / np.sqrt(variance)
    z = np.where(variance > 0, z, 0.0)
    p = 2 * stats.norm.sf(np.abs(z))
    return Trend(s=s, tau=s / (n * (n - 1) / 2), z=z, p=p)


def classify(
    z: np.ndarray,
    bins: np.ndarray,
    *,
    index: Any = None,
    trend_alpha: float = TREND_ALPHA,
) -> pd.DataFrame:
    """Each row's category from its z-scores and bins over the slices (oldest first)."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    bins = np.atleast_2d(np.asarray(bins))
    hot, cold = bins > 0, bins < 0
    trend = mann_kendall(z)
    categories = [
        _category(hot_row, cold_row, s, p, trend_alpha)
        for hot_row, cold_row, s, p in zip(hot, cold, trend.s, trend.p, strict=True)
    ]
    return pd.DataFrame(
        {
            "category": categories,
            "trend_tau": trend.tau,
            "trend_p": trend.p,
            "slices_hot": hot.sum(axis=1),
            "slices_cold": cold.sum(axis=1),
            "last_bin": bins[:, -1].astype(int),
            "last_z": z[:, -1],
        },
        index=pd.Index(index if index is not None else range(len(z)), name="code"),
    )


def _category(hot: np.ndarray, cold: np.ndarray, s: float, p: float, trend_alpha: float) -> str:
    slices = len(hot)
    mostly_hot = hot.sum() >= MOSTLY * slices
    if not hot[-1]:
        return "historical" if mostly_hot else "no pattern"
    if mostly_hot:
        if p < trend_alpha:
            return "intensifying" if s > 0 else "diminishing"
        return "persistent"
    significant_before = (hot | cold)[: slices - _final_run(hot)]
    if not significant_before.any():
        return "new" if _final_run(hot) == 1 else "consecutive"
    return "oscillating" if cold.any() else "sporadic"


def _final_run(hot: np.ndarray) -> int:
    """How many slices, ending with the final one, are hot without a break."""
    breaks = np.flatnonzero(~hot)
    return len(hot) - (breaks[-1] + 1) if len(breaks) else len(hot)


_TRUNC = {WEEKLY: "week", MONTHLY: "month"}
