"""Errors as responses: one table from geogrid's error codes to HTTP statuses.

The library's errors know nothing of HTTP (``geogrid/errors.py``); this is the only
place that gives them a status. API paths answer JSON
``{"error": {"code", "message", "field"}}``; pages answer an HTML error page. Neither
ever shows a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from geogrid.errors import GeogridError

log = logging.getLogger(__name__)

#: A bad parameter (missing, malformed, out of range) is 400; a file or a boundary set
#: that was read but cannot be used is 422.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_input": 400,
    "invalid_code": 400,
    "invalid_coordinate": 400,
    "invalid_file": 422,
    "validation_failed": 422,
    "not_found": 404,
    "conflict": 409,
    "illegal_transition": 409,
    "unauthenticated": 401,
    "forbidden": 403,
    # The request is sound; the calendar lacks the year's holidays (an administrator's fix).
    "calendar_not_covered": 409,
    "config_error": 500,
    "database_not_ready": 503,
}

#: Codes for plain HTTP errors (unknown URL, wrong method...) in the same JSON shape.
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}
#: Open311 GeoReport v2 (``web/open311.py``) answers errors in its own shape.
OPEN311_PREFIX = "/open311/"


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(GeogridError, handle_geogrid_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(OperationalError, handle_database_down)
    # Unhandled exceptions reach this as InternalServerError (outside TESTING, where
    # Flask re-raises them so tests see the traceback).
    app.register_error_handler(InternalServerError, handle_internal_error)


def status_for(error: GeogridError) -> int:
    """The HTTP status for a geogrid error; 500 for a code the table does not know."""
    return STATUS_BY_CODE.get(error.code, 500)


def handle_geogrid_error(error: GeogridError) -> tuple[Response | str, int]:
    """A domain error as JSON (API) or an error page."""
    status = status_for(error)
    if status >= 500:
        log.error("%s: %s", error.code, error.message)
    return error_response(status, {"field": None, **error.as_dict()})


def handle_http_error(error: HTTPException) -> tuple[Response | str, int]:
    """Werkzeug's HTTP errors (404, 405, 413...) in the same shapes."""
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    return error_response(status, {"code": code, "message": error.description, "field": None})


def handle_database_down(error: OperationalError) -> tuple[Response | str, int]:
    """The database cannot be reached: 503, the driver's words in the log only."""
    log.error("database unreachable on %s: %s", request.path, error.orig)
    body = {
        "code": "database_not_ready",
        "message": "the database cannot be reached; try again shortly",
        "field": None,
    }
    return error_response(STATUS_BY_CODE["database_not_ready"], body)


def handle_internal_error(error: InternalServerError) -> tuple[Response | str, int]:
    """An unexpected failure: logged with its traceback, answered without one."""
    original = error.original_exception or error
    log.error("unhandled error on %s", request.path, exc_info=original)
    body = {"code": "internal_error", "message": "an unexpected error occurred", "field": None}
    return error_response(500, body)


def error_response(status: int, body: dict[str, Any]) -> tuple[Response | str, int]:
    """The error as JSON for API paths (GeoReport's shape under /open311/), else a page."""
    if request.path.startswith(OPEN311_PREFIX):
        # GeoReport v2: a list of {code: the HTTP status, description}; the field leads.
        field = body.get("field")
        description = f"{field}: {body['message']}" if field else body["message"]
        return jsonify([{"code": status, "description": description}]), status
    if wants_json():
        return jsonify(error=body), status
    return render_template("error.html", status=status, error=body), status


def wants_json() -> bool:
    """Whether this request is an API call rather than a page view."""
    return request.path.startswith("/api/") or request.path == "/healthz"
