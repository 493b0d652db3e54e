"""What the benchmarks share: a benchmark database, the demo city in it, points, timing."""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from geogrid import db, generations
from geogrid.codes import CodeScheme
from geogrid.settings import Settings

OUT = Path(__file__).resolve().parent / "out"


def bench_settings(database: str, scheme: str | None = None) -> Settings:
    """Settings for a benchmark database on the configured server (made if missing)."""
    base = Settings.from_env()
    if scheme:
        base = base.with_(code_scheme=scheme)
    admin = create_engine(
        make_url(base.sqlalchemy_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    url = make_url(base.sqlalchemy_url).set(database=database).render_as_string(False)
    settings = base.with_(database_url=url)
    db.upgrade(db.make_engine(settings), CodeScheme.parse(settings.code_scheme))
    return settings


def ensure_city(settings: Settings, city: str = "3707", seed: int = 7) -> Engine:
    """The benchmark database with the Weifang-scale demo city active (built once)."""
    from geogrid.demo_load import build_and_load

    engine = db.make_engine(settings)
    with Session(engine) as session:
        if generations.current_generation(session) is None:
            print(f"building the demo city {city} in {engine.url.database} (once) ...", flush=True)
            result = build_and_load(
                session, settings, city=city, seed=seed, created_by="bench", progress=True
            )
            session.commit()
            print("\n".join(result.lines()), flush=True)
    return engine


def clustered_points(
    areas,
    n: int,
    *,
    seed: int = 1,
    edge_share: float = 0.01,
    stray_share: float = 0.005,
    spread_m: float = 400.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Points as incidents come: clustered around busy grids, with background and strays.

    1% lie exactly on shared vertices (true edge points), 0.5% anywhere in the bounding
    box (mistyped or stray coordinates, mostly outside every grid), 4.5% uniformly over
    the grids, the rest in normal clusters around 400 busy places.
    """
    rng = np.random.default_rng(seed)
    geoms = np.asarray(areas.geometry.values, dtype=object)
    weights = areas["households"].fillna(0).to_numpy(dtype=float) + 1.0
    centres = shapely.point_on_surface(
        geoms[rng.choice(len(geoms), 400, p=weights / weights.sum())]
    )
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    n_edge, n_stray, n_background = int(n * edge_share), int(n * stray_share), int(n * 0.045)
    n_cluster = n - n_edge - n_stray - n_background
    pick = rng.integers(0, len(centres), n_cluster)
    deg = spread_m / 111_000.0
    lon = cx[pick] + rng.normal(0, deg / np.cos(np.radians(cy[pick])), n_cluster)
    lat = cy[pick] + rng.normal(0, deg, n_cluster)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    bx, by = _uniform_over(geoms, n_background, rng)
    # Vertices are exactly representable on both sides of a shared edge: true edge points.
    vertices = shapely.get_coordinates(shapely.boundary(geoms[rng.choice(len(geoms), 2000)]))
    chosen = vertices[rng.integers(0, len(vertices), n_edge)]
    lon = np.concatenate([lon, bx, rng.uniform(x0, x1, n_stray), chosen[:, 0]])
    lat = np.concatenate([lat, by, rng.uniform(y0, y1, n_stray), chosen[:, 1]])
    order = rng.permutation(n)
    return lon[order], lat[order]


def _uniform_over(
    geoms: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform over the areas' land: areas drawn by size, points by rejection."""
    sizes = shapely.area(geoms)
    bounds = shapely.bounds(geoms)
    xs, ys = [], []
    while sum(map(len, xs)) < n:
        pick = rng.choice(len(geoms), n, p=sizes / sizes.sum())
        b = bounds[pick]
        x, y = rng.uniform(b[:, 0], b[:, 2]), rng.uniform(b[:, 1], b[:, 3])
        keep = shapely.contains_xy(geoms[pick], x, y)
        xs.append(x[keep])
        ys.append(y[keep])
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def interleaved(
    contenders: dict[str, Callable[[], Any]], rounds: int, slow: set[str] = frozenset()
) -> dict[str, list[float]]:
    """Run each contender once per round, in turn; slow ones only in the first round.

    A contender that returns a float has timed its own work (leaving out set-up such as
    resetting a table); otherwise the whole call is timed.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_number in range(rounds):
        for name, run in contenders.items():
            if name in slow and round_number > 0:
                continue
            started = time.perf_counter()
            own = run()
            elapsed = time.perf_counter() - started
            times[name].append(own if isinstance(own, float) else elapsed)
            print(f"  round {round_number + 1}: {name}: {times[name][-1]:.3f} s", flush=True)
    return times


def best(times: list[float]) -> float:
    """The fastest run: the least disturbed measure of the code itself."""
    return min(times)


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of samples."""
    return float(np.percentile(np.asarray(samples), q))


def report(name: str, figures: dict[str, Any]) -> None:
    """Print figures and keep them as JSON under benchmarks/out."""
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps(figures, indent=2, default=str))


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server started next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until ``geogrid serve`` on ``port`` answers /healthz; fail if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"geogrid serve exited with {process.returncode}; see the log")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"geogrid serve did not become healthy within {timeout_s:.0f} s")
