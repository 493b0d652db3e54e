"""Check-ins of patrol members: a point and a time, placed into a grid as incidents are.

The point is converted to storage coordinates and placed by
:func:`geogrid.geocode.locate` into a grid of the current generation; the grid code, the
generation and the placement (inside, near_edge, edge, outside) are kept as recorded. A
point outside every grid is kept and flagged with a warning, never dropped; a point whose
lat and lon, exchanged, fall in a grid is refused as swapped, as intake does for
incidents. Leads (:mod:`geogrid.leads`) are placed the same way, with the helpers here.

A check-in is unique per (team, member, time): the insert is ``ON CONFLICT ... DO
NOTHING`` on that constraint and a retry gets the first row back; the same member at the
same time somewhere else is a Conflict. A check-in without a member is looked up first,
because the unique constraint treats NULL members as all different.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geogrid.errors import Conflict, CoordinateError, InputError
from geogrid.geocode import EDGE, NEAR_EDGE, OUTSIDE, Location, locate
from geogrid.models import PatrolCheckin, PatrolMember, PatrolTeam
from geogrid.settings import Settings
from geogrid.shapes import point
from geogrid.tracks import team_by_mark
from geogrid.workdays import SHANGHAI

#: How far in the future a time may lie (phones' clocks drift).
FUTURE_TOLERANCE = timedelta(minutes=5)
_SAME_PLACE_DEG = 1e-7  # ~1 cm: a retry sends the same numbers


@dataclass
class CheckinResult:
    """A check-in, whether it is new (False for a retry), and what to tell the member."""

    checkin: PatrolCheckin
    created: bool
    warnings: list[str] = field(default_factory=list)


def checkin(
    session: Session,
    settings: Settings,
    *,
    team_mark: str,
    member_id: int | None,
    lon: float,
    lat: float,
    coord_type: str,
    at: datetime,
    note: str = "",
    now: datetime | None = None,
) -> CheckinResult:
    """Record a check-in placed into a grid; a retry returns the first. Flushes only."""
    team = team_by_mark(session, team_mark)
    check_member(session, team, member_id)
    at = checked_time(at, now)
    location = located(session, settings, lon, lat, coord_type)
    values = {
        "team_id": team.id,
        "member_id": member_id,
        "at": at,
        "geom": point(location.storage_lon, location.storage_lat),
        "grid_code": location.grid_code,
        "generation": location.generation,
        "placement": location.status,
        "note": (note or "").strip(),
    }
    warnings = placement_warnings(location, settings)
    earlier = _earlier_checkin(session, team.id, member_id, at) if member_id is None else None
    if earlier is None:
        statement = (
            insert(PatrolCheckin)
            .values(**values)
            .on_conflict_do_nothing(constraint="uq_patrol_checkin_once")
            .returning(PatrolCheckin.id)
        )
        checkin_id = session.scalar(statement)
        if checkin_id is not None:
            return CheckinResult(session.get_one(PatrolCheckin, checkin_id), True, warnings)
        earlier = _earlier_checkin(session, team.id, member_id, at)
    if earlier is None:  # pragma: no cover - the winner rolled back between statements
        raise Conflict("the same check-in is being recorded by another request; retry")
    if earlier.note != values["note"] or not _same_place(earlier.geom, location):
        raise Conflict(
            f"member {member_id} of {team.mark} already checked in at {at.isoformat()} "
            f"(check-in {earlier.id}) somewhere else or with another note",
            field="at",
            checkin_id=earlier.id,
        )
    return CheckinResult(earlier, False, ["already recorded; returned the first check-in"])


def checkin_as_dict(checkin: PatrolCheckin) -> dict[str, Any]:
    """A check-in as JSON-ready data."""
    where = to_shape(checkin.geom)
    return {
        "id": checkin.id,
        "team_id": checkin.team_id,
        "member_id": checkin.member_id,
        "at": checkin.at.astimezone(SHANGHAI).isoformat(),
        "lon": where.x,
        "lat": where.y,
        "grid_code": checkin.grid_code,
        "generation": checkin.generation,
        "placement": checkin.placement,
        "note": checkin.note,
    }


def check_member(session: Session, team: PatrolTeam, member_id: int | None) -> None:
    """InputError (field member_id) unless the member is in the team; None passes."""
    if member_id is None:
        return
    member = session.get(PatrolMember, member_id)
    if member is None or member.team_id != team.id:
        raise InputError(f"member {member_id} is not in team {team.mark}", field="member_id")


def checked_time(at: Any, now: datetime | None) -> datetime:
    """An aware time (naive is Asia/Shanghai) not in the future; InputError (at) otherwise."""
    if not isinstance(at, datetime):
        raise InputError("at must be a date and time", field="at")
    at = at if at.tzinfo is not None else at.replace(tzinfo=SHANGHAI)
    now = now or datetime.now(SHANGHAI)
    if at > now + FUTURE_TOLERANCE:
        raise InputError(
            f"at {at.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})",
            field="at",
        )
    return at


def located(
    session: Session, settings: Settings, lon: float, lat: float, coord_type: str
) -> Location:
    """The point placed into a grid of the current generation; refused when swapped."""
    location = locate(session, settings, lon, lat, coord_type)
    if location.status == OUTSIDE and location.swapped_code is not None:
        raise CoordinateError(
            f"lat/lon look swapped: ({lon}, {lat}) is outside every grid but ({lat}, {lon}) "
            f"falls in grid {location.swapped_code}; give longitude in lon and latitude in lat",
            field="lat",
            swapped=True,
        )
    return location


def placement_warnings(location: Location, settings: Settings) -> list[str]:
    """What a person should check about where the point fell."""
    others = ", ".join(location.candidates)
    if location.status == NEAR_EDGE:
        return [f"within {settings.near_edge_m:g} m of {others}: placed in {location.grid_code}"]
    if location.status == EDGE:
        return [f"on the boundary of {location.grid_code} and {others}: placed in the first"]
    if location.status == OUTSIDE:
        nearest = location.nearest or {}
        far = f" (nearest grid {nearest['code']}, {nearest['distance_m']:.0f} m)" if nearest else ""
        return [f"outside every grid{far}: kept and flagged for a person to place"]
    return []


def _earlier_checkin(
    session: Session, team_id: int, member_id: int | None, at: datetime
) -> PatrolCheckin | None:
    member = (
        PatrolCheckin.member_id.is_(None)
        if member_id is None
        else PatrolCheckin.member_id == member_id
    )
    query = select(PatrolCheckin).where(
        PatrolCheckin.team_id == team_id, member, PatrolCheckin.at == at
    )
    return session.scalars(query.order_by(PatrolCheckin.id).limit(1)).first()


def _same_place(geom: Any, location: Location) -> bool:
    where = to_shape(geom)
    return (
        abs(where.x - location.storage_lon) < _SAME_PLACE_DEG
        and abs(where.y - location.storage_lat) < _SAME_PLACE_DEG
    )
