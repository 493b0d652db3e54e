"""Single lookups on the Weifang-scale city: p95 of `locate` through PostGIS, and in process."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy.orm import Session

from benchmarks.common import bench_settings, clustered_points, ensure_city, percentile, report
from geogrid import generations
from geogrid.geocode import locate
from geogrid.pointindex import GridIndex

LOOKUPS = 2_000


def run(lookups: int = LOOKUPS) -> dict:
    """Time `locate` (the CLI's library call) and the in-memory index, one point at a time."""
    settings = bench_settings("geogrid_bench")
    engine = ensure_city(settings)
    with Session(engine) as session:
        generation = generations.current_generation(session)
        areas = generations.generation_areas(session, generation.id, level="grid")
        srid = generations.metric_srid_of(session, generation)
        lon, lat = clustered_points(areas, lookups, seed=5)
        index = GridIndex.build(
            list(areas["code"]),
            np.asarray(areas.geometry.values, dtype=object),
            metric_epsg=srid,
            near_m=settings.near_edge_m,
        )
        postgis_ms, memory_ms, disagreements = [], [], 0
        for x, y in zip(lon, lat, strict=True):
            started = time.perf_counter()
            where = locate(session, settings, float(x), float(y), "cgcs2000")
            postgis_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            placed = index.locate(np.array([x]), np.array([y]))
            memory_ms.append((time.perf_counter() - started) * 1000)
            same = (placed.grid_codes()[0], placed.status_names()[0]) == (
                where.grid_code,
                where.status,
            )
            disagreements += not same
    figures = {
        "grids": len(areas),
        "lookups": lookups,
        "postgis_locate_ms": {
            "p50": percentile(postgis_ms, 50),
            "p95": percentile(postgis_ms, 95),
            "p99": percentile(postgis_ms, 99),
        },
        "in_process_index_ms": {"p50": percentile(memory_ms, 50), "p95": percentile(memory_ms, 95)},
        "disagreements": disagreements,
    }
    report("locate", figures)
    return figures
