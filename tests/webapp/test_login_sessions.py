"""Sessions: a new one at sign-in, ended everywhere by sign-out, a new password, disabling or
``geogrid users logout``; the idle and absolute time limits; the cookie's attributes."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid import users
from geogrid.actors import ADMINISTRATOR, OFFICIAL
from geogrid.models import AppUser
from web import create_app
from web.auth import SIGNED_IN_AT

PASSWORD = "correct horse battery"
COUNTY = "370705"
IDLE_MINUTES = 120
HOURS = 12


def csrf_token(browser, path="/login"):
    page = browser.get(path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def sign_in(browser, name="zhao", password=PASSWORD):
    data = {"name": name, "password": password, "csrf_token": csrf_token(browser)}
    return browser.post("/login", data=data)


def signed_in(browser) -> bool:
    """Whether the client's session is a user's (the incidents API answers, or asks for one)."""
    status = browser.get("/api/incidents?limit=1").status_code
    assert status in (200, 401)
    return status == 200


def cookie_name(app) -> str:
    return app.config["SESSION_COOKIE_NAME"]


def session_cookie(app, browser) -> str:
    return browser.get_cookie(cookie_name(app)).value


def client_with_cookie(app, value):
    """Another browser holding a copy of a session cookie."""
    other = app.test_client()
    other.set_cookie(cookie_name(app), value)
    return other


@pytest.fixture
def browser(app):
    """A browser of its own. (The ``client`` fixture keeps its last request's context open,
    which would lend that request's ``g``, signed-in user included, to other clients.)"""
    return app.test_client()


@pytest.fixture
def official(db, city):
    return users.add_user(
        db, "zhao", OFFICIAL, scope=[COUNTY], password=PASSWORD, created_by="tests"
    )


# -- a new session at sign-in ------------------------------------------------------------------


def test_signing_in_starts_a_new_session(app, browser, official):
    csrf_token(browser)
    with browser.session_transaction() as planted:
        planted["planted"] = "by someone else"
    before = session_cookie(app, browser)
    assert sign_in(browser).status_code == 302
    after = session_cookie(app, browser)
    assert after != before
    with browser.session_transaction() as session:
        assert "planted" not in session
        assert session[SIGNED_IN_AT] == pytest.approx(time.time(), abs=5)
    # Whoever kept the cookie value from before the sign-in holds a visitor's session.
    assert not signed_in(client_with_cookie(app, before))
    assert signed_in(client_with_cookie(app, after))


def test_signing_out_ends_every_copy_of_the_session(app, browser, official):
    sign_in(browser)
    copied = session_cookie(app, browser)
    laptop = app.test_client()
    sign_in(laptop)
    assert signed_in(client_with_cookie(app, copied)) and signed_in(laptop)
    response = browser.post("/logout", data={"csrf_token": csrf_token(browser)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not signed_in(browser)
    # A copy of the cookie taken before signing out, and the user's other devices, too.
    assert not signed_in(client_with_cookie(app, copied))
    assert not signed_in(laptop)
    # Signing in again works, of course.
    assert sign_in(browser).status_code == 302 and signed_in(browser)


def test_signing_out_needs_the_csrf_token(browser, official):
    sign_in(browser)
    assert browser.post("/logout").status_code == 403
    assert signed_in(browser)


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(lambda db: users.set_password(db, "zhao", "a new pass phrase"), id="password"),
        pytest.param(
            lambda db: (users.disable_user(db, "zhao"), users.enable_user(db, "zhao")),
            id="disable-and-enable",
        ),
        pytest.param(lambda db: users.end_sessions(db, "zhao"), id="logout"),
    ],
)
def test_a_new_password_disabling_or_logout_ends_sessions(browser, official, db, end):
    sign_in(browser)
    assert signed_in(browser)
    end(db)
    db.flush()
    assert not signed_in(browser)


def test_the_cli_ends_a_users_sessions(make_database, base_settings):
    engine = make_database(base_settings.code_scheme)
    env = {"GEOGRID_DATABASE_URL": engine.url.render_as_string(False)}
    from geogrid.cli import main

    def invoke(*args):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    def epoch():
        with Session(engine) as session:
            return session.scalar(select(AppUser.session_epoch).where(AppUser.name == "root"))

    invoke("users", "add", "root", "--role", ADMINISTRATOR, "--commit")
    assert epoch() == 0
    assert "would end every web session of root" in invoke("users", "logout", "ROOT")
    assert epoch() == 0
    assert "ended every web session of root" in invoke("users", "logout", "root", "--commit")
    assert epoch() == 1


# -- how long a session lasts ----------------------------------------------------------------


def _last_request_ago(app, browser, seconds, monkeypatch):
    """Make the browser's session cookie look signed by a response ``seconds`` ago."""
    with browser.session_transaction() as session:
        data = dict(session)
    serializer = app.session_interface.get_signing_serializer(app)
    with monkeypatch.context() as patched:
        patched.setattr(TimestampSigner, "get_timestamp", lambda _: int(time.time()) - seconds)
        browser.set_cookie(cookie_name(app), serializer.dumps(data))


def test_a_session_ends_after_the_idle_timeout(app, browser, official, monkeypatch):
    sign_in(browser)
    idle = IDLE_MINUTES * 60
    _last_request_ago(app, browser, idle - 60, monkeypatch)
    assert signed_in(browser)  # within the timeout; this request renews the signature
    _last_request_ago(app, browser, idle + 60, monkeypatch)
    assert not signed_in(browser)


def test_activity_does_not_stretch_a_session_past_its_hours(browser, official):
    sign_in(browser)
    with browser.session_transaction() as session:
        session[SIGNED_IN_AT] = int(time.time()) - HOURS * 3600 + 60
    assert signed_in(browser)
    with browser.session_transaction() as session:
        session[SIGNED_IN_AT] = int(time.time()) - HOURS * 3600 - 60
    assert not signed_in(browser)
    with browser.session_transaction() as session:
        assert "_user_id" not in session


def test_a_session_without_its_sign_in_time_is_not_a_users(browser, official):
    sign_in(browser)
    with browser.session_transaction() as session:
        del session[SIGNED_IN_AT]
    assert not signed_in(browser)


# -- the cookie --------------------------------------------------------------------------------


def _set_cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_the_session_cookie_is_secure_host_only_and_never_remembered(browser, official):
    cookies = _set_cookies(sign_in(browser))
    assert list(cookies) == ["__Host-geogrid"]  # no remember-me cookie, nothing else
    attributes = [part.strip() for part in cookies["__Host-geogrid"].split(";")]
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=Lax"} <= set(attributes)
    assert not any(part.lower().startswith("domain=") for part in attributes)
    [expires] = [part for part in attributes if part.startswith("Expires=")]
    left = datetime.strptime(expires, "Expires=%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    minutes = (left - datetime.now(UTC)).total_seconds() / 60
    assert IDLE_MINUTES - 2 < minutes <= IDLE_MINUTES


def test_plain_cookies_when_secure_cookies_are_off(settings, session_factory, official):
    app = create_app(
        settings.with_(secret_key="test-secret", secure_cookies=False),
        session_factory=session_factory,
    )
    browser = app.test_client()
    cookies = _set_cookies(sign_in(browser))
    assert list(cookies) == ["geogrid"]
    assert "Secure" not in cookies["geogrid"] and "HttpOnly" in cookies["geogrid"]
    assert signed_in(browser)
