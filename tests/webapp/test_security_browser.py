"""Secure cookies and the Content-Security-Policy in a real headless Chromium.

The decision behind ``GEOGRID_SECURE_COOKIES`` on by default rests on what this checks:
Chromium keeps a ``Secure``, ``__Host-`` cookie set over plain http by 127.0.0.1 and
localhost (so ``make demo`` works), and drops it for any other plain-http name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from geogrid.actors import OFFICIAL
from geogrid.users import add_user

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: A name that is not loopback to the browser but resolves to this machine.
ELSEWHERE = "geogrid.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--host-resolver-rules=MAP {ELSEWHERE} 127.0.0.1",
]
PASSWORD = "correct horse battery"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup --browser)"
    ),
]


@pytest.fixture
def port(app, city, db) -> Iterator[int]:
    """The app on a real WSGI server on a free loopback port, with an official to sign in."""
    add_user(db, "zhao", OFFICIAL, scope=["370705"], password=PASSWORD, created_by="tests")
    db.flush()
    httpd = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@pytest.fixture
def browser():
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in(page, origin: str) -> None:
    page.goto(f"{origin}/login?next=/grids%3Farea%3D370705", wait_until="domcontentloaded")
    page.fill("#name", "zhao")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_secure_cookies_work_on_loopback_and_the_map_keeps_to_the_policy(browser, port, host):
    origin = f"http://{host}:{port}"
    context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # A script or style the policy blocks is a console error; a header Chromium cannot
    # read, a warning.
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Policy" in message.text
            else None
        ),
    )
    _sign_in(page, origin)
    [cookie] = [c for c in context.cookies() if c["name"] == "__Host-geogrid"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.url == f"{origin}/grids?area=370705"
    assert "当前用户：zhao" in page.locator(".gg-user").inner_text()
    response = page.goto(f"{origin}/grids?area=370705", wait_until="networkidle")
    assert "script-src 'self' 'unsafe-inline'" in response.headers["content-security-policy"]
    # The areas are drawn (as SVG paths or on a canvas) and the legend counts the grids.
    page.wait_for_selector(".leaflet-overlay-pane path, .leaflet-overlay-pane canvas")
    assert "网格 (4)" in page.locator(".geogrid-legend").inner_text()
    assert problems == []
    if host == "127.0.0.1":
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "signed-in-grids.png"), full_page=True)
    context.close()


def test_another_plain_http_name_loses_the_cookie_and_says_why(browser, port):
    origin = f"http://{ELSEWHERE}:{port}"
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{origin}/login", wait_until="domcontentloaded")
    assert "浏览器不会保存登录状态" in page.locator("[role=alert]").inner_text()
    assert context.cookies() == []  # the Secure cookie was not kept
    _sign_in(page, origin)
    # Without its cookie the form's CSRF token has no session to match: refused.
    assert "/login" in page.url or "csrf_token" in page.content()
    assert [c for c in context.cookies() if c["name"] == "__Host-geogrid"] == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login-plain-http.png"), full_page=True)
    context.close()
