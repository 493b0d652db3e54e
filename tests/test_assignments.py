"""Shift assignments: patterns, assigning with checks, shifts on a day, conflicts, gaps."""

from __future__ import annotations

import doctest
import json
from datetime import date, datetime, time, timedelta

import pytest

from geogrid import assignments, shifts
from geogrid.errors import CodeError, Conflict, InputError, NotFound
from geogrid.shifts import format_weekdays, parse_clock, parse_weekdays
from geogrid.workdays import SHANGHAI
from tests.factories import load_tiny_city
from tests.patrol_factories import add_assignment, add_station, add_team

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
T1, T2, T3 = "PA-370705-0001", "PA-370705-0002", "PA-370705-0003"
MONDAY = date(2026, 3, 2)
SUNDAY, TUESDAY, SATURDAY = MONDAY - timedelta(1), MONDAY + timedelta(1), MONDAY + timedelta(5)


@pytest.fixture
def city(db, settings, tmp_path):
    """Station S1 answers for G1, G2; its office S1-O1 for G3; station S2 for G4.

    Teams: T1 of S1, T2 of the office S1-O1, T3 of S2.
    """
    load_tiny_city(db, settings, tmp_path)
    add_station(db, "S1", lon=119.01, lat=36.71, grids=[G1, G2])
    add_station(
        db, "S1-O1", lon=119.025, lat=36.71, grids=[G3], kind="community_office", parent_code="S1"
    )
    add_station(db, "S2", lon=119.035, lat=36.71, grids=[G4])
    teams = {
        T1: add_team(db, T1, "S1"),
        T2: add_team(db, T2, "S1-O1"),
        T3: add_team(db, T3, "S2"),
    }
    db.info["teams"] = teams
    return db


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


def assign(db, team, grid, days="mon-fri", starts="08:00", ends="16:00", **options):
    options.setdefault("valid_from", date(2026, 1, 1))
    return assignments.assign(
        db, team, grid, weekdays=days, starts=starts, ends=ends, created_by="planner", **options
    )


# -- patterns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("mon-fri", 0b0011111),
        ("Mon, Wed, Sat", 0b0100101),
        ("daily", 127),
        ("每天", 127),
        ("weekends", 0b1100000),
        ("周一至周五", 0b0011111),
        ("周一、周三、周六", 0b0100101),
        ("星期日", 0b1000000),
        ("fri-mon", 0b1110001),
        ("1-3,7", 0b1000111),
        ("工作日", 0b0011111),
        (5, 5),
    ],
)
def test_weekdays_parse_to_the_bitmask(text, mask):
    assert parse_weekdays(text) == mask


@pytest.mark.parametrize("text", ["", "someday", "mon-xyz", 0, 128])
def test_unreadable_weekdays_name_the_field(text):
    with pytest.raises(InputError) as caught:
        parse_weekdays(text)
    assert caught.value.field == "weekdays"


def test_weekdays_are_written_back_readably():
    assert [format_weekdays(m) for m in (127, 31, 37, 96, 0b1110001)] == [
        "daily",
        "mon-fri",
        "mon,wed,sat",
        "sat,sun",
        "mon,fri-sun",
    ]
    assert doctest.testmod(shifts).failed == 0


def test_clock_times():
    assert parse_clock("8:30", field="starts") == time(8, 30)
    assert parse_clock("24:00", field="ends", end=True) == time(0)
    for bad in ("24:00", "25:00", "8h", "08:60"):
        with pytest.raises(InputError) as caught:
            parse_clock(bad, field="starts")
        assert caught.value.field == "starts"


# -- assigning --------------------------------------------------------------------------


def test_assign_stores_the_pattern(city):
    made = assign(city, "pa3707050001", G1, days="mon,wed,sat", starts="22:00", ends="6:00")
    assert (made.weekdays, made.starts, made.ends, made.source) == (37, time(22), time(6), "manual")
    [listed] = assignments.list_assignments(city, day=MONDAY)
    assert (listed.team_mark, listed.weekdays, listed.starts, listed.ends) == (
        T1,
        "mon,wed,sat",
        "22:00",
        "06:00",
    )


@pytest.mark.parametrize(
    ("team", "grid", "options", "error", "field"),
    [
        ("PA-370705-0009", G1, {}, NotFound, "team_mark"),
        ("PA-1", G1, {}, InputError, "team_mark"),
        (T1, "370705001001009", {}, CodeError, "grid_code"),
        (T1, "37070500100", {}, CodeError, "grid_code"),
        (T3, G1, {}, InputError, "grid_code"),
        (T1, G1, {"valid_to": date(2025, 12, 31)}, InputError, "valid_to"),
        (T1, G1, {"ends": "08:00"}, InputError, "ends"),
        (T1, G1, {"days": "someday"}, InputError, "weekdays"),
        (T1, G1, {"source": "guess"}, InputError, "source"),
    ],
)
def test_bad_assignments_name_the_field(city, team, grid, options, error, field):
    with pytest.raises(error) as caught:
        assign(city, team, grid, **options)
    assert caught.value.field == field
    assert assignments.list_assignments(city, include_ended=True) == []


def test_a_team_may_work_anywhere_in_its_stations_family(city):
    assign(city, T1, G3)  # the office's grid, for the station's team
    assign(city, T2, G1)  # the station's grid, for the office's team
    assert len(assignments.list_assignments(city, station_code="S1")) == 2
    assert assignments.list_assignments(city, station_code="S2") == []


def test_an_inactive_team_cannot_be_assigned(city):
    city.info["teams"][T1].active = False
    with pytest.raises(Conflict) as caught:
        assign(city, T1, G1)
    assert caught.value.field == "team_mark"


def test_one_shift_may_cover_several_grids(city):
    assign(city, T1, G1)
    assign(city, T1, G2)  # the same window: one shift patrolling both
    assert len(assignments.list_assignments(city, team_mark=T1)) == 2


@pytest.mark.parametrize(
    ("grid", "days", "starts", "ends"),
    [
        (G2, "mon-fri", "12:00", "20:00"),  # two places from 12:00
        (G1, "mon", "10:00", "12:00"),  # the same grid twice
        (G2, "sun", "22:00", "09:00"),  # Sunday night runs into Monday's shift
    ],
)
def test_overlapping_shifts_are_refused(city, grid, days, starts, ends):
    first = assign(city, T1, G1)
    with pytest.raises(Conflict) as caught:
        assign(city, T1, grid, days=days, starts=starts, ends=ends)
    assert caught.value.field == "starts"
    assert caught.value.details["assignment_id"] == first.id
    assert f"unassign {first.id}" in caught.value.message


def test_shifts_that_do_not_meet_are_accepted(city):
    assign(city, T1, G1)
    assign(city, T1, G2, days="sat,sun")
    assign(city, T1, G2, days="mon-fri", starts="16:00", ends="24:00")  # starts as T1 ends
    assign(city, T3, G4, starts="12:00", ends="20:00")  # another team
    assert len(assignments.list_assignments(city)) == 4


def test_a_night_shift_before_the_validity_boundary_still_clashes(city):
    assign(city, T1, G1, days="daily", starts="22:00", ends="06:00", valid_to=SUNDAY)
    with pytest.raises(Conflict):
        assign(city, T1, G2, days="mon", starts="05:00", ends="09:00", valid_from=MONDAY)
    assign(city, T1, G2, days="mon", starts="06:00", ends="09:00", valid_from=MONDAY)


def test_ending_an_assignment_makes_room_for_a_new_one(city):
    old = assign(city, T1, G1)
    assert assignments.unassign(city, old.id, last_day=SUNDAY) == "ended"
    assert old.valid_to == SUNDAY
    assign(city, T1, G1, starts="10:00", ends="18:00", valid_from=MONDAY)
    with pytest.raises(Conflict) as caught:
        assignments.unassign(city, old.id, last_day=MONDAY)
    assert caught.value.field == "assignment_id"


def test_an_assignment_that_never_ran_is_deleted(city):
    future = assign(city, T1, G1, valid_from=date(2027, 1, 1))
    assert assignments.unassign(city, future.id, last_day=date(2026, 12, 31)) == "deleted"
    assert assignments.list_assignments(city, include_ended=True) == []
    with pytest.raises(NotFound):
        assignments.unassign(city, future.id, last_day=date(2026, 12, 31))


# -- shifts on a day ---------------------------------------------------------------------


def test_a_night_shift_ends_the_next_morning(city):
    made = assign(city, T1, G1, days="daily", starts="22:00", ends="06:00")
    [shift] = assignments.shifts_for(city, day=MONDAY)
    assert shift == assignments.Shift(
        city.info["teams"][T1].id, T1, G1, at(MONDAY, 22), at(TUESDAY, 6), made.id
    )
    assert shift.starts_at.utcoffset() == timedelta(hours=8)
    assert shift.ends_at - shift.starts_at == timedelta(hours=8)


def test_shifts_follow_days_validity_station_and_team(city):
    assign(city, T1, G1)
    assign(city, T2, G3, days="daily", starts="20:00", ends="24:00")
    assign(city, T3, G4, days="daily", valid_to=SUNDAY)
    on_monday = assignments.shifts_for(city, day=MONDAY)
    assert [(s.team_mark, s.grid_code, s.starts_at, s.ends_at) for s in on_monday] == [
        (T1, G1, at(MONDAY, 8), at(MONDAY, 16)),
        (T2, G3, at(MONDAY, 20), at(TUESDAY, 0)),
    ]
    assert [s.team_mark for s in assignments.shifts_for(city, day=SATURDAY)] == [T2]
    assert [s.team_mark for s in assignments.shifts_for(city, day=SUNDAY)] == [T2, T3]
    assert [
        s.team_mark for s in assignments.shifts_for(city, day=MONDAY, station_code="S1-O1")
    ] == [T2]
    team_id = city.info["teams"][T1].id
    assert [s.grid_code for s in assignments.shifts_for(city, day=MONDAY, team_id=team_id)] == [G1]
    city.info["teams"][T2].active = False
    assert [s.team_mark for s in assignments.shifts_for(city, day=MONDAY)] == [T1]


# -- conflicts and unassigned grids -------------------------------------------------------


@pytest.fixture
def clashing(city):
    """T1: G1 and G2 daily 08-16 (one shift), G2 again Mondays 15-18. T3: G4 round the clock."""
    teams = city.info["teams"]
    a1 = add_assignment(city, teams[T1], G1, starts=time(8), ends=time(16))
    a2 = add_assignment(city, teams[T1], G2, starts=time(8), ends=time(16))
    a3 = add_assignment(city, teams[T1], G2, weekdays=1, starts=time(15), ends=time(18))
    add_assignment(city, teams[T3], G4, starts=time(8), ends=time(20))
    add_assignment(city, teams[T3], G4, starts=time(20), ends=time(8))
    return city, (a1.id, a2.id, a3.id)


def test_conflicts_on_a_day(clashing):
    city, (a1, a2, a3) = clashing
    found = assignments.conflicts(city, day=MONDAY)
    assert [(c.kind, c.team_mark, c.assignment_ids, c.grid_codes, c.at) for c in found] == [
        ("two_places", T1, (a1, a3), (G1, G2), at(MONDAY, 15)),
        ("same_grid_twice", T1, (a2, a3), (G2, G2), at(MONDAY, 15)),
    ]
    assert assignments.conflicts(city, day=TUESDAY) == []
    assert assignments.conflicts(city, day=MONDAY, station_code="S2") == []
    assert json.loads(json.dumps(found[0].as_dict()))["at"] == "2026-03-02T15:00:00+08:00"


def test_conflicts_from_today_on_find_the_next_monday(clashing):
    city, (a1, _a2, a3) = clashing
    today = assignments.today()
    monday = today + timedelta((7 - today.weekday()) % 7)
    found = assignments.conflicts(city)
    assert [(c.assignment_ids, c.at) for c in found][0] == ((a1, a3), at(monday, 15))


def test_a_night_shift_clash_belongs_to_the_day_the_later_shift_starts(city):
    teams = city.info["teams"]
    add_assignment(city, teams[T1], G1, weekdays=64, starts=time(22), ends=time(6))  # Sundays
    add_assignment(city, teams[T1], G2, weekdays=1, starts=time(5), ends=time(9))  # Mondays
    assert assignments.conflicts(city, day=SUNDAY) == []
    [clash] = assignments.conflicts(city, day=MONDAY)
    assert (clash.kind, clash.at) == ("two_places", at(MONDAY, 5))


def test_unassigned_grids(city):
    assign(city, T1, G1)
    assign(city, T2, G3, days="sat")
    monday = assignments.unassigned_grids(city, day=MONDAY)
    assert [(g.grid_code, g.name, g.station_codes) for g in monday] == [
        (G2, "东关第2网格", ("S1",)),
        (G3, "大虞第1网格", ("S1-O1",)),
        (G4, "大虞第2网格", ("S2",)),
    ]
    assert [g.grid_code for g in assignments.unassigned_grids(city, day=SATURDAY)] == [
        G1,
        G2,
        G4,
    ]
    assert [g.grid_code for g in assignments.unassigned_grids(city, station_code="S2")] == [G4]
    assert [g.grid_code for g in assignments.unassigned_grids(city)] == [G2, G4]


def test_a_grid_two_stations_answer_for_names_both(city):
    add_station(city, "S3", lon=119.0, lat=36.7, grids=[G4])
    [grid] = assignments.unassigned_grids(city, day=MONDAY, station_code=None)[-1:]
    assert (grid.grid_code, grid.station_codes) == (G4, ("S2", "S3"))


# -- the command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(make_cli, tmp_path_factory):
    from tests.factories import load_tiny_city_by_cli

    invoke = make_cli()
    folder = tmp_path_factory.mktemp("city")
    load_tiny_city_by_cli(invoke, folder)
    invoke(
        "patrols",
        "add-station",
        "S1",
        "--name",
        "东关派出所",
        "--at",
        "119.01",
        "36.71",
        "--crs",
        "wgs84",
        "--grids",
        f"{G1},{G2}",
        "--commit",
    )
    invoke("patrols", "add-team", T1, "--name", "一队", "--station", "S1", "--commit")
    return invoke


def test_cli_assign_is_a_dry_run_until_commit(cli):
    args = (
        "patrols",
        "assign-team",
        T1,
        G1,
        "--days",
        "mon-fri",
        "--from",
        "22:00",
        "--to",
        "06:00",
        "--valid-from",
        "2026-03-01",
    )
    dry = cli(*args)
    assert "would assign PA-370705-0001 on 370705001001001, mon-fri 22:00-06:00" in dry.output
    assert json.loads(cli("patrols", "assignments", "--json").output) == []
    done = cli(*args, "--commit")
    assert done.output.startswith("assigned assignment ")
    [listed] = json.loads(cli("patrols", "assignments", "--date", "2026-03-02", "--json").output)
    assert (listed["team_mark"], listed["starts"], listed["valid_from"]) == (
        T1,
        "22:00",
        "2026-03-01",
    )
    clash = cli(
        "patrols",
        "assign-team",
        T1,
        G2,
        "--days",
        "tue",
        "--from",
        "05:00",
        "--to",
        "07:00",
        "--valid-from",
        "2026-03-01",
        "--commit",
        ok=False,
    )
    assert clash.exit_code == 1
    assert "error [starts]: team PA-370705-0001 would be in two places" in clash.output
    unassigned = cli("patrols", "unassigned", "--date", "2026-03-02").output
    assert G2 in unassigned and G1 not in unassigned
    assert cli("patrols", "conflicts", "--date", "2026-03-03").output.strip() == "no conflicts"
    ended = cli("patrols", "unassign", str(listed["id"]), "--last-day", "2026-03-31")
    assert "would have ended" in ended.output
    cli("patrols", "unassign", str(listed["id"]), "--last-day", "2026-03-31", "--commit")
    [after] = json.loads(cli("patrols", "assignments", "--all", "--json").output)
    assert after["valid_to"] == "2026-03-31"
