"""The whole Weifang-scale city on one map page in headless Chromium, against naive Folium.

geogrid's page is ``/grids`` with no area, served by ``geogrid serve`` on the demo city
(``geogrid_bench_web``, shared with benchmarks/webload.py): the page carries no geometry;
its layers fetch their outlines simplified for the zoom, the 2,302 communities whole,
the 15,209 grids and 56,964 micro-grids only once the map is zoomed in far enough. The
naive page is what Folium does by default: all 15,209 grid polygons, as stored, inlined
into the HTML through ``folium.GeoJson`` with a code-and-name tooltip (Leaflet from the
same server, so both pages load the same scripts).

Measured per visit, in a fresh browser context with the cache off: the time from the
start of navigation to the map being drawn (geogrid: every fetched layer drawn, the
``geogrid:layers-ready`` event; naive: the load event and two animation frames, when
Leaflet has drawn the inlined features), and every byte the browser received (CDP
``Network.loadingFinished`` ``encodedDataLength``: bodies as sent, gzipped or not, plus
headers). The first geogrid visit after the server starts is reported apart: it comes
while the workers are still simplifying outlines and building the point index (and
it has the overview's outlines made on demand); the others come once they are done.
Also: how long drawing the grids takes after zooming in to zoom 13 in the city's middle.
"""

from __future__ import annotations

import functools
import http.server
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import folium
from sqlalchemy.orm import Session

from benchmarks.common import OUT, free_port, report
from benchmarks.webload import (
    PASSWORD,
    USER,
    bench_token,
    load_average,
    served,
    wait_until_warm,
    web_city,
)
from geogrid import db, generations
from geogrid.maps import offline
from geogrid.users import revoke_token

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
ROUNDS = 5
#: The floors of issue 5.
FLOOR_SECONDS = 3.0
FLOOR_BYTES = 5 * 1024 * 1024
#: Set by the pages when the map is drawn (see the module docstring).
_READY_SCRIPT = """
window.__mapReadyAt = null;
document.addEventListener("geogrid:layers-ready", () => {
  if (window.__mapReadyAt === null) { window.__mapReadyAt = performance.now(); }
});
window.addEventListener("load", () => {
  if (window.GeogridAreas) { return; }
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.__mapReadyAt = performance.now();
  }));
});
"""


def run(rounds: int = ROUNDS) -> dict[str, Any]:
    """Time both pages and count their bytes; write benchmarks/out/mappage.json."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit("Chromium is missing: run scripts/setup --browser")
    settings = web_city()
    with Session(db.make_engine(settings)) as session:
        generation = generations.current_generation(session)
        token = bench_token(session)  # makes sure the user and its password exist
        grids = generations.generation_areas(session, generation.id, level="grid")
        session.commit()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    OUT.mkdir(exist_ok=True)
    figures: dict[str, Any] = {"grids": len(grids), "rounds": rounds}
    figures["load_average_before"] = load_average()
    with (
        tempfile.TemporaryDirectory() as folder,
        (OUT / "mappage-server.log").open("w") as log,
        served(settings, port, log, warm=False),
    ):
        naive_url = _naive_page(grids, Path(folder), base)
        with _static_server(Path(folder)) as static_base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                signed_in = _sign_in(browser, base)
                # The first visitor finds the server still preparing its maps.
                first = _visit(browser, f"{base}/grids", signed_in)
                warming = time.perf_counter()
                wait_until_warm(OUT / "mappage-server.log", settings.workers)
                figures["server_warm_up_s"] = round(time.perf_counter() - warming, 1)
                visits = [_visit(browser, f"{base}/grids", signed_in) for _ in range(rounds)]
                figures["geogrid"] = _summary(visits)
                figures["geogrid"]["first_visit_after_start"] = first
                figures["geogrid"]["zoom_to_grids"] = _zoom_in(browser, f"{base}/grids", signed_in)
                naive = [_visit(browser, static_base + naive_url, None) for _ in range(rounds)]
                figures["naive_folium"] = _summary(naive)
            finally:
                browser.close()
    with Session(db.make_engine(settings)) as session:
        revoke_token(session, token)
        session.commit()
    ours, theirs = figures["geogrid"], figures["naive_folium"]
    figures["speed_up"] = round(theirs["ready_s"]["median"] / ours["ready_s"]["median"], 1)
    figures["bytes_ratio"] = round(theirs["bytes"]["median"] / ours["bytes"]["median"], 1)
    figures["meets_floor"] = (
        ours["ready_s"]["max"] < FLOOR_SECONDS and ours["bytes"]["max"] < FLOOR_BYTES
    )
    figures["load_average_after"] = load_average()
    report("mappage", figures)
    return figures


def _naive_page(grids: Any, folder: Path, base: str) -> str:
    """Every grid inlined as Folium does by default; Leaflet from geogrid's server."""
    from web import create_app
    from web.vendor import asset_url

    m = folium.Map(tiles=None, prefer_canvas=False)
    folium.GeoJson(
        grids[["code", "name", "geometry"]],
        name="grids",
        tooltip=folium.GeoJsonTooltip(fields=["code", "name"]),
    ).add_to(m)
    west, south, east, north = grids.total_bounds
    m.fit_bounds([[south, west], [north, east]])
    app = create_app(web_city())
    with app.test_request_context():
        offline(m, lambda path: base + asset_url(path))
    html = m.get_root().render()
    (folder / "naive.html").write_text(html, encoding="utf-8")
    print(f"  naive page: {len(html.encode()) / 1e6:.1f} MB of HTML", flush=True)
    return "/naive.html"


@contextmanager
def _static_server(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


def _sign_in(browser: Any, base: str) -> dict[str, Any]:
    """The benchmark user's signed-in browser state (cookies), for fresh contexts."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#name", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    state = context.storage_state()
    context.close()
    return state


def _visit(browser: Any, url: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """One visit with a cold browser cache: time to the map drawn, bytes received."""
    context = browser.new_context(storage_state=state, viewport=VIEWPORT, locale="zh-CN")
    try:
        page = context.new_page()
        received = _count_bytes(context, page)
        page.add_init_script(_READY_SCRIPT)
        started = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=180_000)
        page.wait_for_function("() => window.__mapReadyAt !== null", timeout=180_000, polling=50)
        wall = time.perf_counter() - started
        ready_ms = page.evaluate("() => window.__mapReadyAt")
        page.wait_for_load_state("networkidle")
        layers = page.evaluate("() => window.geogridLayers ? window.geogridLayers.layers : null")
        failed = page.evaluate("() => window.geogridLayers ? window.geogridLayers.failed : 0")
        return {
            "ready_s": round(ready_ms / 1000, 3),
            "wall_s": round(wall, 3),
            "bytes": received["bytes"],
            "requests": received["requests"],
            "features_drawn": layers,
            "failed_fetches": failed,
        }
    finally:
        context.close()


def _zoom_in(browser: Any, url: str, state: dict[str, Any]) -> dict[str, Any]:
    """After the overview: zoom to 13 in the city's middle and time the grids' drawing."""
    context = browser.new_context(storage_state=state, viewport=VIEWPORT, locale="zh-CN")
    try:
        page = context.new_page()
        received = _count_bytes(context, page)
        page.goto(url)
        page.wait_for_function("() => window.geogridLayers && window.geogridLayers.ready")
        before = received["bytes"]
        elapsed_ms = page.evaluate(
            """() => new Promise((resolve) => {
                const map = window[Object.keys(window).find((k) => k.startsWith("map_"))];
                const started = performance.now();
                document.addEventListener("geogrid:layers-ready",
                    () => resolve(performance.now() - started), {once: true});
                window.geogridLayers.ready = false;
                map.setView([36.71, 119.16], 13, {animate: false});
            })"""
        )
        page.wait_for_load_state("networkidle")
        return {
            "ready_s": round(elapsed_ms / 1000, 3),
            "bytes": received["bytes"] - before,
            "features_drawn": page.evaluate("() => window.geogridLayers.layers"),
        }
    finally:
        context.close()


def _count_bytes(context: Any, page: Any) -> dict[str, int]:
    received = {"bytes": 0, "requests": 0}
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    def finished(event: dict[str, Any]) -> None:
        received["bytes"] += int(event.get("encodedDataLength", 0))
        received["requests"] += 1

    cdp.on("Network.loadingFinished", finished)
    return received


def _summary(visits: list[dict[str, Any]]) -> dict[str, Any]:
    ready = [visit["ready_s"] for visit in visits]
    sizes = [visit["bytes"] for visit in visits]
    return {
        "ready_s": {
            "median": round(statistics.median(ready), 3),
            "min": min(ready),
            "max": max(ready),
        },
        "bytes": {"median": int(statistics.median(sizes)), "max": max(sizes)},
        "requests": visits[-1]["requests"],
        "features_drawn": visits[-1]["features_drawn"],
        "visits": visits,
    }
