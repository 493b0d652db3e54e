"""``/healthz``: whether the app can reach a migrated database, for load balancers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from geogrid.db import check_schema
from geogrid.generations import current_generation
from web.db import get_session, get_settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """``{"status": "ok", "generation": N}``; 503 JSON when the database is not ready."""
    session = get_session()
    check_schema(session, get_settings().scheme)
    generation = current_generation(session)
    return jsonify(status="ok", generation=generation.id if generation else None)
