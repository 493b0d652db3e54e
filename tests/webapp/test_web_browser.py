"""The grid map in a real headless Chromium: it draws, and asks nothing of another site."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from geogrid.users import add_user

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Quiet Chromium: no update checks, sync or other traffic of its own to record.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup --browser)"
    ),
]


@pytest.fixture
def viewer(db, city) -> tuple[str, str]:
    """Name and password of an official of the tiny city's county."""
    add_user(db, "official-1", "official", scope=["370705"], password=PASSWORD, created_by="tests")
    return "official-1", PASSWORD


@pytest.fixture
def server(app, city) -> Iterator[str]:
    """The app on a real WSGI server on a free loopback port, in a thread."""
    # One thread serves one request at a time, which the test's single connection needs.
    httpd = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


def test_the_grid_map_draws_offline(server, viewer):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800}, locale="zh-CN")
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "response",
                lambda response: (
                    problems.append(f"{response.status} {response.url}")
                    if response.status >= 400
                    else None
                ),
            )
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.goto(f"{server}/login?next=/grids?area=370705")
            page.fill("#name", viewer[0])
            page.fill("#password", viewer[1])
            page.click("button[type=submit]")
            page.wait_for_url(f"{server}/grids?area=370705")
            assert page.locator(".leaflet-control-attribution").inner_text().strip() == "Leaflet"
            # The layers fetch their outlines and say when every one is drawn.
            page.wait_for_function("() => window.geogridLayers && window.geogridLayers.ready")
            drawn = page.evaluate("() => window.geogridLayers.layers")
            # County, 2 townships, 2 communities and 4 grids, on one canvas (no SVG paths).
            assert drawn == {"网格": 4, "社区/村": 2, "街道/乡镇": 2, "区县": 1}
            assert page.locator(".leaflet-overlay-pane canvas").count() == 1
            layer_names = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
            assert [name.strip() for name in layer_names] == [
                "网格",
                "社区/村",
                "街道/乡镇",
                "区县",
            ]
            assert "网格 (4)" in page.locator(".geogrid-legend").inner_text()

            # Hovering inside a grid names it; Leaflet says where that lat/lon is on screen.
            point = page.evaluate(
                """() => {
                    const map = window[Object.keys(window).find((k) => k.startsWith("map_"))];
                    return map.latLngToContainerPoint([36.71, 119.005]);
                }"""
            )
            box = page.locator(".folium-map").bounding_box()
            page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
            tooltip = page.locator(".leaflet-tooltip")
            tooltip.wait_for()
            assert "370705001001001" in tooltip.inner_text()

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "grids.png"), full_page=True)
        finally:
            browser.close()

    origin = urlsplit(server)[:2]
    elsewhere = [
        url for url in requests if urlsplit(url)[:2] != origin and not url.startswith("data:")
    ]
    assert elsewhere == []
    assert any("/vendor/leaflet/dist/leaflet.js" in url for url in requests)
    assert problems == []
