"""The JSON endpoints behind the maps under load: wrk, 16 connections, ``geogrid serve``.

``geogrid serve`` (gunicorn, as deployed) runs on the Weifang-scale demo with a year of
incidents (built once into ``geogrid_bench_web``) in each server shape of :data:`SHAPES`,
and wrk (Debian's ``wrk``; ``scripts/setup --bench``) drives each endpoint in turn with
16 connections, cycling through a list of URLs a map would ask for (a Lua script):

- ``layers``: outlines of counties, townships and communities at the overview zooms and
  chunks of grids and micro-grids over the whole city at the zooms they appear at,
  gzipped, with an API token;
- ``locate``: 2,000 points clustered like incidents, in GCJ-02 as phones send them, as
  the public asks (no token); ``locate_wgs84`` the same points in WGS84, which need no
  conversion (the GCJ-02 inversion is a good part of a lookup's time);
- ``stats``: incident figures per grid, community and township for the month, for the
  whole city and for each county, with an API token.

Each endpoint is warmed first (outlines simplified, the point index built, figures
counted in every worker), then measured for :data:`DURATION` seconds. wrk, gunicorn and
PostgreSQL share this machine's two cores, as they would on a small server, and so does
whatever else runs on it: the load averages before and after are kept with the figures.
The exact wrk command lines are printed and kept in the JSON (the token is made for the
run and revoked after it). gthread workers keep connections alive; sync workers close
each after its answer, and wrk opens a new one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from benchmarks.common import (
    OUT,
    bench_settings,
    clustered_points,
    free_port,
    report,
    wait_until_healthy,
)
from geogrid import db, generations
from geogrid.area_index import area_bounds, area_names, level_summaries
from geogrid.crs import wgs84_to_gcj02
from geogrid.maplayers import CHUNK_ZOOM_OFFSET, zoom_bucket
from geogrid.models import AppUser
from geogrid.periods import MONTHLY, Period
from geogrid.settings import Settings
from geogrid.users import add_user, issue_token, revoke_token
from geogrid.workdays import SHANGHAI

DATABASE = "geogrid_bench_web"
CENTRAL_COUNTY = "370705"
CITY = "3707"
CONNECTIONS = 16
#: wrk's threads: one per core.
THREADS = 2
DURATION = 20
WARM_UP = 10
WARM_UP_ROUNDS = 8
USER = "bench-web"
PASSWORD = "bench-web-password"
#: The server shapes measured (``GEOGRID_WORKER_CLASS``, ``GEOGRID_WORKERS``,
#: ``GEOGRID_THREADS``): the default, two threads per worker; four, for pages that wait
#: on the database, with more requests contending for each worker's interpreter lock;
#: and one sync worker per core, one request at a time each.
SHAPES: dict[str, dict[str, Any]] = {
    "gthread_2x2": {"worker_class": "gthread", "workers": 2, "threads": 2},
    "gthread_2x4": {"worker_class": "gthread", "workers": 2, "threads": 4},
    "sync_2": {"worker_class": "sync", "workers": 2},
}
#: The floors of issue 5.
FLOOR_RPS = 1000
FLOOR_P99_MS = 25.0


def run(duration: int = DURATION) -> dict[str, Any]:
    """Load each endpoint with wrk under each server shape; report rps and latency percentiles."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: run scripts/setup --bench (Debian's wrk package)")
    settings = web_city()
    with Session(db.make_engine(settings)) as session:
        generation = generations.current_generation(session)
        token = bench_token(session)
        urls = {
            "layers": layer_paths(session, generation),
            "locate": locate_paths(session, generation.id),
            "locate_wgs84": locate_paths(session, generation.id, crs="wgs84"),
            "stats": stats_paths(session, generation.id),
        }
        session.commit()
    OUT.mkdir(exist_ok=True)
    figures: dict[str, Any] = {"connections": CONNECTIONS, "duration_s": duration}
    try:
        for shape, changes in SHAPES.items():
            print(f"  -- {shape}", flush=True)
            figures[shape] = _load(wrk, settings.with_(**changes), urls, token, duration)
    finally:
        with Session(db.make_engine(settings)) as session:
            revoke_token(session, token)
            session.commit()
    report("webload", figures)
    return figures


def _load(
    wrk: str, settings: Settings, urls: dict[str, list[str]], token: str, duration: int
) -> dict[str, Any]:
    """One server shape: each endpoint warmed, then measured."""
    # Others' work on the same two cores shows here; compare runs at like load.
    figures: dict[str, Any] = {"load_average_before": load_average()}
    port = free_port()
    with (OUT / "webload-server.log").open("w") as log, served(settings, port, log) as pid:
        for name, paths in urls.items():
            headers = [] if name.startswith("locate") else [f"Authorization: Bearer {token}"]
            headers.append("Accept-Encoding: gzip")
            script = _lua_script(name, paths)
            base = f"http://127.0.0.1:{port}"
            _warm(wrk, base, script, headers)
            command = _command(wrk, base, script, headers, duration, CONNECTIONS)
            print("  $ " + " ".join(_quoted(part) for part in command), flush=True)
            cpu_before = _cpu_seconds(pid)
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            server_cpu = _cpu_seconds(pid) - cpu_before
            result = parse_wrk(output)
            result.update(
                urls=len(paths),
                example=paths[0],
                command=" ".join(_quoted(part) for part in command),
                server_cpu_ms_per_request=round(1000 * server_cpu / max(result["requests"], 1), 3),
                meets_floor=result["requests_per_s"] >= FLOOR_RPS
                and result["latency_ms"]["p99"] < FLOOR_P99_MS,
            )
            figures[name] = result
            print(f"  {name}: {_summary(result)}", flush=True)
    figures["load_average_after"] = load_average()
    return figures


def web_city() -> Settings:
    """The benchmark database with the Weifang-scale city and a year of incidents (built once)."""
    from geogrid.demo_load import build_and_load

    settings = bench_settings(DATABASE)
    with Session(db.make_engine(settings)) as session:
        if generations.current_generation(session) is None:
            print(f"building the demo city {CITY} with incidents in {DATABASE} (once) ...")
            result = build_and_load(
                session, settings, city=CITY, created_by="bench", incidents=True, progress=True
            )
            session.commit()
            print("\n".join(result.lines()), flush=True)
    return settings


def bench_token(session: Session) -> str:
    """A new API token of the benchmark's administrator (made once, with a password)."""
    if session.scalar(select(AppUser).where(AppUser.name == USER)) is None:
        add_user(session, USER, "administrator", password=PASSWORD, created_by="bench")
    secret, _ = issue_token(session, USER, purpose="benchmarks/webload")
    return secret


def layer_paths(session: Session, generation: Any) -> list[str]:
    """What maps of the city fetch: overview levels whole, grids and micro-grids by chunk.

    Grids in chunks over the whole city at the zoom they appear at and two deeper,
    micro-grids in chunks over the central county (奎文区) at theirs.
    """
    summaries = level_summaries(session, generation)
    paths = []
    for level in ("county", "township", "community"):
        paths += [f"/api/layers/{generation.id}/{level}.geojson?z={z}" for z in (8, 10, 12)]
    centre = area_bounds(session, generation.id, CENTRAL_COUNTY)
    for level, zoom, bounds in (
        ("grid", summaries["grid"].min_zoom, summaries["grid"].bounds),
        ("grid", summaries["grid"].min_zoom + 2, summaries["grid"].bounds),
        ("microgrid", summaries["microgrid"].min_zoom, centre),
    ):
        chunk_zoom = zoom_bucket(zoom) - CHUNK_ZOOM_OFFSET
        for x, y in _tiles(bounds, chunk_zoom):
            paths.append(
                f"/api/layers/{generation.id}/{level}.geojson?z={zoom}&tile={chunk_zoom}/{x}/{y}"
            )
    return paths


def locate_paths(session: Session, generation: int, n: int = 2000, crs: str = "gcj02") -> list[str]:
    """Points clustered like incidents, in GCJ-02 as phones send them (or as WGS84)."""
    areas = generations.generation_areas(session, generation, level="grid")
    lon, lat = clustered_points(areas, n, seed=11)
    if crs == "gcj02":
        lon, lat = wgs84_to_gcj02(lon, lat)
    return [
        f"/api/locate?lon={x:.6f}&lat={y:.6f}&crs={crs}"
        for x, y in zip(np.asarray(lon), np.asarray(lat), strict=True)
    ]


def stats_paths(session: Session, generation: int) -> list[str]:
    """Figures for last month per grid, community and township, city-wide and per county."""
    month = Period.containing(MONTHLY, datetime.now(SHANGHAI) - timedelta(days=31)).label
    counties = area_names(session, generation, levels=["county"])["code"]
    paths = [f"/api/maps/stats?level={lv}&period={month}" for lv in ("grid", "community")]
    paths += [f"/api/maps/stats?level=township&period={month}"]
    paths += [f"/api/maps/stats?level=grid&period={month}&within={c}" for c in counties]
    return paths


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, requests per second, errors and latency percentiles from ``wrk --latency``."""
    latency = {}
    for percent, value, unit in re.findall(
        r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M
    ):
        latency[f"p{percent}"] = round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], 3)
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    if requests is None or rate is None or len(latency) != 4:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    return {
        "requests": int(requests.group(1)),
        "requests_per_s": round(float(rate.group(1)), 1),
        "latency_ms": latency,
        "non_2xx": int(failed.group(1)) if failed else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


@contextmanager
def served(settings: Settings, port: int, log: Any, *, warm: bool = True) -> Iterator[int]:
    """``geogrid serve`` on the benchmark database in a child process; yields its pid.

    With ``warm``, once every worker has prepared its maps and lookups.
    """
    env = {
        **os.environ,
        "GEOGRID_DATABASE_URL": settings.sqlalchemy_url,
        "GEOGRID_WORKERS": str(settings.workers),
        "GEOGRID_WORKER_CLASS": settings.worker_class,
        "GEOGRID_THREADS": str(settings.threads),
        "GEOGRID_SECRET_KEY": "bench-only",
    }
    command = [sys.executable, "-c", "from geogrid.cli import main; main()", "serve"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        # The master prepares the point index and the overview before it listens.
        wait_until_healthy(port, process, timeout_s=600)
        if warm:
            wait_until_warm(Path(log.name), settings.workers)
        yield process.pid
    finally:
        process.terminate()  # gunicorn stops its workers on SIGTERM
        process.wait(timeout=60)


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages."""
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def wait_until_warm(log: Path, workers: int, timeout_s: float = 900) -> None:
    """Until every worker has logged that its maps, lookups and statistics are prepared."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        text = log.read_text()
        if "warming the maps failed" in text:
            raise RuntimeError(f"the server could not warm its maps; see {log}")
        # Maps first, then the hotspot statistics (the worker's last step), in every worker.
        done = text.count("hotspots warmed") + text.count("warming the hotspot statistics failed")
        if text.count("maps warmed in") >= workers and done >= workers:
            print(f"  server warm after {time.monotonic() - started:.0f} s", flush=True)
            return
        time.sleep(1)
    raise RuntimeError(f"the server's workers did not warm up within {timeout_s:.0f} s")


def _tiles(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int]]:
    west, south, east, north = bounds
    n = 2**z

    def tile(lon: float, lat: float) -> tuple[int, int]:
        rad = np.radians(lat)
        x = int((lon + 180) / 360 * n)
        y = int((1 - np.log(np.tan(rad) + 1 / np.cos(rad)) / np.pi) / 2 * n)
        return x, y

    (x0, y0), (x1, y1) = tile(west, north), tile(east, south)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _lua_script(name: str, paths: list[str]) -> Path:
    """A wrk script cycling through the paths, each thread from its own starting point."""
    listed = ",\n".join(f'  "{path}"' for path in paths)
    script = OUT / f"webload-{name}.lua"
    script.write_text(
        f"-- {name}: {len(paths)} paths, written by benchmarks/webload.py\n"
        f"local paths = {{\n{listed}\n}}\n"
        "local i = 0\n"
        "function setup(thread) thread:set('offset', math.random(#paths)) end\n"
        "function init(args) i = tonumber(offset) or 0 end\n"
        "function request()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def _command(
    wrk: str, base: str, script: Path, headers: list[str], seconds: int, connections: int
) -> list[str]:
    command = [wrk, f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    return [*command, "-s", str(script), base]


def _warm(wrk: str, base: str, script: Path, headers: list[str]) -> None:
    """Load until every worker answers from its caches: outlines simplified, index built."""
    for attempt in range(WARM_UP_ROUNDS):
        command = _command(wrk, base, script, headers, WARM_UP, CONNECTIONS)
        command[-1:-1] = ["--timeout", "60s"]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        p99 = parse_wrk(output)["latency_ms"]["p99"]
        print(f"  warming up ({attempt + 1}): p99 {p99} ms", flush=True)
        if p99 < FLOOR_P99_MS:
            return


def _cpu_seconds(server_pid: int) -> float:
    """User and system CPU seconds of the server and its workers so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == server_pid or int(fields[1]) == server_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _quoted(part: str) -> str:
    return f"'{part}'" if " " in part else part


def _summary(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    return (
        f"{result['requests_per_s']:.0f} req/s, p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
        f"{result['non_2xx']} non-2xx, {result['server_cpu_ms_per_request']} ms server CPU/request"
    )
