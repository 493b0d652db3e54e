"""CSRF protection for every form and every AJAX write made with a session cookie.

Flask-WTF's CSRFProtect checks a token tied to the session: forms send it as the
``csrf_token`` field, scripts as the ``X-CSRFToken`` header (``web/static/geogrid.js``).
A request authenticated by an API token carries no ambient credential a foreign site
could borrow, so it needs no CSRF token; neither does an anonymous API call without a
session cookie (a resident's app filing through ``/api/incidents`` or Open311), which
acts as the public and nothing more.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from markupsafe import Markup, escape

from geogrid.errors import Forbidden
from web.errors import handle_geogrid_error

csrf = CSRFProtect()

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_API_PREFIXES = ("/api/", "/open311/")


def init_app(app: Flask) -> None:
    """Check CSRF tokens before every write that needs one; offer them to templates."""
    # Checked in _protect, not by default, so token-authenticated API calls pass.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # A token lasts as long as the session that holds it.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.before_request(_protect)
    app.register_error_handler(CSRFError, _refused)
    app.jinja_env.globals.update(csrf_token=generate_csrf, csrf_field=csrf_field)


def csrf_field() -> Markup:
    """The hidden form field carrying the CSRF token."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(
        escape(generate_csrf())
    )


def needs_csrf_check() -> bool:
    """Whether this request must carry a CSRF token."""
    if request.method in _SAFE_METHODS:
        return False
    if request.headers.get("Authorization"):
        return False
    has_session = current_app.config["SESSION_COOKIE_NAME"] in request.cookies
    return has_session or not request.path.startswith(_API_PREFIXES)


def _protect() -> None:
    if needs_csrf_check():
        csrf.protect()


def _refused(error: CSRFError) -> tuple[Response | str, int]:
    # One error shape for everything: code, message and the field at fault.
    return handle_geogrid_error(
        Forbidden(
            f"the form's security token is missing or stale ({error.description}); reload the "
            "page and try again",
            field="csrf_token",
        )
    )
