"""Solving the assignment problem: a quick heuristic, HiGHS, and a local-search polish.

:func:`solve` runs the MILP of :mod:`geogrid.optimiser_model` with a time limit. HiGHS
proves small stations optimal in a fraction of a second; on a large one the time limit
usually ends the search with a fair assignment and a loose bound (the contiguity and
balance terms have weak linear relaxations), and scipy's interface cannot hand it a
starting solution. So a heuristic answer is made first (teams growing regions in turn,
:func:`greedy`, then :func:`polish`: one grid to another candidate team, or two
neighbouring grids of different teams swapped, while the objective falls), HiGHS's
answer is polished the same way, and the better one is returned. Polishing only lowers
the objective and HiGHS's bound stays valid, so the gap reported (the final objective
against that bound) is honest.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass

from geogrid.errors import InputError
from geogrid.optimiser_model import (
    CANDIDATES,
    Problem,
    Terms,
    Weights,
    candidate_teams,
    evaluate,
    loads_of,
    run_milp,
    shares,
)

#: Shares of the time limit: at most for the quick heuristic, and kept back from HiGHS
#: for polishing its answer.
_HEURISTIC_SHARE = 0.2
_POLISH_SHARE = 0.1


@dataclass(frozen=True)
class Solution:
    """The teams of each grid, the loads, the objective's terms and how the solver fared."""

    grid_teams: tuple[tuple[int, ...], ...]
    loads: tuple[float, ...]
    terms: Terms
    #: ``optimal`` (within the gap asked for), ``time_limit``, or the solver's failure.
    status: str
    message: str
    #: ``milp`` (HiGHS's answer), ``milp+polish`` (moves improved it) or ``greedy+polish``
    #: (the quick heuristic did better, or HiGHS found nothing in time).
    source: str
    #: HiGHS's lower bound on the objective, and the gap of the final objective to it.
    dual_bound: float | None
    mip_gap: float | None
    seconds: float
    variables: int
    constraints: int
    #: The lowest and highest load/capacity of a team.
    min_utilisation: float
    max_utilisation: float

    @property
    def balance_ratio(self) -> float | None:
        """Highest over lowest utilisation (1 is perfect); None when a team has no load."""
        if self.min_utilisation <= 0:
            return None
        return self.max_utilisation / self.min_utilisation


def solve(
    problem: Problem,
    weights: Weights | None = None,
    *,
    time_limit: float = 10.0,
    mip_rel_gap: float = 1e-4,
    candidates: int | None = CANDIDATES,
) -> Solution:
    """The best assignment found within ``time_limit`` seconds, and HiGHS's bound on it.

    A greedy assignment polished by local moves is made first (well under a second for a
    station); HiGHS then solves the MILP with the rest of the time, its answer is polished
    too unless proven optimal, and the better of the two is returned (HiGHS's on a tie).
    """
    weights = weights or Weights()
    if not time_limit > 0:
        raise InputError(f"the time limit must be > 0 s, not {time_limit}", field="time_limit")
    if not mip_rel_gap >= 0:
        raise InputError(f"the gap must be >= 0, not {mip_rel_gap}", field="mip_rel_gap")
    started = time.perf_counter()
    deadline = started + time_limit
    cands = candidate_teams(problem, candidates)
    quick = polish(
        problem,
        weights,
        cands,
        greedy(problem, weights, cands),
        deadline=started + time_limit * _HEURISTIC_SHARE,
    )
    result = run_milp(
        problem,
        weights,
        cands,
        time_limit=max((deadline - time.perf_counter()) * (1 - _POLISH_SHARE), 0.01),
        mip_rel_gap=mip_rel_gap,
    )
    found = [("greedy+polish", quick)]
    if result.grid_teams is not None and result.status == "optimal":
        found.insert(0, ("milp", result.grid_teams))
    elif result.grid_teams is not None:
        polished = polish(problem, weights, cands, result.grid_teams, deadline=deadline)
        found.insert(0, ("milp" if polished == result.grid_teams else "milp+polish", polished))
    scored = [(evaluate(problem, teams, weights), source, teams) for source, teams in found]
    terms, source, grid_teams = min(scored, key=lambda item: item[0].objective)
    gap = result.mip_gap if source == "milp" else None
    if gap is None and result.dual_bound is not None and terms.objective > 0:
        gap = max(0.0, (terms.objective - result.dual_bound) / terms.objective)
    loads = loads_of(problem, grid_teams)
    ratio = loads / problem.capacity
    return Solution(
        grid_teams=grid_teams,
        loads=tuple(float(v) for v in loads),
        terms=terms,
        status=result.status,
        message=result.message,
        source=source,
        dual_bound=result.dual_bound,
        mip_gap=gap,
        seconds=time.perf_counter() - started,
        variables=result.variables,
        constraints=result.constraints,
        min_utilisation=float(ratio.min()),
        max_utilisation=float(ratio.max()),
    )


class _State:
    """An assignment with its loads, updated move by move; objective changes computed exactly.

    Balance, overload and travel change only for the two teams a move touches; the worst
    team's deviation is the largest of the untouched teams' (kept as the three largest)
    and the two new ones. So a move is scored in constant time.
    """

    def __init__(
        self,
        problem: Problem,
        weights: Weights,
        cands: Sequence[tuple[int, ...]],
        grid_teams: Sequence[tuple[int, ...]],
    ) -> None:
        self.problem, self.weights, self.cands = problem, weights, cands
        self.locked = problem.locked_teams()
        self.teams = [tuple(t) for t in grid_teams]
        self.work = problem.workload.tolist()
        self.distance = problem.distance_m
        self.capacity = problem.capacity.tolist()
        self.share = shares(problem).tolist()
        self.loads = loads_of(problem, self.teams).tolist()
        self.total = problem.total_workload or 1.0
        self.neighbours: list[list[int]] = [[] for _ in self.teams]
        for i, j in problem.edges:
            self.neighbours[i].append(int(j))
            self.neighbours[j].append(int(i))
        self.edge_weight = weights.split / len(problem.edges) if len(problem.edges) else 0.0
        self.per_km = weights.travel_per_km / 1000 / len(self.teams)
        self._rank()

    def _rank(self) -> None:
        deviations = ((self._deviation(t, load), t) for t, load in enumerate(self.loads))
        self.top = heapq.nlargest(3, deviations)

    def _deviation(self, team: int, load: float) -> float:
        share = self.share[team]
        return abs(load - share) / share if share > 0 else 0.0

    def _team_cost(self, team: int, load: float) -> float:
        w = self.weights
        return (
            w.balance * abs(load - self.share[team]) / (2 * self.total)
            + w.overload * max(load - self.capacity[team], 0.0) / self.total
        )

    def move_delta(self, grid: int, team: int) -> float:
        """How much the objective changes if the free ``grid`` goes to ``team``."""
        (old,) = self.teams[grid]
        if team == old:
            return 0.0
        work = self.work[grid]
        old_load, new_load = self.loads[old] - work, self.loads[team] + work
        delta = (
            self._team_cost(old, old_load)
            - self._team_cost(old, self.loads[old])
            + self._team_cost(team, new_load)
            - self._team_cost(team, self.loads[team])
        )
        rest = next((d for d, t in self.top if t != old and t != team), 0.0)
        worst = max(rest, self._deviation(old, old_load), self._deviation(team, new_load))
        delta += self.weights.worst * (worst - self.top[0][0])
        delta += self.per_km * (self.distance[team, grid] - self.distance[old, grid])
        for other in self.neighbours[grid]:
            theirs = self.teams[other]
            delta += self.edge_weight * ((theirs != (team,)) - (theirs != (old,)))
        return float(delta)

    def place(self, grid: int, team: int) -> None:
        """Give a grid nobody has yet to ``team``."""
        self.loads[team] += self.work[grid]
        self.teams[grid] = (team,)
        self._rank()

    def move(self, grid: int, team: int) -> None:
        """Move the free ``grid`` to ``team``."""
        (old,) = self.teams[grid]
        self.loads[old] -= self.work[grid]
        self.loads[team] += self.work[grid]
        self.teams[grid] = (team,)
        self._rank()


def polish(
    problem: Problem,
    weights: Weights,
    cands: Sequence[tuple[int, ...]],
    grid_teams: Sequence[tuple[int, ...]],
    *,
    deadline: float,
) -> tuple[tuple[int, ...], ...]:
    """Improve an assignment by single moves and neighbour swaps until none helps or time ends."""
    state = _State(problem, weights, cands, grid_teams)
    free = [g for g in range(len(state.teams)) if g not in state.locked]
    improved = True
    while improved:
        improved = False
        for grid in free:
            if time.perf_counter() >= deadline:
                return tuple(state.teams)
            best, gain = None, -1e-12
            for team in cands[grid]:
                delta = state.move_delta(grid, team)
                if delta < gain:
                    best, gain = team, delta
            if best is not None:
                state.move(grid, best)
                improved = True
        for i, j in problem.edges:
            if i in state.locked or j in state.locked or state.teams[i] == state.teams[j]:
                continue
            (a,), (b,) = state.teams[i], state.teams[j]
            if b not in cands[i] or a not in cands[j]:
                continue
            first = state.move_delta(i, b)
            state.move(i, b)
            second = state.move_delta(j, a)
            if first + second < -1e-12:
                state.move(j, a)
                improved = True
            else:
                state.move(i, a)
    return tuple(state.teams)


def greedy(
    problem: Problem, weights: Weights, cands: Sequence[tuple[int, ...]]
) -> tuple[tuple[int, ...], ...]:
    """Teams grow regions in turn: the least loaded takes a free grid, a neighbour if it can.

    Region growing gives balanced, contiguous districts near the bases before any search:
    the team furthest below its share picks next, from the free grids it is a candidate
    for, preferring one next to its grids, then the nearest to its base. A team with
    nothing left to take drops out; every grid is taken, as each has a candidate.
    """
    locked = problem.locked_teams()
    state = _State(problem, weights, cands, [locked.get(g, ()) for g in range(len(cands))])
    options: list[list[int]] = [[] for _ in problem.team_marks]
    for grid, teams in enumerate(cands):
        if grid not in locked:
            for team in teams:
                options[team].append(grid)
    for team, grids in enumerate(options):
        grids.sort(key=lambda g, t=team: problem.distance_m[t, g])
    share = shares(problem)
    queue = [(state.loads[t] / share[t] if share[t] else 0.0, t) for t in range(len(options))]
    heapq.heapify(queue)
    while queue:
        _, team = heapq.heappop(queue)
        options[team] = [g for g in options[team] if not state.teams[g]]
        if not options[team]:
            continue
        mine = (team,)
        grid = next(
            (g for g in options[team] if any(state.teams[n] == mine for n in state.neighbours[g])),
            options[team][0],
        )
        state.place(grid, team)
        heapq.heappush(queue, (state.loads[team] / share[team] if share[team] else 0.0, team))
    return tuple(state.teams)
