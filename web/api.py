"""JSON APIs beside the pages. Errors answer ``{"error": {"code", "message", "field"}}``.

- ``GET /api/locate?lon=&lat=&crs=[&level=&generation=]``: which grid holds a point.
  Answered through the in-memory index once it is built for the generation and level
  (:mod:`geogrid.quicklocate`; built in the background on first use), through PostGIS
  until then; both give the same answer.
- ``GET /api/maps/stats?level=&period=[&within=&category=]``: incident figures per area
  for choropleths, ``{code: {count, open, resolved}}``, limited to the caller's scope.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from geogrid.area_stats import incident_figures, parse_period
from geogrid.errors import CoordinateError, InputError
from geogrid.generations import resolve_generation
from geogrid.geocode import locate
from geogrid.quicklocate import locate_quickly, prepare
from geogrid.workdays import SHANGHAI
from web.auth import signed_in_actor
from web.db import get_session, get_settings
from web.incidents import query_text

log = logging.getLogger(__name__)
#: Generations are integer rows: a larger number can name none (and would overflow the query).
MAX_ROW_ID = 2**31 - 1

bp = Blueprint("api", __name__, url_prefix="/api")

#: Generations and levels whose index a background thread is building, per app.
_building: set[tuple[int, int, str]] = set()
_building_lock = threading.Lock()


@bp.get("/locate")
def locate_point() -> Response:
    """Which grid holds a point: ``?lon=&lat=&crs=[&level=&generation=]``."""
    session, settings = get_session(), get_settings()
    lon, lat, crs = _coordinate("lon"), _coordinate("lat"), _text("crs")
    level = _text("level") or settings.scheme.default_geocode_level
    asked = _whole_number("generation")
    quick = locate_quickly(session, settings, lon, lat, crs, level=level, generation=asked)
    if quick is not None:
        return jsonify(quick.as_dict())
    generation = resolve_generation(session, asked)
    if generation.status != "draft":
        _prepare_later(current_app._get_current_object(), generation.id, level)  # type: ignore[attr-defined]
    # The library explains a missing or unknown coordinate type.
    location = locate(session, settings, lon, lat, crs, level=level, generation=generation.id)
    return jsonify(location.as_dict())


@bp.get("/maps/stats")
def map_stats() -> Response:
    """Incident figures per area: ``?level=&period=[&within=&category=]``."""
    actor = signed_in_actor()
    settings = get_settings()
    stats = incident_figures(
        get_session(),
        settings,
        actor,
        level=_text("level") or settings.scheme.default_geocode_level,
        period=parse_period(_text("period"), datetime.now(SHANGHAI)),
        within=_text("within"),
        category=_text("category"),
    )
    # Figures change with every filing: a browser asks again each time.
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(stats.gzipped, mimetype="application/json", headers=headers)
    return Response(stats.json, mimetype="application/json", headers=headers)


def _prepare_later(app: Flask, generation: int, level: str) -> None:
    """Build the index for single lookups in a thread, once, with a session of its own."""
    key = (id(app), generation, level)
    with _building_lock:
        if key in _building:
            return
        _building.add(key)
    state = app.extensions["geogrid"]

    def build() -> None:
        try:
            with state.session_factory() as session:
                prepare(session, state.settings, resolve_generation(session, generation), level)
        except Exception:
            # Lookups go on through PostGIS; the next one tries building again.
            log.exception("could not build the index of generation %s, %s", generation, level)
            with _building_lock:
                _building.discard(key)

    if app.testing:
        # Tests share one connection; a thread of its own would use it at the same time.
        build()
        return
    threading.Thread(target=build, name=f"geogrid-index-{generation}-{level}", daemon=True).start()


def _text(name: str) -> str | None:
    # PostgreSQL text cannot hold NUL: refuse it here as a 400 naming the parameter.
    return query_text(name)


def _coordinate(name: str) -> float:
    raw = _text(name)
    if raw is None:
        raise CoordinateError(f"{name} is missing", field=name)
    try:
        # Ranges and non-finite values ("nan") are the library's to judge.
        return float(raw)
    except ValueError:
        raise CoordinateError(f"{name} {raw!r} is not a number", field=name) from None


def _whole_number(name: str) -> int | None:
    raw = _text(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_ROW_ID:
        raise InputError(
            f"{name} must be a whole number up to {MAX_ROW_ID}, not {raw!r}", field=name
        )
    return int(raw)
