"""Importing 1,000,000 historic incidents into the ~15,000-grid Weifang city, end to end.

A CSV of a year of incidents is written once (not timed; kept in the temporary folder
and reused while its size matches): client ids in time order, nine categories, points
clustered as incidents come (``clustered_points``: busy grids, background, points
exactly on shared vertices, strays outside) given in GCJ-02, WGS84 or BD-09 to seven
decimals (about 1 cm, as files carry them, so the vertex points come out near_edge rather
than edge), 2% filed by grid code instead, histories from reported to evaluated,
contacts on most rows.

Then ``import_incidents`` is timed as ``geogrid incidents import --commit`` runs it, in
a fresh process state (the grid index is built, not taken from a cache): reading and
checking the file, building the index, converting and placing the points, computing
the deadlines, and the bulk write (COPY, insert, contacts, one event per incident).
The transaction is rolled back afterwards, not committed, so the benchmark database
stays reusable (the event log refuses deletes); the commit itself would only flush the
WAL already written. The floor is 180 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.common import bench_settings, clustered_points, ensure_city, report
from geogrid import generations
from geogrid.crs import BD09, GCJ02, WGS84, from_storage
from geogrid.incident_import import import_incidents
from geogrid.workdays import SHANGHAI

ROWS = 1_000_000
FLOOR_S = 180.0
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=SHANGHAI)
FIRST = pd.Timestamp("2025-11-01", tz=SHANGHAI)
CATEGORIES = {
    "environment": 0.3, "public_facility": 0.15, "property": 0.12, "noise": 0.1,
    "dispute": 0.1, "safety_hazard": 0.08, "livelihood": 0.07, "public_order": 0.05,
    "other": 0.03,
}  # fmt: skip
DESCRIPTIONS = (
    "楼道堆放杂物, 存在消防隐患", "小区门口垃圾未及时清运", "路灯不亮", "夜间施工噪音扰民",
    "邻里因漏水发生纠纷", "井盖缺失", "占道经营", "绿化带被毁", "电动车楼道充电",
    "Broken streetlight near the school gate",
)  # fmt: skip


def run(rows: int = ROWS) -> dict:
    """Write (or reuse) the CSV, then time the import; returns the figures."""
    settings = bench_settings("geogrid_bench")
    engine = ensure_city(settings)
    path = Path(tempfile.gettempdir()) / f"geogrid-bench-incidents-{rows}.csv"
    made_s = None
    if not path.exists():
        started = time.perf_counter()
        _write_csv(engine, path, rows)
        made_s = round(time.perf_counter() - started, 1)
        print(f"wrote {path} in {made_s} s", flush=True)
    _vacuum(settings)
    phases = {}

    def progress(phase: str, done: int, total: int) -> None:
        phases.setdefault(phase, total)

    load_before = os.getloadavg()[0]
    with Session(engine) as session:
        started = time.perf_counter()
        result = import_incidents(
            session, settings, path, created_by="bench", now=NOW, progress=progress
        )
        total_s = time.perf_counter() - started
        session.rollback()
    assert result.ok, result.lines()[:20]
    figures = {
        "rows": result.rows,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "made_csv_s": made_s,
        "inserted": result.inserted,
        "events": result.events,
        "contacts": result.contacts,
        "placements": result.placements,
        "deadline_alerts": sum(result.deadline_alerts.values()),
        "phases_s": {phase: round(s, 1) for phase, s in result.seconds.items()},
        "total_s": round(total_s, 1),
        "rows_per_s": round(result.rows / total_s),
        "floor_s": FLOOR_S,
        "under_floor": total_s < FLOOR_S,
        "cpus": os.cpu_count(),
        # Other work on the machine slows every phase; the load says how busy it was.
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }
    report("incidents", figures)
    return figures


def _write_csv(engine, path: Path, n: int) -> None:
    rng = np.random.default_rng(11)
    with Session(engine) as session:
        generation = generations.current_generation(session)
        areas = generations.generation_areas(session, generation.id, level="grid")
    lon, lat = clustered_points(areas, n, seed=5)
    seconds = np.sort(rng.integers(0, int((NOW - FIRST).total_seconds()) - 30 * 86400, n))
    reported = FIRST + pd.to_timedelta(seconds, unit="s")
    given_lon, given_lat = lon.copy(), lat.copy()
    kinds = rng.choice(np.array(["gcj02", "wgs84", "bd09"]), n, p=[0.6, 0.3, 0.1])
    for name, kind in (("gcj02", GCJ02), ("bd09", BD09), ("wgs84", WGS84)):
        at = kinds == name
        given_lon[at], given_lat[at] = from_storage(lon[at], lat[at], kind)
    accepted = reported + pd.to_timedelta(rng.exponential(3 * 3600, n), unit="s")
    resolved = accepted + pd.to_timedelta(rng.exponential(30 * 3600, n), unit="s")
    evaluated = resolved + pd.to_timedelta(rng.uniform(3600, 72 * 3600, n), unit="s")
    stage = rng.choice(4, n, p=[0.02, 0.08, 0.3, 0.6])  # reported, accepted, resolved, evaluated
    by_code = rng.random(n) < 0.02
    codes = areas["code"].to_numpy()[rng.integers(0, len(areas), n)]
    contact = rng.random(n) < 0.7

    def when(times: pd.DatetimeIndex, shown: np.ndarray) -> np.ndarray:
        return np.where(shown, times.strftime("%Y-%m-%d %H:%M:%S"), "")

    frame = pd.DataFrame(
        {
            "client_id": [f"WF{i:08d}" for i in range(n)],
            "category": rng.choice(list(CATEGORIES), n, p=list(CATEGORIES.values())),
            "description": rng.choice(np.array(DESCRIPTIONS), n),
            "reported_at": reported.strftime("%Y-%m-%d %H:%M:%S"),
            "lon": np.where(by_code, "", np.char.mod("%.7f", given_lon)),
            "lat": np.where(by_code, "", np.char.mod("%.7f", given_lat)),
            "coord_type": np.where(by_code, "", kinds),
            "grid_code": np.where(by_code, codes, ""),
            "state": np.array(["reported", "accepted", "resolved", "evaluated"])[stage],
            "accepted_at": when(accepted, stage >= 1),
            "resolved_at": when(resolved, stage >= 2),
            "evaluated_at": when(evaluated, stage >= 3),
            "satisfaction": np.where(
                stage >= 3, rng.choice(["满意", "不满意"], n, p=[0.93, 0.07]), ""
            ),
            "contact_name": np.where(contact, rng.choice(["王先生", "李女士", "张师傅"], n), ""),
            "contact_phone": np.where(
                contact, np.char.mod("1380000%04d", rng.integers(0, 10_000, n)), ""
            ),
            "address": rng.choice(["", "奎文区东风东街", "潍城区胜利西街", "寿光市农圣街"], n),
        }
    )
    frame.to_csv(path, index=False, encoding="utf-8")


def _vacuum(settings) -> None:
    """Clear the dead rows earlier rolled-back runs left, so each run starts alike."""
    engine = create_engine(settings.sqlalchemy_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for table in ("incident", "incident_event", "incident_contact"):
            connection.execute(text(f"VACUUM {table}"))
    engine.dispose()
