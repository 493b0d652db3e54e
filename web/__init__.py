"""geogrid's web app: thin Flask views over the geogrid library.

``create_app`` builds the app (Flask tutorial style); ``serve`` runs it under gunicorn.
The library never imports Flask; everything HTTP lives here.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from geogrid.db import make_engine, make_sessionmaker
from geogrid.maps import tile_layers
from geogrid.settings import Settings

log = logging.getLogger(__name__)

#: The npm packages installed at set-up (``web/assets/package.json``).
VENDOR_ROOT = Path(__file__).resolve().parent / "assets" / "node_modules"


def create_app(
    settings: Settings | None = None, *, session_factory: sessionmaker[Session] | None = None
) -> Flask:
    """Build the web app; ``session_factory`` lets tests bind sessions to their own transaction."""
    settings = settings if settings is not None else Settings.from_env()
    # Fail at start-up, not on the first map, when the tiles setting cannot work.
    tile_layers(settings.tiles, attribution=settings.tiles_attribution)

    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key or _ephemeral_secret(),
        VENDOR_ROOT=VENDOR_ROOT,
    )
    # Chinese names in JSON as they are, not as \u escapes.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # Keep the order the library gives (levels coarsest first), not alphabetical.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if session_factory is None:
        # One engine (and pool) per process, made once here rather than per request.
        session_factory = make_sessionmaker(make_engine(settings))
    app.extensions["geogrid"] = GeogridState(settings, session_factory)
    if not VENDOR_ROOT.is_dir():
        log.warning("%s is missing: maps will not load; run scripts/setup", VENDOR_ROOT)

    from web import (
        api,
        auth,
        dashboard,
        db,
        errors,
        health,
        i18n,
        incident_pages,
        incidents,
        layers,
        login,
        maps,
        nav,
        open311,
        openapi,
        patrol_pages,
        patrols,
        planner,
        ratelimits,
        reports,
        security,
        station_pages,
        vendor,
    )

    db.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    # Cookies, body size limits, CSRF and security headers (web/security.py), then the
    # per-address limits, which may read a form only once its size is limited.
    security.init_app(app)
    ratelimits.init_app(app)
    nav.init_app(app)
    pages = (login, maps, dashboard, incident_pages, patrol_pages, station_pages, planner)
    apis = (api, layers, incidents, patrols, reports, open311, openapi, health, vendor)
    for module in (*pages, *apis):
        app.register_blueprint(module.bp)
    app.add_url_rule("/", endpoint="index", view_func=nav.home)
    return app


class GeogridState:
    """What the app shares between requests: the settings and the session factory."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory


def _ephemeral_secret() -> str:
    log.warning(
        "GEOGRID_SECRET_KEY is not set: using a random key, so sessions end when the "
        "process restarts and differ between workers; set it in production"
    )
    return secrets.token_hex(32)
