"""A year of incidents for the demo city: where, when and what, then how each went.

Volume: by default 15 incidents per grid a year, so about 14,800 for 奎文区 (986 grids)
and 228,000 for the whole of Weifang. The real 小红哨 platform took 1,927 resident
requests in its first period; the demo holds every channel (grid workers' patrols,
the 12345 hotline, the Safety Alliance as well as residents' whistles) over a whole
year, so it is about ten times that.

- Where: grids in proportion to their households (dedicated grids, with none, get a
  small share), plus a handful of hotspots (a market, an old compound, a night-food
  street ...): one grid in every ~120 with a focal point where 15% of all incidents
  cluster within ~60 m, mostly of one category. Points are drawn inside their grid.
  0.3% lie outside every grid, up to three kilometres out; the centre places them in
  the nearest grid within hours (those of the last hours still wait).
- When: fewer at weekends and on holidays, more in summer, peaks in the morning and
  the afternoon; grid workers report only in working hours.
- What: nine categories at different frequencies; then the workflow
  (:mod:`geogrid.demo_timeline`) and its event log, deadlines from the calendar.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed, grids and
``now`` give the same rows. The rows are written through the same bulk path as the
import (:mod:`geogrid.incident_bulk`), keyed ``demo:<seed>:<n>``, so building twice
adds nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid.bulk import grid_index
from geogrid.demo_rows import DemoIncidents, demo_rows
from geogrid.demo_timeline import DAY, HOUR, Story, play
from geogrid.generations import generation_areas, resolve_generation
from geogrid.incident_bulk import Progress, write_incidents
from geogrid.incident_deadlines import WorkingDays, deadlines_many, utc_ns
from geogrid.models import IncidentCategory
from geogrid.pointindex import GridIndex
from geogrid.settings import Settings
from geogrid.workdays import SHANGHAI, WorkCalendar, load_calendar

PER_GRID_YEAR = 15
HOTSPOT_SHARE, OUTSIDE_SHARE = 0.15, 0.003
CATEGORY_MIX = {
    "environment": 0.28, "public_facility": 0.16, "property": 0.12, "noise": 0.10,
    "dispute": 0.10, "safety_hazard": 0.08, "livelihood": 0.08, "public_order": 0.05,
    "other": 0.03,
}  # fmt: skip
HOTSPOT_THEMES = ("noise", "environment", "property", "dispute", "public_order", "safety_hazard")
CHANNEL_MIX = {"whistle": 0.45, "grid_worker": 0.30, "hotline": 0.20, "alliance": 0.05}
_HOURS = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.2, 3.0, 3.0, 2.6,
                   1.8, 1.6, 2.6, 2.8, 2.6, 2.2, 1.6, 1.4, 1.3, 1.0, 0.6, 0.4])  # fmt: skip
_WORK_HOURS = np.where((np.arange(24) >= 8) & (np.arange(24) < 18), _HOURS, 0.0)


@dataclass
class DemoIncidentsLoad:
    """What loading the demo incidents did."""

    generated: int
    inserted: int
    events: int
    breaches: int
    states: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A printable account."""
        states = ", ".join(f"{n} {state}" for state, n in self.states.items())
        timing = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        return [
            f"demo incidents: {self.inserted} of {self.generated} new ({states}), "
            f"{self.events} events, {self.breaches} escalated breaches ({timing})"
        ]


def load_demo_incidents(
    session: Session,
    settings: Settings,
    *,
    seed: int = 7,
    count: int | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> DemoIncidentsLoad:
    """Generate a year of incidents up to ``now`` in the current generation and write them."""
    started = time.perf_counter()
    now = now or datetime.now(SHANGHAI)
    generation = resolve_generation(session, None)
    level = settings.scheme.default_geocode_level
    grids = generation_areas(session, generation.id, level=level)
    index = grid_index(session, settings, generation, level)
    categories = {c.code: c for c in session.scalars(select(IncidentCategory))}
    demo = generate_incidents(
        grids, index, categories, load_calendar(session), seed=seed, now=now, count=count,
        generation=generation.id,
    )  # fmt: skip
    generated = time.perf_counter()
    written = write_incidents(
        session, demo.incidents, events=demo.events, breaches=demo.breaches, progress=progress
    )
    states = demo.incidents["state"].value_counts().to_dict()
    return DemoIncidentsLoad(
        len(demo.incidents), written.inserted, written.events, written.breaches,
        {state: int(states[state]) for state in sorted(states, key=lambda s: -states[s])},
        {"generate": generated - started, "write": time.perf_counter() - generated},
    )  # fmt: skip


def generate_incidents(
    grids: gpd.GeoDataFrame,
    index: GridIndex,
    categories: dict[str, IncidentCategory],
    calendar: WorkCalendar,
    *,
    seed: int,
    now: datetime,
    count: int | None = None,
    generation: int,
) -> DemoIncidents:
    """A year of incidents over ``grids`` up to ``now``, with events and breaches."""
    rng = np.random.default_rng(seed)
    n = count if count is not None else PER_GRID_YEAR * len(grids)
    grids = grids.sort_values("code").reset_index(drop=True)
    lon, lat, theme = _places(grids, index, n, rng)
    n = len(lon)  # fewer outside points when little land lies around the grids
    category = _categories(theme, categories, rng)
    channel = rng.choice(list(CHANNEL_MIX), n, p=list(CHANNEL_MIX.values()))
    reported = _times(calendar, now, channel == "grid_worker", rng)
    order = np.argsort(reported, kind="stable")
    lon, lat, category, channel, reported = (
        a[order] for a in (lon, lat, category, channel, reported)
    )
    placed = index.locate(lon, lat)
    grid_code, nearest = placed.grid_codes(), placed.nearest_codes()
    reporter, reporter_role = _reporters(channel, grid_code, rng)
    reported_at = pd.Series(pd.DatetimeIndex(reported.view("datetime64[ns]")).tz_localize("UTC"))
    due = deadlines_many(calendar, categories, category, reported_at)
    now_ns = int(utc_ns(pd.Series([now]))[0])
    days = WorkingDays(calendar, int((reported.min() + 8 * HOUR) // DAY), int(now_ns // DAY) + 120)
    story = Story(
        lon=lon,
        lat=lat,
        reported=reported,
        accept_due=_ns(due.accept_due_at),
        resolve_due=_ns(due.resolve_due_at),
        accept_days=np.array([categories[c].accept_days for c in category], dtype=np.int64),
        category=category,
        department=np.array([categories[c].department for c in category], dtype=object),
        grid_code=grid_code,
        nearest_code=nearest,
        channel=channel,
        reporter=reporter,
        reporter_role=reporter_role,
    )
    events = play(story, days, rng, now_ns)
    return demo_rows(story, events, placed, due, seed=seed, rng=rng, generation=generation)


def _places(grids, index: GridIndex, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points: background by households, hotspots around focal points, a few outside."""
    geoms = np.asarray(grids.geometry.values, dtype=object)
    kind = grids["kind"].to_numpy()
    weight = grids["households"].fillna(0).to_numpy(dtype=float) + np.where(
        kind == "dedicated", 60, 20
    )
    n_out = max(3, round(n * OUTSIDE_SHARE))
    n_hot = round(n * HOTSPOT_SHARE)
    n_background = n - n_out - n_hot
    picked = rng.choice(len(grids), n_background, p=weight / weight.sum())
    lon, lat = _inside(geoms, picked, rng)
    hot_count = max(3, round(len(grids) / 120))
    comprehensive = np.flatnonzero(kind == "comprehensive")
    busy = weight[comprehensive] / weight[comprehensive].sum()
    hotspots = rng.choice(comprehensive, min(hot_count, len(comprehensive)), replace=False, p=busy)
    focal_lon, focal_lat = _inside(geoms, hotspots, rng)
    share = rng.dirichlet(np.ones(len(hotspots)) * 2)
    which = rng.choice(len(hotspots), n_hot, p=share)
    hot_lon, hot_lat = _near(geoms[hotspots[which]], focal_lon[which], focal_lat[which], rng)
    out_lon, out_lat = _outside(geoms, index, n_out, rng)
    themes = np.array(HOTSPOT_THEMES * (len(hotspots) // len(HOTSPOT_THEMES) + 1))[: len(hotspots)]
    theme = np.concatenate([np.full(n_background, None), themes[which], np.full(n_out, None)])
    return np.concatenate([lon, hot_lon, out_lon]), np.concatenate([lat, hot_lat, out_lat]), theme


def _inside(geoms: np.ndarray, picked: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """One point uniformly inside each picked grid (drawn in its box until it falls inside)."""
    bounds = shapely.bounds(geoms[picked])
    lon, lat = np.empty(len(picked)), np.empty(len(picked))
    todo = np.arange(len(picked))
    while len(todo):
        b = bounds[todo]
        x, y = rng.uniform(b[:, 0], b[:, 2]), rng.uniform(b[:, 1], b[:, 3])
        hit = shapely.contains_xy(geoms[picked[todo]], x, y)
        lon[todo[hit]], lat[todo[hit]] = x[hit], y[hit]
        todo = todo[~hit]
    return lon, lat


def _near(
    geoms: np.ndarray, lon0: np.ndarray, lat0: np.ndarray, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Points about 60 m around focal points, each inside its hotspot grid."""
    lon, lat = np.empty(len(geoms)), np.empty(len(geoms))
    todo = np.arange(len(geoms))
    spread = 60 / 111_000
    while len(todo):
        x = lon0[todo] + rng.normal(0, spread / np.cos(np.radians(lat0[todo])), len(todo))
        y = lat0[todo] + rng.normal(0, spread, len(todo))
        hit = shapely.contains_xy(geoms[todo], x, y)
        lon[todo[hit]], lat[todo[hit]] = x[hit], y[hit]
        todo = todo[~hit]
    return lon, lat


def _outside(geoms: np.ndarray, index: GridIndex, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Points outside every grid, up to about three kilometres out."""
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    margin = 0.03
    found_lon, found_lat = [], []
    for _ in range(200):
        x = rng.uniform(x0 - margin, x1 + margin, 20 * n)
        y = rng.uniform(y0 - margin, y1 + margin, 20 * n)
        placed = index.locate(x, y)
        keep = (placed.status == 3) & (placed.nearest_distance_m < 3000)
        found_lon.append(x[keep])
        found_lat.append(y[keep])
        if sum(map(len, found_lon)) >= n:
            break
    return np.concatenate(found_lon)[:n], np.concatenate(found_lat)[:n]


def _categories(theme: np.ndarray, categories, rng) -> np.ndarray:
    mix = {code: share for code, share in CATEGORY_MIX.items() if code in categories}
    codes = np.array(list(mix), dtype=object)
    drawn = rng.choice(codes, len(theme), p=np.array(list(mix.values())) / sum(mix.values()))
    themed = pd.notna(theme) & (rng.random(len(theme)) < 0.6) & np.isin(theme, codes)
    return np.where(themed, theme, drawn).astype(object)


def _times(calendar: WorkCalendar, now: datetime, worker: np.ndarray, rng) -> np.ndarray:
    """Report times (UTC ns) over the 365 days before ``now``: a weekly and daily rhythm."""
    local_now = now.astimezone(SHANGHAI)
    first = local_now.date() - timedelta(days=365)
    days = [first + timedelta(days=k) for k in range(366)]
    weight = np.array([_day_weight(calendar, day) for day in days])
    picked = rng.choice(len(days), len(worker), p=weight / weight.sum())
    hours = np.where(
        worker,
        rng.choice(24, len(worker), p=_WORK_HOURS / _WORK_HOURS.sum()),
        rng.choice(24, len(worker), p=_HOURS / _HOURS.sum()),
    )
    seconds = rng.integers(0, 3600, len(worker))
    start = pd.Timestamp(first).tz_localize(SHANGHAI).value
    moment = start + picked * DAY + hours * HOUR + seconds * 10**9
    limit = pd.Timestamp(local_now).value - 60 * 10**9
    # Today's reports are only those already made: later ones go back a week.
    return np.where(moment > limit, moment - 7 * DAY, moment).astype(np.int64)


def _day_weight(calendar: WorkCalendar, day: date) -> float:
    summer = 1 + 0.15 * np.sin(2 * np.pi * (day.timetuple().tm_yday - 110) / 365)
    covered = day.year in calendar.covered_years()
    working = calendar.is_workday(day) if covered else day.weekday() < 5
    if working:
        return summer
    return summer * (0.55 if day.weekday() >= 5 else 0.45)


def _reporters(channel: np.ndarray, grid_code: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    residents = np.char.mod("居民%04d", rng.integers(0, 10_000, len(channel))).astype(object)
    patrol = np.char.mod("平安联盟队员%03d", rng.integers(0, 500, len(channel))).astype(object)
    worker = np.array([f"网格员-{g}" if isinstance(g, str) else "网格员" for g in grid_code])
    names = np.select(
        [channel == "grid_worker", channel == "alliance"], [worker, patrol], residents
    )
    roles = np.select(
        [channel == "grid_worker", channel == "alliance"],
        ["grid_worker", "patrol_member"],
        "resident",
    )
    return names.astype(object), roles.astype(object)


def _ns(instants: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(instants).as_unit("ns").asi8.copy()
