"""Shift assignments: a team given a grid for days of the week, a time window and a validity.

Windows are Asia/Shanghai wall-clock times; ``ends`` before ``starts`` runs past midnight,
and a shift belongs to the day it starts (a 22:00-06:00 shift on Monday ends on Tuesday
morning). China keeps no daylight saving time, so a window is always its plain length.

A team may be given several grids for the *same* window: one shift patrolling all of them.
What a team cannot do is be in two places at once, so two assignments of one team clash
when their shifts overlap in time and either the grid is the same (the grid assigned
twice) or the windows differ (partly overlapping shifts on different grids).
:func:`assign` refuses a clash, naming the assignment it clashes with; :func:`conflicts`
lists clashes already stored (by imports, the optimiser, or validity changed since).

A team may be given any grid its station's family answers for (see
:mod:`geogrid.stations`); assignments are ended, not deleted, so history stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from itertools import combinations
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from geogrid.alliance import get_team
from geogrid.alliance_values import check_grid_codes, patrol_level
from geogrid.errors import Conflict, InputError, NotFound
from geogrid.generations import resolve_generation
from geogrid.models import Area, PatrolAssignment, PatrolTeam, PoliceStation, StationGrid
from geogrid.shifts import format_weekdays, parse_clock, parse_weekdays, weekday_bit
from geogrid.stations import station_family, station_grid_codes
from geogrid.workdays import SHANGHAI

ASSIGNMENT_SOURCES = ("manual", "import", "optimiser")
_WEEK = 7


@dataclass(frozen=True)
class Shift:
    """One concrete shift: a team on a grid from ``starts_at`` to ``ends_at`` (Shanghai, aware)."""

    team_id: int
    team_mark: str
    grid_code: str
    starts_at: datetime
    ends_at: datetime
    assignment_id: int


@dataclass(frozen=True)
class AssignmentInfo:
    """An assignment as listed, its pattern written as people read it."""

    id: int
    team_mark: str
    station_code: str
    grid_code: str
    weekdays: str
    starts: str
    ends: str
    valid_from: date
    valid_to: date | None
    locked: bool
    source: str
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO text)."""
        body = asdict(self)
        body["valid_from"] = self.valid_from.isoformat()
        body["valid_to"] = self.valid_to.isoformat() if self.valid_to else None
        return body


@dataclass(frozen=True)
class ShiftConflict:
    """Two assignments of one team whose shifts overlap: ``two_places`` or ``same_grid_twice``."""

    kind: str
    team_mark: str
    assignment_ids: tuple[int, int]
    grid_codes: tuple[str, str]
    #: The first moment both shifts run (Shanghai, aware).
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "at": self.at.isoformat()}


@dataclass(frozen=True)
class UnassignedGrid:
    """A grid a station answers for that no team is assigned to."""

    grid_code: str
    name: str
    station_codes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def today() -> date:
    """Today in Shanghai."""
    return datetime.now(SHANGHAI).date()


# -- writing ----------------------------------------------------------------------------


def assign(
    session: Session,
    team_mark: str,
    grid_code: str,
    *,
    weekdays: str | int,
    starts: str | time,
    ends: str | time,
    valid_from: date,
    valid_to: date | None = None,
    locked: bool = False,
    source: str = "manual",
    created_by: str,
) -> PatrolAssignment:
    """Give a team a grid for a shift pattern; InputError/Conflict naming the field if not."""
    team = get_team(session, team_mark)
    if not team.active:
        raise Conflict(f"team {team.mark} is not active", field="team_mark")
    grid_code = check_grid_codes(session, [grid_code])[0]
    answered = station_grid_codes(session, _top_station(session, team))
    if grid_code not in answered:
        raise InputError(
            f"grid {grid_code} is not one that station {team.station_code} (or its family) "
            f"answers for ({', '.join(answered) or 'none yet'}); add it to the station first",
            field="grid_code",
        )
    if valid_to is not None and valid_to < valid_from:
        raise InputError(f"valid_to {valid_to} is before valid_from {valid_from}", field="valid_to")
    if source not in ASSIGNMENT_SOURCES:
        raise InputError(f"source must be one of {', '.join(ASSIGNMENT_SOURCES)}", field="source")
    assignment = PatrolAssignment(
        team_id=team.id,
        grid_code=grid_code,
        weekdays=parse_weekdays(weekdays),
        starts=parse_clock(starts, field="starts"),
        ends=parse_clock(ends, field="ends", end=True),
        valid_from=valid_from,
        valid_to=valid_to,
        locked=bool(locked),
        source=source,
        created_by=created_by,
    )
    if assignment.starts == assignment.ends:
        raise InputError(
            "a shift cannot start and end at the same time; for round-the-clock patrols give "
            "two shifts (08:00-20:00 and 20:00-08:00)",
            field="ends",
        )
    # Lock the team so that two planners cannot each add half of a clash at once.
    session.execute(select(PatrolTeam.id).where(PatrolTeam.id == team.id).with_for_update())
    for other in _team_assignments(session, team.id, not_ended_before=valid_from - timedelta(1)):
        at = first_clash(assignment, other, from_day=valid_from)
        if at is not None:
            clash = "have grid twice" if other.grid_code == grid_code else "be in two places"
            raise Conflict(
                f"team {team.mark} would {clash}: assignment {other.id} (grid "
                f"{other.grid_code}, {_describe(other)}) overlaps at "
                f"{at:%Y-%m-%d %H:%M}; end it first (`geogrid patrols unassign {other.id}`)",
                field="starts",
                assignment_id=other.id,
            )
    session.add(assignment)
    session.flush()
    return assignment


def unassign(session: Session, assignment_id: int, *, last_day: date) -> str:
    """End an assignment after ``last_day`` ("ended"), or delete it if it never ran ("deleted")."""
    assignment = session.get(PatrolAssignment, assignment_id)
    if assignment is None:
        raise NotFound(f"there is no assignment {assignment_id}", field="assignment_id")
    if assignment.valid_to is not None and assignment.valid_to <= last_day:
        raise Conflict(
            f"assignment {assignment_id} already ends on {assignment.valid_to}",
            field="assignment_id",
        )
    if last_day < assignment.valid_from:
        session.delete(assignment)
        session.flush()
        return "deleted"
    assignment.valid_to = last_day
    session.flush()
    return "ended"


# -- reading ----------------------------------------------------------------------------


def list_assignments(
    session: Session,
    *,
    station_code: str | None = None,
    team_mark: str | None = None,
    grid_code: str | None = None,
    day: date | None = None,
    include_ended: bool = False,
) -> list[AssignmentInfo]:
    """Assignments by team, grid and start: those running on ``day``, or not yet ended."""
    query = (
        select(PatrolAssignment, PatrolTeam)
        .join(PatrolTeam, PatrolTeam.id == PatrolAssignment.team_id)
        .order_by(PatrolTeam.mark, PatrolAssignment.grid_code, PatrolAssignment.starts)
    )
    if station_code is not None:
        query = query.where(PatrolTeam.station_code.in_(station_family(session, station_code)))
    if team_mark is not None:
        query = query.where(PatrolTeam.id == get_team(session, team_mark).id)
    if grid_code is not None:
        query = query.where(PatrolAssignment.grid_code == grid_code)
    if day is not None:
        query = query.where(*_running_on(day))
    elif not include_ended:
        query = query.where(_not_ended(today()))
    return [_info(a, team) for a, team in session.execute(query)]


def assignment_info(session: Session, assignment_id: int) -> AssignmentInfo:
    """One assignment as listed; NotFound naming the field otherwise."""
    assignment = session.get(PatrolAssignment, assignment_id)
    if assignment is None:
        raise NotFound(f"there is no assignment {assignment_id}", field="assignment_id")
    return _info(assignment, session.get(PatrolTeam, assignment.team_id))


def _info(a: PatrolAssignment, team: PatrolTeam) -> AssignmentInfo:
    return AssignmentInfo(
        a.id,
        team.mark,
        team.station_code,
        a.grid_code,
        format_weekdays(a.weekdays),
        f"{a.starts:%H:%M}",
        f"{a.ends:%H:%M}",
        a.valid_from,
        a.valid_to,
        a.locked,
        a.source,
        a.created_by,
    )


def shifts_for(
    session: Session, *, day: date, station_code: str | None = None, team_id: int | None = None
) -> list[Shift]:
    """The concrete shifts of active teams starting on ``day`` (a night shift ends next day)."""
    query = (
        select(PatrolAssignment, PatrolTeam.mark)
        .join(PatrolTeam, PatrolTeam.id == PatrolAssignment.team_id)
        .where(PatrolTeam.active, *_running_on(day))
    )
    if station_code is not None:
        query = query.where(PatrolTeam.station_code.in_(station_family(session, station_code)))
    if team_id is not None:
        query = query.where(PatrolTeam.id == team_id)
    shifts = [
        Shift(a.team_id, mark, a.grid_code, starts_at, ends_at, a.id)
        for a, mark in session.execute(query)
        for starts_at, ends_at in _windows(a, day, day)
    ]
    return sorted(shifts, key=lambda s: (s.team_mark, s.starts_at, s.grid_code))


def conflicts(
    session: Session, *, station_code: str | None = None, day: date | None = None
) -> list[ShiftConflict]:
    """Clashes between assignments of one team: on ``day``, or anywhere from today on."""
    # A clash belongs to the day its later shift starts, so a night shift running into
    # Monday morning clashes with Monday's early shift on Monday, not on Sunday.
    first = day if day is not None else today()
    query = (
        select(PatrolAssignment, PatrolTeam.mark)
        .join(PatrolTeam, PatrolTeam.id == PatrolAssignment.team_id)
        .where(PatrolTeam.active, _not_ended(first - timedelta(1)))
        .order_by(PatrolTeam.mark, PatrolAssignment.id)
    )
    if station_code is not None:
        query = query.where(PatrolTeam.station_code.in_(station_family(session, station_code)))
    if day is not None:
        query = query.where(PatrolAssignment.valid_from <= day)
    by_team: dict[str, list[PatrolAssignment]] = {}
    for assignment, mark in session.execute(query):
        by_team.setdefault(mark, []).append(assignment)
    found = []
    for mark, assignments in by_team.items():
        for a, b in combinations(assignments, 2):
            at = first_clash(a, b, from_day=first, to_day=day)
            if at is not None:
                kind = "same_grid_twice" if a.grid_code == b.grid_code else "two_places"
                found.append(
                    ShiftConflict(kind, mark, (a.id, b.id), (a.grid_code, b.grid_code), at)
                )
    return found


def unassigned_grids(
    session: Session, *, station_code: str | None = None, day: date | None = None
) -> list[UnassignedGrid]:
    """Grids stations answer for that no active team works: on ``day``, or from today on."""
    generation = resolve_generation(session, None)
    query = (
        select(StationGrid.grid_code, Area.name, StationGrid.station_code)
        .join(Area, Area.code == StationGrid.grid_code)
        .where(Area.level == patrol_level(session), Area.valid_in(generation.id))
        .order_by(StationGrid.grid_code, StationGrid.station_code)
    )
    if station_code is not None:
        query = query.where(StationGrid.station_code.in_(station_family(session, station_code)))
    running = _running_on(day) if day is not None else (_not_ended(today()),)
    assigned = set(
        session.scalars(
            select(PatrolAssignment.grid_code)
            .join(PatrolTeam, PatrolTeam.id == PatrolAssignment.team_id)
            .where(PatrolTeam.active, *running)
        )
    )
    grids: dict[str, UnassignedGrid] = {}
    for code, name, station in session.execute(query):
        if code not in assigned:
            known = grids.get(code)
            stations = (*known.station_codes, station) if known else (station,)
            grids[code] = UnassignedGrid(code, name, stations)
    return list(grids.values())


# -- shifts in time ---------------------------------------------------------------------


def first_clash(
    a: PatrolAssignment, b: PatrolAssignment, *, from_day: date, to_day: date | None = None
) -> datetime | None:
    """When two assignments of a team first clash, the later shift starting in the days given."""
    if a.grid_code != b.grid_code and (a.starts, a.ends) == (b.starts, b.ends):
        return None  # one shift over several grids
    # A shift may reach into the next day, so look one day either side of the overlap of
    # the validities; the pattern repeats weekly, so a week and a bit is enough.
    first = max(a.valid_from, b.valid_from, from_day) - timedelta(1)
    ends = [d for d in (a.valid_to, b.valid_to, to_day) if d is not None]
    last = min([*ends, first + timedelta(_WEEK + 1)]) + timedelta(1)
    clashes = [
        max(a_start, b_start)
        for a_start, a_end in _windows(a, first, last)
        for b_start, b_end in _windows(b, first, last)
        if a_start < b_end
        and b_start < a_end
        # The later shift's own day, as the shift belongs to the day it starts.
        and from_day <= max(a_start, b_start).date() <= (to_day or date.max)
    ]
    return min(clashes) if clashes else None


def _windows(a: PatrolAssignment, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """The assignment's shifts starting on the days ``first..last`` within its validity."""
    day = max(first, a.valid_from)
    last = min(last, a.valid_to) if a.valid_to is not None else last
    while day <= last:
        if a.weekdays & weekday_bit(day):
            starts_at = datetime.combine(day, a.starts, SHANGHAI)
            end_day = day + timedelta(1) if a.ends <= a.starts else day
            yield starts_at, datetime.combine(end_day, a.ends, SHANGHAI)
        day += timedelta(1)


def _running_on(day: date) -> tuple[Any, ...]:
    """Conditions for assignments with a shift starting on ``day``."""
    return (
        PatrolAssignment.valid_from <= day,
        _not_ended(day),
        PatrolAssignment.weekdays.op("&")(weekday_bit(day)) != 0,
    )


def _not_ended(day: date) -> Any:
    return or_(PatrolAssignment.valid_to.is_(None), PatrolAssignment.valid_to >= day)


def _team_assignments(
    session: Session, team_id: int, *, not_ended_before: date
) -> Iterable[PatrolAssignment]:
    return session.scalars(
        select(PatrolAssignment)
        .where(and_(PatrolAssignment.team_id == team_id, _not_ended(not_ended_before)))
        .order_by(PatrolAssignment.id)
    )


def _top_station(session: Session, team: PatrolTeam) -> str:
    parent = session.scalar(
        select(PoliceStation.parent_code).where(PoliceStation.code == team.station_code)
    )
    return parent or team.station_code


def _describe(a: PatrolAssignment) -> str:
    valid = f"from {a.valid_from}" + (f" to {a.valid_to}" if a.valid_to else "")
    return f"{format_weekdays(a.weekdays)} {a.starts:%H:%M}-{a.ends:%H:%M}, {valid}"
