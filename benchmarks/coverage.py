"""Patrol coverage of a Weifang-scale day: geogrid's way against the straightforward SQL.

One day of the demo city (~15,000 grids): 6,000 teams, each given a home grid and one or
two grids touching it for one four-hour shift (a quarter at night, 22:00-02:00), and one
track each of 500 fixes: walking (80%, 0.9-1.4 m/s) or cycling (20%, 3-4.5 m/s) a street
lattice of 80-200 m blocks at the team's own angle, turning at corners and keeping to the
team's area, a fix every 10-20 s, GPS error wandering (AR(1), 4 m). One seed makes it all.

Timed: loading the tracks (``tracks.load_tracks``: cleaning, placing, COPY; floor 60 s),
reading the day back, and coverage per grid-shift (minutes inside, visits, gaps and the
share of the grid within 50 m of the team's track; floor 20 s), side by side with the
straightforward PostGIS way for the share: each team's track cut to the shift
(``ST_LocateBetween`` on M), buffered in the metric CRS, united per grid-shift,
intersected with the grid. Every grid-shift's share must agree to 1e-6.

The benchmark has its own database (``geogrid_bench_coverage``) with the demo city built
once; its patrol rows are replaced on every run. It is a benchmark, not a test:
``make test`` does not run it (``make bench`` or ``python -m benchmarks coverage`` does).
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from benchmarks.common import bench_settings, ensure_city, report
from geogrid import assignments, generations, tracks
from geogrid.coverage import coverage_for_day, measure_coverage, read_fixes, read_grids
from geogrid.crs import geometry_to_metric, metric_transformer
from geogrid.models import (
    PatrolAssignment,
    PatrolCheckin,
    PatrolLead,
    PatrolMember,
    PatrolTeam,
    PatrolTrack,
    PoliceStation,
    StationGrid,
)
from geogrid.trackfiles import TrackFixes
from geogrid.workdays import SHANGHAI

DAY = date(2026, 3, 2)
SHIFT_STARTS = (time(8), time(14), time(18), time(22))
REACH_M = 50.0
TOLERANCE = 1e-6


def run(teams: int = 6000, fixes: int = 500, seed: int = 11) -> dict:
    """Load a day of patrols, measure coverage both ways, check they agree; the figures."""
    settings = bench_settings("geogrid_bench_coverage")
    engine = ensure_city(settings)
    with Session(engine) as session:
        generation = generations.current_generation(session)
        srid = generations.metric_srid_of(session, generation)
        areas = generations.generation_areas(session, generation.id, level="grid")
    codes = np.asarray(areas["code"], dtype=object)
    metric = geometry_to_metric(np.asarray(areas.geometry.values, dtype=object), srid)
    started = clock.perf_counter()
    day = patrol_day(metric, teams=teams, fixes=fixes, seed=seed)
    generate_s = clock.perf_counter() - started
    figures: dict = {"grids": len(codes), "teams": teams, "fixes_per_track": fixes}
    with Session(engine) as session:
        _replace_patrols(session, codes, day)
        uploads = _uploads(session, day, srid)
        started = clock.perf_counter()
        loaded = tracks.load_tracks(session, settings, uploads, uploaded_by="bench")
        figures["load_s"] = round(clock.perf_counter() - started, 2)
        figures["load_steps_s"] = {k: round(v, 2) for k, v in loaded.seconds.items()}
        figures["tracks_stored"] = loaded.stored
        session.commit()
    with Session(engine) as session:
        started = clock.perf_counter()
        result = coverage_for_day(session, settings, day=DAY, reach_m=REACH_M)
        figures["coverage_for_day_s"] = round(clock.perf_counter() - started, 2)
        figures["compute_s"], figures["compute_cpu_s"] = _compute_alone(session, settings, srid)
        started = clock.perf_counter()
        postgis = _postgis_shares(session, result.shifts, srid)
        figures["postgis_s"] = round(clock.perf_counter() - started, 2)
    shares = result.shifts["reach_share"].to_numpy()
    difference = np.abs(shares - postgis)
    figures.update(
        {
            "generate_s": round(generate_s, 2),
            "grid_shifts": len(shares),
            "visits": len(result.visits),
            "mean_share": round(float(shares.mean()), 4),
            "max_share_difference": float(difference.max()),
            "shares_over_tolerance": int((difference > TOLERANCE).sum()),
            "geogrid_vs_postgis": round(figures["postgis_s"] / figures["coverage_for_day_s"], 1),
            "floors": {"load_s": 60, "coverage_s": 20},
        }
    )
    report("coverage", figures)
    if figures["shares_over_tolerance"]:
        raise SystemExit(f"{figures['shares_over_tolerance']} shares differ by more than 1e-6")
    return figures


# -- the synthetic day ------------------------------------------------------------------


@dataclass(frozen=True)
class PatrolDay:
    """Teams (home grid first, then its neighbours), shift starts, tracks in metres."""

    team_grids: list[list[int]]
    shift_starts: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray


def patrol_day(polygons: np.ndarray, *, teams: int, fixes: int, seed: int) -> PatrolDay:
    """The teams, their shifts and tracks of ``DAY`` over grid ``polygons`` (metric CRS)."""
    rng = np.random.default_rng(seed)
    home = rng.choice(len(polygons), teams, replace=len(polygons) < teams)
    tree = shapely.STRtree(polygons)
    team_of, neighbour = tree.query(polygons[home], predicate="touches")
    team_grids = []
    for team, grid in enumerate(home):
        touching = neighbour[team_of == team]
        extra = rng.choice(touching, min(len(touching), int(rng.integers(1, 3))), replace=False)
        team_grids.append([int(grid), *(int(g) for g in extra)])
    shift = rng.choice(len(SHIFT_STARTS), teams, p=[0.3, 0.25, 0.2, 0.25])
    starts = np.array([datetime.combine(DAY, SHIFT_STARTS[k], SHANGHAI).timestamp() for k in shift])
    areas = np.array([shapely.union_all(polygons[g]) for g in team_grids], dtype=object)
    x, y, t = _walks(areas, starts, fixes, rng)
    return PatrolDay(team_grids, starts, x, y, t)


def _walks(areas: np.ndarray, shift_starts: np.ndarray, n: int, rng):
    teams = len(areas)
    box = shapely.bounds(areas)
    cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    half_x, half_y = (box[:, 2] - box[:, 0]) / 2, (box[:, 3] - box[:, 1]) / 2
    start = shapely.point_on_surface(areas)
    px, py = shapely.get_x(start), shapely.get_y(start)
    angle = rng.uniform(0, np.pi / 2, teams)
    cycling = rng.random(teams) < 0.2
    speed = np.where(cycling, rng.uniform(3, 4.5, teams), rng.uniform(0.9, 1.4, teams))
    block = rng.uniform(80, 200, teams)
    heading = rng.integers(0, 4, teams)
    to_corner = rng.uniform(0, 1, teams) * block
    now = shift_starts + rng.uniform(0, 1800, teams)
    error_x, error_y = rng.normal(0, 4, teams), rng.normal(0, 4, teams)
    x, y, t = (np.empty((teams, n)) for _ in range(3))
    for k in range(n):
        step_s = rng.uniform(10, 20, teams)
        step = speed * step_s * rng.uniform(0.8, 1.2, teams)
        corner = to_corner <= step
        heading = np.where(corner, (heading + rng.choice([-1, 0, 0, 1], teams)) % 4, heading)
        to_corner = np.where(corner, block, to_corner - step)
        direction = angle + heading * np.pi / 2
        nx, ny = px + step * np.cos(direction), py + step * np.sin(direction)
        out = (np.abs(nx - cx) > half_x) | (np.abs(ny - cy) > half_y)
        heading = np.where(out, (heading + 2) % 4, heading)
        px, py = np.where(out, px, nx), np.where(out, py, ny)
        # GPS error wanders rather than jumps: AR(1) with a 4 m spread.
        error_x = 0.9 * error_x + np.sqrt(0.19) * rng.normal(0, 4, teams)
        error_y = 0.9 * error_y + np.sqrt(0.19) * rng.normal(0, 4, teams)
        now = now + step_s
        x[:, k], y[:, k], t[:, k] = px + error_x, py + error_y, now
    return x, y, t


# -- the database ---------------------------------------------------------------------


def _replace_patrols(session: Session, codes: np.ndarray, day: PatrolDay) -> None:
    """This run's stations (one per county), teams and assignments, nothing else."""
    for model in (
        PatrolLead,
        PatrolCheckin,
        PatrolTrack,
        PatrolAssignment,
        PatrolMember,
        PatrolTeam,
        StationGrid,
        PoliceStation,
    ):
        session.execute(delete(model))
    counties = sorted({code[:6] for code in codes})
    session.execute(
        insert(PoliceStation),
        [
            {"code": f"{c}-PS01", "name": f"{c}派出所", "kind": "station", "geom": _origin()}
            for c in counties
        ],
    )
    session.execute(
        insert(StationGrid), [{"station_code": f"{c[:6]}-PS01", "grid_code": c} for c in codes]
    )
    marks, seen = [], {}
    for grids in day.team_grids:
        county = codes[grids[0]][:6]
        seen[county] = seen.get(county, 0) + 1
        marks.append(f"PA-{county}-{seen[county]:04d}")
    session.execute(
        insert(PatrolTeam),
        [{"mark": m, "name": f"巡防队 {m}", "station_code": f"{m[3:9]}-PS01"} for m in marks],
    )
    ids = dict(session.execute(select(PatrolTeam.mark, PatrolTeam.id)).all())
    rows = []
    for team, grids in enumerate(day.team_grids):
        starts = datetime.fromtimestamp(day.shift_starts[team], SHANGHAI)
        for grid in grids:
            rows.append(
                {
                    "team_id": ids[marks[team]],
                    "grid_code": codes[grid],
                    "weekdays": 127,
                    "starts": starts.time(),
                    "ends": (starts + timedelta(hours=4)).time(),
                    "valid_from": DAY,
                    "source": "import",
                    "created_by": "bench",
                }
            )
    session.execute(insert(PatrolAssignment), rows)
    session.info["bench_marks"] = marks


def _origin():
    from geoalchemy2.shape import from_shape

    return from_shape(shapely.Point(119.1, 36.7), srid=4490)


def _uploads(session: Session, day: PatrolDay, srid: int) -> list[tuple[str, TrackFixes]]:
    """Each team's track as an upload in storage lon/lat."""
    lon, lat = metric_transformer(srid).transform(day.x, day.y, direction="INVERSE")
    return [
        (mark, TrackFixes(lon[k], lat[k], day.t[k], "cgcs2000", source_format="array"))
        for k, mark in enumerate(session.info["bench_marks"])
    ]


def _compute_alone(session: Session, settings, srid: int) -> tuple[float, float]:
    """The coverage computation without the reading: seconds and CPU seconds."""
    shift_list = assignments.shifts_for(session, day=DAY)
    shifts = pd.DataFrame([vars(s) for s in shift_list])
    generation = generations.current_generation(session)
    grids = read_grids(session, generation.id, sorted(set(shifts["grid_code"])), srid)
    fixes = read_fixes(session, DAY, shifts, srid)
    wall, cpu = clock.perf_counter(), clock.process_time()
    measure_coverage(fixes, grids, shifts, reach_m=REACH_M)
    return round(clock.perf_counter() - wall, 2), round(clock.process_time() - cpu, 2)


# The straightforward way: per grid-shift, the team's tracks cut to the window, buffered
# in metres, united, intersected with the grid; share of the grid's area.
_POSTGIS = text(
    """
    WITH shift AS (
        SELECT * FROM unnest(CAST(:team_ids AS int[]), CAST(:grid_codes AS text[]),
                             CAST(:froms AS float8[]), CAST(:tos AS float8[]))
            WITH ORDINALITY AS s(team_id, grid_code, m_from, m_to, n)
    ), reach AS (
        SELECT s.n, ST_Union(ST_Buffer(ST_Transform(
                   ST_LocateBetween(t.geom, s.m_from, s.m_to), :srid), :reach)) AS geom
        FROM shift s JOIN patrol_track t ON t.team_id = s.team_id
         AND t.started_at < to_timestamp(s.m_to) AND t.ended_at > to_timestamp(s.m_from)
        GROUP BY s.n
    )
    SELECT s.n, coalesce(ST_Area(ST_Intersection(r.geom, g.geom)) / ST_Area(g.geom), 0)
    FROM shift s
    JOIN LATERAL (
        SELECT ST_Transform(a.geom, :srid) AS geom FROM area a
        WHERE a.code = s.grid_code AND a.level = 'grid'
          AND a.generation_low <= :generation AND a.generation_high >= :generation
    ) g ON true
    LEFT JOIN reach r ON r.n = s.n
    ORDER BY s.n
    """
)


def _postgis_shares(session: Session, shifts: pd.DataFrame, srid: int) -> np.ndarray:
    generation = generations.current_generation(session).id
    rows = session.execute(
        _POSTGIS,
        {
            "team_ids": [int(v) for v in shifts["team_id"]],
            "grid_codes": list(shifts["grid_code"]),
            "froms": [float(v) for v in shifts["_from"]],
            "tos": [float(v) for v in shifts["_to"]],
            "srid": srid,
            "reach": REACH_M,
            "generation": generation,
        },
    ).all()
    shares = np.zeros(len(shifts))
    for n, share in rows:
        shares[n - 1] = share
    return shares
