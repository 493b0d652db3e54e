"""My area and the station page in headless Chromium: layers, an upload, a lead, screenshots."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

import pytest
from conftest import TEST_PASSWORD
from test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, server  # noqa: F401

from geogrid.users import add_user
from geogrid.workdays import SHANGHAI
from tests.patrol_factories import add_assignment, add_member, add_station, add_team
from web import patrol_pages

G1, G2 = "370705001001001", "370705001001002"
G3, G4 = "370705002001001", "370705002001002"
STATION, T1, T2 = "370705-PS01", "PA-370705-0001", "PA-370705-0002"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup --browser)"
    ),
]


@pytest.fixture
def patrol(db, city, monkeypatch):
    add_station(db, STATION, lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    t1 = add_team(db, T1, STATION, base=(119.005, 36.71), capacity=4)
    t2 = add_team(db, T2, STATION, base=(119.035, 36.71), capacity=4)
    add_member(db, "队员一", team=t1, user_name="duiyuan1")
    for team, grid in ((t1, G1), (t1, G2), (t2, G3)):
        add_assignment(db, team, grid, starts=time(8), ends=time(20))
    for name, role in (("duiyuan1", "patrol_member"), ("jingguan", "station_officer")):
        add_user(db, name, role, scope=["370705"], password=TEST_PASSWORD, created_by="tests")
    db.flush()
    monkeypatch.setattr(patrol_pages, "shanghai_now", lambda: NOW)


def write_gpx(path):
    """A ten-minute walk east through G1 from 09:00 Shanghai time."""
    start = NOW.replace(minute=0).astimezone(UTC)
    points = "".join(
        f'<trkpt lat="36.705" lon="{119.002 + 0.0003 * i:.6f}">'
        f"<time>{start + timedelta(seconds=30 * i):%Y-%m-%dT%H:%M:%SZ}</time></trkpt>"
        for i in range(20)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gpx version="1.1" creator="tests" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><trkseg>{points}</trkseg></trk></gpx>",
        encoding="utf-8",
    )
    return path


def watch(page, problems):
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )


def sign_in(page, server, name, target):  # noqa: F811
    page.goto(f"{server}/login?next={target}")
    page.fill("#name", name)
    page.fill("#password", TEST_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{server}{target}")
    page.wait_for_selector("path.leaflet-interactive")


def overlays(page) -> list[str]:
    return [
        t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    ]


def test_a_member_sees_the_area_uploads_a_track_and_files_a_lead(server, patrol, tmp_path):  # noqa: F811
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page.on("request", lambda request: requests.append(request.url))
            watch(page, problems)
            sign_in(page, server, "duiyuan1", "/patrol")
            assert overlays(page) == ["责任网格（按班次）", "本班次巡查情况", "巡逻轨迹", "线索"]
            # The shift layer starts hidden while a shift runs; its legend with it.
            assert page.locator(".geogrid-legend:visible h4").all_inner_texts() == [
                "本班次巡查情况"
            ]
            assert page.locator(".gg-pt-not-visited li").count() == 2

            page.set_input_files("#gg-pt-track-file", str(write_gpx(tmp_path / "早班.gpx")))
            page.click("form[action='/patrol/tracks'] button[type=submit]")
            page.wait_for_selector(".gg-pt-report")
            assert "质量报告" in page.locator(".gg-pt-report h2").inner_text()
            assert page.locator(".gg-pt-tracks tbody tr").count() == 1
            # The walk reached G1: only G2 is left for this shift.
            assert page.locator(".gg-pt-not-visited li").all_inner_texts() == [f"{G2} 东关第2网格"]
            page.wait_for_selector("path.leaflet-interactive")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "patrol-my-area.png"), full_page=True)

            # A lead where the map is clicked, inside G2.
            point = page.evaluate(
                """([lat, lon]) => {
                    const map = window[Object.keys(window).find((k) => k.startsWith("map_"))];
                    return map.latLngToContainerPoint([lat, lon]);
                }""",
                [36.715, 119.015],
            )
            box = page.locator(".folium-map").bounding_box()
            page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
            assert abs(float(page.input_value("#gg-pt-lead-form input[name=lon]")) - 119.015) < 1e-3
            page.fill("#gg-pt-lead-note", "楼道堆放杂物 boxes blocking the stairs")
            page.click("#gg-pt-lead-form button[type=submit]")
            page.wait_for_selector(".gg-pt-flash-ok")
            assert G2 in page.locator(".gg-pt-flash-ok").inner_text()
            assert page.locator(".gg-pt-leads tbody tr").count() == 1
        finally:
            browser.close()
    origin = urlsplit(server)[:2]
    assert [url for url in requests if urlsplit(url)[:2] != origin and "data:" not in url] == []
    assert problems == []


def test_an_officer_runs_the_optimiser_and_sees_the_proposal(server, patrol):  # noqa: F811
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            watch(page, problems)
            sign_in(page, server, "jingguan", "/station")
            assert overlays(page)[:3] == [
                "责任网格（按巡防队）",
                "实测覆盖：网格内分钟数",
                "防范盲区（高风险、巡查不足）",
            ]
            page.fill("#gg-pt-time-limit", "3")
            page.click("form[action='/station/optimiser'] button[type=submit]")
            page.wait_for_selector(".gg-pt-proposal")
            page.wait_for_selector("path.leaflet-interactive")
            assert "优化方案（按巡防队）" in overlays(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "station.png"), full_page=True)
            page.click(".gg-pt-proposal button[type=submit]")
            page.wait_for_selector(".gg-pt-flash-ok")
            assert "方案已采纳" in page.locator(".gg-pt-flash-ok").inner_text()
        finally:
            browser.close()
    assert problems == []
