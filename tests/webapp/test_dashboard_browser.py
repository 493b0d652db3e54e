"""The dashboard in headless Chromium: an official signs in, layers draw, legends follow them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
from conftest import TEST_PASSWORD
from factories import add_incident
from test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from werkzeug.serving import make_server

from geogrid.users import add_user
from geogrid.workdays import SHANGHAI

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]

LAYERS = ["事件热力图", "事件数与发生率", "热点与冷点 (Gi*)", "时空热点趋势"]


@pytest.fixture
def live_app(app, db, city) -> Iterator[str]:
    """The tiny city with some October incidents, an official, the app on a loopback port."""
    for day, grid_code in ((3, "370705001001001"), (7, "370705001001001"), (9, "370705002001002")):
        add_incident(
            db, grid_code=grid_code, reported_at=datetime(2026, 10, day, 9, tzinfo=SHANGHAI)
        )
    add_user(db, "zhao", "official", scope=("370705",), password=TEST_PASSWORD, created_by="tests")
    db.flush()
    httpd = make_server("127.0.0.1", 0, app, threaded=False)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    serving.join(timeout=10)
    httpd.server_close()


def test_the_dashboard_draws_its_layers_and_legends(live_app):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.goto(f"{live_app}/login?next=/dashboard?month=2026-10")
            page.fill("#name", "zhao")
            page.fill("#password", TEST_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/dashboard?month=2026-10")
            page.wait_for_function("() => window.geogridLayers && window.geogridLayers.ready")

            names = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
            assert [name.strip() for name in names] == LAYERS
            assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
            drawn = page.evaluate("() => window.geogridLayers.layers")
            assert drawn["热点与冷点 (Gi*)"] == 4  # the county's four grids
            # Only the legends of the layers on the map are shown: heat map and hotspots.
            legends = page.locator(".geogrid-layer-legend:visible h4").all_inner_texts()
            assert sorted(legends) == sorted(["事件热力图", "热点与冷点 (Gi*)"])
            page.get_by_text("事件数与发生率", exact=True).click()
            page.wait_for_function("() => window.geogridLayers.ready")
            legends = page.locator(".geogrid-layer-legend:visible h4").all_inner_texts()
            assert "每千户事件数" in legends

            assert page.locator("#figures dd").first.inner_text() == "3"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
