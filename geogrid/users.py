"""Users and API tokens: who may log in or call the API, in which role, over which codes.

A user has a lower-case login name, a role (:mod:`geogrid.actors`, never ``system``) and
a scope of unified codes that exist in the current generation; administrators have
none, because they act everywhere. Passwords are hashed by werkzeug (scrypt, salted);
geogrid keeps no crypto of its own. After :data:`MAX_FAILED_LOGINS` wrong passwords in a
row a login is locked for :data:`LOCKOUT`, and every refusal says the same thing, so a
guesser cannot tell a wrong password from an unknown or locked user.

API tokens are random secrets with a recognisable prefix (``gg_…``). Only their SHA-256
is stored; the secret is shown once when the token is issued. Users are disabled, never
deleted, so the names in incident histories keep meaning someone.

A web session remembers the user's *session epoch*; raising it ends every session of
the user at their next request (:func:`end_sessions`, and a new password or disabling
does it too), since signed cookies cannot be recalled one by one.

Like every library module these functions flush and never commit. Note for callers of
:func:`verify_password`: the failed-login count is written even when it raises, so the
caller must commit on :class:`~geogrid.errors.Unauthenticated` too, or the limit is void.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from geogrid.actors import ADMINISTRATOR, DEPARTMENT, Actor
from geogrid.codes import normalise_code
from geogrid.errors import CodeError, Conflict, InputError, NotFound, Unauthenticated
from geogrid.generations import current_generation
from geogrid.models import USER_ROLES, ApiToken, AppUser, Area

#: werkzeug's scrypt (N=2**15, r=8, p=1, 16-byte salt); the hash records its own parameters.
PASSWORD_METHOD = "scrypt"
MIN_PASSWORD_LENGTH = 10
#: Long enough for any pass phrase, short enough that hashing it is no denial of service.
MAX_PASSWORD_LENGTH = 256
#: Wrong passwords in a row that lock a login, and for how long.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)

#: Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "gg_"
#: Characters of the secret stored in clear to tell tokens apart.
TOKEN_SHOWN = 8
#: ``last_used_at`` is written at most this often, so a busy client does not rewrite its row.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_REFUSED = "wrong user name or password"


# -- users ----------------------------------------------------------------------------------


def add_user(
    session: Session,
    name: str,
    role: str,
    *,
    scope: Iterable[str] = (),
    display_name: str = "",
    department: str = "",
    password: str | None = None,
    created_by: str,
) -> AppUser:
    """Create a user; without a password it can only use API tokens."""
    login = normalise_name(name)
    if role not in USER_ROLES:
        raise InputError(f"unknown role {role!r}; users have {', '.join(USER_ROLES)}", field="role")
    if role == DEPARTMENT and not department.strip():
        raise InputError("department staff need the department they act for", field="department")
    user = AppUser(
        name=login,
        role=role,
        scope=_checked_scope(session, role, scope),
        display_name=display_name.strip(),
        department=department.strip(),
        password_hash=_hash_password(password, login) if password is not None else None,
        created_by=created_by,
    )
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig.diag, "constraint_name", None) != "app_user_name_key":
            raise
        raise Conflict(f"there is already a user called {login!r}", field="name") from None
    return user


def get_user(session: Session, name: str) -> AppUser:
    """The user with this login name (any case); NotFound otherwise."""
    user = session.scalar(select(AppUser).where(AppUser.name == name.strip().lower()))
    if user is None:
        raise NotFound(f"there is no user called {name!r}", field="name")
    return user


def list_users(session: Session, *, include_disabled: bool = True) -> list[AppUser]:
    """Every user, by name."""
    query = select(AppUser).order_by(AppUser.name)
    if not include_disabled:
        query = query.where(AppUser.disabled.is_(False))
    return list(session.scalars(query))


def disable_user(session: Session, name: str) -> AppUser:
    """Stop a user from logging in or using any of their tokens; ends their sessions."""
    user = get_user(session, name)
    user.disabled = True
    # Otherwise enabling the user again would bring their old sessions back to life.
    _raise_epoch(session, user)
    return user


def end_sessions(session: Session, name: str) -> AppUser:
    """End every web session of a user (at each session's next request)."""
    user = get_user(session, name)
    _raise_epoch(session, user)
    return user


def enable_user(session: Session, name: str) -> AppUser:
    """Let a disabled or locked user in again (clears the failed-login count and the lock)."""
    user = get_user(session, name)
    user.disabled = False
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    return user


def set_scope(session: Session, name: str, scope: Iterable[str]) -> AppUser:
    """Replace the codes a user answers for."""
    user = get_user(session, name)
    user.scope = _checked_scope(session, user.role, scope)
    session.flush()
    return user


def set_password(session: Session, name: str, password: str) -> AppUser:
    """Give a user a new password (lifting a lock, since an administrator vouched).

    Ends the user's sessions: whoever signed in with the old password must sign in again.
    """
    user = get_user(session, name)
    user.password_hash = _hash_password(password, user.name)
    user.failed_logins = 0
    user.locked_until = None
    _raise_epoch(session, user)
    return user


def _raise_epoch(session: Session, user: AppUser) -> None:
    # In SQL, so two raises at once both count; the attribute is reloaded when next read.
    user.session_epoch = AppUser.session_epoch + 1
    session.flush()


def generate_password() -> str:
    """A random password for a new user to change (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def normalise_name(name: str) -> str:
    """A login name as stored: trimmed, lower case, 2-64 of a-z 0-9 . _ @ -."""
    login = name.strip().lower()
    if not _NAME.match(login):
        raise InputError(
            f"user name {name!r} must be 2-64 characters: letters a-z, digits, '.', '_', '@' or"
            " '-', starting with a letter or digit (put a Chinese name in --display-name)",
            field="name",
        )
    return login


def actor_of(user: AppUser) -> Actor:
    """The actor a user acts as in every library call."""
    return Actor(
        name=user.name, role=user.role, scope=tuple(user.scope), department=user.department
    )


def user_as_dict(user: AppUser) -> dict[str, Any]:
    """A user as JSON-ready data, without the password hash."""
    return {
        "name": user.name,
        "display_name": user.display_name,
        "role": user.role,
        "scope": list(user.scope),
        "department": user.department,
        "has_password": user.password_hash is not None,
        "disabled": user.disabled,
        "locked_until": _iso(user.locked_until),
        "created_at": _iso(user.created_at),
        "created_by": user.created_by,
        "last_login_at": _iso(user.last_login_at),
    }


# -- passwords --------------------------------------------------------------------------------


def verify_password(
    session: Session, name: str, password: str, *, now: datetime | None = None
) -> AppUser:
    """The user whose password this is; Unauthenticated, saying nothing more, otherwise.

    Counts the failure on the user's row (locked for the caller's transaction, so parallel
    guesses are counted too); the caller must commit even when this raises.
    """
    now = now or datetime.now(UTC)
    login = name.strip().lower()
    user = session.scalar(
        select(AppUser)
        .where(AppUser.name == login)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    # Every path checks one hash, so the time taken does not tell whether the user exists.
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    matches = check_password_hash(stored, password)
    if user is None or user.password_hash is None or user.disabled:
        raise Unauthenticated(_REFUSED, field="password")
    if user.locked_until is not None and user.locked_until > now:
        raise Unauthenticated(_REFUSED, field="password")
    if not matches:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        session.flush()
        raise Unauthenticated(_REFUSED, field="password")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.flush()
    return user


def _hash_password(password: str, login: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(
            f"a password has at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    if password.strip().lower() == login:
        raise InputError("the password must not be the user name", field="password")
    return generate_password_hash(password, method=PASSWORD_METHOD)


@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import; a hash of a password nobody knows.
    return generate_password_hash(secrets.token_urlsafe(16), method=PASSWORD_METHOD)


# -- tokens -----------------------------------------------------------------------------------


def issue_token(
    session: Session,
    user_name: str,
    *,
    purpose: str,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new API token for a user: the secret (shown once, never stored) and its row."""
    now = now or datetime.now(UTC)
    user = get_user(session, user_name)
    if user.disabled:
        raise InputError(f"user {user.name!r} is disabled; enable it first", field="name")
    if not purpose.strip():
        raise InputError("say what the token is for (e.g. the client's name)", field="purpose")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InputError("a token's lifetime must be positive", field="expires_in")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        token_hash=_token_hash(secret),
        prefix=secret[:TOKEN_SHOWN],
        purpose=purpose.strip(),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )
    session.add(token)
    session.flush()
    return secret, token


def actor_for_token(session: Session, secret: str, *, now: datetime | None = None) -> Actor:
    """The actor an API token stands for; Unauthenticated for a bad, revoked or expired one."""
    now = now or datetime.now(UTC)
    row = None
    if secret.startswith(TOKEN_PREFIX):
        row = session.execute(
            select(ApiToken, AppUser)
            .join(AppUser, AppUser.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _token_hash(secret))
        ).one_or_none()
    if row is None:
        raise Unauthenticated("unknown API token", field="token")
    token, user = row
    if token.revoked_at is not None:
        raise Unauthenticated("this API token was revoked", field="token")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("this API token has expired", field="token")
    if user.disabled:
        raise Unauthenticated("the user of this API token is disabled", field="token")
    _touch(session, token, now)
    return actor_of(user)


def revoke_token(session: Session, token: str, *, now: datetime | None = None) -> ApiToken:
    """Revoke a token named by its prefix (or its whole secret); revoking twice is harmless."""
    now = now or datetime.now(UTC)
    query = select(ApiToken).order_by(ApiToken.id)
    if len(token) > TOKEN_SHOWN:
        query = query.where(ApiToken.token_hash == _token_hash(token))
    else:
        query = query.where(ApiToken.prefix == token)
    found = list(session.scalars(query))
    if not found:
        raise NotFound(f"no API token starts with {token[:TOKEN_SHOWN]!r}", field="token")
    live = [candidate for candidate in found if candidate.revoked_at is None]
    if len(live) > 1:
        raise Conflict(
            f"{len(live)} tokens start with {token!r}; revoke by the whole secret instead",
            field="token",
        )
    chosen = live[0] if live else found[-1]
    if chosen.revoked_at is None:
        chosen.revoked_at = now
        session.flush()
    return chosen


def list_tokens(session: Session, user_name: str | None = None) -> list[tuple[ApiToken, str]]:
    """Tokens with their user's name, newest first; only one user's when named."""
    query = (
        select(ApiToken, AppUser.name)
        .join(AppUser, AppUser.id == ApiToken.user_id)
        .order_by(ApiToken.id.desc())
    )
    if user_name is not None:
        query = query.where(AppUser.id == get_user(session, user_name).id)
    return [(token, name) for token, name in session.execute(query)]


def token_as_dict(token: ApiToken, user_name: str) -> dict[str, Any]:
    """A token as JSON-ready data: its prefix and dates, never a secret."""
    return {
        "prefix": token.prefix,
        "user": user_name,
        "purpose": token.purpose,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "expires_at": _iso(token.expires_at),
        "revoked_at": _iso(token.revoked_at),
    }


def _token_hash(secret: str) -> str:
    # The secret has 256 random bits, so a plain SHA-256 is enough; no salt or stretching.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _touch(session: Session, token: ApiToken, now: datetime) -> None:
    # The row was just read: a fresh stamp needs no round trip at all (the API's hot path).
    if token.last_used_at is not None and token.last_used_at >= now - LAST_USED_RESOLUTION:
        return
    # Best effort: a row another request is updating right now is skipped, not waited for.
    stale = (
        select(ApiToken.id)
        .where(
            ApiToken.id == token.id,
            or_(
                ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - LAST_USED_RESOLUTION
            ),
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    touched = session.execute(
        update(ApiToken)
        .where(ApiToken.id == stale)
        .values(last_used_at=now)
        .returning(ApiToken.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if touched is not None:
        set_committed_value(token, "last_used_at", now)


# -- scopes -----------------------------------------------------------------------------------


def _checked_scope(session: Session, role: str, scope: Iterable[str]) -> list[str]:
    """The scope's codes, trimmed and de-duplicated, each an area of the current generation."""
    codes = list(dict.fromkeys(normalise_code(code, field="scope") for code in scope))
    if role == ADMINISTRATOR:
        if codes:
            raise InputError("an administrator acts everywhere; give no scope", field="scope")
        return []
    if not codes:
        raise InputError(
            f"a {role} needs a scope: the codes they answer for (a county, a street, grids)",
            field="scope",
        )
    generation = current_generation(session)
    if generation is None:
        raise CodeError(
            "no generation is active, so no scope code can be checked; activate one first",
            field="scope",
        )
    known = set(
        session.scalars(select(Area.code).where(Area.code.in_(codes), Area.valid_in(generation.id)))
    )
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise CodeError(
            f"no area in the current generation ({generation.id}) has the code "
            f"{', '.join(unknown)}",
            field="scope",
            codes=unknown,
        )
    return codes


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
