"""Leads (线索) of patrol members: a point, a category, a note, a status and a reward.

A lead is placed into a grid exactly as a check-in is (:mod:`geogrid.checkins`, whose
:func:`~geogrid.checkins.checkin` is re-exported here): converted from its declared
coordinate type, placed by :func:`geogrid.geocode.locate` into the current generation,
kept and flagged when outside every grid, refused when lat and lon look swapped. The
category must be an active incident category.

Retries are harmless: a lead filed with an idempotency key is inserted with ``ON
CONFLICT (idempotency_key) DO NOTHING``; the same request again gets the first lead, a
different request with the same key is a Conflict.

Deciding a lead: a station officer whose scope covers the lead's grid (or the station of
the team that filed it), or an administrator, moves its status along :data:`LEAD_MOVES`
and decides its reward once: ``granted`` with an amount, for a lead that was verified,
or ``declined``. Anyone else is Forbidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geogrid.actors import ADMINISTRATOR, PATROL_MEMBER, STATION_OFFICER, UNSCOPED_ROLES, Actor
from geogrid.categories import get_category
from geogrid.checkins import (
    CheckinResult,
    check_member,
    checked_time,
    checkin,
    checkin_as_dict,
    located,
    placement_warnings,
)
from geogrid.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InputError,
    NotFound,
)
from geogrid.models import LEAD_STATUSES, PatrolLead, PatrolMember, PatrolTeam
from geogrid.settings import Settings
from geogrid.shapes import point
from geogrid.tracks import team_by_mark
from geogrid.workdays import SHANGHAI

#: The status moves of a lead; ``rejected`` and ``closed`` are final.
LEAD_MOVES: dict[str, tuple[str, ...]] = {
    "new": ("verified", "rejected"),
    "verified": ("passed_on", "closed", "rejected"),
    "passed_on": ("closed",),
    "rejected": (),
    "closed": (),
}
#: A reward may be granted only for a lead someone verified.
REWARDABLE = ("verified", "passed_on", "closed")
#: Roles that decide leads (station officers within their scope).
DECIDING_ROLES = (STATION_OFFICER, ADMINISTRATOR)
MAX_KEY_LENGTH = 255

__all__ = [
    "CheckinResult",
    "LeadResult",
    "checkin",
    "checkin_as_dict",
    "decide_lead",
    "file_lead",
    "get_lead",
    "lead_as_dict",
    "list_leads",
]


@dataclass
class LeadResult:
    """A lead, whether it is new (False for a retry with the same key), and warnings."""

    lead: PatrolLead
    created: bool
    warnings: list[str] = field(default_factory=list)


def file_lead(
    session: Session,
    settings: Settings,
    *,
    team_mark: str,
    member_id: int | None,
    lon: float,
    lat: float,
    coord_type: str,
    at: datetime,
    category: str,
    note: str,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> LeadResult:
    """File a lead placed into a grid; the same key again returns the first. Flushes only."""
    key = _checked_key(idempotency_key)
    team = team_by_mark(session, team_mark)
    check_member(session, team, member_id)
    if not isinstance(note, str) or not note.strip():
        raise InputError("a lead needs a note saying what was seen", field="note")
    at = checked_time(at, now)
    category_code = get_category(session, category).code
    location = located(session, settings, lon, lat, coord_type)
    values = {
        "team_id": team.id,
        "member_id": member_id,
        "at": at,
        "geom": point(location.storage_lon, location.storage_lat),
        "given_lon": float(lon),
        "given_lat": float(lat),
        "coord_type": location.crs,
        "grid_code": location.grid_code,
        "generation": location.generation,
        "placement": location.status,
        "category": category_code,
        "note": note.strip(),
        "idempotency_key": key,
    }
    warnings = placement_warnings(location, settings)
    if key is None:
        lead = PatrolLead(**values)
        session.add(lead)
        session.flush()
        return LeadResult(lead, True, warnings)
    statement = (
        insert(PatrolLead)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[PatrolLead.idempotency_key])
        .returning(PatrolLead.id)
    )
    lead_id = session.scalar(statement)
    if lead_id is not None:
        return LeadResult(session.get_one(PatrolLead, lead_id), True, warnings)
    earlier = session.scalar(select(PatrolLead).where(PatrolLead.idempotency_key == key))
    if earlier is None:  # pragma: no cover - the winner rolled back between statements
        raise Conflict("a lead with this key is being filed by another request; retry")
    if any(getattr(earlier, name) != values[name] for name in _LEAD_REQUEST):
        raise Conflict(
            "this idempotency key was already used for a different lead; use a new key",
            field="idempotency_key",
        )
    return LeadResult(earlier, False, [f"already filed as lead {earlier.id}; returned it"])


_LEAD_REQUEST = ("team_id", "member_id", "at", "given_lon", "given_lat", "category", "note")


def decide_lead(
    session: Session,
    lead_id: int,
    *,
    actor: Actor,
    status: str | None = None,
    reward: str | None = None,
    amount: float | None = None,
    now: datetime | None = None,
) -> PatrolLead:
    """Move a lead's status and/or decide its reward, as a station officer or admin."""
    lead = get_lead(session, lead_id)
    team = session.get_one(PatrolTeam, lead.team_id)
    _check_decider(actor, lead, team)
    if status is None and reward is None:
        raise InputError("give a status, a reward decision, or both", field="status")
    if amount is not None and reward is None:
        raise InputError("an amount goes with reward granted", field="reward")
    new_status = lead.status if status is None else _next_status(lead, status)
    if reward is not None:
        _decide_reward(lead, new_status, reward, amount)
    changed = new_status != lead.status or (reward is not None and lead.reward != reward)
    lead.status = new_status
    if reward is not None:
        lead.reward, lead.reward_amount = reward, _amount(reward, amount)
    if changed:
        lead.decided_by = actor.name
        lead.decided_at = now or datetime.now(SHANGHAI)
    session.flush()
    return lead


def get_lead(session: Session, lead_id: int) -> PatrolLead:
    """The lead with this id; NotFound otherwise."""
    lead = session.get(PatrolLead, lead_id)
    if lead is None:
        raise NotFound(f"there is no lead {lead_id}", field="lead_id")
    return lead


def list_leads(
    session: Session,
    actor: Actor,
    *,
    status: str | None = None,
    team_mark: str | None = None,
    grid_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[PatrolLead]:
    """Leads the actor may see, newest first, filtered by status, team, grid prefix, time."""
    query = select(PatrolLead).join(PatrolTeam, PatrolTeam.id == PatrolLead.team_id)
    query = _scoped(query, actor)
    if status is not None:
        if status not in LEAD_STATUSES:
            raise InputError(
                f"unknown status {status!r}; one of {', '.join(LEAD_STATUSES)}", field="status"
            )
        query = query.where(PatrolLead.status == status)
    if team_mark is not None:
        query = query.where(PatrolTeam.mark == team_mark)
    if grid_code is not None:
        query = query.where(PatrolLead.grid_code.startswith(grid_code, autoescape=True))
    if since is not None:
        query = query.where(PatrolLead.at >= since)
    if until is not None:
        query = query.where(PatrolLead.at < until)
    order = (PatrolLead.at.desc(), PatrolLead.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


def lead_as_dict(lead: PatrolLead) -> dict[str, Any]:
    """A lead as JSON-ready data."""
    return {
        "id": lead.id,
        "team_id": lead.team_id,
        "member_id": lead.member_id,
        "at": lead.at.astimezone(SHANGHAI).isoformat(),
        "given_lon": lead.given_lon,
        "given_lat": lead.given_lat,
        "coord_type": lead.coord_type,
        "grid_code": lead.grid_code,
        "generation": lead.generation,
        "placement": lead.placement,
        "category": lead.category,
        "note": lead.note,
        "status": lead.status,
        "reward": lead.reward,
        "reward_amount": lead.reward_amount,
        "decided_by": lead.decided_by,
        "decided_at": lead.decided_at.astimezone(SHANGHAI).isoformat() if lead.decided_at else None,
    }


# -- helpers -------------------------------------------------------------------------------


def _checked_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise InputError("idempotency_key must be a non-empty string", field="idempotency_key")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InputError(
            f"idempotency_key must be at most {MAX_KEY_LENGTH} printable characters",
            field="idempotency_key",
        )
    return key


def _check_decider(actor: Actor, lead: PatrolLead, team: PatrolTeam) -> None:
    if actor.role not in DECIDING_ROLES:
        raise Forbidden(
            f"only station officers and administrators decide leads, not a {actor.role}",
            field="actor",
        )
    if not (actor.covers(lead.grid_code) or actor.covers(team.station_code)):
        where = lead.grid_code or "outside every grid"
        raise Forbidden(
            f"lead {lead.id} ({where}, team {team.mark} of {team.station_code}) is outside the "
            f"scope of {actor.name}",
            field="lead_id",
        )


def _next_status(lead: PatrolLead, status: str) -> str:
    if status not in LEAD_STATUSES:
        raise InputError(
            f"unknown status {status!r}; one of {', '.join(LEAD_STATUSES)}", field="status"
        )
    if status == lead.status:
        return status  # a retried decision changes nothing
    if status not in LEAD_MOVES[lead.status]:
        allowed = ", ".join(LEAD_MOVES[lead.status]) or "nothing (it is final)"
        raise IllegalTransition(
            f"lead {lead.id} is {lead.status}: it can move to {allowed}, not {status}",
            field="status",
        )
    return status


def _decide_reward(lead: PatrolLead, status: str, reward: str, amount: float | None) -> None:
    if reward not in ("granted", "declined"):
        raise InputError("a reward decision is granted or declined", field="reward")
    if lead.reward != "pending":
        if lead.reward == reward and lead.reward_amount == _amount(reward, amount):
            return  # the same decision retried
        raise IllegalTransition(
            f"the reward of lead {lead.id} was already decided ({lead.reward}); it is final",
            field="reward",
        )
    if reward == "granted" and status not in REWARDABLE:
        raise IllegalTransition(
            f"a reward is granted for a verified lead; lead {lead.id} is {status}", field="reward"
        )
    _amount(reward, amount)


def _amount(reward: str, amount: float | None) -> float | None:
    if reward == "declined":
        if amount is not None:
            raise InputError("a declined reward has no amount", field="amount")
        return None
    if amount is None or not math.isfinite(amount) or amount <= 0:
        raise InputError("a granted reward needs a positive amount (yuan)", field="amount")
    return float(amount)


# Roles whose scope is their own team's leads only.
_OWN_TEAM_ROLES = (PATROL_MEMBER,)


def _scoped(query: Any, actor: Actor) -> Any:
    if actor.role in UNSCOPED_ROLES:
        return query
    if actor.role in _OWN_TEAM_ROLES:
        teams = select(PatrolMember.team_id).where(PatrolMember.user_name == actor.name)
        return query.where(PatrolLead.team_id.in_(teams))
    prefixes = [code for code in actor.scope if code]
    if not prefixes:
        return query.where(PatrolLead.id.is_(None))  # no scope, nothing to see
    return query.where(
        or_(
            *(PatrolLead.grid_code.startswith(code, autoescape=True) for code in prefixes),
            *(PatrolTeam.station_code.startswith(code, autoescape=True) for code in prefixes),
        )
    )
