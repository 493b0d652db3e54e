"""CSRF on every write, security headers, body size limits, the anonymous filing limit,
and the settings behind them."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from geogrid.actors import ADMINISTRATOR, OFFICIAL
from geogrid.errors import ConfigError
from geogrid.settings import Settings
from web import create_app
from web.security import MAX_BODY, MAX_FORM_MEMORY, MAX_FORM_PARTS, tile_origins

ABC = ["https://a.tile.example.org", "https://b.tile.example.org", "https://c.tile.example.org"]
TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
COUNTY = "370705"


def report(**changes):
    """A valid resident's report in the tiny city's first grid."""
    body = {
        "category": "environment",
        "description": "垃圾堆放 rubbish piled up by the gate",
        "lon": 119.005,
        "lat": 36.71,
        "coord_type": "wgs84",
    }
    return {**body, **changes}


def open311_form(**changes):
    form = {
        "jurisdiction_id": COUNTY,
        "service_code": "environment",
        "lat": "36.71",
        "long": "119.005",
        "description": "垃圾堆放 rubbish piled up",
    }
    return {**form, **changes}


def csrf_token(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def api_error(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message", "field"}
    return error


@pytest.fixture
def browser(app):
    """A client of its own (the ``client`` fixture would lend its ``g`` to other clients)."""
    return app.test_client()


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


# -- CSRF --------------------------------------------------------------------------------------


def _write_routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(set(rule.methods or ()) & set(WRITES)):
            path = re.sub(r"<int[^>]*>", "1", rule.rule)
            yield method, re.sub(r"<[^>]+>", "x", path)


def test_every_write_with_a_session_cookie_needs_the_token(app, login_as):
    official = login_as(OFFICIAL, COUNTY)
    routes = list(_write_routes(app))
    assert ("POST", "/login") in routes and ("POST", "/api/incidents") in routes
    for method, path in routes:
        response = official.open(path, method=method)
        assert response.status_code == 403, (method, path, response.status_code)
        if path.startswith("/api/"):
            assert response.get_json()["error"]["field"] == "csrf_token", path
        elif not path.startswith("/open311/"):
            assert "csrf_token" in response.get_data(as_text=True), path


def test_a_scripted_write_with_the_token_header_passes(login_as, city):
    official = login_as(OFFICIAL, COUNTY)
    response = official.post(
        "/api/incidents", json=report(), headers={"X-CSRFToken": official.csrf_token}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["incident"]["reported_by"] == "official-1"


def test_a_token_holder_needs_no_csrf_token(login_as, auth_headers):
    # Even with a session cookie along: the Authorization header decides who it is.
    browser = login_as(OFFICIAL, COUNTY)
    headers = auth_headers("qian", OFFICIAL, COUNTY)
    response = browser.post("/api/incidents", json=report(), headers=headers)
    assert response.status_code == 201
    assert response.get_json()["incident"]["reported_by"] == "qian"


def test_the_public_files_without_a_cookie_but_a_cookie_needs_the_token(browser, city):
    assert browser.post("/api/incidents", json=report()).status_code == 201
    assert browser.post("/open311/v2/requests.json", data=open311_form()).status_code == 201
    # Once the browser holds a session (it opened a page), its writes need the token.
    token = csrf_token(browser)
    error = api_error(browser.post("/api/incidents", json=report()), 403)
    assert error["field"] == "csrf_token"
    response = browser.post("/api/incidents", json=report(), headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_every_form_in_the_templates_carries_the_token():
    forms = 0
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for form in re.findall(r"<form\b.*?</form>", text, flags=re.S | re.I):
            if re.search(r"""method\s*=\s*["']?post""", form, flags=re.I):
                forms += 1
                assert "csrf_field()" in form, f"{template.name}: {form[:120]}"
    assert forms >= 2  # the sign-in form and the sign-out button


# -- headers ---------------------------------------------------------------------------------


def _policy(response) -> dict[str, list[str]]:
    directives = [
        part.strip().split() for part in response.headers["Content-Security-Policy"].split(";")
    ]
    return {name: sources for name, *sources in directives}


def test_pages_and_answers_carry_the_security_headers(browser):
    for path in ("/login", "/api/incidents", "/healthz", "/static/geogrid.js"):
        with browser.get(path) as response:
            headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "SAMEORIGIN", path
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin", path
        assert "geolocation=(self)" in headers["Permissions-Policy"], path
        assert "camera=()" in headers["Permissions-Policy"], path
        assert "Strict-Transport-Security" not in headers, path  # plain http
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'", "'unsafe-inline'"]
        assert policy["img-src"] == ["'self'", "data:"]  # no tiles configured
        assert policy["connect-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'self'"] and policy["form-action"] == ["'self'"]
        assert policy["base-uri"] == ["'self'"]
        assert "unsafe-eval" not in headers["Content-Security-Policy"]


def test_https_answers_ask_for_https_from_then_on(browser):
    response = browser.get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_policy_lets_in_the_configured_tile_server_only(make_app):
    app = make_app(tiles="tianditu:abc")
    policy = _policy(app.test_client().get("/login"))
    assert policy["img-src"] == ["'self'", "data:"] + [
        f"https://t{n}.tianditu.gov.cn" for n in range(8)
    ]
    assert policy["script-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["connect-src"] == ["'self'"]


@pytest.mark.parametrize(
    ("tiles", "origins"),
    [
        ("none", []),
        (
            "https://{s}.tile.example.org/{z}/{x}/{y}.png",
            [f"https://{s}.tile.example.org" for s in "abc"],
        ),
        ("https://tiles.example.org:8443/{z}/{x}/{y}.png", ["https://tiles.example.org:8443"]),
        ("//{s}.example.org/{z}/{x}/{y}.png", ["a.example.org", "b.example.org", "c.example.org"]),
        ("/tiles/{z}/{x}/{y}.png", []),
    ],
)
def test_tile_origins(tiles, origins):
    assert tile_origins(Settings(tiles=tiles, tiles_attribution="© example")) == origins


def test_signed_in_pages_are_not_kept_in_the_cache(browser, login_as):
    assert "no-store" not in browser.get("/login").headers.get("Cache-Control", "")
    official = login_as(OFFICIAL, COUNTY)
    assert official.get("/login").headers["Cache-Control"] == "no-store"


# -- sizes -------------------------------------------------------------------------------------


def test_a_json_body_over_the_limit_is_a_413(browser, city):
    padding = "x" * MAX_BODY
    response = browser.post("/api/incidents", json=report(description=padding))
    error = api_error(response, 413)
    assert error["code"] == "too_large" and "KiB" in error["message"]
    assert browser.post("/api/incidents", json=report(description="x" * 4000)).status_code == 201


def test_a_body_without_a_length_is_cut_off_at_the_limit(browser, city):
    body = b'{"description": "' + b"x" * (MAX_BODY + 10) + b'"}'
    response = browser.post(
        "/api/incidents",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},  # chunked, as gunicorn says
    )
    assert response.headers.get("Content-Length") != str(len(body))
    assert api_error(response, 413)["code"] == "too_large"


def test_a_large_url_encoded_form_is_a_413(browser, city):
    big = open311_form(description="x" * (MAX_BODY + 1))
    response = browser.post("/open311/v2/requests.json", data=big)
    assert response.status_code == 413
    [error] = response.get_json()
    assert error["code"] == 413
    assert browser.post("/login", data={"name": "x" * (MAX_BODY + 1)}).status_code == 413


BOUNDARY = "geogrid-test-boundary"


def _multipart(client, fields, file=None, headers=None):
    """POST a multipart form to the track upload, encoded here as plain bytes."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if file is not None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="walk.gpx"\r\n'
            "Content-Type: application/gpx+xml\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    return client.post("/api/patrols/tracks", data=body, content_type=content_type, headers=headers)


def test_only_a_known_caller_may_upload_more(browser, auth_headers):
    big = b"x" * (MAX_BODY + 1)
    assert api_error(_multipart(browser, {"team": "PA-1"}, big), 413)["code"] == "too_large"
    # A token holder's upload of that size reaches the view (which wants a coord_type).
    headers = auth_headers("root", ADMINISTRATOR)
    response = _multipart(browser, {"team": "PA-1"}, big, headers)
    assert api_error(response, 400)["field"] == "coord_type"


def test_multipart_forms_have_limits_on_parts_and_fields(browser, auth_headers):
    headers = auth_headers("root", ADMINISTRATOR)
    many = {f"field{n}": "1" for n in range(MAX_FORM_PARTS + 1)}
    assert api_error(_multipart(browser, many, headers=headers), 413)["code"] == "too_large"
    long_field = {"team": "x" * (MAX_FORM_MEMORY + 1)}
    assert api_error(_multipart(browser, long_field, headers=headers), 413)["code"] == "too_large"
    # Within the limits the view reads the form (and wants a coord_type).
    response = _multipart(browser, {"team": "PA-1"}, b"<gpx/>", headers)
    assert api_error(response, 400)["field"] == "coord_type"


# -- the anonymous filing limit ----------------------------------------------------------------


def test_anonymous_filing_is_limited_per_address(make_app, city, auth_headers):
    app = make_app(filing_rate_limit="2 per minute")
    resident = app.test_client()
    for description in ("", "垃圾堆放"):  # a refused report counts too
        resident.post("/api/incidents", json=report(description=description))
    error = api_error(resident.post("/api/incidents", json=report()), 429)
    assert error == {
        "code": "too_many_requests",
        "message": error["message"],
        "field": None,
    }
    assert "too many reports" in error["message"]
    retry_after = int(resident.post("/api/incidents", json=report()).headers["Retry-After"])
    assert 1 <= retry_after <= 60
    # Open311 shares the limit, and answers in GeoReport's shape.
    response = resident.post("/open311/v2/requests.json", data=open311_form())
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert response.get_json()[0]["code"] == 429
    # Token holders are not limited here.
    official = auth_headers("zhao", OFFICIAL, COUNTY)
    assert resident.post("/api/incidents", json=report(), headers=official).status_code == 201
    # Nor is another address.
    neighbour = app.test_client()
    neighbour.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert neighbour.post("/api/incidents", json=report()).status_code == 201


def test_open311_with_a_token_as_api_key_is_not_limited(make_app, city, auth_headers):
    app = make_app(filing_rate_limit="1 per minute")
    hotline = app.test_client()
    headers = auth_headers("hotline", OFFICIAL, COUNTY)
    secret = headers["Authorization"].removeprefix("Bearer ")
    for _ in range(3):
        response = hotline.post("/open311/v2/requests.json", data=open311_form(api_key=secret))
        assert response.status_code == 201
    assert hotline.post("/open311/v2/requests.json", data=open311_form()).status_code == 201
    assert hotline.post("/open311/v2/requests.json", data=open311_form()).status_code == 429


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(make_app, city):
    def filings(app):
        client = app.test_client()
        return [
            client.post(
                "/api/incidents", json=report(), headers={"X-Forwarded-For": f"198.51.100.{n}"}
            ).status_code
            for n in range(3)
        ]

    # Without a proxy to trust, a made-up header does not escape the limit...
    assert filings(make_app(filing_rate_limit="2 per minute")) == [201, 201, 429]
    # ...and behind one, each forwarded client has its own.
    behind = make_app(filing_rate_limit="2 per minute", trusted_proxies=1)
    assert filings(behind) == [201, 201, 201]


# -- settings ----------------------------------------------------------------------------------


def test_the_secure_cookie_setting_reads_yes_and_no():
    assert Settings.from_env({}).secure_cookies is True
    assert Settings.from_env({"GEOGRID_SECURE_COOKIES": "false"}).secure_cookies is False
    assert Settings.from_env({"GEOGRID_SECURE_COOKIES": "Yes"}).secure_cookies is True
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"GEOGRID_SECURE_COOKIES": "maybe"})
    assert refused.value.field == "GEOGRID_SECURE_COOKIES"
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"GEOGRID_SESSION_HOURS": "0"})
    assert refused.value.field == "GEOGRID_SESSION_HOURS"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"login_rate_limit": "lots"}, "GEOGRID_LOGIN_RATE_LIMIT"),
        ({"filing_rate_limit": "20 per fortnight"}, "GEOGRID_FILING_RATE_LIMIT"),
        ({"rate_limit_storage": "carrier-pigeon://loft"}, "GEOGRID_RATE_LIMIT_STORAGE"),
    ],
)
def test_unusable_limits_stop_the_app_at_start_up(make_app, changes, field):
    with pytest.raises(ConfigError) as refused:
        make_app(**changes)
    assert refused.value.field == field
