"""JSON APIs beside the pages. Errors answer ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from geogrid.errors import CoordinateError, InputError
from geogrid.geocode import locate
from web.db import get_session, get_settings

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/locate")
def locate_point() -> Response:
    """Which grid holds a point: ``?lon=&lat=&crs=[&level=&generation=]``."""
    location = locate(
        get_session(),
        get_settings(),
        _coordinate("lon"),
        _coordinate("lat"),
        _text("crs"),  # the library explains a missing or unknown coordinate type
        level=_text("level"),
        generation=_whole_number("generation"),
    )
    return jsonify(location.as_dict())


def _text(name: str) -> str | None:
    return request.args.get(name, "").strip() or None


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
    if not raw.isascii() or not raw.isdigit():
        raise InputError(f"{name} must be a whole number, not {raw!r}", field=name)
    return int(raw)
