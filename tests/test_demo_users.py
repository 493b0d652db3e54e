"""Demo users: one per role, scoped from the demo data, fresh passwords on every run.

On the tiny city with a hand-made alliance and incidents, so every choice has a known
answer; then through the app (the patrol member sees their team, the station officer
their station) and through the command line on a database of its own.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
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
from geogrid.demo_users import covering_codes, demo_name, ensure_demo_users, plan_demo_users
from geogrid.errors import Unauthenticated
from geogrid.models import AppUser, PatrolMember
from geogrid.users import disable_user, get_user, set_scope, verify_password
from tests.factories import add_incident, load_tiny_city, load_tiny_city_by_cli
from tests.patrol_factories import (
    add_assignment,
    add_member,
    add_station,
    add_team,
    add_track_row,
)

COUNTY, EAST, WEST = "370705", "370705001", "370705002"
G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
TINY_CITY = {
    COUNTY: None,
    EAST: COUNTY,
    WEST: COUNTY,
    "370705001001": EAST,
    "370705002001": WEST,
    G1: "370705001001",
    G2: "370705001001",
    G3: "370705002001",
    G4: "370705002001",
}
GRIDS = {G1, G2, G3, G4}
NOON = datetime(2026, 3, 2, 4, tzinfo=UTC)
WALK = [(119.002, 36.705, 1_772_400_000.0), (119.004, 36.705, 1_772_400_060.0)]


@pytest.mark.parametrize(
    ("chosen", "codes"),
    [
        (set(), []),
        ({G1}, [G1]),
        ({G1, G2}, [EAST]),
        ({G1, G2, G3}, [EAST, G3]),
        ({G2, G4}, [G2, G4]),
        (GRIDS, [COUNTY]),
    ],
)
def test_the_fewest_codes_cover_exactly_the_chosen_grids(chosen, codes):
    assert covering_codes(chosen, TINY_CITY, GRIDS) == codes


@pytest.fixture
def demo(db, settings, tmp_path):
    """The tiny city with incidents and an alliance whose busiest team has an office."""
    load_tiny_city(db, settings, tmp_path)
    for grid in (G3, G3, G3, G3, G4):
        add_incident(db, grid_code=grid, reported_at=NOON)
    for department in ("城市管理局", "城市管理局", "民政局"):
        add_incident(db, grid_code=G1, reported_at=NOON, department=department, dispatched_at=NOON)
    station = add_station(db, "370705001-PS", lon=119.01, lat=36.71, grids=[G1], name="东关派出所")
    add_station(
        db,
        "370705001001-JW",
        lon=119.01,
        lat=36.71,
        grids=[G2],
        name="东关第1社区警务室",
        kind="community_office",
        parent_code=station.code,
    )
    quiet = add_team(db, "PA-1", "370705001-PS")
    add_member(db, "赵一", team=quiet, is_leader=True)
    add_assignment(db, quiet, G1)
    add_track_row(db, quiet, WALK)
    busy = add_team(db, "PA-2", "370705001001-JW", name="东关第1社区巡防队")
    add_member(db, "钱二", team=busy)
    leader = add_member(db, "孙三", team=busy, is_leader=True)
    add_assignment(db, busy, G2)
    for offset in (3600, 7200):
        add_track_row(db, busy, [(lon, lat, t + offset) for lon, lat, t in WALK])
    return {"busy": busy, "leader": leader}


def test_each_role_gets_a_scope_from_the_demo_data(db, demo):
    plans = {plan.role: plan for plan in plan_demo_users(db)}
    assert list(plans) == [
        ADMINISTRATOR,
        OFFICIAL,
        GRID_WORKER,
        PATROL_MEMBER,
        STATION_OFFICER,
        PLANNER,
        DEPARTMENT,
    ]
    assert {role: plan.scope for role, plan in plans.items()} == {
        ADMINISTRATOR: (),
        OFFICIAL: (COUNTY,),
        GRID_WORKER: ("370705002001",),  # five incidents against three
        PATROL_MEMBER: (G2,),  # the team with two tracks, not one
        STATION_OFFICER: (EAST,),  # the office's station: G1 and G2, all of 东关街道
        PLANNER: (COUNTY,),
        DEPARTMENT: (COUNTY,),
    }
    assert plans[DEPARTMENT].department == "城市管理局"
    assert plans[PATROL_MEMBER].member_id == demo["leader"].id
    assert "PA-2" in plans[PATROL_MEMBER].note
    assert "370705001-PS" in plans[STATION_OFFICER].note
    assert all(plan.name == demo_name(plan.role) for plan in plans.values())


def test_demo_users_can_sign_in_and_the_member_is_linked(db, demo):
    passwords = iter(f"demo password {n}" for n in range(7))
    logins = ensure_demo_users(
        db, plan_demo_users(db), created_by="tests", password_factory=lambda: next(passwords)
    )
    assert [login.created for login in logins] == [True] * 7
    for login in logins:
        user = verify_password(db, login.user.name, login.password)
        assert (user.role, tuple(user.scope)) == (login.user.role, login.user.scope)
        assert user.display_name.startswith("演示")
    linked = db.scalars(select(PatrolMember.name).where(PatrolMember.user_name.is_not(None)))
    assert list(linked) == ["孙三"]


def test_running_again_resets_passwords_scopes_and_sessions(db, demo):
    first = ensure_demo_users(db, plan_demo_users(db), created_by="tests")
    official = demo_name(OFFICIAL)
    epoch = get_user(db, official).session_epoch
    disable_user(db, official)
    set_scope(db, official, [G1])
    db.execute(  # someone linked another member meanwhile
        PatrolMember.__table__.update()
        .where(PatrolMember.name == "钱二")
        .values(user_name=demo_name(PATROL_MEMBER))
    )
    again = ensure_demo_users(db, plan_demo_users(db), created_by="tests")
    assert [login.created for login in again] == [False] * 7
    db.expire_all()
    user = get_user(db, official)
    assert (user.disabled, list(user.scope)) == (False, [COUNTY])
    assert user.session_epoch > epoch  # old sessions of the demo user end
    old = {login.user.name: login.password for login in first}
    for login in again:
        assert login.password != old[login.user.name]
        with pytest.raises(Unauthenticated):
            verify_password(db, login.user.name, old[login.user.name])
        verify_password(db, login.user.name, login.password)
    linked = db.scalars(select(PatrolMember.name).where(PatrolMember.user_name.is_not(None)))
    assert list(linked) == ["孙三"]


def test_the_patrol_member_and_station_officer_see_their_own(db, demo, settings, session_factory):
    from web import create_app

    logins = {
        login.user.role: login
        for login in ensure_demo_users(db, plan_demo_users(db), created_by="tests")
    }
    app = create_app(settings.with_(secret_key="test-secret"), session_factory=session_factory)

    def signed_in(role):
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        login = logins[role]
        data = {"name": login.user.name, "password": login.password, "csrf_token": token}
        assert client.post("/login", data=data).status_code == 302
        return client

    member = signed_in(PATROL_MEMBER)
    teams = member.get("/api/patrols/teams").get_json()["teams"]
    assert [team["mark"] for team in teams] == ["PA-2"]
    officer = signed_in(STATION_OFFICER)
    stations = officer.get("/api/patrols/stations").get_json()["stations"]
    assert {station["code"] for station in stations} == {"370705001-PS", "370705001001-JW"}


def test_the_command_prints_a_table_of_passwords(make_database, base_settings, tmp_path: Path):
    from geogrid.cli import main

    engine = make_database(base_settings.code_scheme)
    env = {"GEOGRID_DATABASE_URL": engine.url.render_as_string(False)}

    def invoke(*args):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    load_tiny_city_by_cli(invoke, tmp_path)
    dry = invoke("demo", "users")
    assert dry.count("would create demo-") == 7 and "dry run" in dry
    with Session(engine) as session:
        assert session.scalars(select(AppUser)).all() == []
    table = invoke("demo", "users", "--commit")
    rows = dict(re.findall(r"^(demo-[a-z-]+) +[a-z_]+ +(\S+) ", table, flags=re.M))
    assert len(rows) == 7
    assert "7 created, 0 given new passwords; sign in at http://127.0.0.1:8000/login" in table
    with Session(engine) as session:
        verify_password(session, "demo-grid-worker", rows["demo-grid-worker"])
    again = invoke("demo", "users", "--commit")
    assert "0 created, 7 given new passwords" in again
    assert "would reset demo-official" in invoke("demo", "users")
