"""Signing in through the real form: refusals that tell nothing, the lock, the per-address
limit, login CSRF, safe ``next`` targets, and pages that let in only their roles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Blueprint

from geogrid import users
from geogrid.actors import GRID_WORKER, OFFICIAL
from geogrid.users import add_user, disable_user, get_user
from web import create_app
from web.auth import page_actor

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery!"
COUNTY = "370705"


def csrf_token(browser, path="/login"):
    page = browser.get(path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def sign_in(browser, name, password=PASSWORD, **fields):
    data = {"name": name, "password": password, "csrf_token": csrf_token(browser), **fields}
    return browser.post("/login", data=data)


def signed_in(browser) -> bool:
    """Whether the client's session is a user's (the incidents API answers, or asks for one)."""
    status = browser.get("/api/incidents?limit=1").status_code
    assert status in (200, 401)
    return status == 200


def refusal_text(response) -> str:
    """The page without its per-session CSRF token, to compare refusals."""
    return re.sub(r'(content|value)="[^"]{40,}"', "", response.get_data(as_text=True))


@pytest.fixture
def browser(app):
    """A browser of its own. (The ``client`` fixture keeps its last request's context open,
    which would lend that request's ``g``, signed-in user included, to other clients.)"""
    return app.test_client()


@pytest.fixture
def official(db, city):
    return add_user(db, "zhao", OFFICIAL, scope=[COUNTY], password=PASSWORD, created_by="tests")


@pytest.fixture
def make_app(settings, session_factory):
    """An app with some settings changed, on the test's transaction."""

    def make(**changes):
        app = create_app(
            settings.with_(secret_key="test-secret", **changes), session_factory=session_factory
        )
        app.config.update(TESTING=True)
        return app

    return make


# -- the form ----------------------------------------------------------------------------------


def test_the_login_page_is_chinese_by_default_and_english_on_request(browser):
    page = browser.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "用户名" in page and "密码" in page
    english = browser.get("/login?lang=en").get_data(as_text=True)
    assert "User name" in english and "Password" in english and "用户名" not in english


def test_a_right_password_signs_in_and_goes_where_asked(browser, official, db):
    response = sign_in(browser, "ZHAO ", next="/grids?area=370705")
    assert response.status_code == 302
    assert response.headers["Location"] == "/grids?area=370705"
    assert signed_in(browser)
    db.expire_all()
    assert get_user(db, "zhao").last_login_at is not None


def test_every_refusal_reads_the_same_and_never_shows_the_password(browser, official, db):
    add_user(db, "qian", OFFICIAL, scope=[COUNTY], password=PASSWORD, created_by="tests")
    disable_user(db, "qian")
    add_user(db, "sun", OFFICIAL, scope=[COUNTY], created_by="tests")  # token only
    pages = []
    for name in ("zhao", "nobody", "qian", "sun"):
        response = sign_in(browser, name, password="<secret>" + WRONG)
        assert response.status_code == 401
        page = refusal_text(response)
        assert "用户名或密码错误，或账号已被锁定。" in page
        assert WRONG not in page and "secret" not in page
        pages.append(page.replace(f'value="{name}"', 'value="NAME"'))
    assert len(set(pages)) == 1
    assert not signed_in(browser)


def test_the_name_is_given_back_escaped(browser, city):
    response = sign_in(browser, '"><script>alert(1)</script>')
    page = response.get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&#34;&gt;&lt;script&gt;" in page or "&quot;&gt;&lt;script&gt;" in page


def test_every_refusal_checks_one_password_hash(monkeypatch, browser, official, db):
    add_user(db, "qian", OFFICIAL, scope=[COUNTY], password=PASSWORD, created_by="tests")
    disable_user(db, "qian")
    add_user(db, "sun", OFFICIAL, scope=[COUNTY], created_by="tests")
    checked: list[str] = []
    real = users.check_password_hash

    def counting(stored: str, password: str) -> bool:
        checked.append(stored.split("$", 1)[0])
        return real(stored, password)

    monkeypatch.setattr(users, "check_password_hash", counting)
    for name in ("zhao", "nobody", "qian", "sun"):
        checked.clear()
        assert sign_in(browser, name, WRONG).status_code == 401
        # One scrypt hash whatever the reason, so the time taken does not tell them apart.
        assert len(checked) == 1 and checked[0].startswith("scrypt"), name


def test_five_wrong_passwords_lock_the_account_and_the_count_is_kept(browser, official, db):
    for _ in range(2):
        assert sign_in(browser, "zhao", WRONG).status_code == 401
    db.expire_all()
    assert get_user(db, "zhao").failed_logins == 2  # committed despite the 401
    for _ in range(3):
        assert sign_in(browser, "zhao", WRONG).status_code == 401
    db.expire_all()
    locked_until = get_user(db, "zhao").locked_until
    assert locked_until is not None
    assert locked_until > datetime.now(UTC) + timedelta(minutes=14)
    # The right password is refused while locked, in the same words.
    refused = sign_in(browser, "zhao", PASSWORD)
    assert refused.status_code == 401 and "账号已被锁定" in refused.get_data(as_text=True)
    assert not signed_in(browser)
    # Once the lock has run out the right password works again.
    get_user(db, "zhao").locked_until = datetime.now(UTC) - timedelta(seconds=1)
    db.flush()
    assert sign_in(browser, "zhao", PASSWORD).status_code == 302
    assert signed_in(browser)


def test_the_login_form_needs_its_csrf_token(app, browser, official):
    # Login CSRF: another site must not sign a browser in as its own user.
    browser.get("/login")
    response = browser.post("/login", data={"name": "zhao", "password": PASSWORD})
    assert response.status_code == 403
    assert "csrf_token" in response.get_data(as_text=True)
    assert not signed_in(browser)
    # A token of another session (the attacker's own) does not do either.
    other = app.test_client()
    stolen = csrf_token(other)
    response = browser.post(
        "/login", data={"name": "zhao", "password": PASSWORD, "csrf_token": stolen}
    )
    assert response.status_code == 403
    assert not signed_in(browser)


# -- the per-address limit -------------------------------------------------------------------


def test_failed_sign_ins_are_limited_per_address(make_app, official):
    app = make_app(login_rate_limit="3 per minute")
    here = app.test_client()
    for _ in range(3):
        assert sign_in(here, "nobody", WRONG).status_code == 401
    throttled = sign_in(here, "zhao", PASSWORD)  # even the right password, from here
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert "登录失败次数过多" in throttled.get_data(as_text=True)
    assert not signed_in(here)
    # Another address is not held back.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(elsewhere, "zhao", PASSWORD).status_code == 302


def test_successful_sign_ins_do_not_count_against_the_limit(make_app, official):
    app = make_app(login_rate_limit="2 per minute")
    for _ in range(4):
        assert sign_in(app.test_client(), "zhao", PASSWORD).status_code == 302


def test_an_ipv6_client_counts_as_its_slash_64(make_app, official):
    app = make_app(login_rate_limit="2 per minute")

    def attempt(address):
        browser = app.test_client()
        browser.environ_base["REMOTE_ADDR"] = address
        return sign_in(browser, "nobody", WRONG).status_code

    assert attempt("2001:db8::1") == 401
    assert attempt("2001:db8::2") == 401
    assert attempt("2001:db8::ffff:3") == 429  # the same /64
    assert attempt("2001:db8:0:1::1") == 401  # the next /64


# -- where a sign-in leads -------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/login",
        "https://evil.example",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/%0a/evil.example".replace("%0a", "\n"),
        " //evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_next_cannot_lead_to_another_site(browser, official, target):
    form = browser.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert 'name="next" value="/"' in form
    response = sign_in(browser, "zhao", next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


# -- pages for some roles only ---------------------------------------------------------------


@pytest.fixture
def probe(app):
    """A throw-away page for officials only, and one for anyone signed in."""
    blueprint = Blueprint("probe", __name__)

    @blueprint.get("/probe/officials")
    def officials() -> str:
        return f"for officials: {page_actor(OFFICIAL).name}"

    @blueprint.get("/probe/anyone")
    def anyone() -> str:
        return f"for anyone: {page_actor().name}"

    app.register_blueprint(blueprint)
    return app


def test_a_visitor_is_sent_to_sign_in_and_then_back(probe, browser, official):
    response = browser.get("/probe/officials?area=370705")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/probe/officials?area%3D370705"
    form = browser.get(response.headers["Location"]).get_data(as_text=True)
    target = re.search(r'name="next" value="([^"]+)"', form).group(1)
    assert target == "/probe/officials?area=370705"
    landed = sign_in(browser, "zhao", next=target)
    assert landed.headers["Location"] == "/probe/officials?area=370705"
    assert browser.get(target).get_data(as_text=True) == "for officials: zhao"


def test_another_role_gets_a_403_page(probe, login_as):
    worker = login_as(GRID_WORKER, "370705001001001")
    response = worker.get("/probe/officials")
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert "无权进行此操作" in response.get_data(as_text=True)
    assert worker.get("/probe/anyone").status_code == 200


def test_the_right_role_gets_the_page(probe, login_as):
    official = login_as(OFFICIAL, COUNTY, name="qian")
    response = official.get("/probe/officials")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "for officials: qian")
