"""Incident figures per area for choropleth maps: ``{code: {count, open, resolved}}``.

Incidents are counted by the area their recorded grid lies in (the prefix of the grid
code at the level asked for), in a report period, limited to the actor's scope the way
reports are (:func:`geogrid.report_counts.scope_clause`). A map asks for the same
figures again and again while nothing changes, so answers are kept and reused until the
incidents change: every filing and every workflow step adds a row to the append-only
event log, so the newest incident id and the newest event id together tell whether
anything did, in one query that reads two index ends. That query is asked at most once
a second per process (:data:`CHANGE_CHECK_SECONDS`), so figures may trail a new filing
by up to a second.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid.actors import UNSCOPED_ROLES, Actor
from geogrid.errors import InputError
from geogrid.models import Incident, IncidentEvent
from geogrid.models.incidents import CLOSED_STATES
from geogrid.periods import DAILY, MONTHLY, WEEKLY, Period
from geogrid.report_counts import scope_clause
from geogrid.settings import Settings

#: Figures per area, in the order they are given.
FIGURES = ("count", "open", "resolved")
#: How long the answer to "has anything changed" is trusted.
CHANGE_CHECK_SECONDS = 1.0
_KEPT = 256
#: database URL -> (checked until, on the monotonic clock; the version then).
_versions: dict[str, tuple[float, tuple[int, int]]] = {}
_kept: OrderedDict[tuple, tuple[tuple[int, int], AreaStats]] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class AreaStats:
    """The figures of one request as compact JSON, plain and gzipped (kept for the next asker)."""

    json: bytes
    gzipped: bytes

    @classmethod
    def of(cls, body: bytes) -> AreaStats:
        """The figures' JSON with its gzipped copy (a city's grids are hundreds of kB)."""
        return cls(body, gzip.compress(body, compresslevel=6, mtime=0))

    def as_dict(self) -> dict[str, dict[str, int]]:
        """The figures as a mapping."""
        return json.loads(self.json)


def incident_figures(
    session: Session,
    settings: Settings,
    actor: Actor,
    *,
    level: str,
    period: Period,
    within: str | None = None,
    category: str | None = None,
) -> AreaStats:
    """Incidents reported in ``period`` per area of ``level`` (under ``within``) in scope."""
    scheme = settings.scheme
    length = scheme.level(level).length
    if within is not None:
        within_level = scheme.validate(within, field="within")
        if scheme.depth(within_level) > scheme.depth(level):
            raise InputError(
                f"within {within} is a {within_level}, finer than {level}", field="within"
            )
    scope = None if actor.role in UNSCOPED_ROLES else tuple(sorted(actor.scope))
    key = (
        str(session.get_bind().engine.url),
        length,
        period.kind,
        period.label,
        within,
        category,
        scope,
    )
    version = _version(session, key[0])
    with _lock:
        kept = _kept.get(key)
        if kept is not None and kept[0] == version:
            _kept.move_to_end(key)
            return kept[1]
    stats = AreaStats.of(_count(session, length, period, within, category, scope))
    with _lock:
        _kept[key] = (version, stats)
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
    return stats


def forget() -> None:
    """Drop the kept figures and the trusted data versions: for tests and tools."""
    with _lock:
        _kept.clear()
        _versions.clear()


def parse_period(text: str | None, now: datetime) -> Period:
    """A period written as a day, an ISO week or a month; the current month when not given."""
    if text is None:
        return Period.containing(MONTHLY, now)
    text = text.strip()
    kind = DAILY if text.count("-") == 2 else WEEKLY if "w" in text.lower() else MONTHLY
    return Period.parse(kind, text)


def _version(session: Session, database: str) -> tuple[int, int]:
    now = time.monotonic()
    known = _versions.get(database)
    if known is not None and known[0] > now:
        return known[1]
    newest = select(
        select(func.max(Incident.id)).scalar_subquery(),
        select(func.max(IncidentEvent.id)).scalar_subquery(),
    )
    incident, event = session.execute(newest).one()
    version = (incident or 0, event or 0)
    _versions[database] = (now + CHANGE_CHECK_SECONDS, version)
    return version


def _count(
    session: Session,
    length: int,
    period: Period,
    within: str | None,
    category: str | None,
    scope: tuple[str, ...] | None,
) -> bytes:
    code = func.substr(Incident.grid_code, 1, length)
    query = (
        select(
            code,
            func.count(),
            func.count().filter(Incident.state.not_in(CLOSED_STATES)),
            func.count().filter(Incident.resolved_at.is_not(None), Incident.state != "rejected"),
        )
        .where(
            Incident.reported_at >= period.start,
            Incident.reported_at < period.end,
            Incident.state != "merged",
            Incident.grid_code.is_not(None),
        )
        .group_by(code)
        .order_by(code)
    )
    if within is not None:
        query = query.where(Incident.grid_code.startswith(within, autoescape=True))
    if category is not None:
        query = query.where(Incident.category == category)
    if scope is not None:
        query = query.where(scope_clause(scope))
    figures = {
        area: dict(zip(FIGURES, (int(n) for n in numbers), strict=True))
        for area, *numbers in session.execute(query)
    }
    return json.dumps(figures, separators=(",", ":")).encode()
