"""Service levels: the working-day deadlines an incident is held to, and how it stands.

Both deadlines run from the moment the incident was reported (the resident's clock):
accept within the category's ``accept_days``, resolve within ``resolve_days`` (or
``complex_days`` once marked complex), plus any approved extension, plus the working
time it spent suspended. When a deadline cannot be computed because the working-day
calendar does not cover its year, the deadline is left empty and ``deadline_alert``
says why: the incident is still taken in, and reports raise the alert, but nothing
guesses a weekday. (Explicit calendar calls, such as ``geogrid calendar due``, still
raise :class:`CalendarNotCovered`.)

An escalated incident has a third deadline, ``report_in_due_at``: the level it was
whistled up to must report in (报到) within the category's ``accept_days`` of the
escalation. It is kept apart from ``accept_due_at``, which keeps judging the first
acceptance, and it is cleared once someone reports in.

An incident is *overdue* at a moment when one of its :data:`DEADLINES` has passed while
the incident still waits for it: acceptance (``reported``) after ``accept_due_at``,
report-in (``escalated``) after ``report_in_due_at``, resolution (any open, running
state) after ``resolve_due_at``. A suspended incident is never overdue: its clock stands
still, and resuming it moves its deadlines by the working time it was suspended. The
same rule exists twice, once per incident (:func:`overdue_status`) and once as SQL over
every incident (:func:`overdue_condition`); both read it from :data:`DEADLINES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import and_, literal, or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from geogrid.errors import CalendarNotCovered
from geogrid.models import CLOSED_STATES, Incident, IncidentCategory
from geogrid.workdays import WorkCalendar

_DAY_S = 86_400

#: States in which an incident waits to be accepted.
AWAITING_ACCEPTANCE = ("reported",)
#: States in which an incident waits for the level it was escalated to to report in.
AWAITING_REPORT_IN = ("escalated",)
#: States in which an incident waits to be resolved and its clock runs.
AWAITING_RESOLUTION = ("reported", "accepted", "dispatched", "in_progress", "escalated")


@dataclass(frozen=True)
class Deadlines:
    """When an incident must be accepted and resolved, or why that is not known."""

    accept_due_at: datetime | None
    resolve_due_at: datetime | None
    alert: str | None = None


@dataclass(frozen=True)
class Deadline:
    """One deadline an incident is held to: its name, its column, the states it runs in.

    The name is also the breach's ``deadline`` in ``incident_breach``.
    """

    name: str
    column: InstrumentedAttribute[datetime | None]
    waiting: tuple[str, ...]

    def due_at(self, incident: Incident) -> datetime | None:
        """The incident's deadline of this kind (None when unknown or not set)."""
        return getattr(incident, self.column.key)

    def missed(self, incident: Incident, at: datetime) -> bool:
        """Whether the incident still waits for this deadline at ``at`` and it has passed."""
        due_at = self.due_at(incident)
        return incident.state in self.waiting and due_at is not None and due_at < at

    def missed_condition(self, now: datetime) -> ColumnElement[bool]:
        """SQL: :meth:`missed` at ``now``, over the open incidents only."""
        return and_(
            open_condition(),
            Incident.state.in_([_constant(state) for state in self.waiting]),
            self.column < now,
        )


#: Every deadline, by name: acceptance, report-in after an escalation, resolution.
DEADLINES: dict[str, Deadline] = {
    deadline.name: deadline
    for deadline in (
        Deadline("accept", Incident.accept_due_at, AWAITING_ACCEPTANCE),
        Deadline("report_in", Incident.report_in_due_at, AWAITING_REPORT_IN),
        Deadline("resolve", Incident.resolve_due_at, AWAITING_RESOLUTION),
    )
}


@dataclass(frozen=True)
class Overdue:
    """How an incident stands against its deadlines at one moment."""

    at: datetime
    accept_overdue: bool = False
    report_in_overdue: bool = False
    resolve_overdue: bool = False
    #: Working hours past each deadline (0 when not overdue).
    accept_overdue_h: float = 0.0
    report_in_overdue_h: float = 0.0
    resolve_overdue_h: float = 0.0
    #: Why the answer is incomplete, e.g. a deadline in a year the calendar does not cover.
    alert: str | None = None

    @property
    def overdue(self) -> bool:
        """Whether any deadline has been missed."""
        return self.accept_overdue or self.report_in_overdue or self.resolve_overdue

    def as_dict(self) -> dict[str, object]:
        """The status as a JSON-ready mapping."""
        body: dict[str, object] = {"at": self.at.isoformat(), "overdue": self.overdue}
        for name in DEADLINES:
            body[f"{name}_overdue"] = getattr(self, f"{name}_overdue")
            body[f"{name}_overdue_h"] = round(getattr(self, f"{name}_overdue_h"), 2)
        return body | {"alert": self.alert}


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
    # Each deadline on its own: an acceptance deadline this year stands even when the
    # resolution deadline falls in a year the calendar does not cover yet.
    alerts: list[str] = []
    try:
        accept = calendar.add_working_days(reported_at, category.accept_days)
    except CalendarNotCovered as exc:
        accept = None
        alerts.append(alert_text(exc))
    try:
        resolve = calendar.add_working_days(
            reported_at, resolve_days(category, complex_=complex_, extension_days=extension_days)
        )
        if paused_working_s:
            resolve = add_working_seconds(calendar, resolve, paused_working_s)
    except CalendarNotCovered as exc:
        resolve = None
        alerts.append(alert_text(exc))
    return Deadlines(accept, resolve, alert=alerts[0] if alerts else None)


def deadlines_of(
    calendar: WorkCalendar, category: IncidentCategory, incident: Incident
) -> Deadlines:
    """The deadlines the incident's own fields give (complex, extension, time suspended)."""
    return deadlines(
        calendar,
        category,
        incident.reported_at,
        complex_=bool(incident.complex),
        extension_days=incident.extension_days or 0,
        paused_working_s=incident.paused_working_s or 0.0,
    )


def recompute_resolve_due(
    calendar: WorkCalendar, category: IncidentCategory, incident: Incident
) -> Deadlines:
    """Set ``resolve_due_at`` afresh after a change of complexity, extension or pause.

    The acceptance and report-in deadlines are left alone: the first is met or missed
    by then, the second runs from the escalation, not from the report. Returns the
    deadlines computed, whose ``alert`` was also stored.
    """
    computed = deadlines_of(calendar, category, incident)
    incident.resolve_due_at = computed.resolve_due_at
    note_alert(incident, computed.alert)
    return computed


def resume_clock(
    calendar: WorkCalendar, category: IncidentCategory, incident: Incident, at: datetime
) -> float | None:
    """End a suspension at ``at``: count its working time and move the running deadlines.

    The working time from ``suspended_at`` to ``at`` is added to ``paused_working_s`` and
    ``resolve_due_at`` (and ``accept_due_at``, if not yet accepted) move that much later
    on the working clock. Returns the working seconds, or None (and an alert, with the
    deadlines emptied) when the calendar does not cover the time suspended. An
    escalated incident is not suspended, so no report-in deadline is ever moved.
    """
    try:
        paused = calendar.working_seconds(incident.suspended_at, at)
    except CalendarNotCovered as exc:
        incident.resolve_due_at = None
        if incident.accepted_at is None:
            incident.accept_due_at = None
        note_alert(incident, alert_text(exc))
        return None
    incident.paused_working_s = (incident.paused_working_s or 0.0) + paused
    if incident.resolve_due_at is None:
        recompute_resolve_due(calendar, category, incident)
        return paused
    try:
        incident.resolve_due_at = add_working_seconds(calendar, incident.resolve_due_at, paused)
        if incident.accepted_at is None and incident.accept_due_at is not None:
            incident.accept_due_at = add_working_seconds(calendar, incident.accept_due_at, paused)
    except CalendarNotCovered as exc:
        incident.resolve_due_at = None
        note_alert(incident, alert_text(exc))
        return paused
    note_alert(incident, None)
    return paused


def start_report_in_clock(
    calendar: WorkCalendar, category: IncidentCategory, incident: Incident, at: datetime
) -> None:
    """Give the level an incident was escalated to its report-in deadline, from ``at``."""
    try:
        incident.report_in_due_at = calendar.add_working_days(at, category.accept_days)
    except CalendarNotCovered as exc:
        incident.report_in_due_at = None
        note_alert(incident, alert_text(exc))
        return
    note_alert(incident, None)


def note_alert(incident: Incident, alert: str | None) -> None:
    """Store a deadline alert, or clear the old one once every deadline is known again."""
    if alert is not None:
        incident.deadline_alert = alert
        return
    awaited = [DEADLINES["accept"], DEADLINES["resolve"]]
    if incident.state in AWAITING_REPORT_IN:
        awaited.append(DEADLINES["report_in"])
    if all(deadline.due_at(incident) is not None for deadline in awaited):
        incident.deadline_alert = None


def alert_text(exc: CalendarNotCovered) -> str:
    """The deadline alert stored for a calendar that does not cover a year."""
    return f"{exc.code}: {exc.message}"


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


# -- how an incident stands ----------------------------------------------------------------


def overdue_status(calendar: WorkCalendar, incident: Incident, at: datetime) -> Overdue:
    """Whether ``incident`` is past its deadlines at ``at``, and by how many working hours."""
    facts: dict[str, object] = {}
    alert = incident.deadline_alert
    for name, deadline in DEADLINES.items():
        missed = deadline.missed(incident, at)
        facts[f"{name}_overdue"] = missed
        if not missed:
            continue
        try:
            facts[f"{name}_overdue_h"] = (
                calendar.working_seconds(deadline.due_at(incident), at) / 3600
            )
        except CalendarNotCovered as exc:
            alert = alert_text(exc)
    return Overdue(at=at, alert=alert, **facts)


def open_condition() -> ColumnElement[bool]:
    """SQL: the incident is not closed, written as the open-state partial index's predicate."""
    # Constants rather than bound parameters, so that even a generic plan can prove the
    # predicate of ix_incident_open_state and scan only the open incidents.
    return Incident.state.not_in([_constant(state) for state in CLOSED_STATES])


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """SQL: the incident is overdue at ``now`` (the rule of :func:`overdue_status`)."""
    return or_(*(deadline.missed_condition(now) for deadline in DEADLINES.values()))


def _constant(value: str) -> ColumnElement[str]:
    return literal(value, literal_execute=True)


# -- how long it took ----------------------------------------------------------------------


def resolution_working_days(calendar: WorkCalendar, incident: Incident) -> float | None:
    """Working days from report to resolution, not counting time suspended; None if open."""
    if incident.resolved_at is None:
        return None
    worked = calendar.working_seconds(incident.reported_at, incident.resolved_at)
    return (worked - (incident.paused_working_s or 0.0)) / _DAY_S


def resolution_working_days_many(
    calendar: WorkCalendar,
    reported_at: Sequence[datetime] | pd.Series,
    resolved_at: Sequence[datetime] | pd.Series,
    paused_working_s: Sequence[float] | pd.Series | np.ndarray,
) -> np.ndarray:
    """:func:`resolution_working_days` for many incidents at once (all must be resolved)."""
    reported = calendar.working_clock(reported_at)
    resolved = calendar.working_clock(resolved_at)
    paused = np.asarray(paused_working_s, dtype=float)
    return (resolved - reported - paused) / _DAY_S
