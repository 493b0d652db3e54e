"""Filing an incident by clicking the map, then working it, in a real headless Chromium."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from conftest import TEST_PASSWORD
from sqlalchemy import select
from test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, server  # noqa: F401

from geogrid.models import Incident
from geogrid.users import add_user

G1 = "370705001001001"
#: Inside grid G1 (lon 119.00-119.01, lat 36.70-36.72), away from its edges.
LON, LAT = 119.005, 36.71

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup --browser)"
    ),
]


def test_a_grid_worker_files_by_clicking_the_map_and_accepts_it(server, db):  # noqa: F811
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    add_user(db, "wang", "grid_worker", scope=[G1], password=TEST_PASSWORD, created_by="tests")
    db.flush()
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )

            # Sign in through the real form, asking for the filing page.
            page.goto(f"{server}/login?next=/incidents/new")
            page.fill("#name", "wang")
            page.fill("#password", TEST_PASSWORD)
            page.click("form button[type=submit]")
            page.wait_for_url(f"{server}/incidents/new")
            page.wait_for_selector("path.leaflet-interactive")

            # Click inside G1: Leaflet says where that lat/lon is on the screen.
            point = page.evaluate(
                """([lat, lon]) => {
                    const map = window[Object.keys(window).find((k) => k.startsWith("map_"))];
                    return map.latLngToContainerPoint([lat, lon]);
                }""",
                [LAT, LON],
            )
            box = page.locator(".folium-map").bounding_box()
            page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
            lon = float(page.input_value("#lon"))
            lat = float(page.input_value("#lat"))
            assert abs(lon - LON) < 1e-3 and abs(lat - LAT) < 1e-3
            assert page.locator("#location-text").inner_text().startswith("119.00")
            page.select_option("#category", "environment")
            page.fill("#description", "垃圾堆放 rubbish piled up by the gate")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "incident-new.png"), full_page=True)

            page.click("#gg-inc-new button[type=submit]")
            page.wait_for_url(re.compile(rf"{re.escape(server)}/incidents/\d+$"))
            assert f"{G1}" in page.locator(".gg-inc-details").inner_text()
            assert "已上报" in page.locator(".gg-inc-flashes").inner_text()
            timeline = page.locator(".gg-inc-timeline > li")
            assert timeline.count() == 1
            page.wait_for_selector("path.leaflet-interactive")

            page.click("#action-accept button[type=submit]")
            page.wait_for_selector(".gg-inc-flash-success")
            assert timeline.count() == 2
            assert "受理" in timeline.nth(1).inner_text()
            assert "已受理" in page.locator(".gg-inc-status").inner_text()
            page.screenshot(path=str(ARTIFACTS / "incident-page.png"), full_page=True)

            page.click(".gg-crumbs a")
            page.wait_for_url(f"{server}/incidents")
            assert page.locator(".gg-inc-table tbody tr").count() == 1
            page.screenshot(path=str(ARTIFACTS / "incidents.png"), full_page=True)
        finally:
            browser.close()

    incident = db.scalar(select(Incident))
    assert (incident.grid_code, incident.coord_type, incident.state) == (
        G1,
        "cgcs2000",
        "accepted",
    )
    origin = urlsplit(server)[:2]
    elsewhere = [
        url for url in requests if urlsplit(url)[:2] != origin and not url.startswith("data:")
    ]
    assert elsewhere == []
    assert problems == []
