"""Single lookups through the in-memory index, once it is built: PostGIS's answer, faster.

:func:`geogrid.geocode.locate` asks PostGIS three or four queries per point, a few
milliseconds. The in-memory index (:mod:`geogrid.pointindex`) applies the same rules
and agrees on every point (benchmarks/locate.py), in a fraction of a millisecond, but
takes seconds to build for a city. So a server builds it once per generation and level,
in the background, answers through PostGIS until it is ready, and through the index
afterwards. A draft's areas change, so drafts are always answered by PostGIS.

Which generation is current is asked of the database at most once a second per process
(:data:`CURRENT_CHECK_SECONDS`): for up to a second after an activation, lookups that
name no generation still answer in the previous one, as a lookup begun a moment
earlier would have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid.bulk import grid_index
from geogrid.crs import check_lonlat, parse_coord_type, to_storage
from geogrid.generations import current_generation
from geogrid.geocode import EDGE, INSIDE, NEAR_EDGE, OUTSIDE, Location
from geogrid.models import Area, Generation
from geogrid.pointindex import STATUS_NAMES, GridIndex
from geogrid.settings import Settings

#: How long the current generation's id is trusted without asking the database.
CURRENT_CHECK_SECONDS = 1.0
_STATUS = {name: name for name in (INSIDE, NEAR_EDGE, EDGE, OUTSIDE)}
_prepared: dict[tuple[str, int, str, float], Prepared] = {}
_building: dict[tuple[str, int, str, float], threading.Lock] = {}
#: database URL -> (checked until, on the monotonic clock; the current generation's id).
_current: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Prepared:
    """A generation's level ready for single lookups: the index and every area's name."""

    generation: int
    level: str
    index: GridIndex
    names: Mapping[str, str | None]


def locate_quickly(
    session: Session,
    settings: Settings,
    lon: float,
    lat: float,
    crs: str | None,
    *,
    level: str,
    generation: int | None = None,
) -> Location | None:
    """The answer through the prepared index, or None when it is not built (or a draft).

    None means: ask :func:`geogrid.geocode.locate`, and perhaps :func:`prepare` meanwhile.
    """
    settings.scheme.level(level)
    database = str(session.get_bind().engine.url)
    if generation is None:
        generation = _current_id(session, database)
        if generation is None:
            return None
    with _lock:
        ready = _prepared.get((database, generation, level, settings.near_edge_m))
    return None if ready is None else locate_prepared(ready, settings, lon, lat, crs)


def prepared(
    session: Session, settings: Settings, generation: Generation, level: str
) -> Prepared | None:
    """The prepared lookups of a level, or None when not built yet (or a draft)."""
    if generation.status == "draft":
        return None
    with _lock:
        return _prepared.get(_key(session, settings, generation.id, level))


def prepare(session: Session, settings: Settings, generation: Generation, level: str) -> Prepared:
    """Build (or fetch) the index and names of a level and keep them; seconds for a city.

    Built once even when a server's warm-up and a first lookup both ask for it.
    """
    key = _key(session, settings, generation.id, level)
    with _lock:
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            if key in _prepared:
                return _prepared[key]
        index = grid_index(session, settings, generation, level)
        rows = session.execute(select(Area.code, Area.name).where(Area.valid_in(generation.id)))
        ready = Prepared(generation.id, level, index, dict(rows.all()))
        if generation.status != "draft":
            with _lock:
                _prepared[key] = ready
    return ready


def locate_prepared(
    ready: Prepared, settings: Settings, lon: float, lat: float, crs: str | None
) -> Location:
    """Place one point with a prepared index: what :func:`geogrid.geocode.locate` answers."""
    coord_type = parse_coord_type(crs)
    check_lonlat(lon, lat)
    storage_lon, storage_lat = (float(v) for v in to_storage(lon, lat, coord_type))
    placement = ready.index.locate(np.array([storage_lon]), np.array([storage_lat]))
    status = STATUS_NAMES[int(placement.status[0])]
    location = Location(
        lon=lon,
        lat=lat,
        crs=coord_type.name,
        storage_lon=storage_lon,
        storage_lat=storage_lat,
        generation=ready.generation,
        level=ready.level,
        status=_STATUS[status],
        candidates=placement.candidates(0),
    )
    code = placement.grid_codes()[0]
    if code is not None:
        location.grid_code = str(code)
        scheme = settings.scheme
        for level_code in [*scheme.ancestors_of(location.grid_code), location.grid_code]:
            level = scheme.level_of(level_code)
            location.codes[level] = level_code
            location.names[level] = ready.names.get(level_code)
        return location
    nearest = placement.nearest_codes()[0]
    if nearest is not None:
        distance = float(placement.nearest_distance_m[0])
        location.nearest = {"code": str(nearest), "distance_m": distance}
    swapped = placement.swapped_codes()[0]
    location.swapped_code = None if swapped is None else str(swapped)
    return location


def prepared_keys() -> list[tuple[int, str]]:
    """The (generation, level) pairs prepared in this process, of every database."""
    with _lock:
        return [(generation, level) for _, generation, level, _ in _prepared]


def forget() -> None:
    """Drop every prepared index and the trusted current generation: for tests and tools.

    A test's rows are rolled back, so what the previous test made current is not.
    """
    with _lock:
        _prepared.clear()
        _current.clear()


def _current_id(session: Session, database: str) -> int | None:
    now = time.monotonic()
    with _lock:
        known = _current.get(database)
    if known is not None and known[0] > now:
        return known[1]
    current = current_generation(session)
    if current is None:
        return None
    with _lock:
        _current[database] = (now + CURRENT_CHECK_SECONDS, current.id)
    return current.id


def _key(
    session: Session, settings: Settings, generation: int, level: str
) -> tuple[str, int, str, float]:
    return (str(session.get_bind().engine.url), generation, level, settings.near_edge_m)
