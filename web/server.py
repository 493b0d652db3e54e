"""``geogrid serve``: the app under gunicorn, configured from the settings, not a config file.

The app is built once in gunicorn's master (``preload_app``), which also prepares what
the map endpoints need most and what costs most to make: the point index of
``/api/locate`` (most of a gigabyte and several seconds for a 15,000-grid city) and the
outlines a city's overview draws (``web.layers.warm_before_fork``). The workers forked
from it share those pages; each then warms the rest in a background thread (deeper
zooms' outlines, the hotspot statistics; ``web.layers.warm_up``) while it already serves.
Until something is ready it is made on first use, so a cold server is slower, never wrong.
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from geogrid.settings import Settings

log = logging.getLogger(__name__)

#: Threads per worker (gthread) by default (``GEOGRID_THREADS``): pages wait on the database.
THREADS = Settings.threads
#: gunicorn's worker class for each ``GEOGRID_WORKER_CLASS``: gthread workers that take
#: new connections only while a thread is free (web/workers.py), or gunicorn's sync.
WORKER_CLASSES = {"gthread": "web.workers.FairThreadWorker", "sync": "sync"}
#: Seconds a request may take; a whole county's grids render well within it.
TIMEOUT = 120
#: Options older gunicorn releases do not have; they are skipped there.
_NEWER_OPTIONS = frozenset({"control_socket_disable"})


class GeogridServer(BaseApplication):
    """gunicorn run from Python: options from the settings, the app from ``create_app``."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options; BaseApplication reads no gunicorn.conf.py, only these."""
        for key, value in self.options.items():
            if key in _NEWER_OPTIONS and key not in self.cfg.settings:
                continue
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app; in the master when preloading, with the maps shared by the workers."""
        from web import create_app
        from web.layers import warm_before_fork

        app = create_app(self.settings)
        if self.cfg.preload_app:
            # Its connections are closed before the fork: each worker opens its own pool.
            warm_before_fork(app, logging.getLogger("gunicorn.error"))
            # Out of the collector's sight, so that its passes do not write to (and so
            # copy) the pages the workers share.
            gc.freeze()
        return app


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """The gunicorn options for these settings."""
    return {
        "bind": bind_address(settings.host, settings.port),
        "workers": settings.workers,
        "threads": settings.threads,
        "worker_class": WORKER_CLASSES[settings.worker_class],
        "timeout": TIMEOUT,
        "accesslog": "-",
        "errorlog": "-",
        # gunicorn 24+ opens a management socket in $HOME; geogrid does not use it, and
        # two servers on one machine would contend for the same path.
        "control_socket_disable": True,
        # The app (with the point index and the overview's outlines) is built once in the
        # master and shared by the workers; each then warms the rest in the background.
        "preload_app": True,
        "post_worker_init": _warm_up,
    }


def _warm_up(worker: Any) -> None:
    """Each worker prepares the maps and lookups of the active generation in the background."""
    from web.layers import warm_up

    # gunicorn's own logger, so "maps warmed" shows in the server's log.
    warming = warm_up(worker.wsgi, worker.log)
    threading.Thread(target=_freeze_after, args=(warming,), daemon=True).start()


def _freeze_after(warming: threading.Thread) -> None:
    # What the warm-up made (outlines, hotspot weights: ~300,000 objects for Weifang)
    # lives as long as the worker. Left in the collector's sight, each full collection
    # walked it for 20-50 ms, stalling every request in flight: most of the JSON
    # endpoints' p99. Frozen, a full collection takes a few milliseconds.
    warming.join()
    gc.freeze()


def bind_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(settings: Settings) -> None:
    """Run gunicorn until stopped, printing the address it serves."""
    if not settings.secret_key:
        # One key for all workers, so a session signed by one is valid in the others.
        log.warning("GEOGRID_SECRET_KEY is not set: sessions end when the server restarts")
        settings = settings.with_(secret_key=secrets.token_hex(32))
    options = gunicorn_options(settings)
    address = f"http://{options['bind']}/"
    shape = f"{settings.workers} {settings.worker_class} workers"
    if settings.worker_class == "gthread":
        shape += f" x {settings.threads} threads"
    print(f"geogrid: serving on {address} ({shape})", flush=True)
    GeogridServer(settings, options).run()
