"""``/login`` and ``/logout``: session sign-in for the pages.

The password check is :func:`geogrid.users.verify_password`, which checks one scrypt hash
whatever the name (so the time taken does not tell whether a user exists), counts
failures on the user's row and locks the login after too many; a refusal still commits,
or the count would be rolled back with the failed request. Every refusal reads the same,
whether the name is unknown, the password wrong or the account locked or disabled, and
the password is never written back into the page. Failed sign-ins are also limited per
client address (``web/ratelimits.py``). The form carries a CSRF token like every other
(``web/security.py``), so no other site can sign a browser in as someone else.

Signing in starts a new session and signing out ends every session of the user
(``web/auth.py`` explains why).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for

from geogrid.errors import Unauthenticated
from geogrid.users import LOCKOUT, MAX_FAILED_LOGINS, verify_password
from web import ratelimits
from web.auth import end_session, start_session
from web.db import get_session
from web.security import cookie_dropped_here

bp = Blueprint("login", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """The sign-in form; on success, a fresh session and the page asked for."""
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        return _form(target), 200
    name = request.form.get("name", "")
    try:
        ratelimits.check(ratelimits.LOGIN)
    except ratelimits.Throttled as throttled:
        minutes = -(-throttled.retry_after // 60)
        headers = {"Retry-After": str(throttled.retry_after)}
        return _form(target, name=name, throttled_minutes=minutes), 429, headers
    db = get_session()
    try:
        user = verify_password(db, name, request.form.get("password", ""))
    except Unauthenticated:
        db.commit()  # keep the failed-login count
        ratelimits.count(ratelimits.LOGIN)
        return _form(target, name=name, refused=True), 401
    start_session(user)
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    """Sign out, here and on every other device."""
    end_session()
    return redirect(url_for("login.login"))


def safe_next(target: str | None) -> str:
    """``next`` when it is a path on this site; the home page otherwise (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return url_for("index")
    # Browsers read "/\evil.example" as "//evil.example", and drop tabs and newlines.
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return url_for("index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("index")
    return target


def _form(
    target: str,
    *,
    name: str = "",
    refused: bool = False,
    throttled_minutes: int | None = None,
) -> str:
    return render_template(
        "login.html",
        next=target,
        name=name,
        refused=refused,
        throttled_minutes=throttled_minutes,
        lock_attempts=MAX_FAILED_LOGINS,
        lock_minutes=int(LOCKOUT.total_seconds() // 60),
        cookie_dropped=cookie_dropped_here(),
    )
