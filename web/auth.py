"""Who is making a request: the one place a request becomes an :class:`~geogrid.actors.Actor`.

Every view asks :func:`current_actor` (or :func:`signed_in_actor` / :func:`actor_in_role`)
and passes the actor to the library, which checks roles and scopes; views never decide
who may see what themselves.

- ``Authorization: Bearer gg_...``: an API token (:func:`geogrid.users.actor_for_token`).
  A wrong, revoked or expired token is a 401 with ``WWW-Authenticate``, never a silent
  fall back to the public. Checking a token writes its ``last_used_at``, so even a GET
  commits (``web/db.py`` commits every response under 400).
- A signed-in web session (Flask-Login; ``web/login.py``): the session's user, as long as
  the user is enabled and the session's epoch is the user's current one.
- Nothing: the anonymous public, a resident called :data:`PUBLIC_NAME`. The public may
  file an incident (``POST /api/incidents``, Open311) and read Open311's public view,
  nothing else: every other endpoint asks for :func:`signed_in_actor`. The library lets a
  resident read and evaluate "their own" reports, which for the shared public actor
  would be everyone's anonymous reports, so those paths never see it.

Pages call :func:`page_actor`, which sends a visitor who is not signed in to the login
page instead of answering 401.
"""

from __future__ import annotations

from flask import Flask, Response, abort, g, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select

from geogrid.actors import RESIDENT, Actor
from geogrid.errors import Forbidden, Unauthenticated
from geogrid.models import AppUser
from geogrid.users import actor_for_token, actor_of
from web.db import get_session

#: The name every anonymous filing is recorded under (``incident.reported_by``).
PUBLIC_NAME = "public"
PUBLIC = Actor(name=PUBLIC_NAME, role=RESIDENT)
#: Paths whose 401 answers carry a Bearer challenge.
_API_PREFIXES = ("/api/", "/open311/")


class SessionUser(UserMixin):
    """A signed-in user as Flask-Login keeps it: the actor and the session's id."""

    def __init__(self, user: AppUser) -> None:
        self.actor = actor_of(user)
        # The epoch in the id ends old sessions when the user's epoch is raised.
        self.id = session_id(user)


def session_id(user: AppUser) -> str:
    """What the session cookie remembers of a user: row id and session epoch."""
    return f"{user.id}.{user.session_epoch}"


def init_app(app: Flask) -> None:
    """Set up session logins and add the Bearer challenge to 401 answers of the API."""
    manager = LoginManager()
    manager.user_loader(_load_user)
    # Flask-Login's "strong" protection would drop sessions on a changed IP, which mobile
    # patrol members' phones do all the time; the epoch does the ending instead.
    manager.session_protection = "basic"
    manager.init_app(app)
    app.after_request(_challenge)


def page_actor(*roles: str) -> Actor:
    """The signed-in actor of a page; the login page for visitors, 403 for other roles."""
    actor = current_actor()
    if is_public(actor):
        abort(redirect(url_for("login.login", next=request.full_path.rstrip("?"))))
    if roles and actor.role not in roles:
        raise Forbidden(
            f"this page is for: {', '.join(roles)}; you are signed in as a {actor.role}",
            field="role",
        )
    return actor


def current_actor() -> Actor:
    """The request's actor: the token's user, or :data:`PUBLIC` without credentials."""
    if "actor" not in g:
        g.actor = _authenticate()
    return g.actor


def signed_in_actor() -> Actor:
    """The request's actor; Unauthenticated (401) for the anonymous public."""
    actor = current_actor()
    if is_public(actor):
        raise Unauthenticated(
            "this needs an API token: send Authorization: Bearer gg_...", field="Authorization"
        )
    return actor


def actor_in_role(*roles: str) -> Actor:
    """The signed-in actor when its role is one of ``roles``; Forbidden (403) otherwise."""
    actor = signed_in_actor()
    if actor.role not in roles:
        raise Forbidden(
            f"a {actor.role} may not do this; it is for: {', '.join(roles)}", field="role"
        )
    return actor


def use_token(secret: str) -> Actor:
    """Authenticate with a token given outside the header (Open311's ``api_key``)."""
    if request.headers.get("Authorization"):
        raise Unauthenticated("give the token once: in the header or as api_key", field="api_key")
    g.actor = _token_actor(secret)
    return g.actor


def is_public(actor: Actor) -> bool:
    """Whether ``actor`` is the anonymous public rather than a user."""
    return actor == PUBLIC


def _authenticate() -> Actor:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        if current_user.is_authenticated:
            return current_user.actor
        return PUBLIC
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <token>'", field="Authorization"
        )
    return _token_actor(secret.strip())


def _token_actor(secret: str) -> Actor:
    actor = actor_for_token(get_session(), secret)
    if actor.name == PUBLIC_NAME:
        # A user called "public" would read and evaluate every anonymous report.
        raise Unauthenticated(
            f"the user name {PUBLIC_NAME!r} is reserved for anonymous filing; rename the user",
            field="token",
        )
    return actor


def _load_user(user_id: str) -> SessionUser | None:
    row_id, _, epoch = user_id.partition(".")
    if not row_id.isdigit() or not epoch.isdigit():
        return None
    user = get_session().scalar(select(AppUser).where(AppUser.id == int(row_id)))
    if user is None or user.disabled or user.session_epoch != int(epoch):
        return None
    return SessionUser(user)


def _challenge(response: Response) -> Response:
    if response.status_code == 401 and request.path.startswith(_API_PREFIXES):
        challenge = 'Bearer realm="geogrid"'
        if request.headers.get("Authorization"):
            challenge += ', error="invalid_token"'
        response.headers.setdefault("WWW-Authenticate", challenge)
    return response
