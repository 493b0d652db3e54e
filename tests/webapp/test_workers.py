"""The gthread worker of ``geogrid serve``: a busy worker leaves new connections to an idle one.

A real gunicorn (two workers, one thread each) serves a tiny WSGI app in a child
process: one connection keeps a worker busy, and a second connection opened meanwhile
must be answered at once by the other worker. gunicorn's own gthread worker accepts it
in the busy worker about half the time and answers it only after the slow request.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SERVER = textwrap.dedent(
    """
    import os, sys, time
    from gunicorn.app.base import BaseApplication

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            time.sleep(float(environ["QUERY_STRING"] or 1))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {
                "bind": "127.0.0.1:" + sys.argv[2],
                "workers": 2,
                "threads": 1,
                "worker_class": sys.argv[1],
                "keepalive": 30,
                "accesslog": None,
                "control_socket_disable": True,
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()
    """
)
WORKER_CLASS = "web.workers.FairThreadWorker"
SLOW_S = 1.0
ROUNDS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, str(script), WORKER_CLASS, str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_serving(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_serving(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _get(port, "/pid")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _get(port: int, path: str) -> tuple[str, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode(), time.monotonic() - started
    finally:
        connection.close()


def test_a_new_connection_goes_to_the_worker_with_a_free_thread(server):
    port = server
    for _ in range(ROUNDS):
        slow = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        slow.request("GET", f"/slow?{SLOW_S}")
        time.sleep(0.3)  # one worker's only thread is now asleep in the request
        pid, seconds = _get(port, "/pid")
        busy_pid = slow.getresponse().read().decode()
        slow.close()
        assert pid != busy_pid
        assert seconds < SLOW_S / 2
