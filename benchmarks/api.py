"""Intake through the API under 50 concurrent clients: gunicorn, the demo county, retries.

``geogrid serve`` (gunicorn, ``GEOGRID_WORKERS`` workers, default 2, of 4 threads each) runs on
the demo county (奎文区, built once into its own database) and 50 client threads, each
with one keep-alive connection, post ``/api/incidents`` as the public would: GCJ-02
points clustered like real reports, a random category, a contact. Half the requests
retry an earlier request's ``Idempotency-Key`` with its body, some while the first is
still in flight. Every answer must be 201 or 200 (either request of a key may arrive
first), with exactly one 201 per key and one incident id in all of a key's answers;
anything else is an error. A request whose kept-alive connection the server closed as
it went out is sent again once on a new connection, as an HTTP client would, safe
because of its key; those are counted apart (``resent_after_connection_reset``), and
the latency includes both tries. Afterwards the database must hold exactly one
incident per key sent.

The load generator is Python (threads and ``http.client``) on the same 2 cores as the
server and PostgreSQL, so its own CPU time is measured and reported beside the server's.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from benchmarks.common import (
    OUT,
    bench_settings,
    clustered_points,
    free_port,
    percentile,
    report,
    wait_until_healthy,
)
from geogrid import db, generations
from geogrid.crs import wgs84_to_gcj02
from geogrid.models import Incident
from geogrid.settings import Settings
from web.server import THREADS

DATABASE = "geogrid_bench_api"
COUNTY = "370705"
CLIENTS = 50
REQUESTS = 6_000
RETRY_SHARE = 0.5
#: Requests before the measured ones: pools connect, caches fill.
WARM_UP = 200
#: The run stops here even if not every request was sent (it never should).
TIME_LIMIT_S = 600
CATEGORIES = ("environment", "public_facility", "safety_hazard", "noise", "public_order")


@dataclass
class Load:
    """What the clients share: the requests to send, what was sent, what came back."""

    bodies: list[bytes]
    run_id: str
    retry_share: float
    remaining: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"new": [], "retry": []})
    statuses: Counter[int] = field(default_factory=Counter)
    ids_by_key: dict[str, set[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)
    transport_retries: int = 0

    def next_request(self, rng: random.Random) -> tuple[str, str, bytes] | None:
        """(kind, key, body) of the next request, or None when all have been sent."""
        with self.lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            if self.sent and rng.random() < self.retry_share:
                key, body = self.sent[rng.randrange(len(self.sent))]
                return "retry", key, body
            number = len(self.sent)
            key = f"bench-{self.run_id}-{number}"
            body = self.bodies[number % len(self.bodies)]
            self.sent.append((key, body))
            return "new", key, body

    def fail(self, kind: str, key: str, exc: Exception) -> None:
        """A request that got no answer at all."""
        with self.lock:
            self.errors.append(f"{kind} {key}: {type(exc).__name__}: {exc}")

    def record(self, kind: str, key: str, status: int, elapsed_ms: float, answer: bytes) -> None:
        """Keep the latency and the answer: 201 or 200 with the incident's id, else an error.

        A retry may overtake its first request, so either may be the 201; the checks
        afterwards want exactly one 201 per key and one incident id in all its answers.
        """
        with self.lock:
            self.statuses[status] += 1
            self.latencies_ms[kind].append(elapsed_ms)
            if status not in (200, 201):
                self.errors.append(f"{kind} {key}: HTTP {status} {answer[:200]!r}")
                return
            self.ids_by_key.setdefault(key, set()).add(json.loads(answer)["incident"]["id"])
            if status == 201:
                self.created[key] += 1


def run(clients: int = CLIENTS, requests: int = REQUESTS) -> dict[str, Any]:
    """Serve the demo county under gunicorn and file ``requests`` incidents from ``clients``."""
    settings = bench_settings(DATABASE)
    engine = _ensure_county(settings)
    with Session(engine) as session:
        generation = generations.current_generation(session)
        areas = generations.generation_areas(session, generation.id, level="grid")
    bodies = _bodies(areas, 2_000)
    port = free_port()
    log_path = OUT / "api-server.log"
    OUT.mkdir(exist_ok=True)
    loadavg_before = os.getloadavg()
    with log_path.open("w") as log, _Server(settings, port, log) as server:
        warm_up = Load(bodies, uuid.uuid4().hex[:12], RETRY_SHARE, WARM_UP)
        _drive(port, warm_up, min(clients, 10))
        cpu_before = _cpu(server.pid)
        load = Load(bodies, uuid.uuid4().hex[:12], RETRY_SHARE, requests)
        started = time.perf_counter()
        client_cpu = time.process_time()
        _drive(port, load, clients)
        client_cpu = time.process_time() - client_cpu
        elapsed = time.perf_counter() - started
        cpu_after = _cpu(server.pid)
    figures = _figures(settings, load, clients, elapsed, client_cpu, cpu_before, cpu_after)
    figures.update(
        grids=len(areas),
        workers=settings.workers,
        loadavg_before=loadavg_before,
        database=_database_check(engine, load),
    )
    checked = figures["database"]
    figures["errors"] += sum(value for name, value in checked.items() if name != "keys_sent")
    report("api", figures)
    return figures


# -- the load ----------------------------------------------------------------------------------


def _drive(port: int, load: Load, clients: int) -> None:
    threads = [
        threading.Thread(target=_client, args=(port, load, seed), daemon=True)
        for seed in range(clients)
    ]
    deadline = time.monotonic() + TIME_LIMIT_S
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))


def _client(port: int, load: Load, seed: int) -> None:
    rng = random.Random(seed)
    connection = _Connection(port)
    while (chosen := load.next_request(rng)) is not None:
        kind, key, body = chosen
        started = time.perf_counter()
        try:
            status, answer = connection.post(key, body)
        except _Reset:
            # The server closed the kept-alive connection as the request went out (gunicorn
            # drops idle ones after 2 s, sooner when starved of CPU). Sending it again on a
            # new connection is safe, because of the Idempotency-Key; that is what it is for.
            with load.lock:
                load.transport_retries += 1
            connection = _Connection(port)
            try:
                status, answer = connection.post(key, body)
            except (OSError, http.client.HTTPException) as exc:
                load.fail(kind, key, exc)
                connection = _Connection(port)
                continue
        except (OSError, http.client.HTTPException) as exc:
            load.fail(kind, key, exc)
            connection = _Connection(port)
            continue
        load.record(kind, key, status, (time.perf_counter() - started) * 1000, answer)
    connection.close()


class _Reset(Exception):
    """A kept-alive connection was closed by the server before it answered."""


class _Connection:
    """One client's keep-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.used = False

    def post(self, key: str, body: bytes) -> tuple[int, bytes]:
        """POST one report; _Reset when a reused connection was closed under it."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        try:
            self.http.request("POST", "/api/incidents", body=body, headers=headers)
            response = self.http.getresponse()
            answer = response.read()
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            self.http.close()
            if self.used:
                raise _Reset() from None
            raise
        self.used = True
        return response.status, answer

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


def _bodies(areas: Any, n: int) -> list[bytes]:
    """Reports as phones send them: GCJ-02 points around busy places, a category, a contact."""
    lon, lat = clustered_points(areas, n, seed=11)
    rng = random.Random(11)
    bodies = []
    for x, y in zip(lon, lat, strict=True):
        gcj_lon, gcj_lat = wgs84_to_gcj02(float(x), float(y))
        body = {
            "category": rng.choice(CATEGORIES),
            "description": "压测：路灯不亮，晚上很黑 streetlight out",
            "lon": round(gcj_lon, 7),
            "lat": round(gcj_lat, 7),
            "coord_type": "gcj02",
            "address": "奎文区测试路 1 号",
            "contact_name": "测试",
            "contact_phone": "0536-8888888",
        }
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


# -- the server ---------------------------------------------------------------------------------


class _Server:
    """``geogrid serve`` in a child process, until the ``with`` block ends."""

    def __init__(self, settings: Settings, port: int, log: Any) -> None:
        self.settings, self.port, self.log = settings, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> _Server:
        env = {
            **os.environ,
            "GEOGRID_DATABASE_URL": self.settings.sqlalchemy_url,
            "GEOGRID_WORKERS": str(self.settings.workers),
            "GEOGRID_SECRET_KEY": "bench-only",
        }
        command = [sys.executable, "-c", "from geogrid.cli import main; main()", "serve"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)], env=env, stdout=self.log, stderr=self.log
        )
        wait_until_healthy(self.port, self.process, timeout_s=60)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()  # gunicorn stops its workers on SIGTERM
        self.process.wait(timeout=60)


# -- measuring ---------------------------------------------------------------------------------


def _cpu(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: gunicorn (master and workers), this database's backends, all cores."""
    tick = os.sysconf("SC_CLK_TCK")
    gunicorn = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # the process ended while we looked
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid, used = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == server_pid or ppid == server_pid:
            gunicorn += used
        elif command.startswith("postgres:") and f" {DATABASE} " in command:
            postgres += used
    with open("/proc/stat") as machine:
        values = [int(v) for v in machine.readline().split()[1:]]
    idle = values[3] + values[4]
    return {
        "gunicorn": gunicorn,
        "postgres": postgres,
        "busy": (sum(values) - idle) / tick,
        "total": sum(values) / tick,
    }


def _figures(
    settings: Settings,
    load: Load,
    clients: int,
    elapsed: float,
    client_cpu: float,
    before: dict[str, float],
    after: dict[str, float],
) -> dict[str, Any]:
    everything = load.latencies_ms["new"] + load.latencies_ms["retry"]
    mismatched = sorted(
        key
        for key, _ in load.sent
        if len(load.ids_by_key.get(key, ())) > 1 or load.created[key] != 1
    )
    used = {name: after[name] - before[name] for name in after}
    cores = os.cpu_count() or 1
    return {
        "clients": clients,
        "requests": len(everything),
        "new": len(load.latencies_ms["new"]),
        "retries": len(load.latencies_ms["retry"]),
        "duration_s": round(elapsed, 2),
        "requests_per_s": round(len(everything) / elapsed, 1),
        "latency_ms": _spread(everything),
        "latency_ms_new": _spread(load.latencies_ms["new"]),
        "latency_ms_retry": _spread(load.latencies_ms["retry"]),
        "statuses": dict(sorted(load.statuses.items())),
        "errors": len(load.errors) + len(mismatched),
        "resent_after_connection_reset": load.transport_retries,
        "error_samples": load.errors[:10]
        + [
            f"{key}: {load.created[key]} created, ids {sorted(load.ids_by_key.get(key, ()))}"
            for key in mismatched[:10]
        ],
        "cpu_s": {
            "load_generator": round(client_cpu, 1),
            "gunicorn": round(used["gunicorn"], 1),
            "postgres": round(used["postgres"], 1),
            "machine_busy": round(used["busy"], 1),
        },
        "cpu_share_of_machine": {
            "load_generator": round(client_cpu / (elapsed * cores), 3),
            "gunicorn": round(used["gunicorn"] / (elapsed * cores), 3),
            "postgres": round(used["postgres"] / (elapsed * cores), 3),
            "machine_busy": round(used["busy"] / used["total"], 3) if used["total"] else None,
        },
        # CPU per request does not depend on what else loads the machine, unlike the rate.
        "cpu_ms_per_request": {
            "gunicorn": round(used["gunicorn"] * 1000 / max(len(everything), 1), 2),
            "postgres": round(used["postgres"] * 1000 / max(len(everything), 1), 2),
        },
        "cores": cores,
        "server": f"gunicorn gthread, {settings.workers} workers x {THREADS} threads",
    }


def _spread(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(samples, 50), 1),
        "p95": round(percentile(samples, 95), 1),
        "p99": round(percentile(samples, 99), 1),
        "max": round(max(samples), 1),
    }


def _database_check(engine: Any, load: Load) -> dict[str, int]:
    """One incident per key sent, and it is the one every answer for that key named."""
    prefix = f"bench-{load.run_id}-"
    with Session(engine) as session:
        rows = session.execute(
            select(Incident.idempotency_key, func.count(), func.min(Incident.id))
            .where(Incident.idempotency_key.startswith(prefix, autoescape=True))
            .group_by(Incident.idempotency_key)
        ).all()
    stored = {key: first_id for key, _, first_id in rows}
    answered = {key: next(iter(ids)) for key, ids in load.ids_by_key.items() if len(ids) == 1}
    return {
        "keys_sent": len(load.sent),
        "incidents_beyond_one_per_key": sum(number for _, number, _ in rows) - len(stored),
        "keys_with_several_incidents": sum(1 for _, number, _ in rows if number > 1),
        "keys_without_incident": len({key for key, _ in load.sent} - set(stored)),
        "answers_naming_another_incident": sum(
            1 for key, incident_id in answered.items() if stored.get(key) != incident_id
        ),
    }


def _ensure_county(settings: Settings) -> Any:
    """The benchmark database with the demo county active (built once)."""
    from geogrid.demo_load import build_and_load

    engine = db.make_engine(settings)
    with Session(engine) as session:
        if generations.current_generation(session) is None:
            print(f"building the demo county {COUNTY} in {DATABASE} (once) ...", flush=True)
            result = build_and_load(session, settings, county=COUNTY, created_by="bench")
            session.commit()
            print("\n".join(result.lines()), flush=True)
    return engine
