"""The incident workflow: which action leads where, who may take it, and what it sets.

:data:`ACTIONS` is the whole state machine as a table; :func:`act` is the only way an
incident changes state. It locks the incident row, checks the action, the state, the
actor and the parameters, in that order, before anything is written, then applies the
action (:mod:`geogrid.workflow_steps`) and appends one event to the log
(:func:`geogrid.incidents.record_event`).

Roles: W grid_worker, D department, O official, A administrator, R resident, S system.

==================  ============================================  ===========================
action              from → to                                     roles
==================  ============================================  ===========================
accept 受理          reported → accepted                           W O A
reject 不予受理      reported, accepted → rejected                 W O A
dispatch 派遣        accepted → dispatched                         O A, W only to themselves
start 处置           dispatched → in_progress                      W D O A
resolve 办结         dispatched, in_progress → resolved            W D O A
evaluate 评价        resolved → evaluated (satisfied) or           R (their own report), W O
                    in_progress (not satisfied: reopened)
suspend 挂起         accepted, dispatched, in_progress →           O A
                    suspended
resume 恢复          suspended → the state it was suspended from   O A
request_extension   dispatched, in_progress → unchanged           W D
approve_extension   dispatched, in_progress → unchanged           O A
deny_extension      dispatched, in_progress → unchanged           O A
escalate 吹哨        reported, accepted, dispatched, in_progress,  W O A S
                    escalated → escalated (one level up)
report_in 报到       escalated → in_progress                       D O A (at the receiving level)
==================  ============================================  ===========================

Scope: apart from administrators and geogrid itself, an actor must cover the incident's
grid code (so an incident outside every grid is placed before anyone else works it).
Department staff act only on incidents whose department or assignee is theirs; a
department with no scope is county-wide. A resident may evaluate an incident they
reported. Reporting in (报到) is for the level the incident was whistled up to: the
actor's scope must cover the incident's area *at that level* (its community, township
or county), and any department may report in, which makes it the assignee.

Residents' satisfaction is their own word, so administrators do not evaluate; reasons
(reject, suspend, escalate) and the resolution (resolve) are the note, and required.
Escalating from ``reported`` or ``escalated`` is allowed because a missed acceptance
or report-in deadline escalates on its own (:mod:`geogrid.escalation`). Escalating
gives the receiving level a report-in deadline (``report_in_due_at``, the category's
acceptance time from the whistle) and leaves ``accept_due_at`` as it was, so the first
acceptance is still judged on its own clock; reporting in clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid import incidents
from geogrid import workflow_steps as steps
from geogrid.actors import (
    ADMINISTRATOR,
    DEPARTMENT,
    GRID_WORKER,
    OFFICIAL,
    RESIDENT,
    SYSTEM,
    UNSCOPED_ROLES,
    Actor,
)
from geogrid.codes import DEFAULT_SCHEME, CodeScheme
from geogrid.errors import (
    CodeError,
    Forbidden,
    IllegalTransition,
    InputError,
    NotFound,
)
from geogrid.models import ESCALATION_LEVELS, Incident
from geogrid.settings import Settings
from geogrid.workdays import WorkCalendar, moment_or_now

#: An extension asks for 1 to this many working days.
MAX_EXTENSION_DAYS = 10
#: ``to_state`` of actions that leave the state as it is.
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Transition:
    """One workflow action: from which states, to which, by whom, with which parameters."""

    name: str
    label_zh: str
    from_states: tuple[str, ...]
    #: The state it leads to, :data:`UNCHANGED`, or how the state is decided.
    to_state: str
    roles: tuple[str, ...]
    #: Parameters that must be given (``note`` is the reason or the resolution).
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: Incident fields it sets, besides ``state``.
    sets: tuple[str, ...] = ()
    #: Applies the action to the incident; returns facts for the event's data.
    apply: Callable[[steps.Step], dict[str, Any]] = field(default=lambda step: {}, repr=False)
    #: Why the action cannot be taken now, in a state it is otherwise allowed from.
    blocked: Callable[[Incident], str | None] = field(default=lambda incident: None, repr=False)


_HANDLERS = (GRID_WORKER, DEPARTMENT, OFFICIAL, ADMINISTRATOR)
_SUPERVISORS = (OFFICIAL, ADMINISTRATOR)
_WORKING = ("dispatched", "in_progress")

ACTIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        Transition("accept", "受理", ("reported",), "accepted",
                   (GRID_WORKER, OFFICIAL, ADMINISTRATOR), optional=("complex",),
                   sets=("accepted_at", "complex", "resolve_due_at"), apply=steps.accept),
        Transition("reject", "不予受理", ("reported", "accepted"), "rejected",
                   (GRID_WORKER, OFFICIAL, ADMINISTRATOR), required=("note",),
                   sets=("reject_reason",), apply=steps.reject),
        Transition("dispatch", "派遣", ("accepted",), "dispatched",
                   (OFFICIAL, ADMINISTRATOR, GRID_WORKER), optional=("assignee", "department"),
                   sets=("assignee", "department", "dispatched_at"), apply=steps.dispatch),
        Transition("start", "处置", ("dispatched",), "in_progress", _HANDLERS, apply=steps.start),
        Transition("resolve", "办结", _WORKING, "resolved", _HANDLERS, required=("note",),
                   sets=("resolved_at",), apply=steps.resolve),
        Transition("evaluate", "评价", ("resolved",),
                   "evaluated if satisfied, else in_progress (reopened)",
                   (RESIDENT, GRID_WORKER, OFFICIAL), required=("satisfied",),
                   sets=("satisfaction", "evaluated_at", "reopened_count", "resolved_at"),
                   apply=steps.evaluate),
        Transition("suspend", "挂起", ("accepted", *_WORKING), "suspended", _SUPERVISORS,
                   required=("note",), sets=("suspended_at", "suspended_from"),
                   apply=steps.suspend),
        Transition("resume", "恢复", ("suspended",), "the state it was suspended from",
                   _SUPERVISORS, sets=("paused_working_s", "resolve_due_at", "accept_due_at"),
                   apply=steps.resume),
        Transition("request_extension", "申请延期", _WORKING, UNCHANGED,
                   (GRID_WORKER, DEPARTMENT), required=("days",),
                   sets=("extension_requested_days",), apply=steps.request_extension,
                   blocked=steps.blocked_by_pending_request),
        Transition("approve_extension", "批准延期", _WORKING, UNCHANGED, _SUPERVISORS,
                   optional=("days",), sets=("extension_days", "resolve_due_at"),
                   apply=steps.approve_extension, blocked=steps.blocked_without_request),
        Transition("deny_extension", "驳回延期", _WORKING, UNCHANGED, _SUPERVISORS,
                   sets=("extension_requested_days",), apply=steps.deny_extension,
                   blocked=steps.blocked_without_request),
        Transition("escalate", "吹哨", ("reported", "accepted", *_WORKING, "escalated"),
                   "escalated", (GRID_WORKER, OFFICIAL, ADMINISTRATOR, SYSTEM),
                   required=("note",), sets=("level", "escalation_count", "report_in_due_at"),
                   apply=steps.escalate, blocked=steps.blocked_at_top),
        Transition("report_in", "报到", ("escalated",), "in_progress",
                   (DEPARTMENT, OFFICIAL, ADMINISTRATOR),
                   sets=("assignee", "department", "accepted_at", "dispatched_at",
                         "report_in_due_at"),
                   apply=steps.report_in),
    )
}  # fmt: skip


# -- acting --------------------------------------------------------------------------------


def act(
    session: Session,
    settings: Settings,
    incident_id: int,
    action: str,
    actor: Actor,
    *,
    note: str = "",
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
    **params: Any,
) -> Incident:
    """Take ``action`` on an incident as ``actor``: lock, check, apply, log one event."""
    transition = transition_of(action)
    incident = lock(session, incident_id)
    return act_on(
        session, settings, incident, transition.name, actor,
        note=note, now=now, calendar=calendar, **params,
    )  # fmt: skip


def act_on(
    session: Session,
    settings: Settings,
    incident: Incident,
    action: str,
    actor: Actor,
    *,
    note: str = "",
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
    **params: Any,
) -> Incident:
    """:func:`act` on an incident the caller has already locked (see :func:`lock`)."""
    transition = transition_of(action)
    moment = moment_or_now(now)
    if incident.state not in transition.from_states:
        allowed = actions_from(incident.state)
        raise IllegalTransition(
            f"cannot {action} incident {incident.id}: it is {incident.state}, and from "
            f"{incident.state} the actions are: {', '.join(allowed) or 'none'}",
            field="action",
            action=action,
            state=incident.state,
            allowed=allowed,
        )
    refusal = _refusal(incident, transition, actor, settings.scheme)
    if refusal is not None:
        raise Forbidden(refusal, field="actor", action=action, role=actor.role)
    values = _checked_params(transition, note, params)
    _check_dispatcher(transition, actor, values)
    blocked = transition.blocked(incident)
    if blocked is not None:
        raise IllegalTransition(
            f"cannot {action} incident {incident.id}: {blocked}",
            field="action",
            action=action,
            state=incident.state,
        )
    from_state = incident.state
    step = steps.Step(session, incident, actor, moment, values.get("note", ""), values, calendar)
    facts = transition.apply(step)
    data = {name: value for name, value in values.items() if name != "note"} | facts
    incidents.record_event(
        session, incident, actor, action, from_state, note=step.note, data=data, at=moment
    )
    return incident


def lock(session: Session, incident_id: int) -> Incident:
    """The incident, its row locked until the transaction ends (NotFound if there is none)."""
    query = (
        select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    incident = session.scalar(query)
    if incident is None:
        raise NotFound(f"there is no incident {incident_id}", field="id")
    return incident


def transition_of(action: str) -> Transition:
    """The transition called ``action``; InputError naming the known actions otherwise."""
    transition = ACTIONS.get(action)
    if transition is None:
        raise InputError(
            f"unknown action {action!r}; actions: {', '.join(ACTIONS)}", field="action"
        )
    return transition


def actions_from(state: str) -> list[str]:
    """Every action the table allows from ``state``, whoever takes it."""
    return [name for name, t in ACTIONS.items() if state in t.from_states]


def allowed_actions(
    incident: Incident, actor: Actor, *, scheme: CodeScheme | None = None
) -> list[str]:
    """The actions ``actor`` may take on ``incident`` now (what a page offers as buttons)."""
    scheme = scheme or CodeScheme.parse(DEFAULT_SCHEME)
    return [
        name
        for name, transition in ACTIONS.items()
        if incident.state in transition.from_states
        and _refusal(incident, transition, actor, scheme) is None
        and transition.blocked(incident) is None
    ]


def area_code_at_level(incident: Incident, scheme: CodeScheme) -> str | None:
    """The code of the incident's area at its escalation level (grid, community, ...)."""
    if incident.grid_code is None:
        return None
    try:
        chain = [*scheme.ancestors_of(incident.grid_code), incident.grid_code]
    except CodeError:
        return incident.grid_code
    steps_up = ESCALATION_LEVELS.index(incident.level)
    return chain[max(len(chain) - 1 - steps_up, 0)]


# -- checks --------------------------------------------------------------------------------


def _refusal(
    incident: Incident, transition: Transition, actor: Actor, scheme: CodeScheme
) -> str | None:
    """Why ``actor`` may not take ``transition`` on ``incident``, or None when it may."""
    if actor.role not in transition.roles:
        return (
            f"the {actor.role} role may not {transition.name}; "
            f"that is for: {', '.join(transition.roles)}"
        )
    if actor.role in UNSCOPED_ROLES:
        return None
    where = f"incident {incident.id} (grid {incident.grid_code or 'none: outside every grid'})"
    if transition.name == "report_in":
        code = area_code_at_level(incident, scheme)
        county_wide = actor.role == DEPARTMENT and not actor.scope
        if county_wide or actor.covers(code):
            return None
        return f"{where} was escalated to {incident.level} {code}, outside your scope"
    if actor.role == RESIDENT:
        return None if incident.reported_by == actor.name else f"{where} is not your report"
    if actor.role == DEPARTMENT:
        if not actor.department or actor.department not in (
            incident.department,
            incident.assignee,
        ):
            return f"{where} is not with your department ({actor.department or 'none given'})"
        if not actor.scope:
            return None
    return None if actor.covers(incident.grid_code) else f"{where} is outside your scope"


def _check_dispatcher(transition: Transition, actor: Actor, values: dict[str, Any]) -> None:
    """Small matters stay in the grid: a grid worker may dispatch only to themselves."""
    if transition.name != "dispatch":
        return
    if not values.get("assignee") and not values.get("department"):
        raise InputError("dispatch to whom? give an assignee or a department", field="assignee")
    if actor.role == GRID_WORKER and (
        values.get("department") or values.get("assignee") != actor.name
    ):
        raise Forbidden(
            "a grid worker may dispatch only to themselves; ask an official to send it on",
            field="assignee",
        )


def _checked_params(transition: Transition, note: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters, checked against the action's list and parsed, or InputError."""
    values: dict[str, Any] = {}
    if note is not None and not isinstance(note, str):
        raise InputError("the note must be text", field="note")
    if note and note.strip():
        values["note"] = note.strip()
    for name, value in params.items():
        if name not in transition.required + transition.optional:
            accepted = ", ".join(transition.required + transition.optional) or "none"
            raise InputError(
                f"{transition.name} takes no {name!r}; its parameters: {accepted}", field=name
            )
        if value is not None:
            values[name] = _PARSERS[name](name, value)
    for name in transition.required:
        if name not in values:
            raise InputError(f"{transition.name} needs {_NEEDS[name]}", field=name)
    return values


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be non-empty text", field=name)
    return value.strip()


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, not {value!r}", field=name)
    return value


def _days(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number of working days", field=name)
    if not 1 <= value <= MAX_EXTENSION_DAYS:
        raise InputError(
            f"an extension is 1 to {MAX_EXTENSION_DAYS} working days, not {value}", field=name
        )
    return value


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "note": _text,
    "assignee": _text,
    "department": _text,
    "days": _days,
    "satisfied": _flag,
    "complex": _flag,
}
_NEEDS = {
    "note": "a note (the reason, or what was done)",
    "days": "the number of working days",
    "satisfied": "satisfied true or false",
}
