"""The comparison page in headless Chromium: a planner signs in, both maps draw and move as one."""

from __future__ import annotations

import pytest
import shapely
from conftest import TEST_PASSWORD
from factories import level_file, tiny_city
from test_web_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, server  # noqa: F401

from geogrid import boundaries, generations
from geogrid.crs import parse_coord_type
from geogrid.users import add_user
from geogrid.validate import ValidationRules

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def redrawn(db, settings, city, tmp_path) -> tuple[int, int]:
    """The tiny city with 东关's inner grid edge moved and activated: (old, new) generations."""
    grids = tiny_city().query("level == 'grid'").copy()
    grids.loc[grids["code"] == "370705001001001", "geometry"] = shapely.box(
        119.00, 36.70, 119.015, 36.72
    )
    grids.loc[grids["code"] == "370705001001002", "geometry"] = shapely.box(
        119.015, 36.70, 119.02, 36.72
    )
    rules = ValidationRules.from_settings(settings)
    result = boundaries.import_boundaries(
        db,
        level_file(tmp_path, "grid", grids),
        level="grid",
        fields=boundaries.FieldMap(code="code", name="name", households="households"),
        coord_type=parse_coord_type("cgcs2000"),
        scheme=settings.scheme,
        rules=rules,
        created_by="tests",
    )
    generations.activate(db, result.generation.id, settings.scheme, rules, activated_by="tests")
    add_user(
        db, "planner-b", "planner", scope=("370705",), password=TEST_PASSWORD, created_by="tests"
    )
    db.flush()
    return city.id, result.generation.id


@pytest.mark.parametrize("areas", ["inline", "fetched"])
def test_the_comparison_maps_draw_and_move_together(redrawn, server, monkeypatch, areas):  # noqa: F811
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from web import planner

    if areas == "fetched":
        monkeypatch.setattr(planner, "INLINE_AREAS", 1)  # through the layers endpoint
    old, new = redrawn
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 800}, locale="zh-CN")
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server}/login?next=/planner/compare?a={old}%26b={new}")
            page.fill("#name", "planner-b")
            page.fill("#password", TEST_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/planner/compare?a={old}&b={new}")
            maps = page.locator(".gg-planner-pair .folium-map")
            assert maps.count() == 2
            # Each map draws the four grids of its generation.
            if areas == "inline":
                for index in range(2):
                    drawn = maps.nth(index).locator("path.leaflet-interactive")
                    drawn.first.wait_for()
                    assert drawn.count() == 4
            else:
                page.wait_for_function("() => window.geogridLayers && window.geogridLayers.ready")
                counts = page.evaluate("() => Object.values(window.geogridLayers.layers)")
                assert counts == [4, 4]
                assert page.evaluate("() => window.geogridLayers.failed") == 0
            boxes = [maps.nth(i).bounding_box() for i in range(2)]
            assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"] + 1  # side by side
            assert boxes[0]["width"] > 300 and boxes[1]["width"] > 300
            titles = page.locator(".geogrid-map-title").all_inner_texts()
            assert titles == [f"第 {old} 版边界 · 已停用", f"第 {new} 版边界 · 现行"]

            ARTIFACTS.mkdir(exist_ok=True)
            shot = "planner-compare.png" if areas == "inline" else "planner-compare-fetched.png"
            page.screenshot(path=str(ARTIFACTS / shot), full_page=True)

            # Panning the left map moves the right one to the same place.
            left, right, zoom = page.evaluate(
                """() => {
                    const [left, right] = window.geogridSynchronised;
                    left.setView([36.705, 119.012], 16, {animate: false});
                    return [left.getCenter(), right.getCenter(), right.getZoom()];
                }"""
            )
            assert right["lat"] == pytest.approx(left["lat"]) and zoom == 16
            assert right["lng"] == pytest.approx(left["lng"])
        finally:
            browser.close()
    assert errors == []
