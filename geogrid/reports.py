"""Reports and league tables (日报、周报、月评比): how each unit handled its incidents.

A report covers the incidents *reported* in one period (a day, an ISO week or a month,
Asia/Shanghai; see :mod:`geogrid.periods`) and has one row per unit of a level: every
area of that level in the current generation, those without incidents included. A unit's
incidents are those whose grid code starts with the unit's code (codes nest), counted in
the grid they were recorded in or re-attributed to today's grids
(:mod:`geogrid.attribution`). Merged duplicates are never counted: their target is.

Measures per unit:

- ``received``: incidents reported in the period; ``rejected``: of those, rejected.
- ``accept_due``: those whose acceptance is settled at ``now`` — accepted, or past
  ``accept_due_at`` — leaving out rejected ones and ones without a deadline (see the
  alerts); ``accepted_on_time``: accepted at or before ``accept_due_at``;
  ``accept_on_time_rate`` = accepted_on_time / accept_due.
- ``resolve_due``, ``resolved_on_time``, ``resolve_on_time_rate``: the same for
  ``resolved_at`` and ``resolve_due_at``. An incident still open after its deadline
  counts against the rate; one still within it does not count yet.
- ``overdue_now``: a snapshot, whatever the period — the unit's incidents reported by
  ``now`` that are overdue at ``now`` by :func:`geogrid.sla.overdue_condition`
  (awaiting acceptance or resolution past the deadline; suspended ones never are).
- ``resolved`` and ``median_resolve_days``: of the period's incidents, those resolved,
  and the median working days from report to resolution (working clock, time suspended
  taken off).
- ``escalations``: the escalations the period's incidents have had so far (the sum of
  ``escalation_count``, by hand or for a missed deadline).
- ``evaluated``, ``satisfied``, ``satisfaction_rate`` = satisfied / evaluated.
- ``reopened``: incidents reopened at least once.
- ``repeat_locations``: incidents that repeat a place: an earlier incident of the same
  category lies within ``settings.duplicate_distance_m`` and was reported at most
  ``REPEAT_WINDOW`` (30 days) before, in any grid (see :mod:`geogrid.repeats`).
- ``score`` (月评比): 100 × the weighted mean of the unit's rates (``SCORE_WEIGHTS``:
  on-time acceptance 0.3, on-time resolution 0.4, satisfaction 0.3), over the rates
  it has; ``rank`` by score, highest first, equal scores sharing a rank, only for
  units with at least ``min_to_rank`` incidents (the others are listed unranked).

A report may be limited to one incident category (``category``): every measure above,
the overdue snapshot, the repeat places and the alerts then count that category's
incidents only; every unit is still listed.

Counts are aggregated in SQL, grouped by the code prefix (:mod:`geogrid.report_counts`);
medians, working time and repeat places are computed with numpy over the period's rows
(:mod:`geogrid.report_measures`). Nothing here reads reporters' contacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from geogrid import report_measures as measures
from geogrid.actors import UNSCOPED_ROLES, Actor
from geogrid.attribution import CURRENT, check_attribution, successor_map
from geogrid.categories import get_category
from geogrid.codes import CodeScheme
from geogrid.errors import InputError
from geogrid.generations import metric_srid_of, resolve_generation
from geogrid.periods import PERIOD_KINDS, Period, check_kind
from geogrid.report_counts import Counting, overdue_counts, period_counts, unit_table
from geogrid.report_measures import Alert
from geogrid.settings import Settings
from geogrid.workdays import SHANGHAI, WorkCalendar, load_calendar

__all__ = [
    "PERIOD_KINDS",
    "Alert",
    "Period",
    "Report",
    "ReportCategory",
    "build_report",
    "report_category",
]

#: Weights of the rates in the score; a unit without a rate is scored on the others.
SCORE_WEIGHTS = {"accept_on_time_rate": 0.3, "resolve_on_time_rate": 0.4, "satisfaction_rate": 0.3}
#: Units with fewer incidents in the period are listed but not ranked.
MIN_TO_RANK = 5
REPEAT_WINDOW = measures.REPEAT_WINDOW

#: Counts summed over a unit's grids.
COUNTS = [
    "received",
    "rejected",
    "accept_due",
    "accepted_on_time",
    "resolve_due",
    "resolved_on_time",
    "resolved",
    "escalations",
    "evaluated",
    "satisfied",
    "reopened",
    "overdue_now",
    "repeat_locations",
]
#: The columns of a report's table, in order.
COLUMNS = [
    "code",
    "name",
    "received",
    "accept_due",
    "accepted_on_time",
    "accept_on_time_rate",
    "resolve_due",
    "resolved_on_time",
    "resolve_on_time_rate",
    "overdue_now",
    "resolved",
    "median_resolve_days",
    "escalations",
    "evaluated",
    "satisfied",
    "satisfaction_rate",
    "reopened",
    "repeat_locations",
    "rejected",
    "score",
    "rank",
    "in_generation",
]
_RATES = {
    "accept_on_time_rate": ("accepted_on_time", "accept_due"),
    "resolve_on_time_rate": ("resolved_on_time", "resolve_due"),
    "satisfaction_rate": ("satisfied", "evaluated"),
}


@dataclass(frozen=True)
class ReportCategory:
    """The one incident category a report counts, with its names for titles and pages."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Report:
    """One report: a row per unit (``table``, in ranking order), totals and alerts."""

    period: Period
    level: str
    attribution: str
    generation: int
    now: datetime
    #: Code prefixes the report was limited to; empty for everything.
    scope: tuple[str, ...]
    table: pd.DataFrame
    totals: dict[str, Any]
    alerts: list[Alert] = field(default_factory=list)
    min_to_rank: int = MIN_TO_RANK
    #: The category the report counts; None for every category.
    category: ReportCategory | None = None

    @property
    def kind(self) -> str:
        """daily, weekly or monthly."""
        return self.period.kind

    def row(self, code: str) -> dict[str, Any]:
        """The measures of one unit, by code (KeyError when the report has no such unit)."""
        found = self.table[self.table["code"] == code]
        if found.empty:
            raise KeyError(code)
        return _plain_row(found.iloc[0].to_dict())

    def rows(self) -> list[dict[str, Any]]:
        """Every unit's measures: ranked units by rank, then the rest; more incidents first."""
        return [_plain_row(record) for record in self.table.to_dict("records")]

    def ranking(self, top: int | None = None) -> pd.DataFrame:
        """The ranked units, best first (the first ``top`` of them when given)."""
        ranked = self.table[self.table["rank"].notna()]
        return ranked if top is None else ranked.head(top)

    def as_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {
            "kind": self.kind,
            "period": self.period.label,
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "level": self.level,
            "attribution": self.attribution,
            "generation": self.generation,
            "now": self.now.isoformat(),
            "scope": list(self.scope),
            "category": self.category.code if self.category else None,
            "min_to_rank": self.min_to_rank,
            "score_weights": SCORE_WEIGHTS,
            "totals": self.totals,
            "rows": self.rows(),
            "alerts": [alert.as_dict() for alert in self.alerts],
        }


def build_report(
    session: Session,
    settings: Settings,
    kind: str,
    period: Period | str,
    level: str,
    *,
    attribution: str = "recorded",
    actor: Actor | None = None,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
    min_to_rank: int = MIN_TO_RANK,
    category: str | None = None,
) -> Report:
    """The report of ``kind`` for ``period`` with one row per unit of ``level``.

    ``category``, an incident category code, limits every measure to that category's
    incidents (an unknown code is an InputError naming ``category``).
    """
    period = _as_period(kind, period)
    unit_length = _unit_length(settings.scheme, level)
    check_attribution(attribution)
    counted_category = report_category(session, category)
    now = _aware_now(now)
    calendar = calendar if calendar is not None else load_calendar(session)
    current = resolve_generation(session, None)
    generation = current.id
    scope = _scope_of(actor)
    grid_level = settings.scheme.default_geocode_level
    successors = successor_map(session, grid_level, generation) if attribution == CURRENT else None
    counting = Counting(unit_length, scope, successors, category)

    counts = counting.to_units(period_counts(session, period, now, counting))
    overdue = counting.to_units(overdue_counts(session, now, counting))
    rows = measures.incident_rows(session, period, category)
    rows["unit"] = counting.unit_of(rows)
    alerts = measures.calendar_alerts(calendar, period)
    days = measures.resolution_days(rows, period, calendar, alerts)
    epsg = metric_srid_of(session, current)
    rows["repeat"] = measures.repeats(rows, settings.duplicate_distance_m, epsg)
    subject = rows["unit"].notna() & rows["in_period"]
    repeat_counts = rows[subject].groupby("unit")["repeat"].sum().rename("repeat_locations")

    counted = counts.index.union(overdue.index)
    units = unit_table(session, generation, level, scope, unit_length, counted)
    table = units.join(counts, on="code").join(overdue, on="code").join(repeat_counts, on="code")
    table[COUNTS] = table[COUNTS].fillna(0).astype(np.int64)
    table["median_resolve_days"] = table["code"].map(days.groupby(rows["unit"]).median())
    table = _score_and_rank(_with_rates(table), min_to_rank)
    totals = _totals(table, days[subject])
    alerts += measures.incident_alerts(session, period, now, scope, category)
    if counting.unmapped:
        alerts.insert(0, measures.unmapped_alert(sorted(counting.unmapped)))
    return Report(
        period,
        level,
        attribution,
        generation,
        now,
        scope or (),
        table,
        totals,
        alerts,
        min_to_rank,
        category=counted_category,
    )


# -- rates, score, rank ------------------------------------------------------------------------


def _with_rates(table: pd.DataFrame) -> pd.DataFrame:
    for rate, (part, whole) in _RATES.items():
        table[rate] = (table[part] / table[whole].where(table[whole] > 0)).astype(float)
    return table


def _score_and_rank(table: pd.DataFrame, min_to_rank: int) -> pd.DataFrame:
    weights = pd.Series(SCORE_WEIGHTS)
    rates = table[list(SCORE_WEIGHTS)]
    weight_had = rates.notna().mul(weights).sum(axis=1)
    table["score"] = (
        100 * rates.fillna(0).mul(weights).sum(axis=1) / weight_had.where(weight_had > 0)
    ).round(2)
    rankable = table["score"].notna() & (table["received"] >= min_to_rank)
    table["rank"] = table["score"].where(rankable).rank(method="min", ascending=False)
    table["rank"] = table["rank"].astype("Int64")
    # Within a shared rank, the unit that handled more incidents is listed first.
    order = table.assign(unranked=table["rank"].isna()).sort_values(
        ["unranked", "rank", "received", "code"],
        ascending=[True, True, False, True],
        na_position="last",
    )
    return order[COLUMNS].reset_index(drop=True)


def _totals(table: pd.DataFrame, days: pd.Series) -> dict[str, Any]:
    totals: dict[str, Any] = {name: int(table[name].sum()) for name in COUNTS}
    for rate, (part, whole) in _RATES.items():
        totals[rate] = totals[part] / totals[whole] if totals[whole] else None
    median = days.median()
    totals["median_resolve_days"] = None if pd.isna(median) else float(median)
    totals["units"] = len(table)
    totals["ranked"] = int(table["rank"].notna().sum())
    return totals


# -- arguments ---------------------------------------------------------------------------------


def _as_period(kind: str, period: Period | str) -> Period:
    check_kind(kind)
    if isinstance(period, Period):
        if period.kind != kind:
            raise InputError(
                f"a {kind} report needs a {kind} period, not {period.kind} {period.label}",
                field="period",
            )
        return period
    return Period.parse(kind, period)


def _unit_length(scheme: CodeScheme, level: str) -> int:
    """The code length of the level (CodeError naming ``level`` when unknown)."""
    unit = scheme.level(level)
    finest = scheme.level(scheme.default_geocode_level)
    if unit.length > finest.length:
        raise InputError(
            f"incidents are placed in {finest.name}s; a report cannot be finer than that",
            field="level",
        )
    return unit.length


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(SHANGHAI)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("now needs a time zone (geogrid times are Asia/Shanghai)", field="now")
    return now.astimezone(SHANGHAI)


def report_category(session: Session, code: str | None) -> ReportCategory | None:
    """The category to count, None for all; retired ones too, since their history stays.

    An unknown code is an InputError naming ``category``.
    """
    if code is None:
        return None
    category = get_category(session, code, allow_retired=True)
    return ReportCategory(category.code, category.name_zh, category.name_en)


def _scope_of(actor: Actor | None) -> tuple[str, ...] | None:
    """The actor's code prefixes, or None when the report covers everything."""
    if actor is None or actor.role in UNSCOPED_ROLES:
        return None
    return tuple(actor.scope)


def _plain_row(record: dict[str, Any]) -> dict[str, Any]:
    """A row with plain Python values: None for missing, int and float for numbers."""
    plain = {}
    for name, value in record.items():
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            plain[name] = None
        elif isinstance(value, np.generic):
            plain[name] = value.item()
        else:
            plain[name] = value
    return plain
