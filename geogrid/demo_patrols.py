"""The 平安联盟 for the demo city, at the field's proportions, and a week of its patrols.

:func:`build_demo_patrols` works on whatever city the current generation holds (奎文区 by
default, all of 潍坊 with ``--city 3707``). Everything is drawn from
``numpy.random.default_rng`` seeded by ``seed``: the same seed, city and week give the
same rows, down to the track digests.

* Stations: a 派出所 per township (``370705001-PS``, at a point inside it) and a 社区警务室
  for about 40 % of communities (``370705001002-JW``, under the township's station). An
  office answers for its community's grids, the station for the rest of the township.
* Teams and members. The field's figures disagree: 潍坊 has 6,152 teams and ~26,000
  members for ~15,000 grids (0.40 teams a grid, 4.2 members a team), but 奎文区 reports
  500 members where those ratios would give ~1,700. Decision: teams follow the city's
  0.40 a grid everywhere (coverage, gaps and the optimiser are about teams and grids);
  members follow a county's own figure where the field gives one (奎文区: 500, so its
  teams are of one to four people, most of one) and share the rest of the city's 26,000
  elsewhere (4.4 a team). A whole-city build reproduces all three figures
  (:func:`alliance_sizes`). Who they are: :mod:`geogrid.demo_members` (organisations of
  every type with made-up names, masked phones).
* Assignments: each team gets a contiguous handful of its township's grids (about 2.5)
  for a shift programme that suits its type (:mod:`geogrid.demo_territories`); about 3 %
  of grids are left to nobody and 2 % are shared with a neighbouring team on shifts that
  never meet the first team's; 3 % of teams are locked by a planner. Marks are
  ``PA-<county>-NNNN``, numbered per county. No team's shifts clash
  (:func:`geogrid.assignments.conflicts` is empty): geogrid refuses a clash on every path
  that stores assignments, so the demo holds none; two teams on one grid is not a clash.
* A week of tracks, check-ins and leads: :mod:`geogrid.demo_patrol_tracks`.

Rows are written in bulk, valid by construction (the tests check them with the library's
own rules); tracks and leads go through the library. Building again finds the stations
and adds nothing. Flushes, never commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import perf_counter

import geopandas as gpd
import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from geogrid import demo_members
from geogrid.demo_patrol_tracks import DemoWeek, Team, patrol_week
from geogrid.demo_territories import PROGRAMMES, PlannedTeam, plan_beats
from geogrid.errors import ConfigError, InputError
from geogrid.generations import generation_areas, resolve_generation
from geogrid.models import (
    STORAGE_SRID,
    PatrolAssignment,
    PatrolMember,
    PatrolOrganisation,
    PatrolTeam,
    PoliceStation,
    StationGrid,
)
from geogrid.settings import Settings
from geogrid.shifts import parse_weekdays
from geogrid.workdays import SHANGHAI

#: The field's figures (DESIGN.md, "Facts from the field"), and the demo city's grids.
CITY_TEAMS, CITY_MEMBERS, CITY_GRIDS = 6_152, 26_000, 15_209
#: Counties whose own member count the field reports: (members, the demo's grids there).
COUNTY_MEMBERS = {"370705": (500, 986)}
TEAMS_PER_GRID = CITY_TEAMS / CITY_GRIDS
OFFICE_SHARE, LOCKED_SHARE = 0.4, 0.03
DEMO_USER = "demo"


@dataclass
class DemoPatrols:
    """What the demo patrols added: counts, the week of tracks, and seconds per step."""

    week: tuple[date, date]
    already_loaded: bool = False
    stations: int = 0
    offices: int = 0
    organisations: int = 0
    teams: int = 0
    members: int = 0
    assignments: int = 0
    locked: int = 0
    unassigned_grids: int = 0
    shared_grids: int = 0
    patrols: DemoWeek | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A printable account."""
        first, last = self.week
        if self.already_loaded:
            return ["demo patrols: the stations are already there; nothing added"]
        timing = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        lines = [
            f"demo patrols: {self.stations} stations, {self.offices} community offices, "
            f"{self.organisations} organisations, {self.teams} teams, {self.members} members",
            f"  {self.assignments} assignments ({self.locked} locked), {self.unassigned_grids} "
            f"grids unassigned, {self.shared_grids} shared by two teams; week {first} to {last}",
        ]
        return lines + (self.patrols.lines() if self.patrols else []) + [f"  ({timing})"]


def build_demo_patrols(
    session: Session,
    settings: Settings,
    *,
    seed: int = 7,
    week_start: date | None = None,
    progress: bool | None = None,
) -> DemoPatrols:
    """Alliance, assignments and the week before ``week_start`` of patrols; flushes only.

    ``week_start`` defaults to the Monday of the current Shanghai week.
    """
    if week_start is None:
        today = datetime.now(SHANGHAI).date()
        week_start = today - timedelta(days=today.weekday())
    first_day = week_start - timedelta(days=7)
    summary = DemoPatrols(week=(first_day, week_start - timedelta(days=1)))
    clock = perf_counter()
    city = _city(session, settings)
    if session.scalar(select(PoliceStation.code).where(PoliceStation.code.in_(city.station_codes))):
        summary.already_loaded = True
        return summary
    _add_stations(session, city, np.random.default_rng([seed, 1]), summary)
    counts = city.grids.groupby("county").size()
    sizes = alliance_sizes({str(county): int(n) for county, n in counts.items()})
    teams_per_county = {county: teams for county, (teams, _) in sizes.items()}
    beats = plan_beats(city.grids, teams_per_county, np.random.default_rng([seed, 2]))
    teams = beats.teams
    summary.unassigned_grids, summary.shared_grids = len(beats.unassigned), len(beats.shared)
    people = {county: members for county, (_, members) in sizes.items()}
    _add_alliance(session, city, teams, people, np.random.default_rng([seed, 3]), summary)
    _add_assignments(session, teams, first_day, np.random.default_rng([seed, 4]), summary)
    summary.seconds["alliance"] = perf_counter() - clock
    roster = {t.mark: Team(t.id, t.mark, t.kind, t.member_ids, t.township) for t in teams}
    summary.patrols = patrol_week(
        session, settings, city.grids, roster, first_day=first_day, seed=seed, progress=progress
    )
    summary.seconds.update(summary.patrols.seconds)
    return summary


def alliance_sizes(grids_per_county: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """(teams, members) per county for its number of grids, at the field's proportions."""
    own = COUNTY_MEMBERS.values()
    rest = (CITY_MEMBERS - sum(m for m, _ in own), CITY_GRIDS - sum(g for _, g in own))
    sizes = {}
    for county, grids in grids_per_county.items():
        members, of_grids = COUNTY_MEMBERS.get(county, rest)
        teams = max(1, round(grids * TEAMS_PER_GRID))
        sizes[county] = (teams, max(teams, round(grids * members / of_grids)))
    return sizes


# -- the city --------------------------------------------------------------------------


@dataclass
class _City:
    grids: gpd.GeoDataFrame  # code, community, township, county, geometry; by code
    communities: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    county_names: dict[str, str]

    @property
    def station_codes(self) -> list[str]:
        return [f"{code}-PS" for code in self.townships["code"]]


def _city(session: Session, settings: Settings) -> _City:
    levels = settings.scheme.level_names
    patrol_level = settings.scheme.default_geocode_level
    if not {"county", "township", "community"} <= set(levels[: levels.index(patrol_level)]):
        raise ConfigError(
            "demo patrols need the levels county, township and community above the grids",
            field="GEOGRID_CODE_SCHEME",
        )
    generation = resolve_generation(session, None).id
    frames = {
        level: generation_areas(session, generation, level=level).sort_values("code")
        for level in ("county", "township", "community", patrol_level)
    }
    grids = frames[patrol_level].reset_index(drop=True)
    if grids.empty:
        raise InputError(f"generation {generation} has no {patrol_level} areas", field="level")
    communities = frames["community"].set_index("code")
    grids["community"] = grids["parent_code"]
    grids["community_name"] = grids["community"].map(communities["name"])
    grids["township"] = grids["community"].map(communities["parent_code"])
    grids["county"] = grids["township"].map(frames["township"].set_index("code")["parent_code"])
    names = dict(zip(frames["county"]["code"], frames["county"]["name"], strict=True))
    return _City(grids, frames["community"], frames["township"], names)


def _add_stations(session: Session, city: _City, rng: np.random.Generator, s: DemoPatrols) -> None:
    """A station per township, offices for some communities, and the grids they answer for."""
    communities = city.communities.copy()
    communities["office"] = rng.random(len(communities)) < OFFICE_SHARE
    offices = set(communities.loc[communities["office"], "code"])
    stations, answers = [], []
    for township in city.townships.itertuples():
        short = demo_members.short_name(township.name, ("街道办事处", "街道", "镇", "乡"))
        stations.append(_station(f"{township.code}-PS", f"{short}派出所", township.geometry))
    for community in communities[communities["office"]].itertuples():
        stations.append(
            _station(
                f"{community.code}-JW",
                f"{community.name}警务室",
                community.geometry,
                parent=f"{community.parent_code}-PS",
            )
        )
    for grid in city.grids.itertuples():
        office = grid.community in offices
        code = f"{grid.community}-JW" if office else f"{grid.township}-PS"
        answers.append({"station_code": code, "grid_code": grid.code})
    session.add_all(stations)
    session.flush()  # the unit of work inserts the stations before the offices naming them
    session.execute(insert(StationGrid), answers)
    city.grids["station"] = [row["station_code"] for row in answers]
    s.stations, s.offices = len(city.townships), len(offices)


def _station(code: str, name: str, area: shapely.Geometry, parent: str | None = None):
    kind = "community_office" if parent else "station"
    where = from_shape(shapely.point_on_surface(area), srid=STORAGE_SRID)
    return PoliceStation(code=code, name=name, kind=kind, parent_code=parent, geom=where)


# -- writing ---------------------------------------------------------------------------


def _add_alliance(
    session: Session,
    city: _City,
    teams: list[PlannedTeam],
    people: dict[str, int],
    rng: np.random.Generator,
    s: DemoPatrols,
) -> None:
    """Organisations, teams (marks numbered per county) and ``people`` members per county."""
    county_of = dict(zip(city.townships["code"], city.townships["parent_code"], strict=True))
    kinds = [(county_of[team.township], team.kind) for team in teams]
    organisations, organisation_of = demo_members.organisations(kinds, city.county_names, rng)
    organisation_ids = _insert_ids(session, PatrolOrganisation, organisations)
    sizes = demo_members.team_sizes(kinds, people, rng)
    grids = city.grids.set_index("code")
    numbers: dict[str, int] = {}
    names: dict[str, int] = {}
    rows = []
    for team, size, organisation in zip(teams, sizes, organisation_of, strict=True):
        county = county_of[team.township]
        numbers[county] = numbers.get(county, 0) + 1
        team.mark = f"PA-{county}-{numbers[county]:04d}"
        home = grids.loc[team.grids[0]]  # the grid the territory grew from
        team.station = home["station"]
        label = f"{home['community_name']}{demo_members.TEAM_WORDS[team.kind]}巡防"
        names[label] = names.get(label, 0) + 1
        base = shapely.point_on_surface(home["geometry"])
        rows.append(
            {
                "mark": team.mark,
                "name": f"{label}{names[label] if names[label] > 1 else ''}队",
                "station_code": team.station,
                "organisation_id": organisation_ids[organisation],
                "base": from_shape(base, srid=STORAGE_SRID),
                # Relative units: 1 for a one-person team, a quarter more for each extra.
                "capacity": round((1 + 0.25 * (size - 1)) * rng.uniform(0.85, 1.15), 2),
            }
        )
    for team, team_id in zip(teams, _insert_ids(session, PatrolTeam, rows), strict=True):
        team.id = team_id
    members = [
        row
        for team, size in zip(teams, sizes, strict=True)
        for row in demo_members.members(team.id, size, rng)
    ]
    owners = [team for team, size in zip(teams, sizes, strict=True) for _ in range(size)]
    for team, member_id in zip(owners, _insert_ids(session, PatrolMember, members), strict=True):
        team.member_ids.append(member_id)
    s.organisations, s.teams, s.members = len(organisations), len(teams), len(members)


def _insert_ids(session: Session, model: type, rows: list[dict]) -> list[int]:
    """Insert rows in bulk; their ids in the order given."""
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _add_assignments(
    session: Session,
    teams: list[PlannedTeam],
    first_day: date,
    rng: np.random.Generator,
    s: DemoPatrols,
) -> None:
    """Each team's grids (its own and shared) for each window of its programme."""
    rows = []
    for team in teams:
        locked = bool(rng.random() < LOCKED_SHARE)
        valid_from = first_day - timedelta(days=int(rng.integers(14, 366)))
        for grid in team.grids + team.extra:
            for days, starts, ends in PROGRAMMES[team.programme]:
                rows.append(
                    {
                        "team_id": team.id,
                        "grid_code": grid,
                        "weekdays": parse_weekdays(days),
                        "starts": time.fromisoformat(starts),
                        "ends": time.fromisoformat(ends),
                        "valid_from": valid_from,
                        "locked": locked,
                        "source": "import",
                        "created_by": DEMO_USER,
                    }
                )
        s.locked += locked * len(PROGRAMMES[team.programme]) * len(team.grids + team.extra)
    session.execute(insert(PatrolAssignment), rows)
    s.assignments = len(rows)
