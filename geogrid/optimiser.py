"""The assignment optimiser: a station's teams given its grids, balanced, near and contiguous.

:func:`propose` reads a station's problem from the database, solves it
(:mod:`geogrid.optimiser_solve`, HiGHS through ``scipy.optimize.milp`` with a time limit,
formulation in :mod:`geogrid.optimiser_model`) and compares the answer with the current
assignments; :func:`apply_proposal` writes it through :mod:`geogrid.assignments`, so
every clash check applies.

The problem of a station (with its community offices):

- teams: its family's active teams, with their capacity and base (the team's
  station's point when the team has none);
- grids: those it answers for in the current generation, each with a workload per week
  of ``floor + risk``; risk is by default the incidents of the last ``days`` days
  (rejected and merged reports left out) weighted by their category's ``risk_weight``,
  per week, so one unit of workload is the patrol a quiet grid needs in a week and a
  team's ``capacity`` is counted in those units; another risk (the coverage gaps') can
  be passed in as a mapping;
- travel: metres from the base to the grid's centroid in the generation's metric CRS;
- contiguity: grids sharing a boundary (not just a corner), found in metres;
- locks: the (team, grid) pairs of assignments a planner locked are kept as they are.

The proposal gives each grid one team (locked ones keep theirs), for the team's current
shift patterns (all of them: a team patrols each of its grids in its shifts) or, for a
team with none, a default (daily 08:00-20:00).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from geogrid import assignments
from geogrid.alliance_values import patrol_level
from geogrid.crs import geometry_to_metric, to_metric
from geogrid.errors import InputError
from geogrid.generations import metric_srid_of, resolve_generation
from geogrid.models import (
    Area,
    Incident,
    IncidentCategory,
    PatrolAssignment,
    PatrolTeam,
    PoliceStation,
)
from geogrid.optimiser_model import CANDIDATES, Problem, Weights
from geogrid.optimiser_proposal import (
    AppliedProposal,
    Proposal,
    ShiftPattern,
    build_proposal,
)
from geogrid.optimiser_solve import solve
from geogrid.shapes import frame_from_rows, wkb_column
from geogrid.shifts import DAILY
from geogrid.stations import get_station, station_family, station_grid_codes

__all__ = [
    "DEFAULT_SHIFT",
    "AppliedProposal",
    "Proposal",
    "ShiftPattern",
    "apply_proposal",
    "incident_risk",
    "propose",
    "shared_boundaries",
]

DEFAULT_SHIFT = ShiftPattern(DAILY, time(8), time(20))
#: Incident states that are not incidents to patrol against.
_NOT_RISK = ("rejected", "merged")
_WEEK_DAYS = 7


def propose(
    session: Session,
    station_code: str,
    *,
    days: int = 28,
    valid_from: date | None = None,
    until: datetime | None = None,
    risk: Mapping[str, float] | None = None,
    floor: float = 1.0,
    weights: Weights | None = None,
    time_limit: float = 10.0,
    mip_rel_gap: float = 1e-4,
    candidates: int | None = CANDIDATES,
    default_shift: ShiftPattern = DEFAULT_SHIFT,
) -> Proposal:
    """Solve a station's assignment and compare it with its assignments from ``valid_from``."""
    if days < 1:
        raise InputError("days must be at least 1", field="days")
    if floor < 0:
        raise InputError("the workload floor must be >= 0", field="floor")
    station = get_station(session, station_code)
    valid_from = valid_from or assignments.today() + timedelta(1)
    until = until or datetime.now(UTC)
    generation = resolve_generation(session, None)
    srid = metric_srid_of(session, generation)
    grid_codes, grid_geoms, skipped = _grids(session, station.code, generation.id, srid)
    teams = _teams(session, station.code, srid)
    if not teams:
        raise InputError(f"station {station.code} has no active teams", field="station_code")
    if not grid_codes:
        raise InputError(
            f"station {station.code} answers for no grid of the current generation",
            field="station_code",
        )
    if risk is None:
        risk = incident_risk(session, grid_codes, days=days, until=until)
    current = _current(session, [t.id for t in teams], grid_codes, valid_from)
    problem = _problem(teams, grid_codes, grid_geoms, risk, floor, current)
    weights = weights or Weights()
    solution = solve(
        problem,
        weights,
        time_limit=time_limit,
        mip_rel_gap=mip_rel_gap,
        candidates=candidates,
    )
    return build_proposal(
        station_code=station.code,
        generation=generation.id,
        valid_from=valid_from,
        days=days,
        problem=problem,
        solution=solution,
        weights=weights,
        team_ids=[t.id for t in teams],
        current=current,
        patterns=_patterns(session, [t.id for t in teams], valid_from),
        default_shift=default_shift,
        skipped_grids=skipped,
    )


def apply_proposal(
    session: Session, proposal: Proposal, *, created_by: str, valid_from: date | None = None
) -> AppliedProposal:
    """End the replaced assignments the day before ``valid_from`` and add the new ones."""
    day = valid_from or proposal.valid_from
    ended, deleted, added = [], [], []
    for old in proposal.removed:
        done = assignments.unassign(session, old.assignment_id, last_day=day - timedelta(1))
        (ended if done == "ended" else deleted).append(old.assignment_id)
    for new in proposal.assignments:
        if new.change != "added":
            continue
        for shift in new.shifts:
            made = assignments.assign(
                session,
                new.team_mark,
                new.grid_code,
                weekdays=shift.weekdays,
                starts=shift.starts,
                ends=shift.ends,
                valid_from=day,
                source="optimiser",
                created_by=created_by,
            )
            added.append(made.id)
    return AppliedProposal(tuple(added), tuple(ended), tuple(deleted))


def incident_risk(
    session: Session, grid_codes: list[str], *, days: int, until: datetime
) -> dict[str, float]:
    """Risk-weighted incidents per week in each grid over the ``days`` days before ``until``."""
    rows = session.execute(
        select(Incident.grid_code, func.sum(IncidentCategory.risk_weight))
        .join(IncidentCategory, IncidentCategory.code == Incident.category)
        .where(
            Incident.grid_code.in_(grid_codes),
            Incident.reported_at >= until - timedelta(days=days),
            Incident.reported_at < until,
            Incident.state.not_in(_NOT_RISK),
        )
        .group_by(Incident.grid_code)
    )
    return {code: float(total) * _WEEK_DAYS / days for code, total in rows}


def shared_boundaries(
    geoms: Any, *, tolerance: float = 1.0, min_length: float = 10.0
) -> np.ndarray:
    """Pairs (i < j) of polygons (in metres) sharing at least ``min_length`` m of boundary.

    Neighbours drawn with slightly different vertices still share a boundary: the
    length counted is that of one's boundary within ``tolerance`` of the other; polygons
    meeting at a corner share about ``2 * tolerance`` and are not neighbours.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2:
        return np.empty((0, 2), dtype=np.int64)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tolerance)
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(geoms[left]), shapely.buffer(geoms[right], tolerance))
    )
    near = shared >= min_length
    return np.column_stack([left[near], right[near]]).astype(np.int64)


# -- reading the problem ----------------------------------------------------------------


@dataclass(frozen=True)
class _Team:
    id: int
    mark: str
    capacity: float
    x: float
    y: float


def _grids(
    session: Session, station_code: str, generation_id: int, srid: int
) -> tuple[list[str], np.ndarray, list[str]]:
    """The station's grids in the generation, their shapes in metres, and codes not found."""
    answered = station_grid_codes(session, station_code)
    rows = session.execute(
        select(Area.code, wkb_column(Area.geom).label("geometry"))
        .where(
            Area.code.in_(answered),
            Area.level == patrol_level(session),
            Area.valid_in(generation_id),
        )
        .order_by(Area.code)
    ).all()
    frame = frame_from_rows(rows, ["code", "geometry"])
    codes = list(frame["code"])
    return codes, geometry_to_metric(frame.geometry.values, srid), sorted(set(answered) - {*codes})


def _teams(session: Session, station_code: str, srid: int) -> list[_Team]:
    """The family's active teams by mark, bases (else their station's point) in metres."""
    base = func.coalesce(PatrolTeam.base, PoliceStation.geom)
    family = station_family(session, station_code)
    rows = session.execute(
        select(
            PatrolTeam.id,
            PatrolTeam.mark,
            PatrolTeam.capacity,
            func.ST_X(base).label("lon"),
            func.ST_Y(base).label("lat"),
        )
        .join(PoliceStation, PoliceStation.code == PatrolTeam.station_code)
        .where(PatrolTeam.station_code.in_(family), PatrolTeam.active)
        .order_by(PatrolTeam.mark)
    ).all()
    if not rows:
        return []
    xs, ys = to_metric([r.lon for r in rows], [r.lat for r in rows], srid)
    return [
        _Team(r.id, r.mark, float(r.capacity), float(x), float(y))
        for r, x, y in zip(rows, np.atleast_1d(xs), np.atleast_1d(ys), strict=True)
    ]


def _current(
    session: Session, team_ids: list[int], grid_codes: list[str], valid_from: date
) -> list[PatrolAssignment]:
    """The teams' assignments on these grids that have not ended before ``valid_from``."""
    return list(
        session.scalars(
            select(PatrolAssignment)
            .where(
                PatrolAssignment.team_id.in_(team_ids),
                PatrolAssignment.grid_code.in_(grid_codes),
                _not_ended(valid_from),
            )
            .order_by(PatrolAssignment.id)
        )
    )


def _patterns(
    session: Session, team_ids: list[int], valid_from: date
) -> dict[int, tuple[ShiftPattern, ...]]:
    """Each team's distinct shift patterns among its assignments not ended by ``valid_from``."""
    found: dict[int, dict[ShiftPattern, None]] = {}
    for team_id, weekdays, starts, ends in session.execute(
        select(
            PatrolAssignment.team_id,
            PatrolAssignment.weekdays,
            PatrolAssignment.starts,
            PatrolAssignment.ends,
        )
        .where(PatrolAssignment.team_id.in_(team_ids), _not_ended(valid_from))
        .order_by(PatrolAssignment.id)
    ):
        found.setdefault(team_id, {})[ShiftPattern(weekdays, starts, ends)] = None
    return {team_id: tuple(patterns) for team_id, patterns in found.items()}


def _not_ended(day: date) -> Any:
    return or_(PatrolAssignment.valid_to.is_(None), PatrolAssignment.valid_to >= day)


def _problem(
    teams: list[_Team],
    grid_codes: list[str],
    grid_geoms: np.ndarray,
    risk: Mapping[str, float],
    floor: float,
    current: list[PatrolAssignment],
) -> Problem:
    centroids = shapely.centroid(grid_geoms)
    cx, cy = shapely.get_x(centroids), shapely.get_y(centroids)
    bx = np.array([t.x for t in teams])
    by = np.array([t.y for t in teams])
    team_index = {t.id: i for i, t in enumerate(teams)}
    grid_index = {code: g for g, code in enumerate(grid_codes)}
    return Problem(
        team_marks=[t.mark for t in teams],
        capacity=np.array([t.capacity for t in teams]),
        grid_codes=grid_codes,
        workload=np.array([floor + max(float(risk.get(code, 0.0)), 0.0) for code in grid_codes]),
        distance_m=np.hypot(bx[:, None] - cx[None, :], by[:, None] - cy[None, :]),
        edges=shared_boundaries(grid_geoms),
        locked=frozenset(
            (team_index[a.team_id], grid_index[a.grid_code]) for a in current if a.locked
        ),
    )
