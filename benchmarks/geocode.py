"""Bulk geocoding: geogrid's index vs geopandas.sjoin vs two PostGIS joins, 1,000,000 points.

Every contender applies the same rule (a point on a shared boundary goes to the smallest
code), so they must agree on every point, edge points included, before any time counts.
The PostGIS joins use ST_Intersects rather than the usual ST_Contains for that reason:
ST_Contains puts a point on a shared edge in no grid at all.
"""

from __future__ import annotations

import io
import time

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from benchmarks.common import (
    bench_settings,
    best,
    clustered_points,
    ensure_city,
    interleaved,
    report,
)
from geogrid import generations
from geogrid.pointindex import GridIndex

POINTS = 1_000_000


def run(points: int = POINTS, rounds: int = 3) -> dict:
    """Both cities; returns the figures."""
    figures = {}
    settings = bench_settings("geogrid_bench")
    figures["weifang"] = _compare(settings, ensure_city(settings), "grid", points, rounds)
    chicago = bench_settings("geogrid_bench_chicago", "district:2,sector:3,beat:4")
    figures["chicago"] = _compare(chicago, _ensure_chicago(chicago), "beat", points, rounds)
    report("geocode", figures)
    return figures


def _ensure_chicago(settings):
    from benchmarks.chicago import load_beats

    return load_beats(settings)


def _compare(settings, engine, level: str, n: int, rounds: int) -> dict:
    with Session(engine) as session:
        generation = generations.current_generation(session)
        areas = generations.generation_areas(session, generation.id, level=level)
        srid = generations.metric_srid_of(session, generation)
    print(f"{engine.url.database}: {len(areas)} {level} areas, {n} points", flush=True)
    lon, lat = clustered_points(areas, n)
    codes = np.asarray(areas["code"], dtype=object)
    polygons = np.asarray(areas.geometry.values, dtype=object)
    started = time.perf_counter()
    index = GridIndex.build(codes, polygons, metric_epsg=srid, near_m=settings.near_edge_m)
    build_s = time.perf_counter() - started
    _load_points(engine, lon, lat)
    answers: dict[str, np.ndarray] = {}
    polygons_frame = gpd.GeoDataFrame({"code": codes}, geometry=polygons, crs="EPSG:4490")
    _ = polygons_frame.sindex  # built once, outside the timing, as geogrid's index is

    def geogrid_index():
        answers["geogrid"] = index.locate(lon, lat).grid_codes()

    def geopandas_sjoin():
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4490")
        joined = gpd.sjoin(points, polygons_frame, how="left", predicate="intersects")
        # Areas are in code order, so the smallest position is the smallest code: a
        # numeric group-by, much cheaper than comparing code strings.
        smallest = joined["index_right"].groupby(level=0).min()
        found = smallest.reindex(range(n)).to_numpy()
        answer = np.full(n, None, dtype=object)
        hit = ~np.isnan(found)
        answer[hit] = codes[found[hit].astype(np.int64)]
        answers["sjoin"] = answer

    def postgis_points_outer():
        answers["postgis_points_outer"], elapsed = _postgis(
            engine, generation.id, level, _POINTS_OUTER
        )
        return elapsed

    def postgis_polygons_outer():
        answers["postgis_polygons_outer"], elapsed = _postgis(
            engine, generation.id, level, _POLYGONS_OUTER
        )
        return elapsed

    contenders = {
        "geogrid": geogrid_index,
        "sjoin": geopandas_sjoin,
        "postgis_points_outer": postgis_points_outer,
        "postgis_polygons_outer": postgis_polygons_outer,
    }
    # One untimed pass of everything first: it fills the answers to compare and warms caches.
    for run_once in contenders.values():
        run_once()
    disagreements = _disagreements(answers)
    if any(disagreements.values()):
        raise SystemExit(f"contenders disagree: {disagreements}")
    times = interleaved(contenders, rounds, slow={"postgis_points_outer", "postgis_polygons_outer"})
    fastest_postgis = min(
        best(times["postgis_points_outer"]), best(times["postgis_polygons_outer"])
    )
    geogrid_s = best(times["geogrid"])
    return {
        "areas": len(areas),
        "points": n,
        "edge_points": int(np.sum(index.locate(lon, lat).status == 2)),
        "outside_points": int(sum(code is None for code in answers["geogrid"])),
        "index_build_s": round(build_s, 3),
        "seconds": {name: round(best(t), 3) for name, t in times.items()},
        "geogrid_vs_sjoin": round(best(times["sjoin"]) / geogrid_s, 1),
        "geogrid_vs_fastest_postgis": round(fastest_postgis / geogrid_s, 1),
        "disagreements": disagreements,
    }


def _disagreements(answers: dict[str, np.ndarray]) -> dict[str, int]:
    reference = pd.Series(answers["geogrid"]).fillna("")
    return {
        name: int((pd.Series(values).fillna("") != reference).sum())
        for name, values in answers.items()
        if name != "geogrid"
    }


def _load_points(engine, lon: np.ndarray, lat: np.ndarray) -> None:
    buffer = io.StringIO()
    pd.DataFrame({"id": np.arange(len(lon)), "lon": lon, "lat": lat}).to_csv(
        buffer, index=False, header=False, float_format="%.17g"
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("DROP TABLE IF EXISTS bench_points")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_points (id integer PRIMARY KEY, lon float8, lat float8,"
            " geom geometry(Point, 4490), grid_code text)"
        )
        with cursor.copy("COPY bench_points (id, lon, lat) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        cursor.execute("UPDATE bench_points SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4490)")
        cursor.execute("CREATE INDEX ON bench_points USING gist (geom)")
        cursor.execute("ANALYZE bench_points")
        raw.commit()
    finally:
        raw.close()


# The usual way: for each point, look the grid up through the grids' GiST index.
_POINTS_OUTER = """
UPDATE bench_points p SET grid_code = (
    SELECT min(a.code) FROM area a
    WHERE a.level = :level AND a.generation_low <= :g AND a.generation_high >= :g
      AND ST_Intersects(a.geom, p.geom))
"""

# The faster way: for each grid, find its points through the points' GiST index.
_POLYGONS_OUTER = """
UPDATE bench_points p SET grid_code = j.code
FROM (
    SELECT pt.id, min(a.code) AS code
    FROM area a
    CROSS JOIN LATERAL (
        SELECT q.id FROM bench_points q WHERE ST_Intersects(a.geom, q.geom)) pt
    WHERE a.level = :level AND a.generation_low <= :g AND a.generation_high >= :g
    GROUP BY pt.id) j
WHERE p.id = j.id
"""


def _postgis(engine, generation: int, level: str, statement: str) -> tuple[np.ndarray, float]:
    with engine.begin() as connection:
        connection.execute(text("UPDATE bench_points SET grid_code = NULL"))
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(statement), {"level": level, "g": generation})
    elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        codes = (
            connection.execute(text("SELECT grid_code FROM bench_points ORDER BY id"))
            .scalars()
            .all()
        )
    return np.asarray(codes, dtype=object), elapsed
