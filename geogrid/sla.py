"""Service levels: the working-day deadlines an incident is held to.

Both deadlines run from the moment the incident was reported (the resident's clock):
accept within the category's ``accept_days``, resolve within ``resolve_days`` (or
``complex_days`` once marked complex), plus any approved extension, plus the working
time it spent suspended. When a deadline cannot be computed because the working-day
calendar does not cover its year, the deadline is left empty and ``deadline_alert``
says why: the incident is still taken in, and reports raise the alert, but nothing
guesses a weekday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from geogrid.errors import CalendarNotCovered
from geogrid.models import IncidentCategory
from geogrid.workdays import WorkCalendar

_DAY_S = 86_400


@dataclass(frozen=True)
class Deadlines:
    """When an incident must be accepted and resolved, or why that is not known."""

    accept_due_at: datetime | None
    resolve_due_at: datetime | None
    alert: str | None = None


def resolve_days(category: IncidentCategory, *, complex_: bool, extension_days: int = 0) -> int:
    """Working days allowed to resolve an incident of ``category``."""
    return (category.complex_days if complex_ else category.resolve_days) + extension_days


def deadlines(
    calendar: WorkCalendar,
    category: IncidentCategory,
    reported_at: datetime,
    *,
    complex_: bool = False,
    extension_days: int = 0,
    paused_working_s: float = 0.0,
) -> Deadlines:
    """The deadlines of an incident reported at ``reported_at``, or an alert if uncoverable."""
    try:
        accept = calendar.add_working_days(reported_at, category.accept_days)
        resolve = calendar.add_working_days(
            reported_at, resolve_days(category, complex_=complex_, extension_days=extension_days)
        )
        if paused_working_s:
            resolve = add_working_seconds(calendar, resolve, paused_working_s)
    except CalendarNotCovered as exc:
        return Deadlines(None, None, alert=f"{exc.code}: {exc.message}")
    return Deadlines(accept, resolve)


def add_working_seconds(calendar: WorkCalendar, start: datetime, seconds: float) -> datetime:
    """The moment ``seconds`` of working time after ``start`` (whole days, then the rest)."""
    days, rest = divmod(seconds, _DAY_S)
    moment = calendar.add_working_days(start, int(days))
    while rest > 0:
        end_of_day = (moment.replace(hour=0, minute=0, second=0, microsecond=0)) + timedelta(1)
        if calendar.is_workday(moment.date()):
            step = min(rest, (end_of_day - moment).total_seconds())
            moment += timedelta(seconds=step)
            rest -= step
        else:
            moment = end_of_day
    return moment
