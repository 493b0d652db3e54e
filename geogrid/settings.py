"""One typed settings object, read from ``GEOGRID_*`` environment variables at start-up.

Settings are validated when loaded and passed down; nothing below the CLI or the app
factory reads the environment. Every field is listed in the README with its variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from geogrid.codes import DEFAULT_SCHEME, CodeScheme
from geogrid.errors import ConfigError

PREFIX = "GEOGRID_"

#: The repository root; the private cluster lives in ``<root>/.geogrid``.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def private_cluster_url(home: Path) -> str:
    """The URL of geogrid's own cluster: a Unix socket in ``<home>/.geogrid/run``."""
    return f"postgresql+psycopg://geogrid@/geogrid?host={home / '.geogrid' / 'run'}"


@dataclass(frozen=True)
class Settings:
    """Everything a deployment can configure; see the README for each variable."""

    #: SQLAlchemy URL of the database; empty means geogrid's private cluster.
    database_url: str = ""
    #: Unified code scheme, coarsest level first.
    code_scheme: str = DEFAULT_SCHEME
    #: Points closer than this to another grid are flagged ``near_edge``.
    near_edge_m: float = 15.0
    #: How far (metres) an area may stick out of its parent and still nest.
    nesting_tolerance_m: float = 1.0
    #: Gaps between siblings narrower than this are reported (coverage validation).
    gap_width_m: float = 5.0
    #: Polygon parts and gaps smaller than this (square metres) are slivers.
    sliver_area_m2: float = 10.0
    #: Households per grid allowed by the sizing rule, e.g. ``100-600``; empty: no rule.
    households_per_grid: str = ""
    #: Incidents of a category this close (metres) and recent (hours) are possible duplicates.
    duplicate_distance_m: float = 100.0
    duplicate_window_h: float = 72.0
    #: Base map: ``none``, ``tianditu:KEY`` or an XYZ URL template.
    tiles: str = "none"
    #: Attribution shown for an XYZ ``tiles`` URL.
    tiles_attribution: str = ""
    #: Interface language by default (``zh_CN`` or ``en``).
    language: str = "zh_CN"
    #: Secret for signing sessions; generated per process when empty (dev only).
    secret_key: str = ""
    #: Address ``geogrid serve`` listens on.
    host: str = "127.0.0.1"
    port: int = 8000
    #: WSGI worker processes for ``geogrid serve``.
    workers: int = 2
    #: gunicorn worker class: ``gthread`` (``threads`` requests at once per worker, on
    #: kept-alive connections: pages that wait on the database overlap) or ``sync`` (one
    #: request at a time per worker, a new connection for each).
    worker_class: str = "gthread"
    #: Threads per worker with ``gthread``. Two: the map JSON endpoints are CPU-bound, and
    #: with four, requests queued for each worker's interpreter lock made their p99 half
    #: as long again (``python -m benchmarks webload``; the README has the figures).
    threads: int = 2
    #: Folder holding ``.geogrid/`` (the private cluster); the repository by default.
    home: Path = field(default=PROJECT_ROOT)
    #: Session cookies only over https, named ``__Host-``. Browsers keep such cookies on
    #: http://127.0.0.1 and http://localhost too, so the demo works without https; turn it
    #: off only to serve plain http on another address (a trusted network).
    secure_cookies: bool = True
    #: A signed-in session ends after this many minutes without a request ...
    session_idle_minutes: int = 120
    #: ... and this many hours after signing in, however busy (a working day).
    session_hours: int = 12
    #: Failed sign-ins one client address may make (``limits`` notation, ``;`` between).
    login_rate_limit: str = "20 per 15 minutes"
    #: Incidents the anonymous public may file from one address (JSON API and Open311).
    filing_rate_limit: str = "20 per minute;200 per hour"
    #: Where those counts live: ``memory://`` (each worker process its own) or a shared
    #: store ``limits`` knows, such as ``redis://host:6379`` (needs the redis package).
    rate_limit_storage: str = "memory://"
    #: Reverse proxies in front of geogrid whose X-Forwarded-For and -Proto are believed.
    trusted_proxies: int = 0

    def __post_init__(self) -> None:
        if self.language not in ("zh_CN", "en"):
            raise ConfigError("language must be zh_CN or en", field="GEOGRID_LANGUAGE")
        for name in (
            "near_edge_m",
            "nesting_tolerance_m",
            "gap_width_m",
            "sliver_area_m2",
            "duplicate_distance_m",
            "duplicate_window_h",
        ):
            if getattr(self, name) < 0:
                raise ConfigError("must not be negative", field=PREFIX + name.upper())
        if not 0 < self.port < 65536:
            raise ConfigError("port must be 1-65535", field="GEOGRID_PORT")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1", field="GEOGRID_WORKERS")
        if self.worker_class not in ("gthread", "sync"):
            raise ConfigError("worker_class must be gthread or sync", field="GEOGRID_WORKER_CLASS")
        if self.threads < 1:
            raise ConfigError("threads must be at least 1", field="GEOGRID_THREADS")
        for name in ("session_idle_minutes", "session_hours"):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", field=PREFIX + name.upper())
        if self.trusted_proxies < 0:
            raise ConfigError("must not be negative", field="GEOGRID_TRUSTED_PROXIES")
        _ = self.scheme  # parse now so a bad scheme fails at start-up
        _ = self.households_range  # likewise

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``GEOGRID_*`` variables (``os.environ`` by default), then apply overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(PREFIX + spec.name.upper())
            if raw is None or raw == "":
                continue
            values[spec.name] = _convert(spec.name, spec.type, raw)
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def scheme(self) -> CodeScheme:
        """The parsed code scheme (parsed once per distinct text: servers ask per request)."""
        return _parsed_scheme(self.code_scheme)

    @property
    def uses_private_cluster(self) -> bool:
        """Whether the database is geogrid's own cluster rather than a configured server."""
        return not self.database_url

    @property
    def sqlalchemy_url(self) -> str:
        """The URL to connect to, with the psycopg 3 driver."""
        url = self.database_url or private_cluster_url(self.home)
        for bare in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(bare):
                return "postgresql+psycopg://" + url[len(bare) :]
        return url

    @property
    def households_range(self) -> tuple[int, int] | None:
        """The sizing rule as (low, high), or None when not configured."""
        if not self.households_per_grid:
            return None
        low, sep, high = self.households_per_grid.partition("-")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise ConfigError(
                "write the households rule as LOW-HIGH, e.g. 100-600",
                field="GEOGRID_HOUSEHOLDS_PER_GRID",
            )
        if int(low) > int(high):
            raise ConfigError("LOW is above HIGH", field="GEOGRID_HOUSEHOLDS_PER_GRID")
        return int(low), int(high)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``GEOGRID_*`` variables that name no setting (a typo would otherwise pass unseen)."""
    environ = os.environ if environ is None else environ
    known = {PREFIX + spec.name.upper() for spec in fields(Settings)}
    return sorted(name for name in environ if name.startswith(PREFIX) and name not in known)


def _convert(name: str, kind: Any, raw: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind == "float":
            return float(raw)
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw).resolve()
        if kind == "bool":
            return _boolean(raw)
    except ValueError:
        raise ConfigError(f"{raw!r} is not a {kind}", field=PREFIX + name.upper()) from None
    return raw


def _boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


@lru_cache(maxsize=8)
def _parsed_scheme(text: str) -> CodeScheme:
    # CodeScheme is frozen, so one parsed copy can serve every caller.
    return CodeScheme.parse(text)
