"""``/api/layers/<generation>/<level>.geojson``: area outlines for the maps, simplified per zoom.

Query: ``z`` (the map's zoom; answers are per bucket of :data:`geogrid.maplayers.ZOOM_BUCKETS`),
``within`` (areas under one code), ``tile`` (``z/x/y``: one chunk of a finer level). A
generation's geometry never changes once it is active, so an answer is kept gzipped in the
process (:mod:`geogrid.outlines`) and the browser may keep it for a year; a draft's
answers are computed afresh and revalidated each time.

A signed-in user sees the areas of their scope and the areas holding them (a grid
worker's grids, their community, street and county as context); administrators see all.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, request, url_for
from sqlalchemy import Engine

from geogrid import hotspots
from geogrid.actors import UNSCOPED_ROLES
from geogrid.errors import InputError
from geogrid.generations import current_generation
from geogrid.outlines import LayerAnswer, layer_geojson, warm
from geogrid.quicklocate import prepare
from web.auth import signed_in_actor
from web.db import get_session, get_settings

log = logging.getLogger(__name__)
bp = Blueprint("layers", __name__, url_prefix="/api/layers")

#: How long a browser may keep an answer about a generation that is no longer a draft.
YEAR = 365 * 24 * 3600
GEOJSON = "application/geo+json"


def layer_url(
    generation: int,
    level: str,
    *,
    within: str | None = None,
    z: int | None = None,
    tile: str | None = None,
) -> str:
    """The URL of a level's outlines, for :func:`geogrid.maplayers.area_layer`.

    Leave ``z`` out to let the map ask for its current zoom.
    """
    return url_for(
        "layers.areas", generation=generation, level=level, within=within, z=z, tile=tile
    )


@bp.get("/<int(max=2147483647):generation>/<level>.geojson")
def areas(generation: int, level: str) -> Response:
    """A level's outlines as GeoJSON, gzipped when the client accepts it."""
    actor = signed_in_actor()
    answer = layer_geojson(
        get_session(),
        get_settings(),
        generation,
        level,
        z=_zoom(),
        within=request.args.get("within", "").strip() or None,
        tile=request.args.get("tile", "").strip() or None,
        scope=None if actor.role in UNSCOPED_ROLES else actor.scope,
    )
    return _response(answer)


def warm_before_fork(app: Flask, logger: Any = None) -> None:
    """In gunicorn's master, before it forks: what a city's overview draws and the point index.

    Made once and shared by every worker (copy on write: the index's arrays, most of a
    gigabyte for a 15,000-grid city, are never written). The engine's connections are
    closed afterwards, so that no worker inherits one. A failure is logged; the workers
    then prepare everything themselves (:func:`warm_up`).
    """
    state = app.extensions["geogrid"]
    logger = logger or log
    started = time.perf_counter()
    try:
        with state.session_factory() as session:
            generation = current_generation(session)
            if generation is None:
                return
            done = warm(session, generation, overview=True)
            prepare(
                session, state.settings, generation, state.settings.scheme.default_geocode_level
            )
        seconds = time.perf_counter() - started
        logger.info(
            "shared maps prepared in %.1f s: %d outline sets, the point index", seconds, done
        )
    except Exception:
        logger.exception("preparing the shared maps failed; each worker prepares its own")
    finally:
        bind = state.session_factory.kw.get("bind")
        if isinstance(bind, Engine):
            bind.dispose()


def warm_up(app: Flask, logger: Any = None) -> threading.Thread:
    """Prepare the active generation's maps and lookups in a thread, as a worker starts.

    Whatever is not ready yet is made on first use instead, so this only spares the first
    visitors the wait: first what a city's overview draws, then the point index of
    ``/api/locate`` (both already there when the master prepared them before forking),
    then the outlines of the deeper zooms. A failure is logged (to ``logger``, e.g.
    gunicorn's) and the server serves on regardless.
    """
    state = app.extensions["geogrid"]
    logger = logger or log

    def work() -> None:
        started = time.perf_counter()
        try:
            with state.session_factory() as session:
                generation = current_generation(session)
                if generation is None:
                    return
                done = warm(session, generation, overview=True)
                level = state.settings.scheme.default_geocode_level
                prepare(session, state.settings, generation, level)
                done += warm(session, generation, overview=False)
            seconds = time.perf_counter() - started
            logger.info("maps warmed in %.1f s: %d outline sets and the point index", seconds, done)
        except Exception:
            logger.exception("warming the maps failed; they are prepared on first use instead")
        try:
            # After the fork only: esda's first run may start thread pools.
            with state.session_factory() as session:
                logger.info("hotspots warmed: %s", hotspots.warm_up(session))
        except Exception:
            logger.exception("warming the hotspot statistics failed; the first request pays")

    thread = threading.Thread(target=work, name="geogrid-warm-up", daemon=True)
    thread.start()
    return thread


def _zoom() -> int | None:
    raw = request.args.get("z", "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise InputError(f"z must be a whole zoom level, not {raw!r}", field="z")
    return int(raw)


def _response(answer: LayerAnswer) -> Response:
    caching = f"private, max-age={YEAR}, immutable" if answer.immutable else "private, no-cache"
    headers = {"ETag": answer.etag, "Cache-Control": caching, "Vary": "Accept-Encoding"}
    if answer.etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(answer.gzipped, mimetype=GEOJSON, headers=headers)
    return Response(answer.body, mimetype=GEOJSON, headers=headers)
