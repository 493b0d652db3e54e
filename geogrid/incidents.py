"""Reading incidents as an actor may see them, placing stray ones, and writing their event log.

Every change to an incident appends one :class:`IncidentEvent`; the table is append-only
(a trigger refuses updates and deletes), so the log is the incident's history.

Who sees what (checked here, in SQL for lists and in Python for one incident, and the
two agree):

* administrators and geogrid itself see every incident;
* officials, grid workers, patrol members, station officers and planners see incidents
  whose grid code starts with a code of their scope. An incident outside every grid has
  no grid code; it is shown to officials whose scope covers the *nearest* grid recorded
  at intake (the people expected to place it) and to administrators, and to no one else;
* department staff see incidents whose responsible department or assignee is theirs
  (narrowed to their scope when they have one);
* a resident sees the incidents they reported.

The reporter's contact (and the reporter's name) is shown only to administrators, to
officials and grid workers in scope, and to the resident who reported it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    any_,
    bindparam,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from geogrid import sla
from geogrid.actors import (
    ADMINISTRATOR,
    DEPARTMENT,
    GRID_WORKER,
    OFFICIAL,
    RESIDENT,
    UNSCOPED_ROLES,
    Actor,
)
from geogrid.codes import DEFAULT_SCHEME, CodeScheme
from geogrid.errors import CodeError, Forbidden, IllegalTransition, InputError, NotFound
from geogrid.models import (
    CHANNELS,
    CLOSED_STATES,
    INCIDENT_STATES,
    Area,
    Incident,
    IncidentCategory,
    IncidentContact,
    IncidentEvent,
    Meta,
)
from geogrid.workdays import SHANGHAI

#: Roles that may place an incident into a grid, and see reporters' contacts in scope.
PLACING_ROLES = (ADMINISTRATOR, OFFICIAL, GRID_WORKER)
MAX_PAGE = 1000


def record_event(
    session: Session,
    incident: Incident,
    actor: Actor,
    action: str,
    from_state: str | None,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> IncidentEvent:
    """Append one step to the incident's log; its state and level are read after the change."""
    event = IncidentEvent(
        incident_id=incident.id,
        actor=actor.name,
        role=actor.role,
        action=action,
        from_state=from_state,
        to_state=incident.state,
        level=incident.level,
        note=note,
        data=data or {},
    )
    if at is not None:
        event.at = at
    session.add(event)
    session.flush()
    return event


# -- who may see what ---------------------------------------------------------------------


def nearest_code(incident: Incident) -> str | None:
    """The nearest grid recorded at intake for an incident outside every grid."""
    nearest = (incident.placement_detail or {}).get("nearest") or {}
    return nearest.get("code")


def in_scope(actor: Actor, incident: Incident) -> bool:
    """Whether the incident lies in the actor's scope (by its grid, or its nearest grid)."""
    if actor.role in UNSCOPED_ROLES:
        return True
    if incident.grid_code is not None:
        return actor.covers(incident.grid_code)
    return actor.role == OFFICIAL and actor.covers(nearest_code(incident))


def may_see(actor: Actor, incident: Incident) -> bool:
    """Whether the actor may read the incident at all."""
    if actor.role == RESIDENT:
        return incident.reported_by == actor.name
    if actor.role == DEPARTMENT:
        mine = bool(actor.department) and actor.department in (
            incident.department,
            incident.assignee,
        )
        return mine and (not actor.scope or in_scope(actor, incident))
    return in_scope(actor, incident)


def may_see_contact(actor: Actor, incident: Incident) -> bool:
    """Whether the actor may see who reported the incident and how to reach them."""
    if actor.role == RESIDENT:
        return incident.reported_by == actor.name
    return actor.role in PLACING_ROLES and in_scope(actor, incident)


def visible_clause(actor: Actor) -> ColumnElement[bool]:
    """The SQL condition equivalent to :func:`may_see`, for filtering on the server."""
    if actor.role in UNSCOPED_ROLES:
        return true()
    if actor.role == RESIDENT:
        return Incident.reported_by == actor.name
    scoped = _scope_clause(actor)
    if actor.role == DEPARTMENT:
        if not actor.department:
            return false()
        mine = or_(Incident.department == actor.department, Incident.assignee == actor.department)
        return and_(mine, scoped) if actor.scope else mine
    return scoped


def _scope_clause(actor: Actor) -> ColumnElement[bool]:
    by_grid = [Incident.grid_code.startswith(code, autoescape=True) for code in actor.scope]
    if actor.role == OFFICIAL:
        nearest = Incident.placement_detail["nearest"]["code"].astext
        by_grid += [
            and_(Incident.grid_code.is_(None), nearest.startswith(code, autoescape=True))
            for code in actor.scope
        ]
    return or_(false(), *by_grid)


# -- reading ------------------------------------------------------------------------------


def get_incident(
    session: Session, incident_id: int, actor: Actor, *, for_update: bool = False
) -> Incident:
    """One incident the actor may see; NotFound or Forbidden otherwise (locked if asked)."""
    query = select(Incident).where(Incident.id == incident_id)
    if for_update:
        query = query.with_for_update()
    incident = session.scalar(query)
    if incident is None:
        raise NotFound(f"there is no incident {incident_id}", field="id")
    if not may_see(actor, incident):
        raise Forbidden(
            f"incident {incident_id} is outside the scope of {actor.name} ({actor.role})",
            field="id",
        )
    return incident


def list_incidents(
    session: Session,
    actor: Actor,
    *,
    state: str | Sequence[str] | None = None,
    category: str | None = None,
    channel: str | None = None,
    grid_prefix: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    overdue: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Incident]:
    """Incidents the actor may see, newest report first, filtered on the server."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be 1-{MAX_PAGE}, not {limit!r}", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InputError(f"offset must be 0 or more, not {offset!r}", field="offset")
    moment = now or datetime.now(SHANGHAI)
    conditions = _filters(
        actor, state, category, channel, grid_prefix, since, until, overdue, moment
    )
    query = (
        select(Incident)
        .where(*conditions)
        .order_by(Incident.reported_at.desc(), Incident.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


def count_incidents(session: Session, actor: Actor, **filters: Any) -> int:
    """How many incidents :func:`list_incidents` would page through with these filters."""
    now = filters.pop("now", None) or datetime.now(SHANGHAI)
    names = ("state", "category", "channel", "grid_prefix", "since", "until", "overdue")
    unknown = sorted(set(filters) - set(names))
    if unknown:
        raise InputError(f"unknown filter {unknown[0]!r}", field=unknown[0])
    conditions = _filters(actor, *(filters.get(name) for name in names), now)
    return session.scalar(select(func.count()).select_from(Incident).where(*conditions)) or 0


def _filters(
    actor: Actor,
    state: str | Sequence[str] | None,
    category: str | None,
    channel: str | None,
    grid_prefix: str | None,
    since: datetime | None,
    until: datetime | None,
    overdue: bool | None,
    now: datetime,
) -> list[ColumnElement[bool]]:
    conditions = [visible_clause(actor)]
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        unknown = [s for s in states if s not in INCIDENT_STATES]
        if unknown:
            raise InputError(
                f"unknown state {unknown[0]!r}; states: {', '.join(INCIDENT_STATES)}",
                field="state",
            )
        conditions.append(Incident.state.in_(states))
    if category is not None:
        conditions.append(Incident.category == category)
    if channel is not None:
        if channel not in CHANNELS:
            raise InputError(
                f"unknown channel {channel!r}; channels: {', '.join(CHANNELS)}", field="channel"
            )
        conditions.append(Incident.channel == channel)
    if grid_prefix is not None:
        if not grid_prefix.isascii() or not grid_prefix.isdigit():
            raise CodeError(f"grid prefix {grid_prefix!r} must be digits", field="grid_prefix")
        conditions.append(Incident.grid_code.startswith(grid_prefix))
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InputError(f"{name} needs a UTC offset, e.g. +08:00", field=name)
    if since is not None:
        conditions.append(Incident.reported_at >= since)
    if until is not None:
        conditions.append(Incident.reported_at < until)
    if overdue is True:
        conditions.append(sla.overdue_condition(now))
    elif overdue is False:
        # NULL deadlines (an uncovered calendar year) are never overdue: they are an alert.
        conditions.append(~func.coalesce(sla.overdue_condition(now), false()))
    return conditions


def accept_overdue(incident: Incident, now: datetime) -> bool:
    """Whether the incident should have been accepted by now (the rule of :mod:`geogrid.sla`)."""
    due_at = incident.accept_due_at
    return incident.state in sla.AWAITING_ACCEPTANCE and due_at is not None and due_at < now


def resolve_overdue(incident: Incident, now: datetime) -> bool:
    """Whether the incident should have been resolved by now (the rule of :mod:`geogrid.sla`)."""
    due_at = incident.resolve_due_at
    return incident.state in sla.AWAITING_RESOLUTION and due_at is not None and due_at < now


def events_of(session: Session, incident_id: int) -> list[IncidentEvent]:
    """The incident's log, oldest step first."""
    query = select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
    return list(session.scalars(query.order_by(IncidentEvent.id)))


# -- as JSON ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentExtras:
    """What :func:`incident_as_dict` shows beyond the incident's own row."""

    category_name: str
    merged_from: tuple[int, ...] = ()
    #: The reporter's contact; None when none was given (or it is not to be shown).
    contact: dict[str, str] | None = None


def load_extras(
    session: Session, incidents: Sequence[Incident], actor: Actor, *, with_reporter: bool = True
) -> dict[int, IncidentExtras]:
    """The extras of many incidents in one query; contacts only where the actor may see them."""
    if not incidents:
        return {}
    shown = [i.id for i in incidents if with_reporter and may_see_contact(actor, i)]
    rows = session.execute(_extras_query(), {"ids": [i.id for i in incidents], "shown": shown})
    return {
        incident_id: IncidentExtras(
            category_name=name or code,
            merged_from=tuple(merged),
            contact=None if contact_id is None else {"name": contact_name, "phone": phone},
        )
        for incident_id, code, name, merged, contact_id, contact_name, phone in rows
    }


@cache
def _extras_query() -> Select[Any]:
    # Built once: composing it (the alias above all) cost more than running it.
    merged = Incident.__table__.alias("merged")
    merged_ids = func.array(
        select(merged.c.id)
        .where(merged.c.duplicate_of == Incident.id)
        .order_by(merged.c.id)
        .scalar_subquery()
    )
    ids = bindparam("ids", type_=ARRAY(BigInteger))
    shown = bindparam("shown", type_=ARRAY(BigInteger))
    contact = and_(IncidentContact.incident_id == Incident.id, Incident.id == any_(shown))
    return (
        select(
            Incident.id,
            Incident.category,
            IncidentCategory.name_zh,
            merged_ids,
            IncidentContact.incident_id,
            IncidentContact.name,
            IncidentContact.phone,
        )
        .outerjoin(IncidentCategory, IncidentCategory.code == Incident.category)
        .outerjoin(IncidentContact, contact)
        .where(Incident.id == any_(ids))
    )


def incident_as_dict(
    session: Session,
    incident: Incident,
    actor: Actor,
    *,
    with_events: bool = False,
    now: datetime | None = None,
    with_reporter: bool = True,
    extras: IncidentExtras | None = None,
) -> dict[str, Any]:
    """The incident as JSON-ready data; the contact only for those who may see it.

    ``with_reporter=False`` leaves out who reported it (lists, the public); ``extras``,
    when the caller has them already (:func:`load_extras`, intake), saves the query.
    """
    now = now or datetime.now(SHANGHAI)
    if extras is None:
        extras = load_extras(session, [incident], actor, with_reporter=with_reporter)[incident.id]
    storage = to_shape(incident.geom) if incident.geom is not None else None
    contact_visible = may_see_contact(actor, incident)
    body: dict[str, Any] = {
        "id": incident.id,
        "category": incident.category,
        "category_name": extras.category_name,
        "description": incident.description,
        "channel": incident.channel,
        "state": incident.state,
        "level": incident.level,
        "complex": incident.complex,
        "grid_code": incident.grid_code,
        "generation": incident.generation,
        "placement": incident.placement,
        "placement_detail": incident.placement_detail,
        "address": incident.address,
        "lon": incident.given_lon,
        "lat": incident.given_lat,
        "coord_type": incident.coord_type,
        "storage_lon": storage.x if storage is not None else None,
        "storage_lat": storage.y if storage is not None else None,
        **{name: iso(getattr(incident, name)) for name in _TIMES},
        "deadline_alert": incident.deadline_alert,
        "accept_overdue": accept_overdue(incident, now),
        "report_in_overdue": sla.DEADLINES["report_in"].missed(incident, now),
        "resolve_overdue": resolve_overdue(incident, now),
        "assignee": incident.assignee,
        "department": incident.department,
        "satisfaction": incident.satisfaction,
        "reject_reason": incident.reject_reason,
        "extension_days": incident.extension_days,
        "extension_requested_days": incident.extension_requested_days,
        "reopened_count": incident.reopened_count,
        "escalation_count": incident.escalation_count,
        "duplicate_of": incident.duplicate_of,
        "merged_from": list(extras.merged_from),
        "photos": list(incident.photos or []),
    }
    if with_reporter and contact_visible:
        body["reported_by"] = incident.reported_by
        body["contact"] = extras.contact
    if with_events:
        body["events"] = [
            event_as_dict(event, show_resident=with_reporter and contact_visible)
            for event in events_of(session, incident.id)
        ]
    return body


def incidents_as_dicts(
    session: Session, incidents: Sequence[Incident], actor: Actor, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """A page of incidents as JSON-ready data, without reporters, in one query for them all."""
    now = now or datetime.now(SHANGHAI)
    extras = load_extras(session, incidents, actor, with_reporter=False)
    return [
        incident_as_dict(
            session, incident, actor, now=now, with_reporter=False, extras=extras[incident.id]
        )
        for incident in incidents
    ]


_TIMES = (
    "reported_at",
    "created_at",
    "accept_due_at",
    "report_in_due_at",
    "resolve_due_at",
    "accepted_at",
    "dispatched_at",
    "resolved_at",
    "evaluated_at",
    "suspended_at",
)


def event_as_dict(event: IncidentEvent, *, show_resident: bool = False) -> dict[str, Any]:
    """One step of the log as JSON-ready data; a resident's name only when allowed."""
    hidden = event.role == RESIDENT and not show_resident
    return {
        "id": event.id,
        "at": iso(event.at),
        "actor": "resident" if hidden else event.actor,
        "role": event.role,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "level": event.level,
        "note": event.note,
        "data": event.data,
    }


def iso(moment: datetime | None) -> str | None:
    """An instant as ISO 8601 in Shanghai time (None stays None)."""
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None


# -- placing ------------------------------------------------------------------------------


def place(
    session: Session, incident_id: int, grid_code: str, actor: Actor, note: str = ""
) -> Incident:
    """Put an incident into a grid by hand (one outside every grid, or a wrong one).

    The grid must be valid in the generation the incident was recorded in. The actor
    must be an administrator, or an official or grid worker whose scope covers the new
    grid and, when the incident already had one, the old grid too, so nobody moves
    incidents out of someone else's grid (or out of their own league table) unseen.
    """
    if actor.role not in PLACING_ROLES:
        raise Forbidden(
            "only an administrator, an official or a grid worker may place incidents",
            field="role",
        )
    incident = get_incident(session, incident_id, actor, for_update=True)
    if incident.state in CLOSED_STATES:
        raise IllegalTransition(
            f"incident {incident_id} is {incident.state}; a closed incident is not placed",
            field="id",
        )
    _check_grid(session, grid_code, incident.generation)
    old_grid, old_placement = incident.grid_code, incident.placement
    for code in (grid_code, old_grid):
        if code is not None and not actor.covers(code):
            raise Forbidden(f"grid {code} is outside the scope of {actor.name}", field="grid_code")
    if grid_code == old_grid:
        raise InputError(
            f"incident {incident_id} is already in grid {grid_code}", field="grid_code"
        )
    from_state = incident.state
    incident.grid_code = grid_code
    incident.placement = "placed"
    # Reassign, not mutate: the JSONB column only notices a new value.
    incident.placement_detail = {
        **(incident.placement_detail or {}),
        "placed_from": {"grid_code": old_grid, "placement": old_placement},
    }
    session.flush()
    record_event(
        session,
        incident,
        actor,
        "place",
        from_state,
        note=note,
        data={"grid_code": grid_code, "from_grid_code": old_grid, "from_placement": old_placement},
    )
    return incident


def _check_grid(session: Session, grid_code: str, generation: int) -> None:
    # The database records the code scheme it was made for; incidents go to its grid level.
    stored = session.scalar(select(Meta.value).where(Meta.key == "code_scheme"))
    scheme = CodeScheme.parse(stored or DEFAULT_SCHEME)
    level = scheme.default_geocode_level
    scheme.validate(grid_code, level, field="grid_code")
    exists = session.scalar(
        select(Area.id).where(
            Area.code == grid_code, Area.level == level, Area.valid_in(generation)
        )
    )
    if exists is None:
        raise CodeError(
            f"there is no {level} {grid_code} in generation {generation}", field="grid_code"
        )
