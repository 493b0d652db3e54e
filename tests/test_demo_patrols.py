"""Demo patrols: the alliance at the field's proportions, clean assignments, a week of tracks.

A small demo city (奎文区's ten real streets cut into ~200 grids) is loaded into a
database of this module and the patrols are built there once and committed; each test
reads it in a transaction that is rolled back. Determinism is checked against a second
database holding the same city.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid import assignments, demo_patrol_tracks, stations
from geogrid.demo import build_demo_city
from geogrid.demo_patrols import alliance_sizes, build_demo_patrols
from geogrid.drafts import load_frame
from geogrid.generations import activate, create_draft, generation_areas, resolve_generation
from geogrid.leads import REWARDABLE
from geogrid.models import (
    LEAD_STATUSES,
    ORGANISATION_TYPES,
    PatrolAssignment,
    PatrolCheckin,
    PatrolLead,
    PatrolMember,
    PatrolOrganisation,
    PatrolTeam,
    PatrolTrack,
    PoliceStation,
    StationGrid,
)
from geogrid.tracks import tracks_frame
from geogrid.validate import ValidationRules
from geogrid.workdays import SHANGHAI
from tests.factories import load_tiny_city

WEEK_START = date(2025, 3, 10)  # a Monday: the demo week is 3-9 March 2025
FIRST_DAY = WEEK_START - timedelta(days=7)
WEEK = [FIRST_DAY + timedelta(days=k) for k in range(7)]


def _load_small_city(engine, settings) -> None:
    """奎文区 with ~200 grids (1,500 households a grid) and no micro-grids, active."""
    areas = build_demo_city(
        county="370705", seed=7, scheme=settings.scheme, households_per_grid=1500, microgrids=False
    )
    with Session(engine) as session:
        draft = create_draft(session, created_by="tester", description="small demo city")
        load_frame(session, areas, scheme=settings.scheme, generation=draft)
        rules = ValidationRules.from_settings(settings)
        activate(session, draft.id, settings.scheme, rules, activated_by="tester")
        session.commit()


@pytest.fixture(scope="module")
def city(make_database, base_settings):
    """The small city with the demo patrols (seed 7) committed: (engine, settings, summary)."""
    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    _load_small_city(engine, settings)
    with Session(engine) as session:
        summary = build_demo_patrols(session, settings, seed=7, week_start=WEEK_START)
        session.commit()
    return engine, settings, summary


@pytest.fixture
def session(city):
    """A session on the small city, rolled back afterwards."""
    engine = city[0]
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        transaction.rollback()


def _grids(session) -> dict[str, shapely.Geometry]:
    generation = resolve_generation(session, None).id
    grids = generation_areas(session, generation, level="grid")
    return dict(zip(grids["code"], grids.geometry, strict=True))


def _snapshot(session) -> dict:
    """Counts and the first rows of every table the demo writes, without ids."""

    def first(*columns, order_by, n=5):
        return [
            tuple(row) for row in session.execute(select(*columns).order_by(*order_by).limit(n))
        ]

    models = (PoliceStation, StationGrid, PatrolOrganisation, PatrolTeam, PatrolMember,
              PatrolAssignment, PatrolTrack, PatrolCheckin, PatrolLead)  # fmt: skip
    return {
        "counts": [session.scalar(select(func.count()).select_from(m)) for m in models],
        "stations": first(PoliceStation.code, PoliceStation.name, order_by=[PoliceStation.code]),
        "organisations": first(PatrolOrganisation.name, order_by=[PatrolOrganisation.id]),
        "teams": first(
            PatrolTeam.mark,
            PatrolTeam.name,
            PatrolTeam.station_code,
            PatrolTeam.capacity,
            func.ST_AsText(PatrolTeam.base),
            order_by=[PatrolTeam.mark],
        ),
        "members": first(PatrolMember.name, PatrolMember.phone_masked, order_by=[PatrolMember.id]),
        "assignments": first(
            PatrolAssignment.grid_code,
            PatrolAssignment.weekdays,
            PatrolAssignment.starts,
            PatrolAssignment.valid_from,
            order_by=[PatrolAssignment.id],
        ),
        "digests": sorted(session.scalars(select(PatrolTrack.digest)))[:20],
        "leads": first(PatrolLead.note, PatrolLead.status, PatrolLead.at, order_by=[PatrolLead.at]),
    }


# -- proportions -----------------------------------------------------------------------


def test_the_sizes_reproduce_the_fields_figures():
    # The demo city's 15,209 grids: 986 in 奎文区, the rest over the other counties.
    others = dict(zip(["370702", "370703", "370704", "370724", "370725", "370772", "370781",
                       "370782", "370783", "370784", "370785", "370786"],
                      [1100, 900, 1300, 1100, 900, 210, 1500, 1600, 1700, 1300, 1213, 1400],
                      strict=True))  # fmt: skip
    sizes = alliance_sizes({"370705": 986, **others})
    assert sum(others.values()) + 986 == 15_209
    assert sizes["370705"] == (399, 500)  # 0.40 teams a grid; the 500 members the field reports
    assert abs(sum(teams for teams, _ in sizes.values()) - 6_152) <= 6
    assert abs(sum(members for _, members in sizes.values()) - 26_000) <= 6
    teams, members = sizes["370782"]
    assert 4.3 < members / teams < 4.5  # the rest of the city's members, 4.4 a team
    assert alliance_sizes({"370705": 4}) == {"370705": (2, 2)}  # the tiny city


def test_teams_and_members_at_the_fields_proportions(session, city):
    summary = city[2]
    grids = len(_grids(session))
    teams = session.scalar(select(func.count()).select_from(PatrolTeam))
    members = session.scalar(select(func.count()).select_from(PatrolMember))
    assert 190 <= grids <= 210
    assert (summary.teams, summary.members) == (teams, members)
    assert teams / grids == pytest.approx(0.404, abs=0.01)
    assert members == round(grids * 500 / 986)  # 奎文区's own figure
    sizes = Counter(
        session.scalars(
            select(func.count()).select_from(PatrolMember).group_by(PatrolMember.team_id)
        )
    )
    assert sum(sizes.values()) == teams  # every team has people
    assert min(sizes) == 1 and max(sizes) <= 5
    leaders = session.scalar(
        select(func.count()).select_from(PatrolMember).where(PatrolMember.is_leader)
    )
    assert leaders == teams
    phones = list(session.scalars(select(PatrolMember.phone_masked)))
    assert all(len(p) == 11 and p[3:7] == "****" and p[:3].isdigit() for p in phones)


def test_every_type_of_organisation_with_guards_and_property_most(session):
    kinds = Counter(
        session.scalars(
            select(PatrolOrganisation.kind).join(
                PatrolTeam, PatrolTeam.organisation_id == PatrolOrganisation.id
            )
        )
    )
    assert set(kinds) == set(ORGANISATION_TYPES)
    assert {kind for kind, _ in kinds.most_common(2)} == {"property_management", "compound_guard"}
    names = list(session.scalars(select(PatrolOrganisation.name)))
    assert len(names) == len(set(names))
    assert all(name.startswith("奎文") for name in names)
    orphans = select(PatrolOrganisation.id).where(
        ~PatrolOrganisation.id.in_(select(PatrolTeam.organisation_id))
    )
    assert session.scalars(orphans).all() == []  # every organisation runs a team


# -- stations and assignments ----------------------------------------------------------


def test_a_station_per_township_and_offices_for_some_communities(session):
    generation = resolve_generation(session, None).id
    townships = generation_areas(session, generation, level="township")
    rows = session.scalars(select(PoliceStation).order_by(PoliceStation.code)).all()
    ps = [s for s in rows if s.kind == "station"]
    offices = [s for s in rows if s.kind == "community_office"]
    assert [s.code for s in ps] == [f"{code}-PS" for code in sorted(townships["code"])]
    assert ps[0].name == "东关派出所"
    shape = dict(zip(townships["code"], townships.geometry, strict=True))
    assert all(shape[s.code[:9]].contains(to_shape(s.geom)) for s in ps)
    assert offices and all(o.code.endswith("-JW") and o.name.endswith("警务室") for o in offices)
    assert all(o.parent_code == f"{o.code[:9]}-PS" for o in offices)
    answered = Counter(session.scalars(select(StationGrid.grid_code)))
    assert set(answered) == set(_grids(session)) and set(answered.values()) == {1}
    for office in offices:  # an office answers for exactly its community's grids
        own = stations.own_grid_codes(session, office.code)
        community = generation_areas(session, generation, level="grid", within=office.code[:12])
        assert own == sorted(community["code"])


def test_assignments_stay_in_the_station_family_on_contiguous_grids(session):
    grids = _grids(session)
    family: dict[str, set[str]] = {}
    team_grids: dict[str, set[str]] = defaultdict(set)
    rows = session.execute(
        select(PatrolTeam.mark, PatrolTeam.station_code, PatrolAssignment.grid_code).join(
            PatrolAssignment, PatrolAssignment.team_id == PatrolTeam.id
        )
    )
    for mark, station_code, grid_code in rows:
        top = station_code[:9] + "-PS"
        if top not in family:
            family[top] = set(stations.station_grid_codes(session, top))
        assert grid_code in family[top], (mark, grid_code)
        team_grids[mark].add(grid_code)
    sizes = [len(codes) for codes in team_grids.values()]
    assert 2.0 <= np.mean(sizes) <= 3.0 and max(sizes) <= 8
    connected = sum(
        shapely.union_all([grids[c].buffer(1e-7) for c in codes]).geom_type == "Polygon"
        for codes in team_grids.values()
    )
    assert connected >= 0.9 * len(team_grids)


def test_no_clashes_a_few_grids_unassigned_and_a_few_shared_on_other_shifts(session, city):
    summary = city[2]
    for day in WEEK:
        assert assignments.conflicts(session, day=day) == []
    unassigned = assignments.unassigned_grids(session)
    assert len(unassigned) == summary.unassigned_grids
    assert 0.01 <= len(unassigned) / len(_grids(session)) <= 0.05
    by_grid: dict[str, list[PatrolAssignment]] = defaultdict(list)
    for a in session.scalars(select(PatrolAssignment)):
        by_grid[a.grid_code].append(a)
    shared = [g for g, rows in by_grid.items() if len({a.team_id for a in rows}) == 2]
    assert len(shared) == summary.shared_grids >= 1
    assert all(len({a.team_id for a in rows}) <= 2 for rows in by_grid.values())
    for grid in shared:  # two teams, never at the same time
        rows = by_grid[grid]
        for a in rows:
            for b in rows:
                if a.team_id < b.team_id:
                    assert assignments.first_clash(a, b, from_day=FIRST_DAY) is None
    locked = session.scalar(
        select(func.count()).select_from(PatrolAssignment).where(PatrolAssignment.locked)
    )
    assert 0 < locked < 0.15 * summary.assignments
    nights = session.scalar(
        select(func.count()).where(PatrolAssignment.ends < PatrolAssignment.starts)
    )
    assert 0 < nights < 0.2 * summary.assignments


# -- the week --------------------------------------------------------------------------


def test_a_week_of_tracks_with_their_faults_reported(session, city):
    week = city[2].patrols
    assert week.days == WEEK
    assert week.skipped > 0 and week.load.rejected == []
    tracks = session.scalars(select(PatrolTrack)).all()
    assert len(tracks) == week.load.stored > week.shifts - week.skipped
    start = datetime.combine(FIRST_DAY, time(0), SHANGHAI)
    assert all(start <= t.started_at < start + timedelta(days=7) for t in tracks)
    assert all(t.ended_at <= start + timedelta(days=7) for t in tracks)
    found = Counter(
        key for t in tracks for key in ("spikes", "gaps", "idle") if t.quality[f"{key}_count"]
    )
    assert found["spikes"] and found["gaps"] and found["idle"]  # the cleaning report shows them
    assert found["idle"] < found["gaps"] < 0.2 * len(tracks)
    assert {t.coord_type for t in tracks} == {"gcj02", "wgs84"}
    frame = tracks_frame(session, day=WEEK[2])
    intervals, speeds = [], []
    for line in frame.geometry:
        xym = shapely.get_coordinates(line, include_m=True)
        dt = np.diff(xym[:, 2])
        dx = np.diff(xym[:, 0]) * 111_320 * math.cos(math.radians(36.7))
        dy = np.diff(xym[:, 1]) * 110_574
        intervals.append(np.median(dt))
        speeds.append(np.median(np.hypot(dx, dy) / dt))
    assert min(intervals) >= 8 and max(intervals) <= 32  # a fix every 10-30 s
    assert 0.5 < np.median(speeds) < 2.0 and max(speeds) < 6.0  # on foot, some on e-bikes


def test_check_ins_where_grids_are_entered_and_leads_decided(session, city):
    week = city[2].patrols
    checkins = session.scalars(select(PatrolCheckin)).all()
    assert len(checkins) == week.checkins > week.shifts
    assert sum(c.placement in ("inside", "near_edge") for c in checkins) >= 0.95 * len(checkins)
    leads = session.scalars(select(PatrolLead)).all()
    expected = round(750 / 986 * len(_grids(session)) * 7 / 365.25)
    assert len(leads) == expected == sum(week.leads.values())
    assert {lead.status for lead in leads} <= set(LEAD_STATUSES)
    for lead in leads:
        assert lead.note and lead.category
        assert lead.reward != "granted" or (lead.status in REWARDABLE and lead.reward_amount > 0)
        assert (lead.decided_at is None) == (lead.status == "new")


def test_building_again_adds_nothing(session, city):
    before = _snapshot(session)
    again = build_demo_patrols(session, city[1], seed=7, week_start=WEEK_START)
    assert again.already_loaded and again.teams == 0
    assert "nothing added" in again.lines()[0]
    assert _snapshot(session) == before


# -- determinism -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin(make_database, base_settings):
    """A second database with the same small city and no patrols yet."""
    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    _load_small_city(engine, settings)
    return engine, settings


def _built(engine, settings, **options):
    """The snapshot and summary of a build in a transaction that is rolled back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            summary = build_demo_patrols(session, settings, week_start=WEEK_START, **options)
            snapshot = _snapshot(session)
        transaction.rollback()
    return snapshot, summary


def test_the_same_seed_gives_the_same_rows_another_seed_others(session, twin):
    same, _ = _built(*twin, seed=7)
    assert same == _snapshot(session)  # down to the digests of the tracks
    other, _ = _built(*twin, seed=8)
    assert other["teams"] != same["teams"] and other["digests"] != same["digests"]


def test_a_week_too_big_for_the_budget_keeps_its_last_days(twin, monkeypatch):
    monkeypatch.setattr(demo_patrol_tracks, "TRACK_FIX_BUDGET", 1)
    snapshot, summary = _built(*twin, seed=7)
    assert summary.patrols.days == [WEEK[-1]]
    assert summary.assignments > 0 and summary.patrols.load.stored > 0


# -- the tiny city ---------------------------------------------------------------------


def test_the_tiny_city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    summary = build_demo_patrols(db, settings, seed=3, week_start=WEEK_START)
    assert (summary.stations, summary.teams, summary.members) == (2, 2, 2)
    marks = list(db.scalars(select(PatrolTeam.mark).order_by(PatrolTeam.mark)))
    assert marks == ["PA-370705-0001", "PA-370705-0002"]
    assert summary.unassigned_grids == len(assignments.unassigned_grids(db)) >= 1
    assert summary.patrols.load.stored > 0
    assert db.scalar(select(func.count()).select_from(PatrolTrack)) == summary.patrols.load.stored
