"""Working-day deadlines for many incidents at once, exactly as :mod:`geogrid.sla` sets them.

:meth:`WorkCalendar.add_working_days` walks day by day in Python; a million imported
incidents need the same answer without the loop. On the working clock (24 hours of
working time on a working day, none on the others) a deadline ``n`` working days after
``start`` is the instant whose clock reading is ``clock(start) + n * 86400``. That reading
is reached on a whole span of instants when it falls on a day boundary, so the rule of
``add_working_days`` picks one:

- from a moment on a working day: the same time of day on the n-th following working
  day (the reading falls inside that day, or at its very start);
- from a moment on a non-working day, ``n > 0``: midnight at the end of the n-th working
  day counting the next working day as the first (the earliest instant with the reading);
- ``n = 0`` from a non-working day: midnight at the start of the next working day.

Here that is done with a table of the days involved: the ordinal of every working day,
and a binary search. Days in years the calendar does not cover take part in the search
as if they were working days, and every row whose walk touches one gets no deadline
but the alert :func:`geogrid.sla.deadlines` gives, naming the first uncovered year the
walk meets. ``tests/test_incident_import.py`` holds this to ``sla.deadlines`` row by row.

Times are handled as integer nanoseconds, so nothing is rounded; Asia/Shanghai has kept
UTC+8 without daylight saving since 1991, before any year the calendar package covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from geogrid.errors import CalendarNotCovered
from geogrid.models import IncidentCategory
from geogrid.workdays import WorkCalendar

DAY_NS = 86_400 * 10**9
#: Asia/Shanghai is UTC+8 all year since 1991.
_OFFSET_NS = 8 * 3600 * 10**9
_EPOCH = date(1970, 1, 1)
#: Days past the last start the table first reaches (grown if a walk needs more).
_MARGIN_DAYS = 40


@dataclass(frozen=True)
class DeadlineColumns:
    """Deadlines of many incidents: UTC instants (NaT when unknown) and the alerts."""

    accept_due_at: pd.Series
    resolve_due_at: pd.Series
    #: The alert of each row (None when both deadlines are known), as sla.deadlines gives it.
    alert: np.ndarray

    @property
    def alerts(self) -> int:
        """How many rows carry an alert."""
        return int(sum(alert is not None for alert in self.alert))


def deadlines_many(
    calendar: WorkCalendar,
    categories: Mapping[str, IncidentCategory],
    category: pd.Series | np.ndarray,
    reported_at: pd.Series,
    complex_: pd.Series | np.ndarray | None = None,
) -> DeadlineColumns:
    """:func:`geogrid.sla.deadlines` for every row: category codes, report times, complexity."""
    codes = np.asarray(category, dtype=object)
    complex_flags = (
        np.zeros(len(codes), dtype=bool) if complex_ is None else np.asarray(complex_, dtype=bool)
    )
    accept_days = _per_row(codes, {c: k.accept_days for c, k in categories.items()})
    resolve_days = np.where(
        complex_flags,
        _per_row(codes, {c: k.complex_days for c, k in categories.items()}),
        _per_row(codes, {c: k.resolve_days for c, k in categories.items()}),
    )
    starts = utc_ns(reported_at)
    table = WorkingDays.around(calendar, starts, int(max(accept_days.max(initial=0), 1)))
    accept, accept_year = table.add_days(starts, accept_days)
    table = table.reaching(starts, int(resolve_days.max(initial=0)))
    resolve, resolve_year = table.add_days(starts, resolve_days)
    # Each deadline on its own, the acceptance deadline's alert first (as sla.deadlines).
    year = np.where(accept_year > 0, accept_year, resolve_year)
    texts = {int(y): alert_text(int(y)) for y in np.unique(year[year > 0])}
    alert = np.array([texts.get(int(y)) for y in year], dtype=object)
    return DeadlineColumns(as_instants(accept), as_instants(resolve), alert)


def alert_text(year: int) -> str:
    """The deadline alert stored for a year the calendar does not cover."""
    error = CalendarNotCovered(year)
    return f"{error.code}: {error.message}"


class WorkingDays:
    """The days from ``first`` on: which are working days, and which years are covered."""

    def __init__(self, calendar: WorkCalendar, first: int, last: int) -> None:
        self.calendar, self.first, self.last = calendar, first, last
        covered_years = calendar.covered_years()
        days = [_EPOCH + timedelta(days=int(d)) for d in range(first, last + 1)]
        self.covered = np.fromiter((d.year in covered_years for d in days), bool, len(days))
        working = np.fromiter(
            (d.year in covered_years and calendar.is_workday(d) for d in days), bool, len(days)
        )
        # The walk counts uncovered days as working days; a row that meets one is flagged.
        self.counted = working | ~self.covered
        #: Offsets of the counted days, and how many counted days precede each day.
        self.ordinals = np.flatnonzero(self.counted)
        self.before = np.concatenate(([0], np.cumsum(self.counted)))
        self.uncovered = np.flatnonzero(~self.covered)
        self.uncovered_before = np.concatenate(([0], np.cumsum(~self.covered)))

    @classmethod
    def around(cls, calendar: WorkCalendar, starts: np.ndarray, days: int) -> WorkingDays:
        """A table from the first start's day far enough past the last to add ``days``."""
        local_days = (starts + _OFFSET_NS) // DAY_NS
        first, last = int(local_days.min(initial=0)), int(local_days.max(initial=0))
        return cls(calendar, first, last + _reach(days))

    def reaching(self, starts: np.ndarray, days: int) -> WorkingDays:
        """This table, or a longer one if adding ``days`` may run past its end."""
        last = int(((starts + _OFFSET_NS) // DAY_NS).max(initial=0)) + _reach(days)
        return self if last <= self.last else WorkingDays(self.calendar, self.first, last)

    def add_days(self, starts: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Deadlines ``n`` working days after ``starts`` (UTC ns), and the uncovered year or 0."""
        local = starts + _OFFSET_NS
        day = local // DAY_NS - self.first
        into_day = local - (day + self.first) * DAY_NS
        n = np.asarray(n, dtype=np.int64)
        on_workday = self.counted[day]
        # From a working day: the n-th counted day after it, same time of day.
        # From another day: the next counted day is the first; n = 0 is its start.
        position = self.before[day] + np.where(on_workday, n, np.maximum(n - 1, 0))
        if position.size and position.max() >= len(self.ordinals):
            grown = WorkingDays(self.calendar, self.first, self.last + 4 * _reach(int(n.max())))
            return grown.add_days(starts, n)
        target = self.ordinals[position]
        deadline_day = np.where(on_workday | (n == 0), target, target + 1)
        moment = np.where(on_workday, into_day, 0) + (deadline_day + self.first) * DAY_NS
        # The walk looks at every day from the start's to the target day, both included.
        met = self.uncovered_before[target + 1] - self.uncovered_before[day] > 0
        year = np.zeros(len(starts), dtype=np.int64)
        if met.any():
            first_met = self.uncovered[self.uncovered_before[day[met]]]
            year[met] = [(_EPOCH + timedelta(days=int(d + self.first))).year for d in first_met]
        return np.where(met, np.iinfo(np.int64).min, moment - _OFFSET_NS), year

    def clock(self, instants: np.ndarray) -> np.ndarray:
        """Working nanoseconds from the table's first day at each instant (UTC ns)."""
        local = instants + _OFFSET_NS
        day = local // DAY_NS - self.first
        into_day = local - (day + self.first) * DAY_NS
        return self.before[day] * DAY_NS + np.where(self.counted[day], into_day, 0)

    def at_clock(self, readings: np.ndarray) -> np.ndarray:
        """The instants (UTC ns) at which the working clock shows ``readings``, inside a day."""
        position = np.minimum(readings // DAY_NS, len(self.ordinals) - 1)
        day = self.ordinals[position]
        return (day + self.first) * DAY_NS + (readings - position * DAY_NS) - _OFFSET_NS


def utc_ns(instants: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Aware instants as integer nanoseconds since the epoch (UTC)."""
    values = pd.DatetimeIndex(pd.to_datetime(instants, utc=True))
    return values.as_unit("ns").asi8.copy()


def as_instants(ns: np.ndarray) -> pd.Series:
    """UTC nanoseconds (int64 minimum for none) as aware UTC timestamps with NaT."""
    return pd.Series(pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC"))


def _per_row(codes: np.ndarray, by_code: Mapping[str, int]) -> np.ndarray:
    return np.fromiter((by_code[code] for code in codes), dtype=np.int64, count=len(codes))


def _reach(days: int) -> int:
    """Calendar days that surely hold ``days`` working days (holidays and weekends included)."""
    return 2 * days + _MARGIN_DAYS
