"""An optimiser's answer as a proposal: each grid's team and shifts, and the changes it makes.

The changes are against the station's assignments that have not ended by the day the
proposal would start: ``added`` (a team given a grid it does not have), ``kept`` (a
team keeps a grid it has, its assignments untouched), ``locked`` (kept because a planner
locked it) and ``removed`` (assignments ended the day before, or deleted if they would
only have started later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, time
from typing import Any

from geogrid.models import PatrolAssignment
from geogrid.optimiser_model import Problem, Weights, shares
from geogrid.optimiser_solve import Solution
from geogrid.shifts import format_weekdays

_OVER = 1e-9

# What a proposal may remark on: English templates with %(name)s values, so that the
# web pages can show them translated (web/messages/patrol_pages.py holds each one).
NOT_ENOUGH_CAPACITY = (
    "not enough capacity: the grids need %(workload)s workload units a week and the active "
    "teams can carry %(capacity)s, so %(shortfall)s are over capacity whatever the "
    "assignment; add teams or raise their capacity"
)
OVER_CAPACITY = "over capacity: %(teams)s"
NO_GRID = "no grid for: %(teams)s"
TIME_LIMIT_WITH_GAP = (
    "the time limit ended the search: the best assignment found (%(source)s) is %(gap)s "
    "above HiGHS's bound; more time may find a better one"
)
TIME_LIMIT_WITHOUT_BOUND = (
    "the time limit ended the search before HiGHS had a bound, so the gap is unknown (the "
    "answer is %(source)s's); more time gives one"
)
SOLVER_STOPPED = "HiGHS: %(message)s; the answer is %(source)s's"
LEFT_OUT = "not in the current generation, left out: %(grids)s"
NOTE_TEMPLATES = (
    NOT_ENOUGH_CAPACITY,
    OVER_CAPACITY,
    NO_GRID,
    TIME_LIMIT_WITH_GAP,
    TIME_LIMIT_WITHOUT_BOUND,
    SOLVER_STOPPED,
    LEFT_OUT,
)


@dataclass(frozen=True)
class Note:
    """A remark on a proposal: one of :data:`NOTE_TEMPLATES` and its values, as text."""

    template: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The remark in English."""
        return self.template % self.values


@dataclass(frozen=True)
class ShiftPattern:
    """Days of the week (bit 0 Monday) and a wall-clock window, as an assignment has."""

    weekdays: int
    starts: time
    ends: time

    def describe(self) -> str:
        """As people read it, e.g. ``daily 08:00-20:00``."""
        return f"{format_weekdays(self.weekdays)} {self.starts:%H:%M}-{self.ends:%H:%M}"


@dataclass(frozen=True)
class ProposedAssignment:
    """A team on a grid in the proposal: ``added``, ``kept`` or ``locked``."""

    team_mark: str
    grid_code: str
    change: str
    #: The shifts to add, or those of the assignments kept.
    shifts: tuple[ShiftPattern, ...]
    assignment_ids: tuple[int, ...]
    workload: float
    travel_m: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        body = asdict(self)
        body["shifts"] = [shift.describe() for shift in self.shifts]
        return body


@dataclass(frozen=True)
class EndedAssignment:
    """A current assignment the proposal replaces."""

    assignment_id: int
    team_mark: str
    grid_code: str
    shift: ShiftPattern
    source: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "shift": self.shift.describe()}


@dataclass(frozen=True)
class TeamLoad:
    """A team's part in the proposal: its load against capacity and its share."""

    team_mark: str
    capacity: float
    share: float
    load: float
    utilisation: float
    grids: int
    travel_km: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class AppliedProposal:
    """What applying a proposal wrote: assignments added, ended and deleted."""

    added: tuple[int, ...]
    ended: tuple[int, ...]
    deleted: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {key: list(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Proposal:
    """A station's proposed assignments, how good they are, and the changes they make."""

    station_code: str
    generation: int
    valid_from: date
    days: int
    weights: Weights
    solution: Solution
    total_workload: float
    total_capacity: float
    teams: list[TeamLoad]
    assignments: list[ProposedAssignment]
    removed: list[EndedAssignment]
    #: What the officer should know about the answer (capacity, time limit, left-out grids).
    remarks: list[Note] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """The remarks in English, as the CLI prints them and the API returns them."""
        return [note.text for note in self.remarks]

    @property
    def capacity_shortfall(self) -> float:
        """Workload beyond the teams' total capacity, whatever the assignment (0 if none)."""
        return max(self.total_workload - self.total_capacity, 0.0)

    def counts(self) -> dict[str, int]:
        """How many assignments are added, kept, locked and removed."""
        counts = dict.fromkeys(("added", "kept", "locked"), 0)
        for proposed in self.assignments:
            counts[proposed.change] += 1
        return {**counts, "removed": len(self.removed)}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        s = self.solution
        return {
            "station_code": self.station_code,
            "generation": self.generation,
            "valid_from": self.valid_from.isoformat(),
            "days": self.days,
            "solver": {
                "status": s.status,
                "message": s.message,
                "source": s.source,
                "objective": s.terms.objective,
                "dual_bound": s.dual_bound,
                "mip_gap": s.mip_gap,
                "seconds": s.seconds,
                "variables": s.variables,
                "constraints": s.constraints,
            },
            "terms": s.terms.as_dict(),
            "weights": asdict(self.weights),
            "balance": {
                "min_utilisation": s.min_utilisation,
                "max_utilisation": s.max_utilisation,
                "max_over_min": s.balance_ratio,
            },
            "total_workload": self.total_workload,
            "total_capacity": self.total_capacity,
            "capacity_shortfall": self.capacity_shortfall,
            "counts": self.counts(),
            "teams": [team.as_dict() for team in self.teams],
            "assignments": [a.as_dict() for a in self.assignments],
            "removed": [r.as_dict() for r in self.removed],
            "notes": self.notes,
        }


def build_proposal(
    *,
    station_code: str,
    generation: int,
    valid_from: date,
    days: int,
    problem: Problem,
    solution: Solution,
    weights: Weights,
    team_ids: Sequence[int],
    current: Sequence[PatrolAssignment],
    patterns: dict[int, tuple[ShiftPattern, ...]],
    default_shift: ShiftPattern,
    skipped_grids: Sequence[str],
) -> Proposal:
    """The proposal of a solved problem, compared with the ``current`` assignments."""
    mark_of = dict(zip(team_ids, problem.team_marks, strict=True))
    existing: dict[tuple[str, str], list[PatrolAssignment]] = {}
    for a in current:
        existing.setdefault((mark_of[a.team_id], a.grid_code), []).append(a)
    proposed = []
    for g, teams in enumerate(solution.grid_teams):
        code = problem.grid_codes[g]
        for t in teams:
            mark = problem.team_marks[t]
            mine = existing.get((mark, code), [])
            change = "locked" if (t, g) in problem.locked else "kept" if mine else "added"
            shifts = (
                tuple(dict.fromkeys(ShiftPattern(a.weekdays, a.starts, a.ends) for a in mine))
                if mine
                else patterns.get(team_ids[t]) or (default_shift,)
            )
            proposed.append(
                ProposedAssignment(
                    mark,
                    code,
                    change,
                    shifts,
                    tuple(a.id for a in mine),
                    float(problem.workload[g] / len(teams)),
                    float(problem.distance_m[t, g]),
                )
            )
    pairs = {(p.team_mark, p.grid_code) for p in proposed}
    removed = [
        EndedAssignment(a.id, mark, code, ShiftPattern(a.weekdays, a.starts, a.ends), a.source)
        for (mark, code), group in existing.items()
        if (mark, code) not in pairs
        for a in group
    ]
    team_loads = _team_loads(problem, solution)
    return Proposal(
        station_code=station_code,
        generation=generation,
        valid_from=valid_from,
        days=days,
        weights=weights,
        solution=solution,
        total_workload=problem.total_workload,
        total_capacity=problem.total_capacity,
        teams=team_loads,
        assignments=sorted(proposed, key=lambda p: (p.team_mark, p.grid_code)),
        removed=sorted(removed, key=lambda r: r.assignment_id),
        remarks=_notes(problem, solution, team_loads, skipped_grids),
    )


def _team_loads(problem: Problem, solution: Solution) -> list[TeamLoad]:
    grids: list[list[int]] = [[] for _ in problem.team_marks]
    for g, teams in enumerate(solution.grid_teams):
        for t in teams:
            grids[t].append(g)
    share = shares(problem)
    return [
        TeamLoad(
            mark,
            float(problem.capacity[t]),
            float(share[t]),
            solution.loads[t],
            solution.loads[t] / float(problem.capacity[t]),
            len(grids[t]),
            float(problem.distance_m[t, grids[t]].mean() / 1000) if grids[t] else 0.0,
        )
        for t, mark in enumerate(problem.team_marks)
    ]


def _notes(
    problem: Problem,
    solution: Solution,
    team_loads: list[TeamLoad],
    skipped_grids: Sequence[str],
) -> list[Note]:
    notes = []
    shortfall = problem.total_workload - problem.total_capacity
    if shortfall > _OVER:
        notes.append(
            Note(
                NOT_ENOUGH_CAPACITY,
                {
                    "workload": f"{problem.total_workload:.1f}",
                    "capacity": f"{problem.total_capacity:.1f}",
                    "shortfall": f"{shortfall:.1f}",
                },
            )
        )
    over = [t for t in team_loads if t.load > t.capacity + _OVER]
    if over:
        loads = ", ".join(f"{t.team_mark} {t.load:.1f}/{t.capacity:g}" for t in over)
        notes.append(Note(OVER_CAPACITY, {"teams": loads}))
    idle = [t.team_mark for t in team_loads if not t.grids]
    if idle:
        notes.append(Note(NO_GRID, {"teams": ", ".join(idle)}))
    if solution.status == "time_limit" and solution.mip_gap is not None:
        gap = f"{solution.mip_gap:.1%}"
        notes.append(Note(TIME_LIMIT_WITH_GAP, {"source": solution.source, "gap": gap}))
    elif solution.status == "time_limit":
        notes.append(Note(TIME_LIMIT_WITHOUT_BOUND, {"source": solution.source}))
    elif solution.status != "optimal":
        values = {"message": solution.message, "source": solution.source}
        notes.append(Note(SOLVER_STOPPED, values))
    if skipped_grids:
        notes.append(Note(LEFT_OUT, {"grids": ", ".join(skipped_grids)}))
    return notes
