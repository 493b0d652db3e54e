"""Missed deadlines: finding overdue incidents, and escalating each missed deadline once.

吹哨报到 by the clock: an incident whose acceptance deadline passed while it was still
``reported``, whose report-in deadline passed while it was still ``escalated``, or whose
resolution deadline passed while it was still open, goes up one level (grid →
community → township → county) as geogrid itself (the rules: :data:`geogrid.sla.DEADLINES`).

``geogrid incidents escalate-overdue`` runs every few minutes, possibly twice at once,
and must never escalate the same breach twice. A breach is keyed by (incident, deadline,
due_at) in ``incident_breach``, the deadline being ``accept``, ``report_in`` or
``resolve``; it is inserted with ``ON CONFLICT DO NOTHING`` while the incident's row is
locked, and only the run whose insert happened escalates. A missed acceptance and a
later missed report-in are breaches of different kinds, each escalated once; every
escalation sets a fresh report-in deadline, so missing that one escalates again, while
the same missed resolution deadline never does. An incident already at the county
level gets its breach recorded and stays where it is.

Candidates are found in one set-based query over the open incidents only (the partial
index ``ix_incident_open_state``); the rows are then locked in id order, so concurrent
runs queue behind each other instead of deadlocking.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import NamedTuple

from sqlalchemy import and_, exists, false, func, literal, or_, select, true, tuple_, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from geogrid import sla, workflow
from geogrid.actors import DEPARTMENT, RESIDENT, SYSTEM_ACTOR, UNSCOPED_ROLES, Actor
from geogrid.errors import InputError
from geogrid.models import ESCALATION_LEVELS, Incident, IncidentBreach, IncidentCategory
from geogrid.settings import Settings
from geogrid.workdays import SHANGHAI, WorkCalendar, load_calendar, moment_or_now

#: Incidents locked and escalated per round trip.
_BATCH = 500
#: Incidents listed by :func:`overdue_incidents` at most.
MAX_LISTED = 10_000


class Escalated(NamedTuple):
    """One missed deadline that was escalated: which, when it was due, the level reached."""

    incident_id: int
    deadline: str
    due_at: datetime
    level: str


@dataclass
class EscalationRun:
    """What one run of :func:`escalate_overdue` did."""

    at: datetime
    escalated: list[Escalated] = field(default_factory=list)
    #: Missed deadlines found already escalated (by an earlier or a concurrent run).
    already_escalated: int = 0
    #: Missed deadlines of incidents already at the top level: recorded, not escalated.
    at_top: int = 0

    def summary(self) -> str:
        """One line for people: how many escalated, already escalated, at the top."""
        return (
            f"{len(self.escalated)} missed deadlines escalated, "
            f"{self.already_escalated} already escalated, {self.at_top} at the "
            f"{ESCALATION_LEVELS[-1]} level already"
        )


class _Missed(NamedTuple):
    incident_id: int
    deadline: str
    due_at: datetime


def escalate_overdue(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> EscalationRun:
    """Escalate every deadline missed by ``now`` that has not been escalated yet."""
    run = EscalationRun(at=moment_or_now(now))
    calendar = calendar or load_calendar(session)
    # Held for the whole run: the session's identity map keeps only what is referenced,
    # and every escalation reads its category's acceptance time.
    categories = list(session.scalars(select(IncidentCategory)))
    run.already_escalated = _count_missed(session, run.at, known=True)
    by_incident: dict[int, list[_Missed]] = defaultdict(list)
    for missed in _new_missed(session, run.at):
        by_incident[missed.incident_id].append(missed)
    ids = sorted(by_incident)
    for first in range(0, len(ids), _BATCH):
        batch = {
            incident_id: by_incident[incident_id] for incident_id in ids[first : first + _BATCH]
        }
        _escalate_batch(session, settings, calendar, run, batch)
    del categories
    return run


def _escalate_batch(
    session: Session,
    settings: Settings,
    calendar: WorkCalendar,
    run: EscalationRun,
    batch: dict[int, list[_Missed]],
) -> None:
    """Lock a batch of incidents, record their new breaches, escalate each once."""
    locked = _lock_all(session, list(batch))
    # Between the candidate query and the lock another run (or a person) may have moved
    # an incident on: only a deadline still missed counts, and only a breach this run
    # inserts is escalated.
    still = [m for m in chain.from_iterable(batch.values()) if _still_missed(locked, m, run.at)]
    moved_on = [m for m in chain.from_iterable(batch.values()) if m not in still]
    run.already_escalated += _count_known(session, moved_on)
    recorded = _record_breaches(session, still, locked, run.at)
    run.already_escalated += len(still) - len(recorded)
    for incident_id, incident in locked.items():
        mine = [m for m in batch[incident_id] if m in recorded]
        if not mine:
            continue
        if incident.level == ESCALATION_LEVELS[-1]:
            run.at_top += len(mine)
            continue
        note = "; ".join(
            f"missed the {m.deadline} deadline due {m.due_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
            for m in mine
        )
        workflow.act_on(
            session, settings, incident, "escalate", SYSTEM_ACTOR,
            note=note, now=run.at, calendar=calendar,
        )  # fmt: skip
        run.escalated += [Escalated(*missed, level=incident.level) for missed in mine]


def _lock_all(session: Session, ids: list[int]) -> dict[int, Incident]:
    """The incidents, locked in id order (so that concurrent runs queue, never deadlock)."""
    query = (
        select(Incident)
        .where(Incident.id.in_(ids))
        .order_by(Incident.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {incident.id: incident for incident in session.scalars(query)}


def _still_missed(locked: dict[int, Incident], missed: _Missed, now: datetime) -> bool:
    incident = locked.get(missed.incident_id)
    if incident is None:
        return False
    deadline = sla.DEADLINES[missed.deadline]
    return deadline.missed(incident, now) and deadline.due_at(incident) == missed.due_at


def _record_breaches(
    session: Session, missed: list[_Missed], locked: dict[int, Incident], now: datetime
) -> set[_Missed]:
    """Insert the breaches that are not there yet; the ones this call inserted."""
    if not missed:
        return set()
    rows = [
        {**m._asdict(), "level": _level_after(locked[m.incident_id].level), "escalated_at": now}
        for m in missed
    ]
    statement = (
        insert(IncidentBreach)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(IncidentBreach.incident_id, IncidentBreach.deadline, IncidentBreach.due_at)
    )
    inserted = {_Missed(*row) for row in session.execute(statement)}
    return {m for m in missed if m in inserted}


def _count_known(session: Session, missed: list[_Missed]) -> int:
    if not missed:
        return 0
    key = tuple_(IncidentBreach.incident_id, IncidentBreach.deadline, IncidentBreach.due_at)
    query = select(func.count()).select_from(IncidentBreach).where(key.in_(missed))
    return session.scalar(query) or 0


def _level_after(level: str) -> str:
    """The level one up, or the top level for an incident already there."""
    return ESCALATION_LEVELS[min(ESCALATION_LEVELS.index(level) + 1, len(ESCALATION_LEVELS) - 1)]


def _missed_deadlines(now: datetime):
    """Every deadline missed at ``now``: (incident_id, deadline, due_at), open incidents only."""
    return union_all(
        *(
            select(
                Incident.id.label("incident_id"),
                literal(deadline.name).label("deadline"),
                deadline.column.label("due_at"),
            ).where(deadline.missed_condition(now))
            for deadline in sla.DEADLINES.values()
        )
    ).subquery("missed")


def _known(missed):
    return exists().where(
        and_(
            IncidentBreach.incident_id == missed.c.incident_id,
            IncidentBreach.deadline == missed.c.deadline,
            IncidentBreach.due_at == missed.c.due_at,
        )
    )


def _new_missed(session: Session, now: datetime) -> list[_Missed]:
    missed = _missed_deadlines(now)
    query = (
        select(missed.c.incident_id, missed.c.deadline, missed.c.due_at)
        .where(~_known(missed))
        .order_by(missed.c.incident_id, missed.c.due_at)
    )
    return [_Missed(*row) for row in session.execute(query)]


def _count_missed(session: Session, now: datetime, *, known: bool) -> int:
    missed = _missed_deadlines(now)
    condition = _known(missed) if known else ~_known(missed)
    return session.scalar(select(func.count()).select_from(missed).where(condition)) or 0


# -- listing -------------------------------------------------------------------------------


def overdue_incidents(
    session: Session,
    actor: Actor,
    *,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
    limit: int = 1000,
) -> list[tuple[Incident, sla.Overdue]]:
    """The incidents overdue at ``now`` that ``actor`` answers for, longest waiting first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LISTED:
        raise InputError(f"limit must be 1-{MAX_LISTED}, not {limit!r}", field="limit")
    moment = moment_or_now(now)
    calendar = calendar or load_calendar(session)
    query = (
        select(Incident)
        .where(sla.overdue_condition(moment), _answers_for(actor))
        .order_by(Incident.reported_at, Incident.id)
        .limit(limit)
    )
    return [
        (incident, sla.overdue_status(calendar, incident, moment))
        for incident in session.scalars(query)
    ]


def _answers_for(actor: Actor) -> ColumnElement[bool]:
    """SQL: the incidents in the actor's charge (the scope rule of :mod:`geogrid.workflow`)."""
    if actor.role in UNSCOPED_ROLES:
        return true()
    if actor.role == RESIDENT:
        return Incident.reported_by == actor.name
    scoped = or_(
        false(), *(Incident.grid_code.startswith(code, autoescape=True) for code in actor.scope)
    )
    if actor.role != DEPARTMENT:
        return scoped
    if not actor.department:
        return false()
    mine = or_(Incident.department == actor.department, Incident.assignee == actor.department)
    return and_(mine, scoped) if actor.scope else mine
