"""The 平安联盟 (Safety Alliance): member organisations, teams and members.

Police stations and their community police offices are the pivot (:mod:`geogrid.stations`):
teams are attached to one and known by a unified mark (``PA-370705-0042``); members
belong to an organisation and usually a team, and are matched by name within their team
(within their organisation when they have none). Phones are masked on the way in, see
:mod:`geogrid.alliance_values`; Chinese labels of the organisation types are
``alliance_values.ORGANISATION_LABELS``.

Every function takes a session and flushes; the caller commits. Files are loaded by
:mod:`geogrid.alliance_import`, shift assignments live in :mod:`geogrid.assignments`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid.alliance_values import (
    ORGANISATION_LABELS,
    check_capacity,
    clean_text,
    lonlat_of,
    mask_phone,
    normalise_mark,
    organisation_kind,
    required_text,
    set_fields,
    storage_point,
)
from geogrid.crs import CoordType
from geogrid.errors import Conflict, InputError, NotFound
from geogrid.models import PatrolMember, PatrolOrganisation, PatrolTeam
from geogrid.stations import get_station, station_family


def _info(self: Any) -> dict[str, Any]:
    """The record as a JSON-ready mapping."""
    return asdict(self)


# -- organisations ----------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationInfo:
    """An organisation as listed, with its number of active members."""

    id: int
    name: str
    kind: str
    kind_label: str
    county_code: str
    members: int

    as_dict = _info


def add_organisation(
    session: Session, *, name: str, kind: str, county_code: str = ""
) -> PatrolOrganisation:
    """A new member organisation; Conflict if the name is taken."""
    name = required_text(name, field="name")
    if find_organisation(session, name) is not None:
        raise Conflict(f"there is already an organisation called {name}", field="name")
    organisation = PatrolOrganisation(
        name=name, kind=organisation_kind(kind), county_code=clean_text(county_code)
    )
    session.add(organisation)
    session.flush()
    return organisation


def update_organisation(
    session: Session, name: str, *, kind: str | None = None, county_code: str | None = None
) -> list[str]:
    """Change the type or county of an organisation found by name; the fields changed."""
    organisation = get_organisation(session, name, field="name")
    values: dict[str, Any] = {}
    if kind is not None:
        values["kind"] = organisation_kind(kind)
    if county_code is not None:
        values["county_code"] = clean_text(county_code)
    changed = set_fields(organisation, values)
    session.flush()
    return changed


def find_organisation(session: Session, name: str) -> PatrolOrganisation | None:
    """The organisation of that name, if any."""
    return session.scalar(
        select(PatrolOrganisation).where(PatrolOrganisation.name == clean_text(name))
    )


def get_organisation(
    session: Session, name: str, *, field: str = "organisation"
) -> PatrolOrganisation:
    """An organisation by name; NotFound naming the field otherwise."""
    organisation = find_organisation(session, name)
    if organisation is None:
        raise NotFound(f"there is no organisation called {clean_text(name)!r}", field=field)
    return organisation


def list_organisations(session: Session, *, kind: str | None = None) -> list[OrganisationInfo]:
    """Organisations by name, with their number of active members."""
    members = _counts(PatrolMember.organisation_id, PatrolMember.active)
    query = (
        select(PatrolOrganisation, func.coalesce(members.c.n, 0))
        .outerjoin(members, members.c.key == PatrolOrganisation.id)
        .order_by(PatrolOrganisation.name)
    )
    if kind is not None:
        query = query.where(PatrolOrganisation.kind == organisation_kind(kind))
    return [
        OrganisationInfo(o.id, o.name, o.kind, ORGANISATION_LABELS[o.kind], o.county_code, n)
        for o, n in session.execute(query)
    ]


def _counts(key: Any, *where: Any) -> Any:
    return select(key.label("key"), func.count().label("n")).where(*where).group_by(key).subquery()


# -- teams ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamInfo:
    """A team as listed: its station, organisation, base, capacity and active members."""

    id: int
    mark: str
    name: str
    station_code: str
    organisation: str | None
    base_lon: float | None
    base_lat: float | None
    capacity: float
    active: bool
    members: int

    as_dict = _info


def add_team(
    session: Session,
    *,
    mark: str,
    name: str,
    station_code: str,
    organisation: str | None = None,
    base: tuple[float, float] | None = None,
    coord_type: CoordType | None = None,
    capacity: float = 1.0,
) -> PatrolTeam:
    """A new team of a station, known by its unified mark; ``base`` is lon/lat in ``coord_type``."""
    mark = normalise_mark(mark)
    if find_team(session, mark) is not None:
        raise Conflict(f"there is already a team {mark}", field="mark")
    station = get_station(session, station_code)
    org = get_organisation(session, organisation) if organisation else None
    if base is not None and coord_type is None:
        raise InputError("declare the coordinate type of the base", field="crs")
    team = PatrolTeam(mark=mark, station_code=station.code)
    set_fields(
        team,
        {
            "name": required_text(name, field="name"),
            "organisation_id": org.id if org else None,
            "base": storage_point(*base, coord_type, lon_field="base_lon", lat_field="base_lat")
            if base is not None
            else None,
            "capacity": check_capacity(capacity),
        },
    )
    session.add(team)
    session.flush()
    return team


def update_team(
    session: Session,
    mark: str,
    *,
    name: str | None = None,
    station_code: str | None = None,
    capacity: float | None = None,
    active: bool | None = None,
) -> list[str]:
    """Rename, move to another station, resize or (de)activate a team; the fields changed."""
    team = get_team(session, mark, field="mark")
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = required_text(name, field="name")
    if station_code is not None:
        values["station_code"] = get_station(session, station_code).code
    if capacity is not None:
        values["capacity"] = check_capacity(capacity)
    if active is not None:
        values["active"] = bool(active)
    changed = set_fields(team, values)
    session.flush()
    return changed


def find_team(session: Session, mark: str) -> PatrolTeam | None:
    """The team with that mark, if any."""
    return session.scalar(select(PatrolTeam).where(PatrolTeam.mark == mark))


def get_team(session: Session, mark: str, *, field: str = "team_mark") -> PatrolTeam:
    """A team by unified mark; InputError for a malformed mark, NotFound for an unknown one."""
    mark = normalise_mark(mark, field=field)
    team = find_team(session, mark)
    if team is None:
        raise NotFound(f"there is no team {mark}", field=field)
    return team


def list_teams(
    session: Session, *, station_code: str | None = None, include_inactive: bool = False
) -> list[TeamInfo]:
    """Teams by mark (of a station's family, if given), with their number of active members."""
    members = _counts(PatrolMember.team_id, PatrolMember.active)
    query = (
        select(PatrolTeam, PatrolOrganisation.name, func.coalesce(members.c.n, 0))
        .outerjoin(PatrolOrganisation, PatrolOrganisation.id == PatrolTeam.organisation_id)
        .outerjoin(members, members.c.key == PatrolTeam.id)
        .order_by(PatrolTeam.mark)
    )
    if station_code is not None:
        query = query.where(PatrolTeam.station_code.in_(station_family(session, station_code)))
    if not include_inactive:
        query = query.where(PatrolTeam.active)
    out = []
    for team, organisation, member_count in session.execute(query):
        base = lonlat_of(team.base) or (None, None)
        out.append(
            TeamInfo(
                team.id,
                team.mark,
                team.name,
                team.station_code,
                organisation,
                *base,
                team.capacity,
                team.active,
                member_count,
            )
        )
    return out


# -- members ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberInfo:
    """A member as listed; the phone only ever masked."""

    id: int
    name: str
    team_mark: str | None
    organisation: str | None
    phone_masked: str
    is_leader: bool
    active: bool

    as_dict = _info


def add_member(
    session: Session,
    *,
    name: str,
    team_mark: str | None = None,
    organisation: str | None = None,
    phone: str | None = None,
    is_leader: bool = False,
    user_name: str | None = None,
) -> PatrolMember:
    """A new member of a team and/or an organisation (the team's if none is named)."""
    name = required_text(name, field="name")
    team = get_team(session, team_mark, field="team") if team_mark else None
    org = get_organisation(session, organisation) if organisation else None
    if team is None and org is None:
        raise InputError("a member belongs to a team, an organisation or both", field="team")
    organisation_id = org.id if org else team.organisation_id  # type: ignore[union-attr]
    if find_member(
        session, name, team_id=team.id if team else None, organisation_id=organisation_id
    ):
        raise Conflict(f"{name} is already a member there", field="name")
    member = PatrolMember(
        name=name,
        team_id=team.id if team else None,
        organisation_id=organisation_id,
        phone_masked=mask_phone(phone),
        is_leader=bool(is_leader),
        user_name=clean_text(user_name) or None,
    )
    session.add(member)
    session.flush()
    return member


def find_member(
    session: Session, name: str, *, team_id: int | None, organisation_id: int | None
) -> PatrolMember | None:
    """A member by natural key: name within the team, or within the organisation if no team."""
    query = select(PatrolMember).where(PatrolMember.name == name).order_by(PatrolMember.id)
    if team_id is not None:
        query = query.where(PatrolMember.team_id == team_id)
    else:
        query = query.where(
            PatrolMember.team_id.is_(None), PatrolMember.organisation_id == organisation_id
        )
    return session.scalars(query).first()


def list_members(
    session: Session,
    *,
    team_mark: str | None = None,
    organisation: str | None = None,
    include_inactive: bool = False,
) -> list[MemberInfo]:
    """Members by team and name, optionally of one team or one organisation."""
    query = (
        select(PatrolMember, PatrolTeam.mark, PatrolOrganisation.name)
        .outerjoin(PatrolTeam, PatrolTeam.id == PatrolMember.team_id)
        .outerjoin(PatrolOrganisation, PatrolOrganisation.id == PatrolMember.organisation_id)
        .order_by(PatrolTeam.mark.nulls_last(), PatrolMember.name, PatrolMember.id)
    )
    if team_mark is not None:
        query = query.where(PatrolMember.team_id == get_team(session, team_mark).id)
    if organisation is not None:
        query = query.where(
            PatrolMember.organisation_id == get_organisation(session, organisation).id
        )
    if not include_inactive:
        query = query.where(PatrolMember.active)
    return [
        MemberInfo(m.id, m.name, mark, org, m.phone_masked, m.is_leader, m.active)
        for m, mark, org in session.execute(query)
    ]
