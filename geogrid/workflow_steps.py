"""What each workflow action does to an incident, once :mod:`geogrid.workflow` has allowed it.

Every function here takes a :class:`Step` (the locked incident, the actor, the moment
and the checked parameters), changes the incident, and returns the facts that go into
the event's ``data`` besides the parameters. They check nothing that the table in
:mod:`geogrid.workflow` already checks; what they refuse depends on the values only
(granting more days than were asked for, resuming before the suspension began).

The ``blocked_*`` functions say why an action cannot be taken now although the
incident's state allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from geogrid import sla
from geogrid.actors import Actor
from geogrid.errors import InputError
from geogrid.models import ESCALATION_LEVELS, Incident, IncidentCategory
from geogrid.workdays import SHANGHAI, WorkCalendar, load_calendar


@dataclass
class Step:
    """One action being applied: the locked incident, who, when, and the checked parameters."""

    session: Session
    incident: Incident
    actor: Actor
    now: datetime
    note: str
    params: dict[str, Any]
    given_calendar: WorkCalendar | None = None

    @cached_property
    def calendar(self) -> WorkCalendar:
        """The working-day calendar, loaded only by actions that move a deadline."""
        return self.given_calendar or load_calendar(self.session)

    @cached_property
    def category(self) -> IncidentCategory:
        """The incident's category, for its deadlines."""
        return self.session.get_one(IncidentCategory, self.incident.category)


def accept(step: Step) -> dict[str, Any]:
    """受理: accepted now; marked complex, it gets the category's longer deadline."""
    incident = step.incident
    incident.state, incident.accepted_at = "accepted", step.now
    if step.params.get("complex"):
        incident.complex = True
        sla.recompute_resolve_due(step.calendar, step.category, incident)
        return {"resolve_due_at": _iso(incident.resolve_due_at)}
    return {}


def reject(step: Step) -> dict[str, Any]:
    """不予受理: rejected, the note being the reason."""
    step.incident.state, step.incident.reject_reason = "rejected", step.note
    return {}


def dispatch(step: Step) -> dict[str, Any]:
    """派遣: sent to an assignee or a department (which then holds it)."""
    incident, department = step.incident, step.params.get("department")
    if department:
        incident.department = department
    incident.assignee = step.params.get("assignee") or department
    incident.state, incident.dispatched_at = "dispatched", step.now
    return {}


def start(step: Step) -> dict[str, Any]:
    """处置: work has begun."""
    step.incident.state = "in_progress"
    return {}


def resolve(step: Step) -> dict[str, Any]:
    """办结: resolved now, the note being what was done."""
    incident = step.incident
    incident.state, incident.resolved_at = "resolved", step.now
    # An extension still waiting for a decision is moot once the work is done.
    incident.extension_requested_days = None
    return {}


def evaluate(step: Step) -> dict[str, Any]:
    """评价: satisfied closes the incident; not satisfied reopens it."""
    incident = step.incident
    incident.evaluated_at = step.now
    if step.params["satisfied"]:
        incident.state, incident.satisfaction = "evaluated", "satisfied"
        return {}
    # Not satisfied reopens it: it is no longer resolved, and the resident's clock, which
    # runs from the report, keeps its deadline.
    incident.state, incident.satisfaction = "in_progress", "unsatisfied"
    incident.resolved_at = None
    incident.reopened_count += 1
    return {"reopened": True}


def suspend(step: Step) -> dict[str, Any]:
    """挂起: the clock stops; the state it was in is kept to return to."""
    incident = step.incident
    incident.suspended_from, incident.suspended_at = incident.state, step.now
    incident.state = "suspended"
    return {}


def resume(step: Step) -> dict[str, Any]:
    """恢复: back to the state it left, its deadlines moved by the working time suspended."""
    incident = step.incident
    if step.now < incident.suspended_at:
        raise InputError("cannot resume before the incident was suspended", field="now")
    paused = sla.resume_clock(step.calendar, step.category, incident, step.now)
    incident.state = incident.suspended_from
    incident.suspended_from = incident.suspended_at = None
    return {
        "suspended_working_s": paused,
        "accept_due_at": _iso(incident.accept_due_at),
        "resolve_due_at": _iso(incident.resolve_due_at),
    }


def request_extension(step: Step) -> dict[str, Any]:
    """申请延期: ask for more working days; a supervisor decides."""
    step.incident.extension_requested_days = step.params["days"]
    return {}


def approve_extension(step: Step) -> dict[str, Any]:
    """批准延期: grant the days asked for, or fewer; the resolution deadline moves."""
    incident = step.incident
    granted = step.params.get("days") or incident.extension_requested_days
    if granted > incident.extension_requested_days:
        raise InputError(
            f"{incident.extension_requested_days} working days were asked for; "
            f"cannot grant {granted}",
            field="days",
        )
    incident.extension_days += granted
    incident.extension_requested_days = None
    sla.recompute_resolve_due(step.calendar, step.category, incident)
    return {"granted_days": granted, "resolve_due_at": _iso(incident.resolve_due_at)}


def deny_extension(step: Step) -> dict[str, Any]:
    """驳回延期: the request is dropped; the deadline stays."""
    denied = step.incident.extension_requested_days
    step.incident.extension_requested_days = None
    return {"denied_days": denied}


def escalate(step: Step) -> dict[str, Any]:
    """吹哨: one level up, where someone must report in within the acceptance time.

    The report-in deadline has a column of its own, so ``accept_due_at`` keeps judging
    the first acceptance and a missed report-in is a breach of its own kind.
    """
    incident = step.incident
    previous_due = incident.report_in_due_at
    incident.level = ESCALATION_LEVELS[ESCALATION_LEVELS.index(incident.level) + 1]
    incident.escalation_count += 1
    incident.state = "escalated"
    sla.start_report_in_clock(step.calendar, step.category, incident, step.now)
    return {
        "to_level": incident.level,
        "previous_report_in_due_at": _iso(previous_due),
        "report_in_due_at": _iso(incident.report_in_due_at),
    }


def report_in(step: Step) -> dict[str, Any]:
    """报到: the level it was whistled up to takes it on, and works it at once."""
    incident, actor = step.incident, step.actor
    if actor.department:
        incident.department = actor.department
    incident.assignee = actor.department or actor.name
    incident.accepted_at = incident.accepted_at or step.now
    incident.dispatched_at = incident.dispatched_at or step.now
    incident.state = "in_progress"
    # Answered: a report-in deadline on the row means one is awaited; the log keeps it.
    due = incident.report_in_due_at
    incident.report_in_due_at = None
    sla.note_alert(incident, None)
    return {"assignee": incident.assignee, "report_in_due_at": _iso(due)}


def blocked_without_request(incident: Incident) -> str | None:
    """Why an extension cannot be decided: none has been asked for."""
    return None if incident.extension_requested_days else "no extension has been requested"


def blocked_by_pending_request(incident: Incident) -> str | None:
    """Why another extension cannot be asked for: one awaits a decision."""
    days = incident.extension_requested_days
    return f"an extension of {days} working days awaits a decision" if days else None


def blocked_at_top(incident: Incident) -> str | None:
    """Why an incident cannot be escalated: it is at the top level already."""
    top = ESCALATION_LEVELS[-1]
    return f"it is already at the {top} level, the top" if incident.level == top else None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None
