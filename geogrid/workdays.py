"""Working days on the official Chinese calendar, for deadlines counted in working days.

The calendar is the ``chinese_calendar`` package's data (public holidays and the swapped
working weekends, 调休) plus the ``calendar_override`` table an administrator edits; an
override always wins. A year is *covered* when the package has data for it or when at
least one override falls in it: an administrator entering a new year's holidays and
调休 days by hand covers that year, and its remaining days follow the weekday rule
(Monday to Friday work). A day in a year covered by neither is a
:class:`CalendarNotCovered` error, never a silent weekday guess.

Times are Asia/Shanghai. Library functions take a session and may flush, never commit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache, cached_property
from types import MappingProxyType
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np
import pandas as pd
from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from geogrid.errors import CalendarNotCovered, InputError
from geogrid.models import CalendarOverride

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKDAY = "workday"
HOLIDAY = "holiday"
OVERRIDE_KINDS = (WORKDAY, HOLIDAY)


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days: the package's data with the overrides on top."""

    package_holidays: frozenset[date]
    package_workdays: frozenset[date]
    package_years: frozenset[int]
    overrides: Mapping[date, str] = field(default_factory=dict)

    @classmethod
    def from_package(cls, overrides: Mapping[date, str] | None = None) -> WorkCalendar:
        """The calendar from the installed ``chinese_calendar`` data and these overrides."""
        holidays, workdays, years = _package_days()
        # Read-only: one calendar is shared by every request that sees the same overrides.
        return cls(holidays, workdays, years, MappingProxyType(dict(overrides or {})))

    @property
    def override_years(self) -> frozenset[int]:
        """Years in which at least one override falls."""
        return frozenset(day.year for day in self.overrides)

    def covered_years(self) -> frozenset[int]:
        """Every year the package or the overrides cover."""
        return self.package_years | self.override_years

    def missing_years(self, years: Iterable[int]) -> list[int]:
        """Those of ``years`` that are not covered, in order (for alerts in reports)."""
        covered = self.covered_years()
        return sorted(year for year in set(years) if year not in covered)

    def is_workday(self, day: date) -> bool:
        """Whether people work on ``day``; raises CalendarNotCovered for an uncovered year."""
        if day.year not in self.covered_years():
            raise CalendarNotCovered(day.year)
        kind = self.overrides.get(day)
        if kind is not None:
            return kind == WORKDAY
        if day in self.package_workdays:
            return True
        if day in self.package_holidays:
            return False
        return day.weekday() < 5

    def describe(self, day: date) -> str:
        """A short account of ``day``: working or not, and on whose word."""
        if day.year not in self.covered_years():
            return "not covered by the calendar"
        kind = WORKDAY if self.is_workday(day) else HOLIDAY
        if day in self.overrides:
            source = "override"
        elif day in self.package_workdays:
            source = "package, swapped working day (调休)"
        elif day in self.package_holidays:
            source = "package, public holiday"
        else:
            source = "weekday rule"
        return f"{kind} ({source})"

    def next_workday(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        following = day + timedelta(days=1)
        while not self.is_workday(following):
            following += timedelta(days=1)
        return following

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The deadline ``n`` working days after ``start`` (an aware datetime), in Shanghai time.

        Each working day counts 24 hours of working time and other days count none, so:

        - from a moment on a working day, the deadline is the same time of day on the
          n-th following working day (2026-09-30 10:00 + 3 → 2026-10-10 10:00, skipping
          National Day and landing on the swapped working Saturday);
        - from a moment on a non-working day, the clock starts at 00:00 of the next
          working day, so the deadline is midnight at the end of the n-th working day
          counting that day as the first (Saturday + 1 → Tuesday 00:00, i.e. the end
          of Monday).

        ``n = 0`` gives the moment the clock starts. Every day passed over must be in a
        covered year, or CalendarNotCovered is raised.
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise InputError(
                "the start needs a time zone (geogrid times are Asia/Shanghai)", field="start"
            )
        if n < 0:
            raise InputError(f"a number of working days cannot be negative: {n}", field="n")
        local = start.astimezone(SHANGHAI)
        if self.is_workday(local.date()):
            return self._same_time_after(local, n)
        first = self.next_workday(local.date())
        if n == 0:
            return _midnight(first)
        last = self._nth_workday_after(first, n - 1)
        return _midnight(last + timedelta(days=1))

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time from ``start`` to ``end`` in seconds (negative when ``end`` is earlier)."""
        clock = self.working_clock([start, end])
        return float(clock[1] - clock[0])

    def working_clock(self, instants: Sequence[datetime] | pd.Series | np.ndarray) -> np.ndarray:
        """Working seconds elapsed at each instant, from the start of the calendar's first year.

        The clock runs during working days and stands still on the others, so the working
        time between two instants is the difference of their readings: "working days to
        resolve" over a million incidents without a Python loop. Every day from the
        earliest to the latest instant must be in a covered year, or CalendarNotCovered.
        """
        seconds = _epoch_seconds(instants) + _SHANGHAI_OFFSET_S
        if seconds.size == 0:
            return np.zeros(0)
        table = self._day_table
        day = np.floor_divide(seconds, _DAY_S).astype(np.int64)
        first, last = int(day.min()), int(day.max())
        for index in (first, last):
            if not 0 <= index - table.first < len(table.working):
                raise CalendarNotCovered((_EPOCH_DAY + timedelta(days=index)).year)
        uncovered = table.uncovered[first - table.first : last - table.first + 1]
        if uncovered.any():
            missing = first + int(np.argmax(uncovered))
            raise CalendarNotCovered((_EPOCH_DAY + timedelta(days=missing)).year)
        offset = day - table.first
        into_day = seconds - day * _DAY_S
        return table.at_start[offset] + np.where(table.working[offset], into_day, 0.0)

    @cached_property
    def _day_table(self) -> _DayTable:
        years = self.covered_years()
        start, end = date(min(years), 1, 1), date(max(years), 12, 31)
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        uncovered = np.fromiter((d.year not in years for d in days), dtype=bool, count=len(days))
        working = np.fromiter(
            (d.year in years and self.is_workday(d) for d in days), dtype=bool, count=len(days)
        )
        at_start = np.concatenate(([0.0], np.cumsum(working * float(_DAY_S))))[:-1]
        return _DayTable((start - _EPOCH_DAY).days, working, uncovered, at_start)

    def _same_time_after(self, local: datetime, n: int) -> datetime:
        day = self._nth_workday_after(local.date(), n)
        return datetime.combine(day, local.time(), tzinfo=SHANGHAI)

    def _nth_workday_after(self, day: date, n: int) -> date:
        for _ in range(n):
            day = self.next_workday(day)
        return day


_DAY_S = 86_400
#: Shanghai has kept UTC+8 without daylight saving since 1991.
_SHANGHAI_OFFSET_S = 8 * 3600
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True)
class _DayTable:
    """Every day of the covered span: working or not, and the clock at its start."""

    #: Days from 1970-01-01 to the first day of the table.
    first: int
    working: np.ndarray
    uncovered: np.ndarray
    at_start: np.ndarray


def _epoch_seconds(instants: Sequence[datetime] | pd.Series | np.ndarray) -> np.ndarray:
    """Seconds since the Unix epoch of aware datetimes (or datetime64 values taken as UTC)."""
    values = pd.to_datetime(pd.Series(instants), utc=True)
    if values.isna().any():
        raise InputError("a time is missing", field="time")
    naive_utc = values.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return naive_utc.astype(np.int64) / 1e9


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=SHANGHAI)


@cache
def _package_days() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """The package's holidays, swapped working days and years (the data never changes)."""
    holidays = frozenset(chinese_calendar.holidays)
    # Only years the package lists holidays for count: its own range check would let a
    # gap year through with the weekday rule, which is exactly the guess we refuse.
    years = frozenset(day.year for day in holidays)
    return holidays, frozenset(chinese_calendar.workdays), years


#: Calendars built from the database, by their overrides; a handful of entries, because
#: one process serves one database (the tests, a few).
_BUILT: dict[tuple[tuple[date, str], ...], WorkCalendar] = {}
_BUILT_MAX = 8
_BUILT_LOCK = threading.Lock()


def load_calendar(session: Session) -> WorkCalendar:
    """The working-day calendar: the package's data plus every override in the database.

    The overrides are read on every call, in the caller's transaction, so a change made in
    any session is seen as soon as it is visible there; only the calendar built from them
    is reused, keyed by the overrides themselves, so it can never be stale. (A version
    counter or a time to live would have to be kept right; the table holds a few dozen
    rows, so reading them is as cheap as reading a version.)
    """
    rows = session.execute(
        select(CalendarOverride.day, CalendarOverride.kind).order_by(CalendarOverride.day)
    )
    key = tuple((day, kind) for day, kind in rows)
    calendar = _BUILT.get(key)
    if calendar is None:
        calendar = WorkCalendar.from_package(dict(key))
        with _BUILT_LOCK:
            if len(_BUILT) >= _BUILT_MAX:
                _BUILT.clear()
            _BUILT[key] = calendar
    return calendar


def list_overrides(session: Session, year: int | None = None) -> list[CalendarOverride]:
    """The overrides, by day; only those in ``year`` when given."""
    query = select(CalendarOverride).order_by(CalendarOverride.day)
    if year is not None:
        query = query.where(extract("year", CalendarOverride.day) == year)
    return list(session.scalars(query))


def set_override(
    session: Session, day: date, kind: str, *, set_by: str, name: str = "", note: str = ""
) -> CalendarOverride:
    """Declare ``day`` a working day or a holiday, replacing any earlier override of it."""
    if kind not in OVERRIDE_KINDS:
        raise InputError(f"kind must be workday or holiday, not {kind!r}", field="kind")
    override = session.get(CalendarOverride, day)
    if override is None:
        override = CalendarOverride(day=day)
        session.add(override)
    override.kind = kind
    override.name = name
    override.note = note
    override.set_by = set_by
    override.set_at = func.now()
    session.flush()
    session.refresh(override)
    return override


def unset_override(session: Session, day: date) -> CalendarOverride | None:
    """Remove the override of ``day``; returns the removed row, or None if there was none."""
    override = session.get(CalendarOverride, day)
    if override is not None:
        session.delete(override)
        session.flush()
    return override


def moment_or_now(now: datetime | None, *, field: str = "now") -> datetime:
    """``now`` checked to be time-zone aware, or the present moment in Shanghai when None."""
    if now is None:
        return datetime.now(SHANGHAI)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("the time needs a time zone (e.g. +08:00)", field=field)
    return now


def today() -> date:
    """Today's date in Shanghai."""
    return datetime.now(SHANGHAI).date()
