"""End to end on the demo city: each role signs in through /login in headless Chromium.

The module builds the default demo (奎文区 370705, a year of incidents, the patrol
alliance) with ``geogrid demo build --commit`` into its own database, makes the demo
users, and serves the app on a loopback port. Every test signs in through the real form
in its own browser context and fails on any request to another origin, any script or
console error and any HTTP error but the refusals it asks for; each saves screenshots
under ``test-artifacts/e2e-*.png``.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import openpyxl
import pytest
from demo_site import (
    DemoSite,
    Watch,
    build_demo,
    click_map_at,
    create_demo_users,
    gpx_walk,
    grid_shapes,
    largest_grid,
    overlay_names,
    redrawn_microgrids,
    serving,
    sign_in,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

from geogrid.actors import GRID_WORKER, OFFICIAL, PATROL_MEMBER, PLANNER, STATION_OFFICER
from geogrid.generations import current_generation
from geogrid.models import Area, PatrolAssignment, PatrolMember, PatrolTeam
from geogrid.workdays import SHANGHAI
from web import create_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/setup --browser)"
    ),
]

DEMO_COUNTY = "370705"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DASHBOARD_LAYERS = ["事件热力图", "事件数与发生率", "热点与冷点 (Gi*)", "时空热点趋势"]
#: The Gi* legend's confidence bins (hotspots and coldspots at 99, 95 and 90 %).
CONFIDENCE_BINS = ("99%", "95%", "90%")
LAYERS_READY = "() => window.geogridLayers && window.geogridLayers.ready"
#: Generous: these tests check what the pages do; benchmarks/ measures how fast.
PAGE_TIMEOUT_MS = 60_000

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module; each test opens its own context."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo(make_database, base_settings) -> Iterator[DemoSite]:
    """The default demo city built by the CLI, its demo users, the app served on loopback."""
    engine = make_database(base_settings.code_scheme)
    url = engine.url.render_as_string(False)
    log.info("demo city built in %.1f s", build_demo(url))
    logins = create_demo_users(engine)
    settings = base_settings.with_(database_url=url, secret_key=secrets.token_hex(16))
    app = create_app(settings)
    try:
        with serving(app) as origin:
            yield DemoSite(origin, engine, logins)
    finally:
        app.extensions["geogrid"].session_factory.kw["bind"].dispose()


@contextmanager
def signed_in(
    chromium: Any,
    demo: DemoSite,
    role: str,
    target: str,
    *,
    refused: tuple[str, ...] = (),
) -> Iterator[Any]:
    """A page of a fresh context, signed in as the role's demo user, on ``target``.

    On leaving: no request went to another origin, Leaflet came from this one, and the
    page had no script error, console error or HTTP error but the 403s of ``refused``.
    """
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    watch = Watch(demo.url, set(refused))
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        watch.attach(page)
        sign_in(page, demo, role, target)
        yield page
    finally:
        context.close()
    assert watch.elsewhere() == []
    assert any(urlsplit(url).path == "/vendor/leaflet/dist/leaflet.js" for url in watch.requests)
    assert watch.problems == []


def screenshot(page: Any, name: str) -> None:
    """Save the whole page as ``test-artifacts/e2e-<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-{name}.png"), full_page=True)


def count_areas(demo: DemoSite, level: str, prefix: str) -> int:
    """How many areas of a level the current generation has under ``prefix``."""
    with Session(demo.engine) as session:
        generation = current_generation(session)
        return session.scalar(
            select(func.count()).where(
                Area.valid_in(generation.id), Area.level == level, Area.code.startswith(prefix)
            )
        )


# -- official ------------------------------------------------------------------------------


def test_an_official_reads_the_dashboard_and_downloads_the_league(chromium, demo):
    grids = count_areas(demo, "grid", DEMO_COUNTY)
    with signed_in(chromium, demo, OFFICIAL, "/dashboard") as page:
        page.wait_for_function(LAYERS_READY)
        assert overlay_names(page) == DASHBOARD_LAYERS
        assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
        # The layers off at first fetch their grids when switched on.
        for name in ("事件数与发生率", "时空热点趋势"):
            page.locator(".leaflet-control-layers-overlays label", has_text=name).click()
            page.wait_for_function(LAYERS_READY)
        status = page.evaluate("() => window.geogridLayers")
        assert status["failed"] == 0
        assert status["layers"] == {name: grids for name in DASHBOARD_LAYERS[1:]}
        legends = {
            text.split("\n", 1)[0]: text
            for text in page.locator(".geogrid-layer-legend:visible").all_inner_texts()
        }
        assert sorted(legends) == sorted(["事件热力图", "每平方公里事件数", *DASHBOARD_LAYERS[2:]])
        gi_star = legends["热点与冷点 (Gi*)"]
        assert all(f"热点 {level} 置信" in gi_star for level in CONFIDENCE_BINS)
        assert all(f"冷点 {level} 置信" in gi_star for level in CONFIDENCE_BINS)
        # Every grid falls in one confidence bin.
        assert sum(int(n) for n in re.findall(r"\((\d+)\)", gi_star)) == grids
        assert "新增热点" in legends["时空热点趋势"]

        league = page.locator("#league tbody tr")
        assert league.count() == count_areas(demo, "township", DEMO_COUNTY)
        assert league.first.locator("td").first.inner_text() == "1"
        first_unit = league.first.locator("td").nth(1).inner_text()
        overdue = re.fullmatch(r"当前超期 \((\d+)\)", page.locator("#overdue h2").inner_text())
        assert overdue, page.locator("#overdue h2").inner_text()
        listed = page.locator("#overdue tbody tr").count()
        assert 0 < listed <= int(overdue.group(1))
        screenshot(page, "official-dashboard")

        export = page.locator("a.gg-dash-export").get_attribute("href")
        response = page.request.get(f"{demo.url}{export}")
        assert response.status == 200
        assert response.headers["content-type"] == XLSX
        workbook = openpyxl.load_workbook(io.BytesIO(response.body()), read_only=True)
        cells = {str(value) for sheet in workbook for row in sheet.values for value in row if value}
        assert first_unit in cells


# -- grid worker ---------------------------------------------------------------------------

#: A grid worker works an incident of their grid from report to evaluation: each action,
#: the state it leads to, and its name in the timeline.
WORKFLOW = [
    ("accept", "accepted", "受理"),
    ("dispatch", "dispatched", "派遣"),
    ("start", "in_progress", "处置"),
    ("resolve", "resolved", "办结"),
    ("evaluate", "evaluated", "评价"),
]


def test_a_grid_worker_files_by_clicking_the_map_and_works_it_through(chromium, demo):
    [community] = demo.logins[GRID_WORKER].user.scope
    grid_code = largest_grid(demo.engine, community)
    inside = grid_shapes(demo.engine, [grid_code])[grid_code].representative_point()
    with signed_in(chromium, demo, GRID_WORKER, "/incidents/new") as page:
        page.wait_for_selector("path.leaflet-interactive")
        assert overlay_names(page) == ["可选网格"]
        grids = count_areas(demo, "grid", community)
        assert f"可选网格 ({grids})" in page.locator(".geogrid-legend").inner_text()
        click_map_at(page, inside.x, inside.y)
        assert float(page.input_value("#lon")) == pytest.approx(inside.x, abs=2e-4)
        assert float(page.input_value("#lat")) == pytest.approx(inside.y, abs=2e-4)
        page.select_option("#category", index=1)
        page.fill("#description", "楼道堆放杂物 boxes piled in the stairwell")
        screenshot(page, "grid-worker-new")

        page.click("#gg-inc-new button[type=submit]")
        page.wait_for_url(re.compile(rf"{re.escape(demo.url)}/incidents/\d+$"))
        assert grid_code in page.locator(".gg-inc-details").inner_text()
        assert "cgcs2000" in page.locator(".gg-inc-details").inner_text()
        page.wait_for_selector(".gg-inc-status .gg-inc-state-reported")
        timeline = page.locator(".gg-inc-timeline > li")
        assert timeline.count() == 1
        for steps, (action, state, word) in enumerate(WORKFLOW, start=2):
            form = page.locator(f"#action-{action}")
            if action == "resolve":
                form.locator("textarea[name=note]").fill("已清理 cleared away")
            if action == "evaluate":
                form.locator("input[name=satisfied][value=true]").check()
            form.locator("button[type=submit]").click()
            page.wait_for_selector(f".gg-inc-status .gg-inc-state-{state}")
            assert timeline.count() == steps
            assert timeline.nth(steps - 1).locator("strong").inner_text() == word
        assert page.locator("form.gg-inc-action").count() == 0  # nothing left to do
        page.wait_for_selector("path.leaflet-interactive")
        screenshot(page, "grid-worker-incident")


# -- patrol member -------------------------------------------------------------------------


def patrol_facts(demo: DemoSite) -> tuple[str, list[str], str, str]:
    """The demo member's team mark and grids; a grid only another team has, and its mark."""
    name = demo.logins[PATROL_MEMBER].user.name
    with Session(demo.engine) as session:
        team = session.scalar(
            select(PatrolTeam)
            .join(PatrolMember, PatrolMember.team_id == PatrolTeam.id)
            .where(PatrolMember.user_name == name)
        )
        own = session.scalars(
            select(PatrolAssignment.grid_code).where(PatrolAssignment.team_id == team.id)
        )
        grids = sorted(set(own))
        # Preferably a neighbour: another team of the same station.
        other_grid, other_team = session.execute(
            select(PatrolAssignment.grid_code, PatrolTeam.mark)
            .join(PatrolTeam, PatrolTeam.id == PatrolAssignment.team_id)
            .where(PatrolAssignment.grid_code.not_in(grids), PatrolAssignment.valid_to.is_(None))
            .order_by(
                (PatrolTeam.station_code == team.station_code).desc(), PatrolAssignment.grid_code
            )
            .limit(1)
        ).one()
    return team.mark, grids, other_grid, other_team


def test_a_patrol_member_uploads_a_track_and_cannot_open_another_teams_grids(
    chromium, demo, tmp_path
):
    team, grids, other_grid, other_team = patrol_facts(demo)
    walk = tmp_path / "早班巡逻.gpx"
    outline = grid_shapes(demo.engine, grids[:1])[grids[0]]
    walk.write_text(gpx_walk(outline, datetime.now(SHANGHAI) - timedelta(minutes=1)), "utf-8")
    fixes = walk.read_text("utf-8").count("<trkpt")
    refused = (f"/patrol?team={other_team}", f"/patrol/grids/{other_grid}")
    with signed_in(chromium, demo, PATROL_MEMBER, "/patrol", refused=refused) as page:
        page.wait_for_selector("path.leaflet-interactive")
        assert overlay_names(page) == ["责任网格（按班次）", "本班次巡查情况", "巡逻轨迹", "线索"]
        assert team in page.locator(".gg-side > .gg-meta").first.inner_text()
        assigned = page.locator(".gg-pt-table").first.locator("tbody td code").all_inner_texts()
        assert sorted(set(assigned)) == grids
        # The shift legend counts every grid once, whether or not a shift runs now.
        [shifts] = [
            text
            for text in page.locator(".geogrid-legend").all_text_contents()
            if text.startswith("责任网格（按班次）")
        ]
        assert sum(int(n) for n in re.findall(r"\((\d+)\)", shifts)) == len(grids)

        page.set_input_files("#gg-pt-track-file", str(walk))
        page.click("form[action='/patrol/tracks'] button[type=submit]")
        page.wait_for_selector(".gg-pt-report")
        report = page.locator(".gg-pt-report")
        title = report.locator("h2").inner_text()
        track_id = re.fullmatch(r"轨迹 (\d+)：质量报告", title).group(1)
        assert "已保存" in page.locator(".gg-pt-flash-ok").inner_text()
        facts = dict(
            zip(
                report.locator("dt").all_inner_texts(),
                report.locator("dd").all_inner_texts(),
                strict=True,
            )
        )
        assert facts["收到的定位点"] == facts["保留的定位点"] == str(fixes)
        assert "网格外的定位点" not in facts  # the walk stayed inside the grid
        assert track_id in page.locator(".gg-pt-tracks tbody").inner_text()
        page.wait_for_selector("path.leaflet-interactive")
        screenshot(page, "patrol-member")

        for path in refused:
            response = page.goto(f"{demo.url}{path}")
            assert response.status == 403
            assert page.locator("main h1").inner_text() == "无权进行此操作"
        assert other_grid in page.locator("main .gg-error").inner_text()
        screenshot(page, "patrol-forbidden")


# -- planner -------------------------------------------------------------------------------


def test_a_planner_imports_a_redrawn_file_and_compares_it(chromium, demo, tmp_path):
    grid_code = largest_grid(demo.engine, DEMO_COUNTY)
    upload = tmp_path / "重绘微网格.geojson"
    moved = redrawn_microgrids(demo.engine, grid_code, upload)
    microgrids = count_areas(demo, "microgrid", DEMO_COUNTY)
    with signed_in(chromium, demo, PLANNER, "/planner") as page:
        generations = page.locator(".gg-planner-table tbody tr")
        assert generations.count() == 1
        assert "现行" in generations.first.inner_text()
        assert "通过" in generations.first.inner_text()
        generations.first.locator("a").click()
        page.wait_for_url(f"{demo.url}/planner/generations/1")
        page.wait_for_selector(".leaflet-overlay-pane path")
        assert overlay_names(page) == ["网格", "社区/村", "街道/乡镇", "区县"]
        screenshot(page, "planner-generation")

        # A redrawn file of one grid's micro-grids goes into a draft, which validates.
        page.goto(f"{demo.url}/planner/import")
        page.set_input_files("form.gg-planner-import input[name=file]", str(upload))
        page.select_option("form.gg-planner-import select[name=level]", "microgrid")
        page.click("form.gg-planner-import button[type=submit]")
        page.wait_for_url(f"{demo.url}/planner/generations/2")
        assert "替换 2，未变 2" in page.locator(".gg-side").inner_text()
        assert "通过" in page.locator(".gg-side").inner_text()

        page.goto(f"{demo.url}/planner/compare?level=microgrid")
        maps = page.locator(".gg-planner-pair .folium-map")
        assert maps.count() == 2
        page.wait_for_function(LAYERS_READY)
        status = page.evaluate("() => window.geogridLayers")
        assert status["failed"] == 0
        assert status["layers"] == {
            "第 1 版边界 · 现行": microgrids,
            "第 2 版边界 · 草稿": microgrids,
        }
        assert page.locator("[data-change=redrawn]").inner_text() == "2"
        # The left map taken to the redrawn grid brings the right one along.
        outline = grid_shapes(demo.engine, [grid_code])[grid_code]
        west, south, east, north = outline.bounds
        right = page.evaluate(
            """(box) => {
                const [left, right] = window.geogridSynchronised;
                left.fitBounds(box, {animate: false});
                return right.getBounds().contains(box);
            }""",
            [[south, west], [north, east]],
        )
        assert right
        page.wait_for_function(LAYERS_READY)
        screenshot(page, "planner")
    with Session(demo.engine) as session:
        drawn_anew = session.scalars(select(Area.code).where(Area.generation_low == 2))
        assert sorted(drawn_anew) == sorted(moved)


# -- station officer -----------------------------------------------------------------------


def test_a_station_officer_sees_the_assignments_by_team(chromium, demo):
    with signed_in(chromium, demo, STATION_OFFICER, "/station") as page:
        page.wait_for_selector("path.leaflet-interactive")
        assert overlay_names(page)[:3] == [
            "责任网格（按巡防队）",
            "实测覆盖：网格内分钟数",
            "防范盲区（高风险、巡查不足）",
        ]
        teams = page.locator(".gg-pt-teams li").all_inner_texts()
        assert teams and all(team.strip().startswith("PA-") for team in teams)
        screenshot(page, "station")
