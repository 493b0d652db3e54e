"""A gthread worker that takes a new connection only while one of its threads is free.

gunicorn's workers share one listening socket, and a gthread worker accepts whatever
the kernel offers it, busy or not (gunicorn issue 3433). A connection then stays with
the worker that accepted it for as long as it is kept alive. When many connections
open at once, one worker may take nearly all of them while the other idles: under
``wrk -c16`` a two-worker server sometimes answered /api/locate at one core's speed
(~850 instead of ~1,900 requests/s; ``python -m benchmarks webload``). Here a worker
whose threads are all busy stops listening until one is free, so a new connection goes
to a worker that can answer it now.

It relies on three hooks of gunicorn's ``ThreadWorker`` (``enqueue_req``,
``finish_request``, ``set_accept_enabled``), present since gunicorn 27; pyproject.toml
keeps gunicorn within that release series. All three run on the worker's main thread
(its event loop), so the count needs no lock.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class FairThreadWorker(ThreadWorker):
    """gthread, listening for new connections only while it has a thread to serve them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Requests handed to the thread pool and not yet finished.
        self.in_flight = 0

    def enqueue_req(self, conn: Any) -> None:
        """Hand a request to a thread; stop listening once every thread has one."""
        self.in_flight += 1
        super().enqueue_req(conn)
        if self.in_flight >= self.cfg.threads:
            self.set_accept_enabled(False)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """A thread is free again; the event loop then listens again."""
        self.in_flight -= 1
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled: bool) -> None:
        """Listen only when asked to and a thread is free."""
        super().set_accept_enabled(enabled and self.in_flight < self.cfg.threads)
