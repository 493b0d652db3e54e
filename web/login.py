"""``/login`` and ``/logout``: session sign-in for the pages.

The password check is :func:`geogrid.users.verify_password`, which counts failures on the
user's row and locks the login after too many; a refusal still commits, or the count
would be rolled back with the failed request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user

from geogrid.errors import Unauthenticated
from geogrid.users import verify_password
from web.auth import SessionUser
from web.db import get_session

bp = Blueprint("login", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """The sign-in form; on success, a fresh session and the page asked for."""
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target, error=None, name="")
    name = request.form.get("name", "")
    db = get_session()
    try:
        user = verify_password(db, name, request.form.get("password", ""))
    except Unauthenticated as refused:
        db.commit()  # keep the failed-login count
        return render_template("login.html", next=target, error=refused, name=name), 401
    # A new session on sign-in: nothing from before (a planted session) carries over.
    session.clear()
    login_user(SessionUser(user))
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    """End this session."""
    logout_user()
    session.clear()
    return redirect(url_for("login.login"))


def safe_next(target: str | None) -> str:
    """``next`` when it is a path on this site; the home page otherwise (no open redirect)."""
    if not target:
        return url_for("index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("index")
    return target
