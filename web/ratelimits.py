"""Per-address limits on what a stranger can repeat: failed sign-ins and anonymous filing.

The account lock in :mod:`geogrid.users` (5 wrong passwords lock a login for 15 minutes)
is kept in the database and is exact, but it protects one account at a time; these limits
slow one client trying a password across many accounts, and one client flooding the
public filing channels (``POST /api/incidents`` and Open311 without a token).

- A sign-in attempt counts only when it fails (``web/login.py`` calls :func:`count`), so
  an office behind one address can still sign in all morning.
- An anonymous filing counts whether or not it is accepted. Token holders and signed-in
  users are not limited here.
- A client is its address as the WSGI server saw it, or as ``GEOGRID_TRUSTED_PROXIES``
  reverse proxies reported it (``web/security.py``); an IPv6 client is its /64, since
  whoever holds one address of it holds them all.
- A refusal is a 429 with ``Retry-After`` and the usual error shape, code
  ``too_many_requests``.

Why the ``limits`` library (the engine of Flask-Limiter) rather than Flask-Limiter's
decorators: a rule here is about a kind of attempt, not a view (only failures count,
only anonymous callers are limited), and the filing views belong to other modules; one
hook and two calls say that where they happen. Why not a table: the counts are a brake,
not a record, and need no migration or clean-up. They live in
``GEOGRID_RATE_LIMIT_STORAGE``: by default each worker process's memory, so with N
gunicorn workers a client gets up to N times the limit and a restart forgets the counts;
a shared store (``redis://``) makes them exact across workers and hosts.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, make_response, request
from flask_login import current_user
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from geogrid.errors import ConfigError
from geogrid.settings import Settings
from web.errors import error_response

#: Kinds of attempt, each with its own limits.
LOGIN = "login"
FILING = "filing"
#: The views through which the public files incidents.
OPEN311_FILING = "open311.create_request"
FILING_ENDPOINTS = frozenset({"incidents.file", OPEN311_FILING})
_MESSAGES = {
    LOGIN: "too many failed sign-ins from your address",
    FILING: "too many reports from your address",
}


class Throttled(Exception):
    """A client has used up a limit; it may try again in ``retry_after`` seconds."""

    def __init__(self, kind: str, retry_after: int) -> None:
        super().__init__(f"{_MESSAGES[kind]}; try again in {retry_after} seconds")
        self.kind = kind
        self.retry_after = retry_after


@dataclass
class AddressLimits:
    """The limits of each kind of attempt, counted per client in one store."""

    limiter: MovingWindowRateLimiter
    rules: dict[str, list[RateLimitItem]]

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressLimits:
        """Parse the limits and open the store; ConfigError naming the setting if unusable."""
        rules = {
            LOGIN: _parse(settings.login_rate_limit, "GEOGRID_LOGIN_RATE_LIMIT"),
            FILING: _parse(settings.filing_rate_limit, "GEOGRID_FILING_RATE_LIMIT"),
        }
        try:
            storage = storage_from_string(settings.rate_limit_storage)
        except ConfigurationError as exc:  # an unknown scheme, or its driver is missing
            raise ConfigError(
                f"cannot use {settings.rate_limit_storage!r}: {exc}",
                field="GEOGRID_RATE_LIMIT_STORAGE",
            ) from None
        return cls(MovingWindowRateLimiter(storage), rules)

    def check(self, kind: str, client: str) -> None:
        """Throttled when ``client`` has no attempt of this kind left."""
        spent = [item for item in self.rules[kind] if not self.limiter.test(item, kind, client)]
        if spent:
            stats = [self.limiter.get_window_stats(item, kind, client) for item in spent]
            # Every spent limit must have room again: the latest of their resets.
            wait = max(window.reset_time for window in stats) - time.time()
            raise Throttled(kind, max(1, math.ceil(wait)))

    def count(self, kind: str, client: str) -> None:
        """Count one attempt of this kind by ``client``."""
        for item in self.rules[kind]:
            self.limiter.hit(item, kind, client)


def init_app(app: Flask) -> None:
    """Open the store and limit anonymous filing; sign-in is limited by ``web/login.py``."""
    app.extensions["geogrid_limits"] = AddressLimits.from_settings(
        app.extensions["geogrid"].settings
    )
    app.before_request(_limit_anonymous_filing)
    app.register_error_handler(Throttled, refused)


def check(kind: str) -> None:
    """Throttled when this request's client has no attempt of this kind left."""
    _limits().check(kind, client_key(request.remote_addr))


def count(kind: str) -> None:
    """Count one attempt of this kind by this request's client."""
    _limits().count(kind, client_key(request.remote_addr))


def client_key(address: str | None) -> str:
    """Whom an address counts as: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def refused(error: Throttled) -> Response:
    """A 429 in the usual error shape, with Retry-After."""
    body = {"code": "too_many_requests", "message": str(error), "field": None}
    response = make_response(error_response(429, body))
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def _limits() -> AddressLimits:
    return current_app.extensions["geogrid_limits"]


def _limit_anonymous_filing() -> None:
    if request.method != "POST" or request.endpoint not in FILING_ENDPOINTS:
        return
    # A token (header, or Open311's api_key) or a session: someone known, not limited here.
    if request.headers.get("Authorization") or current_user.is_authenticated:
        return
    if request.endpoint == OPEN311_FILING and request.form.get("api_key"):
        return
    check(FILING)
    count(FILING)


def _parse(value: str, setting: str) -> list[RateLimitItem]:
    try:
        items = parse_many(value)
    except ValueError as exc:
        raise ConfigError(
            f"{value!r} is not a rate limit such as '20 per minute;200 per hour' ({exc})",
            field=setting,
        ) from None
    if not items:
        raise ConfigError("give at least one limit, e.g. '20 per minute'", field=setting)
    return items
