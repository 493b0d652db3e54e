"""Report periods: a day, an ISO week or a month, in Asia/Shanghai time.

>>> Period.parse("weekly", "2026-W48").start.isoformat()
'2026-11-23T00:00:00+08:00'
>>> Period.parse("monthly", "2026-11").previous().label
'2026-10'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from geogrid.errors import InputError
from geogrid.workdays import SHANGHAI

DAILY, WEEKLY, MONTHLY = "daily", "weekly", "monthly"
PERIOD_KINDS = (DAILY, WEEKLY, MONTHLY)

_FORMS = {DAILY: "YYYY-MM-DD", WEEKLY: "YYYY-Www (ISO week)", MONTHLY: "YYYY-MM"}
_PATTERNS = {
    DAILY: re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    WEEKLY: re.compile(r"^(\d{4})-?[Ww](\d{1,2})$"),
    MONTHLY: re.compile(r"^(\d{4})-(\d{1,2})$"),
}


@dataclass(frozen=True)
class Period:
    """A report period: incidents reported at ``start`` <= t < ``end`` (Shanghai, aware)."""

    kind: str
    #: The first day of the period.
    first_day: date

    @classmethod
    def parse(cls, kind: str, text: str) -> Period:
        """Read ``2026-11-28`` (daily), ``2026-W48`` (weekly, ISO) or ``2026-11`` (monthly)."""
        check_kind(kind)
        match = _PATTERNS[kind].match(str(text).strip())
        if match is None:
            raise InputError(
                f"a {kind} period is written {_FORMS[kind]}, not {text!r}", field="period"
            )
        numbers = [int(part) for part in match.groups()]
        try:
            if kind == DAILY:
                first = date(*numbers)
            elif kind == WEEKLY:
                first = date.fromisocalendar(numbers[0], numbers[1], 1)
            else:
                first = date(numbers[0], numbers[1], 1)
        except ValueError as exc:
            raise InputError(f"no such {kind} period {text!r}: {exc}", field="period") from None
        return cls(kind, first)

    @classmethod
    def containing(cls, kind: str, moment: datetime) -> Period:
        """The period of ``kind`` that ``moment`` falls in (read in Shanghai time)."""
        check_kind(kind)
        day = moment.astimezone(SHANGHAI).date() if moment.tzinfo else moment.date()
        if kind == WEEKLY:
            day -= timedelta(days=day.weekday())
        elif kind == MONTHLY:
            day = day.replace(day=1)
        return cls(kind, day)

    @property
    def last_day(self) -> date:
        """The last day of the period."""
        return self._next_first_day() - timedelta(days=1)

    @property
    def start(self) -> datetime:
        """Midnight at the start of the first day, Shanghai time."""
        return datetime.combine(self.first_day, time(0), tzinfo=SHANGHAI)

    @property
    def end(self) -> datetime:
        """Midnight after the last day (the period ends just before it)."""
        return datetime.combine(self._next_first_day(), time(0), tzinfo=SHANGHAI)

    @property
    def label(self) -> str:
        """The period as it is written: ``2026-11-28``, ``2026-W48`` or ``2026-11``."""
        if self.kind == DAILY:
            return self.first_day.isoformat()
        if self.kind == WEEKLY:
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first_day.year}-{self.first_day.month:02d}"

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return Period.containing(self.kind, self.start - timedelta(days=1))

    def years(self) -> list[int]:
        """The calendar years the period touches."""
        return list(range(self.first_day.year, self.last_day.year + 1))

    def __str__(self) -> str:
        return self.label

    def _next_first_day(self) -> date:
        if self.kind == DAILY:
            return self.first_day + timedelta(days=1)
        if self.kind == WEEKLY:
            return self.first_day + timedelta(days=7)
        year, month = divmod(self.first_day.month, 12)
        return date(self.first_day.year + year, month + 1, 1)


def check_kind(kind: str) -> str:
    """The report kind, or an InputError naming the field ``kind``."""
    if kind not in PERIOD_KINDS:
        raise InputError(f"a report is daily, weekly or monthly, not {kind!r}", field="kind")
    return kind


def last_complete(kind: str, now: datetime) -> Period:
    """The latest period of ``kind`` ended by ``now``: yesterday, last week, last month."""
    return Period.containing(kind, now).previous()
