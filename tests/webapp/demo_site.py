"""The demo city served for end-to-end tests, and what a test needs to drive it in Chromium.

The demo is built by the real command (``geogrid demo build --commit``) into a throw-away
database, its demo users are made by :mod:`geogrid.demo_users` and committed, and the app
runs on a real WSGI server on a loopback port. A :class:`Watch` records what a page asks
for and what goes wrong in it, so a test can fail on any request to another site, any
script error, console error or HTTP error other than a refusal the test asked for.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import shapely
import shapely.affinity
from click.testing import CliRunner
from flask import Flask
from geoalchemy2.shape import to_shape
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from geogrid.boundaries import export_areas
from geogrid.cli import main
from geogrid.crs import parse_coord_type
from geogrid.demo_users import DemoLogin, ensure_demo_users, plan_demo_users
from geogrid.generations import current_generation
from geogrid.models import Area
from geogrid.workdays import SHANGHAI

#: Finds the page's Folium map (``map_<hex>``), the way Folium names it.
FOLIUM_MAP = 'window[Object.keys(window).find((k) => k.startsWith("map_"))]'


@dataclass(frozen=True)
class DemoSite:
    """The served demo: its address, its database, and the demo sign-ins by role."""

    url: str
    engine: Engine
    logins: dict[str, DemoLogin]


def build_demo(database_url: str, *options: str) -> float:
    """Build the demo city with the real CLI into ``database_url``; seconds it took."""
    started = time.perf_counter()
    result = CliRunner().invoke(
        main,
        ["demo", "build", "--commit", *options],
        env={"GEOGRID_DATABASE_URL": database_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return time.perf_counter() - started


def create_demo_users(engine: Engine) -> dict[str, DemoLogin]:
    """One demo user per role with a fresh password, committed; by role."""
    with Session(engine) as session:
        logins = ensure_demo_users(session, plan_demo_users(session), created_by="e2e-tests")
        session.commit()
    return {login.user.role: login for login in logins}


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a threaded WSGI server on a free loopback port; yields its origin."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@dataclass
class Watch:
    """What one page asked for and what went wrong in it (refusals the test expects aside)."""

    origin: str
    #: Paths (with query) the test opens expecting a 403.
    refused: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        """Listen to the page's requests, responses, script errors and console."""
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("response", self._response)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)

    def elsewhere(self) -> list[str]:
        """Requests to any other origin (data: URLs are inline, not a request anywhere)."""
        mine = urlsplit(self.origin)[:2]
        return [
            url
            for url in self.requests
            if not url.startswith(("data:", "blob:")) and urlsplit(url)[:2] != mine
        ]

    def expected(self, url: str) -> bool:
        """Whether ``url`` is one the test opens to be refused."""
        parts = urlsplit(url)
        return (parts.path + (f"?{parts.query}" if parts.query else "")) in self.refused

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not (response.status == 403 and self.expected(response.url)):
            self.problems.append(f"HTTP {response.status} {response.url}")

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        # Chromium logs the 403 of a page opened to be refused as a failed load.
        if self.expected(message.location.get("url", "")) and "403" in message.text:
            return
        self.problems.append(f"console: {message.text}")


def sign_in(page: Any, site: DemoSite, role: str, target: str) -> None:
    """Sign in as the role's demo user through the real form, landing on ``target``."""
    login = site.logins[role]
    page.goto(f"{site.url}/login?next={target.replace('&', '%26')}")
    page.fill("#name", login.user.name)
    page.fill("#password", login.password)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{site.url}{target}")


def click_map_at(page: Any, lon: float, lat: float) -> None:
    """Click the Folium map at a lon/lat, moved to the middle first (clear of its controls)."""
    point = page.evaluate(
        f"""([lat, lon]) => {{
            const map = {FOLIUM_MAP};
            map.setView([lat, lon], map.getZoom(), {{animate: false}});
            return map.latLngToContainerPoint([lat, lon]);
        }}""",
        [lat, lon],
    )
    box = page.locator(".folium-map").first.bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def overlay_names(page: Any) -> list[str]:
    """The overlay names of the map's layer control, top to bottom."""
    labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    return [name.strip() for name in labels]


def grid_shapes(engine: Engine, codes: list[str]) -> dict[str, shapely.Geometry]:
    """Outlines (lon/lat) of grids of the current generation, by code."""
    with Session(engine) as session:
        generation = current_generation(session)
        rows = session.execute(
            select(Area.code, Area.geom).where(
                Area.valid_in(generation.id), Area.level == "grid", Area.code.in_(codes)
            )
        )
        return {code: to_shape(geom) for code, geom in rows}


def largest_grid(engine: Engine, prefix: str) -> str:
    """The code of the largest grid under ``prefix`` (the easiest to hit with a click)."""
    with Session(engine) as session:
        generation = current_generation(session)
        return session.scalar(
            select(Area.code)
            .where(
                Area.valid_in(generation.id),
                Area.level == "grid",
                Area.code.startswith(prefix, autoescape=True),
            )
            .order_by(func.ST_Area(Area.geom).desc(), Area.code)
            .limit(1)
        )


def gpx_walk(outline: shapely.Geometry, end: datetime) -> str:
    """A GPX walk at 1.2 m/s along the inside of a grid's edge, ending at ``end``.

    It starts no earlier than midnight (Shanghai) of ``end``'s day, so the track is today's.
    """
    inside = outline.buffer(-0.0001)  # ~10 m in from the edge
    part = max(getattr(inside, "geoms", [inside]), key=lambda polygon: polygon.area)
    # Metres east and north, near enough over a grid, to step 12 m at a time.
    east = 111_320 * math.cos(math.radians(part.centroid.y))
    north = 110_574
    ring = shapely.affinity.scale(part.exterior, xfact=east, yfact=north, origin=(0, 0))
    fixes = int(min(ring.length, 600) // 12) + 1  # one every 12 m, i.e. every 10 s
    midnight = end.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(end - timedelta(seconds=10 * (fixes - 1)), midnight)
    points = []
    for index in range(fixes):
        where = ring.interpolate(index * 12)
        at = (start + timedelta(seconds=10 * index)).astimezone(UTC)
        points.append(
            f'<trkpt lat="{where.y / north:.7f}" lon="{where.x / east:.7f}">'
            f"<time>{at:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gpx version="1.1" creator="geogrid e2e tests" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>e2e</name><trkseg>{''.join(points)}</trkseg></trk></gpx>"
    )


def redrawn_microgrids(engine: Engine, grid_code: str, path: Path) -> tuple[str, str]:
    """Write a grid's micro-grids with the edge between two of them bent; the two codes.

    The longest straight edge two micro-grids share gets a new middle vertex inside the
    second, so the first gains a thin triangle the second loses. The edge's ends stay
    where they are, so nothing else changes and the redraw validates. The file is
    geogrid's own export of the micro-grids, redrawn, as a planner would send it back.
    """
    with Session(engine) as session:
        # As a planner would: export the micro-grids, redraw, import the file again.
        export_areas(
            session,
            path,
            level="microgrid",
            fmt="geojson",
            coord_type=parse_coord_type("cgcs2000"),
            within=grid_code,
        )
    micro = gpd.read_file(path)
    shapes = dict(zip(micro["code"], micro.geometry, strict=True))
    first, second, start, end = max(
        (
            (a, b, p, q)
            for a in shapes
            for b in shapes
            if a != b
            for p, q in _edges(shapes[a])
            if (q, p) in set(_edges(shapes[b]))
        ),
        key=lambda edge: math.dist(edge[2], edge[3]),
    )
    # The new vertex: off the edge's middle, square to it, into the second micro-grid;
    # a fifth of the edge's length, or less where the second is narrow.
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    across = (start[1] - end[1], end[0] - start[0])
    notch = None
    for share in (0.2, 0.1, 0.05, -0.2, -0.1, -0.05):
        bend = (middle[0] + share * across[0], middle[1] + share * across[1])
        candidate = shapely.Polygon([start, bend, end])
        if shapes[second].contains(candidate):
            notch = candidate
            break
    assert notch is not None, f"no room to bend the edge between {first} and {second}"
    shapes[first] = shapely.union(shapes[first], notch)
    shapes[second] = shapely.difference(shapes[second], notch)
    micro = micro.set_geometry([shapes[code] for code in micro["code"]], crs=micro.crs)
    path.unlink()
    micro.to_file(path, driver="GeoJSON")
    return first, second


def _edges(outline: shapely.Geometry) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The straight edges of a polygon's outer rings, as (start, end) vertex pairs."""
    edges = []
    for polygon in getattr(outline, "geoms", [outline]):
        ring = list(polygon.exterior.coords)
        edges += list(zip(ring[:-1], ring[1:], strict=True))
    return edges
