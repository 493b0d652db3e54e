"""Demo users: one sign-in per role on the demo city, with scopes taken from its data.

``geogrid demo users --commit`` (run by ``make demo``) creates the users that are missing
and gives every demo user a fresh random password, printed once, so each run of the demo
hands out working passwords while the city itself is built only once. The scopes follow
the demo's data, so each user's pages have something to show:

- administrator: everywhere; official and planner: the demo county;
- grid worker: the community whose grids hold the most incidents;
- patrol member: linked to a real member (``patrol_member.user_name``) of the busiest
  team (most tracks, then most assigned grids), scoped to the grids the team is assigned;
- station officer: that team's police station (a community office's parent station),
  scoped to the station's grids;
- department: the department that received the most dispatched incidents.

A scope of grids is written with the fewest codes that cover exactly those grids: a
street whose grids all belong to a station stands for them. Resetting an existing demo
user also restores its role and scope and ends its old sessions (a new password does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import distinct, func, select, update
from sqlalchemy.orm import Session

from geogrid.actors import (
    ADMINISTRATOR,
    DEPARTMENT,
    GRID_WORKER,
    OFFICIAL,
    PATROL_MEMBER,
    PLANNER,
    STATION_OFFICER,
)
from geogrid.codes import normalise_code
from geogrid.errors import InputError, NotFound
from geogrid.generations import current_generation
from geogrid.models import (
    AppUser,
    Area,
    Incident,
    IncidentCategory,
    PatrolAssignment,
    PatrolMember,
    PatrolTeam,
    PatrolTrack,
    PoliceStation,
)
from geogrid.stations import station_grid_codes
from geogrid.users import add_user, enable_user, generate_password, set_password, set_scope

#: The levels of the demo city down to grids (micro-grids are not scope material).
COUNTY, TOWNSHIP, COMMUNITY, GRID = "county", "township", "community", "grid"
#: When no incident has been dispatched to a department yet.
FALLBACK_DEPARTMENT = "城市管理局"
DISPLAY_NAMES = {
    ADMINISTRATOR: "演示·系统管理员",
    OFFICIAL: "演示·区领导",
    GRID_WORKER: "演示·网格员",
    PATROL_MEMBER: "演示·巡防队员",
    STATION_OFFICER: "演示·派出所民警",
    PLANNER: "演示·边界规划员",
    DEPARTMENT: "演示·职能部门",
}
ROLES = tuple(DISPLAY_NAMES)


@dataclass(frozen=True)
class DemoUser:
    """A demo user as planned: name, role, scope, and what the scope stands for."""

    name: str
    role: str
    scope: tuple[str, ...]
    note: str
    department: str = ""
    #: The patrol member this user signs in as (patrol members only).
    member_id: int | None = None

    @property
    def display_name(self) -> str:
        """How pages show the user."""
        return DISPLAY_NAMES[self.role]


@dataclass(frozen=True)
class DemoLogin:
    """A demo user made ready: its plan, its new password, and whether it was created."""

    user: DemoUser
    password: str
    created: bool


def demo_name(role: str) -> str:
    """The login name of the demo user of a role, e.g. ``demo-grid-worker``."""
    return "demo-" + role.replace("_", "-")


def plan_demo_users(session: Session, *, county: str | None = None) -> list[DemoUser]:
    """The demo user of every role, scoped from the current generation's data."""
    generation = current_generation(session)
    if generation is None:
        raise InputError(
            "no generation is active; build the demo first (geogrid demo build --commit)",
            field="generation",
        )
    county = _demo_county(session, generation.id, county)
    parents = _areas_to_grids(session, generation.id, county)
    grids = {code for code, level in parents.levels.items() if level == GRID}

    def cover(codes: Iterable[str]) -> tuple[str, ...]:
        return tuple(covering_codes(set(codes) & grids, parents.parent_of, grids)) or (county,)

    team = _busiest_team(session, county)
    station = _station_of(session, team)
    community = _busiest_community(session, generation.id, county)
    department = _busiest_department(session, county)
    member_id = _member_of(session, team) if team is not None else None
    no_patrols = "no patrol team in this county's demo data"
    plans = [
        DemoUser(demo_name(ADMINISTRATOR), ADMINISTRATOR, (), "everywhere"),
        DemoUser(demo_name(OFFICIAL), OFFICIAL, (county,), "the demo county"),
        DemoUser(demo_name(GRID_WORKER), GRID_WORKER, (community,), "the busiest community"),
        DemoUser(
            demo_name(PATROL_MEMBER),
            PATROL_MEMBER,
            cover(_team_grids(session, team)) if team is not None else (county,),
            f"member of {team.mark} {team.name}" if team is not None else no_patrols,
            member_id=member_id,
        ),
        DemoUser(
            demo_name(STATION_OFFICER),
            STATION_OFFICER,
            cover(station_grid_codes(session, station.code)) if station else (county,),
            f"{station.code} {station.name}" if station is not None else no_patrols,
        ),
        DemoUser(demo_name(PLANNER), PLANNER, (county,), "the demo county"),
        DemoUser(
            demo_name(DEPARTMENT),
            DEPARTMENT,
            (county,),
            f"staff of {department}",
            department=department,
        ),
    ]
    return plans


def ensure_demo_users(
    session: Session,
    plans: Iterable[DemoUser],
    *,
    created_by: str,
    password_factory: Callable[[], str] = generate_password,
) -> list[DemoLogin]:
    """Create missing demo users; give every one a fresh password and its planned scope."""
    logins = []
    for plan in plans:
        password = password_factory()
        user = session.scalar(select(AppUser).where(AppUser.name == plan.name))
        if user is None:
            add_user(
                session,
                plan.name,
                plan.role,
                scope=plan.scope,
                display_name=plan.display_name,
                department=plan.department,
                password=password,
                created_by=created_by,
            )
        else:
            user.role, user.department = plan.role, plan.department
            user.display_name = plan.display_name
            set_scope(session, plan.name, plan.scope)
            enable_user(session, plan.name)
            set_password(session, plan.name, password)
        if plan.role == PATROL_MEMBER:
            _link_member(session, plan.name, plan.member_id)
        logins.append(DemoLogin(plan, password, created=user is None))
    return logins


def covering_codes(
    chosen: set[str], parent_of: Mapping[str, str | None], grids: set[str]
) -> list[str]:
    """The fewest codes covering exactly the ``chosen`` grids: an area whose grids are all
    chosen stands for them (coarsest first), every other chosen grid for itself."""
    children: dict[str | None, list[str]] = {}
    for code, parent in parent_of.items():
        children.setdefault(parent if parent in parent_of else None, []).append(code)
    grids_under: dict[str, set[str]] = {}

    def collect(code: str) -> set[str]:
        found = {code} & grids
        for child in children.get(code, []):
            found |= collect(child)
        grids_under[code] = found
        return found

    roots = sorted(children.get(None, []))
    for root in roots:
        collect(root)

    def cover(code: str) -> list[str]:
        under = grids_under[code]
        if under and under <= chosen:
            return [code]
        return [found for child in sorted(children.get(code, [])) for found in cover(child)]

    return [found for root in roots for found in cover(root)]


# -- choosing from the demo data ------------------------------------------------------------


@dataclass(frozen=True)
class _Areas:
    parent_of: dict[str, str | None]
    levels: dict[str, str]


def _demo_county(session: Session, generation: int, county: str | None) -> str:
    counties = select(Area.code).where(Area.level == COUNTY, Area.valid_in(generation))
    if county is not None:
        code = normalise_code(county, field="county")
        if session.scalar(counties.where(Area.code == code)) is None:
            raise NotFound(f"no county {code} in the current generation", field="county")
        return code
    busiest = (
        select(Area.code)
        .join(Incident, Incident.grid_code.startswith(Area.code), isouter=True)
        .where(Area.level == COUNTY, Area.valid_in(generation))
        .group_by(Area.code)
        .order_by(func.count(Incident.id).desc(), Area.code)
        .limit(1)
    )
    found = session.scalar(busiest)
    if found is None:
        raise InputError("the current generation has no county", field="county")
    return found


def _areas_to_grids(session: Session, generation: int, county: str) -> _Areas:
    rows = session.execute(
        select(Area.code, Area.parent_code, Area.level).where(
            Area.valid_in(generation),
            Area.level.in_((COUNTY, TOWNSHIP, COMMUNITY, GRID)),
            Area.code.startswith(county),
        )
    )
    parent_of, levels = {}, {}
    for code, parent, level in rows:
        parent_of[code], levels[code] = parent, level
    return _Areas(parent_of, levels)


def _busiest_community(session: Session, generation: int, county: str) -> str:
    grid = select(Area.code, Area.parent_code).where(
        Area.level == GRID, Area.valid_in(generation), Area.code.startswith(county)
    )
    grid = grid.subquery()
    query = (
        select(grid.c.parent_code)
        .join(Incident, Incident.grid_code == grid.c.code, isouter=True)
        .group_by(grid.c.parent_code)
        .order_by(func.count(Incident.id).desc(), grid.c.parent_code)
        .limit(1)
    )
    return session.scalar(query) or county


def _busiest_department(session: Session, county: str) -> str:
    dispatched = (
        select(Incident.department)
        .where(
            Incident.dispatched_at.is_not(None),
            Incident.department != "",
            Incident.grid_code.startswith(county),
        )
        .group_by(Incident.department)
        .order_by(func.count().desc(), Incident.department)
        .limit(1)
    )
    responsible = (
        select(IncidentCategory.department)
        .where(IncidentCategory.department != "")
        .order_by(IncidentCategory.department)
        .limit(1)
    )
    return session.scalar(dispatched) or session.scalar(responsible) or FALLBACK_DEPARTMENT


def _busiest_team(session: Session, county: str) -> PatrolTeam | None:
    tracks = (
        select(PatrolTrack.team_id, func.count().label("tracks"))
        .group_by(PatrolTrack.team_id)
        .subquery()
    )
    assigned = (
        select(
            PatrolAssignment.team_id, func.count(distinct(PatrolAssignment.grid_code)).label("n")
        )
        .group_by(PatrolAssignment.team_id)
        .subquery()
    )
    has_member = (
        select(PatrolMember.id)
        .where(PatrolMember.team_id == PatrolTeam.id, PatrolMember.active)
        .exists()
    )
    query = (
        select(PatrolTeam)
        .join(assigned, assigned.c.team_id == PatrolTeam.id)
        .join(tracks, tracks.c.team_id == PatrolTeam.id, isouter=True)
        .where(PatrolTeam.active, PatrolTeam.station_code.startswith(county), has_member)
        .order_by(func.coalesce(tracks.c.tracks, 0).desc(), assigned.c.n.desc(), PatrolTeam.mark)
        .limit(1)
    )
    return session.scalar(query)


def _team_grids(session: Session, team: PatrolTeam) -> list[str]:
    query = select(PatrolAssignment.grid_code).where(PatrolAssignment.team_id == team.id).distinct()
    return list(session.scalars(query))


def _member_of(session: Session, team: PatrolTeam) -> int | None:
    # The member already linked to the demo user, else the leader, else the first.
    query = (
        select(PatrolMember.id)
        .where(PatrolMember.team_id == team.id, PatrolMember.active)
        .order_by(
            (PatrolMember.user_name == demo_name(PATROL_MEMBER)).desc().nulls_last(),
            PatrolMember.is_leader.desc(),
            PatrolMember.id,
        )
        .limit(1)
    )
    return session.scalar(query)


def _station_of(session: Session, team: PatrolTeam | None) -> PoliceStation | None:
    if team is None:
        return None
    station = session.get(PoliceStation, team.station_code)
    if station is not None and station.parent_code:
        # A community office's officers answer to its station: the demo shows the station.
        return session.get(PoliceStation, station.parent_code)
    return station


def _link_member(session: Session, name: str, member_id: int | None) -> None:
    # One member signs in as the demo user: whoever was linked before is let go.
    others = PatrolMember.user_name == name
    if member_id is not None:
        others &= PatrolMember.id != member_id
        session.execute(
            update(PatrolMember).where(PatrolMember.id == member_id).values(user_name=name)
        )
    session.execute(update(PatrolMember).where(others).values(user_name=None))
    session.flush()
