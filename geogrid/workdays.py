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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
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
        holidays = frozenset(chinese_calendar.holidays)
        # Only years the package lists holidays for count: its own range check would let a
        # gap year through with the weekday rule, which is exactly the guess we refuse.
        return cls(
            package_holidays=holidays,
            package_workdays=frozenset(chinese_calendar.workdays),
            package_years=frozenset(day.year for day in holidays),
            overrides=dict(overrides or {}),
        )

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

    def _same_time_after(self, local: datetime, n: int) -> datetime:
        day = self._nth_workday_after(local.date(), n)
        return datetime.combine(day, local.time(), tzinfo=SHANGHAI)

    def _nth_workday_after(self, day: date, n: int) -> date:
        for _ in range(n):
            day = self.next_workday(day)
        return day


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=SHANGHAI)


def load_calendar(session: Session) -> WorkCalendar:
    """The working-day calendar: the package's data plus every override in the database."""
    rows = session.execute(select(CalendarOverride.day, CalendarOverride.kind)).all()
    return WorkCalendar.from_package({day: kind for day, kind in rows})


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


def today() -> date:
    """Today's date in Shanghai."""
    return datetime.now(SHANGHAI).date()
