"""The assignment optimiser on the demo city's real grids: stations of growing size.

Each case makes a station in a transaction that is rolled back: the first M grids of
the city by code (whole communities, contiguous), N teams based at random grids of them,
capacity 10% above an even share, and a risk per grid drawn from a skewed distribution
(passed in as the coverage-gaps risk would be). ``geogrid.optimiser.propose`` is timed
whole (reading the problem, shared boundaries, solving, the diff); the figures keep
how the solver fared: status, which answer won, objective, bound, gap and balance.
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from benchmarks.common import bench_settings, ensure_city, report
from geogrid import generations, optimiser
from geogrid.alliance_values import patrol_level
from geogrid.models import STORAGE_SRID, Area, PatrolTeam, PoliceStation, StationGrid
from geogrid.shapes import frame_from_rows, wkb_column

DATABASE = "geogrid_bench"
#: (teams, grids, time limit in seconds)
CASES = ((2, 4, 10.0), (10, 64, 10.0), (50, 400, 10.0), (50, 400, 60.0))


def run(cases: tuple[tuple[int, int, float], ...] = CASES) -> dict:
    """Time proposals for stations of each size and keep the figures."""
    settings = bench_settings(DATABASE)
    engine = ensure_city(settings)
    figures = {}
    for teams, grids, time_limit in cases:
        name = f"{teams} teams x {grids} grids, {time_limit:g} s"
        with Session(engine) as session:
            try:
                figures[name] = _case(session, teams, grids, time_limit)
            finally:
                session.rollback()
        print(f"  {name}: {figures[name]}", flush=True)
    report("optimiser", figures)
    return figures


def _case(session: Session, teams: int, grids: int, time_limit: float) -> dict:
    rng = np.random.default_rng(teams * 1000 + grids)
    generation = generations.resolve_generation(session, None)
    rows = session.execute(
        select(Area.code, wkb_column(Area.geom).label("geometry"))
        .where(Area.level == patrol_level(session), Area.valid_in(generation.id))
        .order_by(Area.code)
        .limit(grids)
    ).all()
    frame = frame_from_rows(rows, ["code", "geometry"])
    inside = shapely.point_on_surface(np.asarray(frame.geometry.values, dtype=object))
    code = "BENCH-OPT"
    session.add(
        PoliceStation(code=code, name="基准派出所", geom=from_shape(inside[0], STORAGE_SRID))
    )
    session.flush()
    session.add_all(StationGrid(station_code=code, grid_code=c) for c in frame["code"])
    risk = dict(zip(frame["code"], rng.gamma(0.7, 2.0, len(frame)), strict=True))
    capacity = (len(frame) + sum(risk.values())) / teams * 1.1
    for t, base in enumerate(inside[rng.choice(len(inside), teams, replace=False)]):
        session.add(
            PatrolTeam(
                mark=f"PA-BENCH-{t:04d}",
                name=f"基准{t}队",
                station_code=code,
                base=from_shape(base, STORAGE_SRID),
                capacity=capacity,
            )
        )
    session.flush()
    started = time.perf_counter()
    proposal = optimiser.propose(
        session, code, risk=risk, time_limit=time_limit, valid_from=date(2026, 3, 2)
    )
    elapsed = time.perf_counter() - started
    s = proposal.solution
    return {
        "seconds": round(elapsed, 3),
        "solver_seconds": round(s.seconds, 3),
        "status": s.status,
        "source": s.source,
        "variables": s.variables,
        "constraints": s.constraints,
        "objective": round(s.terms.objective, 4),
        "dual_bound": None if s.dual_bound is None else round(s.dual_bound, 4),
        "gap": None if s.mip_gap is None else round(s.mip_gap, 4),
        "terms": {k: round(v, 4) for k, v in s.terms.as_dict().items()},
        "utilisation": [round(s.min_utilisation, 3), round(s.max_utilisation, 3)],
    }
