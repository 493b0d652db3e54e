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

How a web session is kept, and ended. Flask keeps the session in the cookie itself,
signed with ``GEOGRID_SECRET_KEY`` and stamped with the time it was signed; the server
stores nothing per session. So:

- Signing in (:func:`start_session`) clears the session and writes a new one: whatever a
  visitor's cookie held before, planted or not, is gone, and a cookie value from before
  the sign-in stays a visitor's. A session names the user's row *and* its
  ``session_epoch``.
- A cookie value cannot be recalled on its own, so ending sessions raises the user's
  epoch (:func:`geogrid.users.end_sessions`): every session of that user then fails at its
  next request. Signing out does that, and so do a new password, disabling the user and
  ``geogrid users logout NAME``. Signing out on one device therefore signs the user out
  on all of them: the price of not keeping sessions on the server, and the only way a
  copied cookie stops working at once.
- Idle timeout: each request re-signs the cookie, and a cookie signed longer than
  ``GEOGRID_SESSION_IDLE_MINUTES`` ago is refused (``PERMANENT_SESSION_LIFETIME``,
  ``web/security.py``). Absolute limit: the session records when it signed in, and
  :func:`_end_overdue_session` ends it ``GEOGRID_SESSION_HOURS`` later, however busy.
  Both times are checked by the server on signed values, not left to the browser.
"""

from __future__ import annotations

import hashlib
import time

from flask import Flask, Response, abort, current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy import select

from geogrid.actors import RESIDENT, Actor
from geogrid.errors import Forbidden, Unauthenticated
from geogrid.models import AppUser
from geogrid.users import actor_for_token, actor_of, end_sessions
from web.db import get_session

#: The name every anonymous filing is recorded under (``incident.reported_by``).
PUBLIC_NAME = "public"
PUBLIC = Actor(name=PUBLIC_NAME, role=RESIDENT)
#: Seconds a checked API token is trusted without asking the database (see _token_actor).
TOKEN_TRUST_SECONDS = 5.0
_TRUSTED_TOKENS_MAX = 10_000
#: sha256 of a token's secret -> (trusted until, on the monotonic clock; its actor).
_trusted_tokens: dict[str, tuple[float, Actor]] = {}
#: Paths whose 401 answers carry a Bearer challenge.
_API_PREFIXES = ("/api/", "/open311/")
#: The session key holding when it signed in (seconds since the epoch).
SIGNED_IN_AT = "signed_in_at"


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
    app.before_request(_end_overdue_session)
    app.after_request(_challenge)


def start_session(user: AppUser) -> None:
    """Sign ``user`` in on a new session: nothing of the visitor's session carries over."""
    session.clear()
    login_user(SessionUser(user))
    # Permanent: the cookie carries an expiry, renewed by each request (the idle timeout).
    session.permanent = True
    session[SIGNED_IN_AT] = int(time.time())


def end_session() -> None:
    """Sign out: end every session of the signed-in user and clear this one."""
    if current_user.is_authenticated:
        end_sessions(get_session(), current_user.actor.name)
    logout_user()
    session.clear()


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
    # A token checked moments ago is trusted for TOKEN_TRUST_SECONDS (app config) without
    # a database round trip: the map APIs answer a thousand requests a second. A revoked
    # or expired token, or a disabled user's, is refused at most that long afterwards.
    digest = hashlib.sha256(secret.encode()).hexdigest()
    trusted = _trusted_tokens.get(digest)
    if trusted is not None and trusted[0] > time.monotonic():
        return trusted[1]
    actor = actor_for_token(get_session(), secret)
    if actor.name == PUBLIC_NAME:
        # A user called "public" would read and evaluate every anonymous report.
        raise Unauthenticated(
            f"the user name {PUBLIC_NAME!r} is reserved for anonymous filing; rename the user",
            field="token",
        )
    trust = float(current_app.config.get("TOKEN_TRUST_SECONDS", TOKEN_TRUST_SECONDS))
    if trust > 0:
        if len(_trusted_tokens) >= _TRUSTED_TOKENS_MAX:
            _trusted_tokens.clear()
        _trusted_tokens[digest] = (time.monotonic() + trust, actor)
    return actor


def _load_user(user_id: str) -> SessionUser | None:
    row_id, _, epoch = user_id.partition(".")
    if not row_id.isdigit() or not epoch.isdigit():
        return None
    user = get_session().scalar(select(AppUser).where(AppUser.id == int(row_id)))
    if user is None or user.disabled or user.session_epoch != int(epoch):
        return None
    return SessionUser(user)


def _end_overdue_session() -> None:
    if "_user_id" not in session:
        return
    signed_in_at = session.get(SIGNED_IN_AT)
    max_age = current_app.extensions["geogrid"].settings.session_hours * 3600
    if not isinstance(signed_in_at, int) or time.time() - signed_in_at > max_age:
        # Signed out, but the session's CSRF token stays: a page open since then gets a
        # clear "sign in" (401, or the login page) rather than a CSRF error.
        logout_user()
        session.pop(SIGNED_IN_AT, None)


def _challenge(response: Response) -> Response:
    if response.status_code == 401 and request.path.startswith(_API_PREFIXES):
        challenge = 'Bearer realm="geogrid"'
        if request.headers.get("Authorization"):
            challenge += ', error="invalid_token"'
        response.headers.setdefault("WWW-Authenticate", challenge)
    return response
