"""The defences every request passes: cookies, size limits, CSRF and security headers.

**Cookies.** The session cookie is HttpOnly, SameSite=Lax and, with
``GEOGRID_SECURE_COOKIES`` (on by default), Secure and named ``__Host-geogrid``: the
prefix makes browsers refuse the cookie unless it is Secure, for the whole host (no
Domain) and set over https, so a neighbouring sub-domain or a plain-http page cannot
plant one. Chromium keeps such cookies on http://127.0.0.1 and http://localhost
(checked by ``tests/webapp/test_security_browser.py``), so ``make demo`` works without
https while a deployment is secure unless someone turns it off. On another plain-http
address the browser drops the cookie and the sign-in page says why. There is no
"remember me" cookie. How long sessions last is in ``web/auth.py``.

**Size limits.** A file upload (``multipart/form-data``: tracks, boundary files) by a
signed-in user or a token holder may be :data:`MAX_CONTENT_LENGTH`, its text fields
:data:`MAX_FORM_MEMORY` each and :data:`MAX_FORM_PARTS` parts in all. Every other body
(JSON, url-encoded forms, anything from the anonymous public) is read into memory whole,
so it may be :data:`MAX_BODY` at most. Larger is a 413.

**CSRF.** Flask-WTF's CSRFProtect checks a token tied to the session: forms send it as
the ``csrf_token`` field, scripts as the ``X-CSRFToken`` header (``web/static/geogrid.js``).
Every write that carries the session cookie needs it, and so does every write to a
page (``/login`` included, against planting someone else's sign-in). A request
authenticated by an API token carries no ambient credential a foreign site could
borrow, so it needs no CSRF token; neither does an anonymous API call without a session
cookie (a resident's app filing through ``/api/incidents`` or Open311), which acts as the
public and nothing more.

**Headers.** The Content-Security-Policy names no origin but this one and the configured
tile server (images only). Folium writes each map as inline ``<script>`` and
``<style>`` blocks, so scripts and styles allow ``'unsafe-inline'``: nonces would have
to be stamped into the HTML folium generates, and stamping whatever inline script a
page holds would stamp an injected one too. Escaping by Jinja is the defence against
injection; the policy keeps an injected script from loading code or sending data
anywhere else (``connect-src``, ``img-src``, ``form-action``, ``base-uri``). Pages may be
framed by this site only; the Referrer-Policy sends other sites the origin alone (tile
servers such as 天地图 check it against the key's domains); geolocation is allowed for
this site's own "where am I" and nothing else is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from markupsafe import Markup, escape
from werkzeug.middleware.proxy_fix import ProxyFix

from geogrid.errors import Forbidden
from geogrid.maps import tile_layers
from geogrid.settings import Settings
from web.errors import handle_geogrid_error

csrf = CSRFProtect()

#: The most an upload (multipart/form-data) may be: track files, boundary files.
MAX_CONTENT_LENGTH = 64 * 1024 * 1024
#: The most any other body (JSON, url-encoded form) may be.
MAX_BODY = 1024 * 1024
#: The most one text field of a multipart form may be, and how many parts it may have.
MAX_FORM_MEMORY = 512 * 1024
MAX_FORM_PARTS = 100
#: The session cookie's name with and without Secure (``__Host-`` requires Secure).
SECURE_COOKIE_NAME = "__Host-geogrid"
PLAIN_COOKIE_NAME = "geogrid"
#: What pages may use of the browser (Permissions-Policy).
PERMISSIONS_POLICY = (
    "geolocation=(self), camera=(), microphone=(), payment=(), usb=(), serial=(), midi=()"
)
HSTS = "max-age=31536000"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_API_PREFIXES = ("/api/", "/open311/")
_UPLOAD_TYPE = "multipart/form-data"
_LOOPBACK_NAMES = ("localhost", "localhost.")


def init_app(app: Flask) -> None:
    """Set cookies and size limits, check CSRF tokens, add the security headers."""
    settings: Settings = app.extensions["geogrid"].settings
    app.config.update(cookie_config(settings))
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_MEMORY,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        # Checked in _protect, not by default, so token-authenticated API calls pass.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A token lasts as long as the session that holds it.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if settings.trusted_proxies:
        # The client's address and scheme as the proxies saw them: the rate limits key on
        # the address, and Secure cookies need to know the request came over https.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    csrf.init_app(app)
    # Before anything reads the body: the limit must be in place when it is read.
    app.before_request(_limit_body)
    app.before_request(_protect)
    app.register_error_handler(CSRFError, _refused)
    app.jinja_env.globals.update(csrf_token=generate_csrf, csrf_field=csrf_field)
    policy = content_security_policy(tile_origins(settings))
    app.after_request(lambda response: _add_headers(response, policy))


def cookie_config(settings: Settings) -> dict[str, object]:
    """Flask's and Flask-Login's cookie settings for these settings."""
    secure = settings.secure_cookies
    return {
        "SESSION_COOKIE_NAME": SECURE_COOKIE_NAME if secure else PLAIN_COOKIE_NAME,
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # ``__Host-`` needs the cookie for the whole host: path /, no Domain.
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        # The idle timeout: the cookie's signature is renewed by every request and refused
        # by the server once older than this (web/auth.py has the absolute limit).
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=settings.session_idle_minutes),
        "SESSION_REFRESH_EACH_REQUEST": True,
        # Never set (no "remember me"), but should one appear it is held to the same rules.
        "REMEMBER_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
    }


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


def cookie_dropped_here() -> bool:
    """Whether the browser will drop the Secure session cookie at this plain-http address."""
    if not current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure:
        return False
    host = urlsplit(f"//{request.host}").hostname or ""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def tile_origins(settings: Settings) -> list[str]:
    """The origins the configured base map loads its tiles from (for ``img-src``)."""
    origins: list[str] = []
    for layer in tile_layers(settings.tiles, attribution=settings.tiles_attribution):
        parts = urlsplit(layer.tiles)
        if not parts.netloc:
            continue  # a path on this site
        prefix = f"{parts.scheme}://" if parts.scheme else ""
        for host in _expand_subdomains(parts.netloc, layer.options.get("subdomains", "abc")):
            origin = prefix + host
            if origin not in origins:
                origins.append(origin)
    return origins


def content_security_policy(image_origins: Iterable[str] = ()) -> str:
    """The Content-Security-Policy: this origin only, plus tile images from ``image_origins``."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-inline'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", *image_origins],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def _expand_subdomains(netloc: str, subdomains: str | list[str]) -> list[str]:
    if "{s}" not in netloc:
        return [netloc] if "{" not in netloc else [_wildcard(netloc)]
    # Leaflet reads a string of subdomains as one per character.
    return [netloc.replace("{s}", str(sub)) for sub in subdomains]


def _wildcard(netloc: str) -> str:
    # A placeholder Leaflet fills in other than {s}: allow any name at that place.
    labels = netloc.split(".")
    return ".".join(["*", *labels[1:]]) if len(labels) > 2 else netloc


def _limit_body() -> None:
    if request.mimetype == _UPLOAD_TYPE and _identified():
        return
    if (request.content_length or 0) > MAX_BODY:
        abort(
            413,
            description=f"the request body is over {MAX_BODY // 1024} KiB; only file uploads "
            "(multipart/form-data) of a signed-in user or token holder may be larger",
        )
    # Bodies without a length (chunked) are cut off while being read.
    request.max_content_length = MAX_BODY


def _identified() -> bool:
    # Only people geogrid knows upload files; the public's reports are a few fields.
    return bool(request.headers.get("Authorization")) or current_user.is_authenticated


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


def _add_headers(response: Response, policy: str) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure and current_app.config["SESSION_COOKIE_SECURE"]:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if response.mimetype == "text/html" and current_user and current_user.is_authenticated:
        # A signed-in page must not come back from the cache after signing out.
        headers.setdefault("Cache-Control", "no-store")
    return response
