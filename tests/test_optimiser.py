"""The assignment optimiser: the model against brute force, its promises, and end to end."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
import shapely
from sqlalchemy import select

from geogrid import assignments, optimiser
from geogrid.errors import InputError
from geogrid.models import PatrolAssignment
from geogrid.optimiser_model import Problem, Weights, candidate_teams, evaluate
from geogrid.optimiser_solve import _State, greedy, polish, solve
from tests.factories import add_incident, load_tiny_city
from tests.patrol_factories import add_assignment, add_station, add_team

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
T1, T2 = "PA-370705-0001", "PA-370705-0002"
MONDAY = date(2026, 3, 2)


def strip_edges(n: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(n - 1)]


def small_problem(seed: int, locked=()) -> Problem:
    """3 teams x 7 grids: two rows of grids (4 over 3), random workloads, bases, capacities."""
    rng = np.random.default_rng(seed)
    cells = [(c, 0) for c in range(4)] + [(c, 1) for c in range(3)]
    cx = np.array([c * 900.0 for c, _ in cells])
    cy = np.array([r * 2200.0 for _, r in cells])
    bx, by = rng.uniform(0, 3600, 3), rng.uniform(0, 2200, 3)
    edges = [*strip_edges(4), *((4 + i, 5 + i) for i in range(2)), *((i, 4 + i) for i in range(3))]
    return Problem(
        team_marks=["A", "B", "C"],
        capacity=rng.uniform(3, 6, 3),
        grid_codes=[f"g{g}" for g in range(7)],
        workload=1 + rng.gamma(0.8, 1.5, 7),
        distance_m=np.hypot(bx[:, None] - cx[None, :], by[:, None] - cy[None, :]),
        edges=edges,
        locked=locked,
    )


def brute_objective(problem: Problem, teams_of: tuple[int, ...], w: Weights) -> float:
    """The documented objective in plain Python, for one team per grid."""
    work, cap = list(problem.workload), list(problem.capacity)
    total, capacity = sum(work), sum(cap)
    loads = [0.0] * len(cap)
    for grid, team in enumerate(teams_of):
        loads[team] += work[grid]
    share = [total * c / capacity for c in cap]
    balance = sum(abs(lo - s) for lo, s in zip(loads, share, strict=True)) / (2 * total)
    worst = max(abs(lo - s) / s for lo, s in zip(loads, share, strict=True))
    overload = sum(max(lo - c, 0) for lo, c in zip(loads, cap, strict=True)) / total
    travel = sum(problem.distance_m[t, g] for g, t in enumerate(teams_of)) / 1000 / len(teams_of)
    split = sum(teams_of[i] != teams_of[j] for i, j in problem.edges) / len(problem.edges)
    return (
        w.balance * balance
        + w.worst * worst
        + w.travel_per_km * travel
        + w.split * split
        + w.overload * overload
    )


def brute_force(problem: Problem, w: Weights) -> float:
    """The optimum over all 3^7 assignments that keep the locks."""
    best = float("inf")
    for teams_of in itertools.product(range(3), repeat=7):
        if all(teams_of[g] == t for t, g in problem.locked):
            best = min(best, brute_objective(problem, teams_of, w))
    return best


# -- the model --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "locked", "weights"),
    [
        (1, (), Weights()),
        (2, (), Weights()),
        (3, ((2, 0),), Weights()),
        (4, (), Weights(balance=3, worst=0, travel_per_km=0.2, split=2)),
        (5, ((0, 6), (1, 0)), Weights(overload=5)),
    ],
)
def test_the_solver_finds_the_brute_force_optimum(seed, locked, weights):
    problem = small_problem(seed, locked)
    solution = solve(problem, weights, candidates=None, mip_rel_gap=0)
    assert solution.status == "optimal"
    assert solution.terms.objective == pytest.approx(brute_force(problem, weights), abs=1e-7)
    teams_of = tuple(teams[0] for teams in solution.grid_teams)
    assert solution.terms.objective == pytest.approx(
        brute_objective(problem, teams_of, weights), abs=1e-9
    )
    assert solution.mip_gap == pytest.approx(0, abs=1e-6)
    assert solution.dual_bound == pytest.approx(solution.terms.objective, abs=1e-6)


def test_a_locked_assignment_is_kept_even_when_far():
    problem = small_problem(1)
    far_team = int(np.argmax(problem.distance_m[:, 0]))
    locked = small_problem(1, locked=((far_team, 0),))
    assert far_team not in solve(problem, candidates=None).grid_teams[0]
    assert solve(locked, candidates=None).grid_teams[0] == (far_team,)


def test_a_grid_with_two_locked_teams_keeps_both_and_shares_its_workload():
    problem = small_problem(2, locked=((0, 3), (1, 3)))
    solution = solve(problem, candidates=None)
    assert solution.grid_teams[3] == (0, 1)
    assert all(len(teams) == 1 for g, teams in enumerate(solution.grid_teams) if g != 3)
    assert sum(solution.loads) == pytest.approx(problem.total_workload)


def test_capacity_is_respected_when_it_can_be():
    # Team A sits on every grid, B far away: travel alone would give A everything.
    problem = Problem(
        ["A", "B"],
        [8.0, 8.0],
        [f"g{g}" for g in range(6)],
        [3.0, 3.0, 3.0, 3.0, 2.0, 2.0],
        np.array([[0.0] * 6, [9000.0] * 6]),
        strip_edges(6),
    )
    solution = solve(problem, candidates=None, mip_rel_gap=0)
    assert solution.status == "optimal"
    assert max(solution.loads) <= 8.0 + 1e-9
    assert solution.terms.overload == 0


def test_hopeless_capacity_is_reported_not_refused():
    problem = Problem(["A", "B"], [2.0, 1.0], ["g0", "g1", "g2"], [2.0, 2.0, 2.0], np.zeros((2, 3)))
    solution = solve(problem, candidates=None)
    assert sorted(len(teams) for teams in solution.grid_teams) == [1, 1, 1]
    # 6 units of work, 3 of capacity: half of it is over capacity whatever is done.
    assert solution.terms.overload == pytest.approx(0.5)


def test_contiguity_prefers_a_contiguous_split_of_a_strip():
    # Both teams start from the station: only contiguity tells the balanced splits apart.
    problem = Problem(
        ["A", "B"], [3.0, 3.0], [f"g{g}" for g in range(6)], [1.0] * 6, np.full((2, 6), 500.0)
    )
    strip = Problem(
        ["A", "B"],
        [3.0, 3.0],
        [f"g{g}" for g in range(6)],
        [1.0] * 6,
        np.full((2, 6), 500.0),
        strip_edges(6),
    )
    solution = solve(strip, candidates=None, mip_rel_gap=0)
    teams_of = [teams[0] for teams in solution.grid_teams]
    assert teams_of in ([0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0])
    assert solution.terms.split == pytest.approx(1 / 5)
    assert solve(problem, candidates=None).terms.split == 0  # no edges, no term


def test_the_time_limit_is_respected_on_a_larger_station():
    problem = lattice_problem(15, 30, seed=11)
    solution = solve(problem, time_limit=2.0)
    assert solution.seconds < 3.0
    assert solution.status == "time_limit"
    assert "Time limit reached" in solution.message
    assert all(len(teams) == 1 for teams in solution.grid_teams)
    assert solution.min_utilisation > 0.5  # every team works
    # On a busy machine HiGHS may not finish the root LP in time: then there is no bound.
    if solution.dual_bound is not None:
        assert solution.dual_bound <= solution.terms.objective
        assert solution.mip_gap == pytest.approx(
            (solution.terms.objective - solution.dual_bound) / solution.terms.objective, abs=1e-6
        )
    else:
        assert solution.mip_gap is None


def lattice_problem(side: int, teams: int, seed: int) -> Problem:
    """Square grids 900 m apart, teams based at random, capacity 10% above an even share."""
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(side) * 900.0, np.arange(side) * 900.0)
    bx, by = rng.uniform(0, side * 900, teams), rng.uniform(0, side * 900, teams)
    edges = [(i, i + 1) for i in range(side * side) if (i + 1) % side] + [
        (i, i + side) for i in range(side * (side - 1))
    ]
    workload = 1 + rng.gamma(0.7, 2.0, side * side)
    return Problem(
        [f"T{t}" for t in range(teams)],
        np.full(teams, workload.sum() / teams * 1.1),
        [f"g{g}" for g in range(side * side)],
        workload,
        np.hypot(bx[:, None] - xs.ravel()[None, :], by[:, None] - ys.ravel()[None, :]),
        edges,
    )


def objective_of(problem: Problem, teams, weights: Weights) -> float:
    return evaluate(problem, teams, weights).objective


def test_a_move_is_scored_as_the_objective_changes():
    problem = lattice_problem(6, 5, seed=3)
    weights = Weights(worst=2.0, overload=3.0)
    cands = candidate_teams(problem, 3)
    state = _State(problem, weights, cands, greedy(problem, weights, cands))
    rng = np.random.default_rng(4)
    for _ in range(60):
        grid = int(rng.integers(len(cands)))
        team = int(rng.choice(cands[grid]))
        before = objective_of(problem, state.teams, weights)
        delta = state.move_delta(grid, team)
        state.move(grid, team)
        after = objective_of(problem, state.teams, weights)
        assert after - before == pytest.approx(delta, abs=1e-9)


def test_the_heuristic_covers_every_grid_with_every_team_working():
    problem = lattice_problem(12, 12, seed=5)
    weights = Weights()
    cands = candidate_teams(problem)
    start = greedy(problem, weights, cands)
    assert all(len(teams) == 1 for teams in start)
    polished = polish(problem, weights, cands, start, deadline=float("inf"))
    scores = [objective_of(problem, teams, weights) for teams in (start, polished)]
    assert scores[1] <= scores[0]
    loads = np.zeros(12)
    for grid, (team,) in enumerate(polished):
        loads[team] += problem.workload[grid]
    assert (loads / problem.capacity).min() > 0.6


def test_teams_sharing_a_base_take_turns_as_candidates():
    problem = Problem(
        [f"T{t}" for t in range(6)],
        np.ones(6),
        [f"g{g}" for g in range(12)],
        np.ones(12),
        np.full((6, 12), 100.0),
        locked={(5, 0)},
    )
    cands = candidate_teams(problem, 2)
    assert cands[0] == (5,)
    assert set().union(*cands[1:]) == set(range(6))
    assert all(len(c) >= 2 for c in cands[1:])
    assert len(candidate_teams(problem, None)[1]) == 6


def test_bad_problems_and_weights_name_the_field():
    with pytest.raises(InputError) as caught:
        Problem([], [], ["g"], [1.0], np.zeros((0, 1)))
    assert caught.value.field == "teams"
    with pytest.raises(InputError) as caught:
        Problem(["A"], [0.0], ["g"], [1.0], np.zeros((1, 1)))
    assert caught.value.field == "capacity"
    with pytest.raises(InputError) as caught:
        Weights(split=-1)
    assert caught.value.field == "split"


def test_shared_boundaries_need_an_edge_not_a_corner():
    boxes = [
        shapely.box(0, 0, 100, 100),
        shapely.box(100, 0, 200, 100),  # shares an edge with 0
        shapely.box(200, 100, 300, 200),  # touches 1 at a corner only
        # Shares 1's top edge, drawn with its own vertices 0.2 m off.
        shapely.Polygon([(100, 100.2), (150, 100.1), (200, 100.2), (200, 200), (100, 200)]),
    ]
    assert optimiser.shared_boundaries(boxes).tolist() == [[0, 1], [1, 3], [2, 3]]


# -- against the database ------------------------------------------------------------------


@pytest.fixture
def station(db, settings, tmp_path):
    """S1 answers for G1..G4 (west to east); T1 based west, T2 east; office team T3 idle.

    T2 has G1 on weekdays 08-16 (far from T2: the optimiser moves it); T1 has G4 locked.
    Public-order incidents make G3 the riskiest grid.
    """
    load_tiny_city(db, settings, tmp_path)
    add_station(db, "S1", lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    t1 = add_team(db, T1, "S1", base=(119.005, 36.71), capacity=4)
    t2 = add_team(db, T2, "S1", base=(119.035, 36.71), capacity=4)
    old = add_assignment(db, t2, G1, weekdays=31, starts=time(8), ends=time(16))
    locked = add_assignment(db, t1, G4, locked=True)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for day in range(4):
        add_incident(
            db, grid_code=G3, reported_at=now - timedelta(days=day + 1), category="public_order"
        )
    add_incident(db, grid_code=G3, reported_at=now - timedelta(days=40), category="public_order")
    add_incident(db, grid_code=G2, reported_at=now - timedelta(days=2), state="rejected")
    db.info.update(old=old, locked=locked, now=now)
    return db


def test_incident_risk_is_weighted_per_week(station):
    risk = optimiser.incident_risk(station, [G1, G2, G3], days=28, until=station.info["now"])
    assert risk == {G3: pytest.approx(4 * 3.0 * 7 / 28)}


def test_a_proposal_and_its_changes(station):
    proposal = optimiser.propose(
        station, "S1", valid_from=MONDAY, until=station.info["now"], time_limit=5
    )
    by_grid = {a.grid_code: a for a in proposal.assignments}
    assert sorted(by_grid) == [G1, G2, G3, G4]
    assert (by_grid[G4].team_mark, by_grid[G4].change) == (T1, "locked")
    assert by_grid[G4].assignment_ids == (station.info["locked"].id,)
    assert by_grid[G1].team_mark == T1  # nearer than T2
    [removed] = proposal.removed
    assert (removed.assignment_id, removed.team_mark, removed.grid_code) == (
        station.info["old"].id,
        T2,
        G1,
    )
    for grid in (G2, G3):
        team = by_grid[grid].team_mark
        assert by_grid[grid].change == "added"
        # T2 keeps its weekday shift pattern; T1's is its locked daily 08-20.
        expected = "mon-fri 08:00-16:00" if team == T2 else "daily 08:00-20:00"
        assert [s.describe() for s in by_grid[grid].shifts] == [expected]
    assert proposal.total_workload == pytest.approx(4 + 3.0)
    assert proposal.solution.status == "optimal"
    assert proposal.counts() == {"added": 3, "kept": 0, "locked": 1, "removed": 1}
    body = json.loads(json.dumps(proposal.as_dict()))
    assert body["counts"] == proposal.counts()
    assert body["solver"]["mip_gap"] == pytest.approx(0, abs=1e-4)


def test_applying_a_proposal_writes_optimiser_assignments(station):
    proposal = optimiser.propose(station, "S1", valid_from=MONDAY, until=station.info["now"])
    applied = optimiser.apply_proposal(station, proposal, created_by="planner")
    assert applied.ended == (station.info["old"].id,)
    assert station.info["old"].valid_to == MONDAY - timedelta(1)
    made = station.scalars(
        select(PatrolAssignment).where(PatrolAssignment.id.in_(applied.added))
    ).all()
    assert {(a.source, a.valid_from, a.created_by) for a in made} == {
        ("optimiser", MONDAY, "planner")
    }
    running = assignments.list_assignments(station, day=MONDAY + timedelta(7))
    assert sorted(a.grid_code for a in running) == [G1, G2, G3, G4]
    assert assignments.conflicts(station, day=MONDAY) == []
    again = optimiser.propose(station, "S1", valid_from=MONDAY, until=station.info["now"])
    assert again.counts() == {"added": 0, "kept": 3, "locked": 1, "removed": 0}


def test_not_enough_capacity_is_a_note_not_an_error(station):
    proposal = optimiser.propose(
        station, "S1", valid_from=MONDAY, until=station.info["now"], floor=10
    )
    assert proposal.capacity_shortfall == pytest.approx(40 + 3 - 8)
    assert proposal.notes[0].startswith("not enough capacity: the grids need 43.0")
    assert len(proposal.assignments) == 4


def test_a_station_without_teams_or_grids_is_an_input_error(station):
    add_station(station, "S9", lon=119.0, lat=36.7)
    with pytest.raises(InputError) as caught:
        optimiser.propose(station, "S9")
    assert caught.value.field == "station_code"
    add_team(station, "PA-370705-0009", "S9")
    with pytest.raises(InputError, match="answers for no grid"):
        optimiser.propose(station, "S9")


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
        "119.02",
        "36.71",
        "--crs",
        "cgcs2000",
        "--grids",
        f"{G1},{G2},{G3},{G4}",
        "--commit",
    )
    for mark, lon in ((T1, "119.005"), (T2, "119.035")):
        invoke(
            "patrols",
            "add-team",
            mark,
            "--name",
            mark,
            "--station",
            "S1",
            "--base",
            lon,
            "36.71",
            "--crs",
            "cgcs2000",
            "--capacity",
            "3",
            "--commit",
        )
    return invoke


def test_cli_assign_proposes_and_commits(cli):
    args = ("patrols", "assign", "--station", "S1", "--valid-from", "2026-03-02")
    dry = cli(*args, "--time-limit", "5")
    assert "solver: optimal" in dry.output
    assert "gap 0.00%" in dry.output
    assert "changes from 2026-03-02: 4 added, 0 removed, 0 kept, 0 locked" in dry.output
    assert f"+ {T1} {G1} daily 08:00-20:00" in dry.output
    assert "dry run: nothing was written" in dry.output
    assert json.loads(cli("patrols", "assignments", "--json").output) == []

    done = json.loads(cli(*args, "--json", "--commit").output)
    assert len(done["applied"]["added"]) == 4
    assert done["balance"]["max_over_min"] == pytest.approx(1.0)
    listed = json.loads(cli("patrols", "assignments", "--all", "--json").output)
    assert {(a["source"], a["valid_from"]) for a in listed} == {("optimiser", "2026-03-02")}
    assert {a["team_mark"] for a in listed if a["grid_code"] in (G1, G2)} == {T1}

    again = cli(*args, "--shift-days", "weekends")
    assert "0 added, 0 removed, 4 kept, 0 locked" in again.output


def test_cli_manual_assignment_is_assign_team(cli):
    result = cli("patrols", "assign", "PA-370705-0001", G1, ok=False)
    assert result.exit_code == 2  # the optimiser takes no arguments
    help_text = cli("patrols", "assign-team", "--help").output
    assert "Give TEAM (a mark) GRID (a code)" in help_text
