"""The assignment optimiser's model: teams to grids as a mixed-integer programme (HiGHS).

Pure numbers: :mod:`geogrid.optimiser` builds the :class:`Problem` from the database,
:mod:`geogrid.optimiser_solve` solves it with :func:`run_milp` and heuristics, and
:func:`evaluate` scores any assignment by the same objective.

Variables
    ``x[t,g]`` binary: team ``t`` patrols grid ``g``, only for the candidate teams of
    ``g`` (its nearest, see :func:`candidate_teams`; the bound is the restricted
    problem's); ``load[t]``; ``d[t] >= 0`` the team's distance from its proportional
    share; ``o[t] >= 0`` its load over capacity; ``m >= 0`` the worst relative distance
    from a share; ``y[i,j]`` in [0, 1] for each pair of grids sharing a boundary: the
    pair is split between teams.

Constraints
    every free grid has exactly one team (``sum_t x[t,g] = 1``); a locked (team, grid)
    is fixed at 1 and no other team is given that grid (several locked teams on one grid
    share its workload equally); ``load[t] = sum_g w[g] x[t,g]``;
    ``d[t] >= |load[t] - share[t]|`` with ``share[t] = W cap[t] / C`` (W, C the totals);
    ``m share[t] >= |load[t] - share[t]|``; ``o[t] >= load[t] - cap[t]`` (capacity is
    soft: a station short of capacity still gets a proposal, the shortfall reported);
    ``y[i,j] >= x[t,i] - x[t,j]`` for the candidates ``t`` of ``i`` (if the two grids
    have different teams, ``i``'s team makes it 1; the reverse direction is added only
    where a grid has several locked teams, since it triples the time of the LP for a
    bound a few per cent tighter).

Objective (each term is normalised so that its weight means the same at any size)
    ``balance * sum(d) / 2W``: the share of the workload that would have to move for every
    team to carry a load proportional to its capacity (the sum of deviations from the
    mean utilisation, capacity-weighted); ``worst * m``: the busiest or idlest team's
    relative distance from its share. The sum alone lets one team idle for a little
    travel saved (an idle team among fifty is 2% of the workload); min-max alone leaves
    every team but the extreme one free and gives local search nothing to follow; so both.
    ``travel_per_km * sum(dist[t,g] x[t,g]) / 1000G``: the mean km from a team's base to
    its grids' centroids. ``split * sum(y) / E``: the share of shared boundaries that
    separate two teams, a linearised penalty rather than flow-based contiguity (a
    commodity per team would not solve a station in seconds), so a team's grids are
    preferably, not necessarily, contiguous. ``overload * sum(o) / W``: the share of the
    workload beyond capacity, weighted to win over everything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from geogrid.errors import InputError

#: Candidate teams per grid by default (the nearest); None considers every team.
CANDIDATES = 8
_STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded"}


@dataclass(frozen=True)
class Weights:
    """How much each term of the objective counts (each term is a share or a mean km)."""

    balance: float = 1.0
    worst: float = 0.5
    travel_per_km: float = 0.5
    split: float = 1.0
    overload: float = 100.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"weight {name} must be a number >= 0, not {value}", field=name)


@dataclass(eq=False)
class Problem:
    """Teams (capacity), grids (workload), distances (m), shared boundaries and locks."""

    team_marks: Sequence[str]
    capacity: NDArray[np.float64]
    grid_codes: Sequence[str]
    workload: NDArray[np.float64]
    #: Metres from each team's base to each grid's centroid, shape (teams, grids).
    distance_m: NDArray[np.float64]
    #: Pairs of grid indices (i < j) sharing a boundary, shape (E, 2).
    edges: NDArray[np.int64] = field(default_factory=lambda: np.empty((0, 2), np.int64))
    #: (team index, grid index) pairs a planner locked: kept whatever else changes.
    locked: frozenset[tuple[int, int]] = frozenset()

    def __post_init__(self) -> None:
        self.team_marks = tuple(self.team_marks)
        self.grid_codes = tuple(self.grid_codes)
        self.capacity = np.asarray(self.capacity, dtype=np.float64)
        self.workload = np.asarray(self.workload, dtype=np.float64)
        self.distance_m = np.asarray(self.distance_m, dtype=np.float64)
        self.edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        self.locked = frozenset((int(t), int(g)) for t, g in self.locked)
        teams, grids = len(self.team_marks), len(self.grid_codes)
        if not teams:
            raise InputError("there are no active teams to assign", field="teams")
        if not grids:
            raise InputError("there are no grids to assign", field="grids")
        if self.capacity.shape != (teams,) or not np.all(self.capacity > 0):
            raise InputError("every team needs a capacity > 0", field="capacity")
        if self.workload.shape != (grids,) or not np.all(self.workload >= 0):
            raise InputError("every grid needs a workload >= 0", field="workload")
        if self.distance_m.shape != (teams, grids):
            raise InputError("distances must be given for every team and grid", field="distance")
        if len(self.edges) and (self.edges.min() < 0 or self.edges.max() >= grids):
            raise InputError("an edge names a grid that is not in the problem", field="edges")
        if any(not (0 <= t < teams and 0 <= g < grids) for t, g in self.locked):
            raise InputError("a lock names a team or grid not in the problem", field="locked")

    @property
    def total_workload(self) -> float:
        """The workload of all grids (W)."""
        return float(self.workload.sum())

    @property
    def total_capacity(self) -> float:
        """The capacity of all teams (C)."""
        return float(self.capacity.sum())

    def locked_teams(self) -> dict[int, tuple[int, ...]]:
        """Grid index -> the teams locked on it."""
        by_grid: dict[int, list[int]] = {}
        for team, grid in sorted(self.locked):
            by_grid.setdefault(grid, []).append(team)
        return {grid: tuple(teams) for grid, teams in by_grid.items()}


@dataclass(frozen=True)
class Terms:
    """The objective's terms for one assignment, unweighted, and the weighted total."""

    #: Share of the workload that would have to move for proportional loads.
    balance: float
    #: The largest deviation of a team's load from its share, relative to the share.
    worst: float
    #: Mean km from a team's base to the centroid of a grid it patrols.
    travel_km: float
    #: Share of shared boundaries with a different team on either side.
    split: float
    #: Share of the workload beyond the teams' capacity.
    overload: float
    objective: float

    def as_dict(self) -> dict[str, float]:
        """JSON-ready."""
        return asdict(self)


def evaluate(problem: Problem, grid_teams: Sequence[Iterable[int]], weights: Weights) -> Terms:
    """The objective's terms for an assignment (a tuple of team indices per grid)."""
    teams = [tuple(sorted(set(t))) for t in grid_teams]
    balance, worst, overload = load_terms(problem, loads_of(problem, teams))
    travel = sum(problem.distance_m[t, g] for g, ts in enumerate(teams) for t in ts)
    travel_km = float(travel) / 1000 / len(teams)
    split = sum(teams[i] != teams[j] for i, j in problem.edges)
    split_share = split / len(problem.edges) if len(problem.edges) else 0.0
    objective = (
        weights.balance * balance
        + weights.worst * worst
        + weights.travel_per_km * travel_km
        + weights.split * split_share
        + weights.overload * overload
    )
    return Terms(balance, worst, travel_km, float(split_share), overload, float(objective))


def shares(problem: Problem) -> NDArray[np.float64]:
    """Each team's proportional share of the workload: ``W cap[t] / C``."""
    return problem.total_workload * problem.capacity / problem.total_capacity


def load_terms(problem: Problem, loads: NDArray[np.float64]) -> tuple[float, float, float]:
    """The terms that depend on the loads alone: balance, worst and overload."""
    share = shares(problem)
    total = problem.total_workload or 1.0
    balance = float(np.abs(loads - share).sum()) / (2 * total)
    worst = float((np.abs(loads - share) / share).max()) if problem.total_workload else 0.0
    overload = float(np.maximum(loads - problem.capacity, 0).sum()) / total
    return balance, worst, overload


def loads_of(problem: Problem, grid_teams: Sequence[tuple[int, ...]]) -> NDArray[np.float64]:
    """Each team's load: the workload of its grids (a grid shared by k teams counts 1/k)."""
    loads = np.zeros(len(problem.team_marks))
    for grid, teams in enumerate(grid_teams):
        for team in teams:
            loads[team] += problem.workload[grid] / len(teams)
    return loads


def candidate_teams(problem: Problem, limit: int | None = CANDIDATES) -> list[tuple[int, ...]]:
    """The teams that may take each grid: its ``limit`` nearest, and teams it is nearest to.

    A grid also goes to the teams for which it is among their ``limit * G / T`` nearest
    grids, so a team based away from everyone else still gets candidates. Ties in
    distance (teams sharing the station as base) are broken by rotating through the
    teams, so that such teams take turns instead of the first ``limit`` taking all.
    Locked grids have only their locked teams.
    """
    teams, grids = problem.distance_m.shape
    mask = np.ones((teams, grids), dtype=bool)
    if limit is not None and limit < teams:
        rotation = (np.arange(teams)[:, None] - np.arange(grids)[None, :]) % teams
        by_grid = np.lexsort((rotation, problem.distance_m), axis=0)[:limit]
        per_team = min(grids, math.ceil(limit * grids / teams))
        by_team = np.lexsort((rotation, problem.distance_m), axis=1)[:, :per_team]
        mask[:] = False
        mask[by_grid, np.arange(grids)[None, :]] = True
        mask[np.arange(teams)[:, None], by_team] = True
    for grid, locked in problem.locked_teams().items():
        mask[:, grid] = False
        mask[list(locked), grid] = True
    return [tuple(np.flatnonzero(mask[:, g]).tolist()) for g in range(grids)]


@dataclass(frozen=True)
class MilpResult:
    """What HiGHS returned: an assignment (None if none was found in time) and its bound."""

    grid_teams: tuple[tuple[int, ...], ...] | None
    status: str
    message: str
    mip_gap: float | None
    dual_bound: float | None
    variables: int
    constraints: int


def run_milp(
    problem: Problem,
    weights: Weights,
    cands: Sequence[tuple[int, ...]],
    *,
    time_limit: float,
    mip_rel_gap: float,
) -> MilpResult:
    """Solve the MILP over the candidate teams with HiGHS within the limits given."""
    model = _Model(problem, weights, cands)
    result = milp(
        model.c,
        integrality=model.integrality,
        bounds=Bounds(model.lower, model.upper),
        constraints=LinearConstraint(model.matrix, model.row_lower, model.row_upper),
        options={"time_limit": float(time_limit), "mip_rel_gap": float(mip_rel_gap)},
    )
    return MilpResult(
        grid_teams=model.grid_teams(result.x) if result.x is not None else None,
        status=_STATUS.get(result.status, "error"),
        message=str(result.message),
        mip_gap=_number(getattr(result, "mip_gap", None)),
        dual_bound=_number(getattr(result, "mip_dual_bound", None)),
        variables=len(model.c),
        constraints=model.matrix.shape[0],
    )


def _number(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class _Model:
    """The MILP in scipy's form, its columns x (pairs), load, d, o (teams), y (edges), m."""

    def __init__(
        self, problem: Problem, weights: Weights, cands: Sequence[tuple[int, ...]]
    ) -> None:
        teams, grids, edges = len(problem.team_marks), len(problem.grid_codes), len(problem.edges)
        locked = problem.locked_teams()
        self.grids = grids
        self.pairs = [(t, g) for g in range(grids) for t in cands[g]]
        index = {pair: i for i, pair in enumerate(self.pairs)}
        n_x = len(self.pairs)
        l0, d0, o0 = n_x, n_x + teams, n_x + 2 * teams
        y0 = n_x + 3 * teams
        m0 = y0 + edges
        pair_t = np.array([t for t, _ in self.pairs])
        pair_g = np.array([g for _, g in self.pairs])
        total = problem.total_workload or 1.0

        self.c = np.concatenate(
            [
                weights.travel_per_km * problem.distance_m[pair_t, pair_g] / 1000 / grids,
                np.zeros(teams),
                np.full(teams, weights.balance / (2 * total)),
                np.full(teams, weights.overload / total),
                np.full(edges, weights.split / edges if edges else 0.0),
                [weights.worst],
            ]
        )
        self.integrality = np.concatenate([np.ones(n_x), np.zeros(len(self.c) - n_x)])
        self.lower = np.zeros(len(self.c))
        self.upper = np.concatenate(
            [np.ones(n_x), np.full(3 * teams, np.inf), np.ones(edges), [np.inf]]
        )
        for pair in problem.locked:
            self.lower[index[pair]] = 1.0

        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lo: list[float] = []
        hi: list[float] = []

        def row(entries: Iterable[tuple[int, float]], low: float, high: float) -> None:
            number = len(lo)
            for col, val in entries:
                rows.append(number)
                cols.append(col)
                vals.append(val)
            lo.append(low)
            hi.append(high)

        for g in range(grids):
            if g not in locked:
                row(((index[(t, g)], 1.0) for t in cands[g]), 1.0, 1.0)
        share = shares(problem)
        load: list[list[tuple[int, float]]] = [[] for _ in range(teams)]
        for i, (t, g) in enumerate(self.pairs):
            load[t].append((i, problem.workload[g] / len(locked.get(g, (t,)))))
        for t in range(teams):
            # The load once as a column keeps the rows below short (a faster LP).
            row([*load[t], (l0 + t, -1.0)], 0.0, 0.0)
            row([(l0 + t, 1.0), (d0 + t, -1.0)], -np.inf, share[t])
            row([(l0 + t, 1.0), (d0 + t, 1.0)], share[t], np.inf)
            row([(l0 + t, 1.0), (o0 + t, -1.0)], -np.inf, problem.capacity[t])
            if share[t] > 0:  # |load - share| <= share * m
                row([(l0 + t, 1.0), (m0, -share[t])], -np.inf, share[t])
                row([(l0 + t, 1.0), (m0, share[t])], share[t], np.inf)
        for e, (i, j) in enumerate(problem.edges):
            # If i and j have different teams, i's team is a candidate of i with
            # x[t,i] - x[t,j] = 1: one direction suffices, unless a grid has several teams.
            shared = len(locked.get(i, ())) > 1 or len(locked.get(j, ())) > 1
            for a, b in ((i, j), (j, i)) if shared else ((i, j),):
                for t in cands[a]:
                    other = index.get((t, b))
                    entries = [(index[(t, a)], 1.0), (y0 + e, -1.0)]
                    row(entries if other is None else [*entries, (other, -1.0)], -np.inf, 0.0)

        self.matrix = coo_array((vals, (rows, cols)), shape=(len(lo), len(self.c))).tocsr()
        self.row_lower, self.row_upper = np.array(lo), np.array(hi)

    def grid_teams(self, x: NDArray[np.float64]) -> tuple[tuple[int, ...], ...]:
        chosen: dict[int, list[int]] = {}
        for (t, g), value in zip(self.pairs, x, strict=False):
            if value > 0.5:
                chosen.setdefault(g, []).append(t)
        return tuple(tuple(chosen.get(g, ())) for g in range(self.grids))
