"""Demo patrol routes: where a member walks or rides in a shift, and what the phone records.

Pure functions, no database. In a shift the member walks (1-1.5 m/s) or rides an e-bike
(3-5 m/s, most police auxiliaries and every taxi driver) from point to point inside the
shift's grids, 2-4 points in each grid in turn, round and round, pausing at one point in
five for 1-6 minutes. The phone writes a fix every 10-30 s (one interval per phone,
whole seconds) with ~4 m of GPS noise. Like real patrols, 8 % end after 10-30 minutes;
the others start up to 15 minutes late and last 60-100 % of the shift. Then, as recorded:

* 4 % of tracks have a GPS spike (one to three fixes 0.6-1.5 km off), 5 % lose the
  signal for 12-25 minutes, 2 % hold a phone left lying for 40-90 minutes (an idle spell);
* 30 % come from map apps in GCJ-02 and are declared so; the rest are WGS84.

Distances use an equirectangular approximation: within a fraction of a percent in a city.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geogrid.crs import GCJ02, WGS84, from_storage
from geogrid.trackfiles import TrackFixes

SHORT_SHARE, SPIKE_SHARE, GAP_SHARE, IDLE_SHARE = 0.08, 0.04, 0.05, 0.02
GCJ02_SHARE, CHECKIN_SHARE, PAUSE_SHARE = 0.3, 0.7, 0.2
EBIKE_SHARE = {"police": 0.8, "taxi": 1.0, "sanitation": 0.4}  # others 0.2
GPS_NOISE_M = 4.0
_POOL = 32  # points drawn inside each grid for walks to head for
_METRES_PER_DEGREE_LAT, _METRES_PER_DEGREE_LON = 110_574.0, 111_320.0  # the latter at the equator


def point_pools(grids: gpd.GeoDataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Points drawn uniformly inside each grid (rejection from its bounds), lon/lat."""
    geoms = np.asarray(grids.geometry.values, dtype=object)
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    tries = 4 * _POOL
    lon = rng.uniform(bounds[:, [0]], bounds[:, [2]], (len(geoms), tries))
    lat = rng.uniform(bounds[:, [1]], bounds[:, [3]], (len(geoms), tries))
    inside = shapely.contains_xy(geoms[:, None], lon, lat)
    pools = {}
    for k, code in enumerate(grids["code"]):
        points = np.column_stack([lon[k, inside[k]], lat[k, inside[k]]])[:_POOL]
        if len(points) == 0:  # a sliver: its representative point
            p = shapely.point_on_surface(geoms[k])
            points = np.array([[p.x, p.y]])
        pools[code] = points
    return pools


@dataclass
class Route:
    """Where the member really was at each fix (storage lon/lat, epoch seconds), check-ins.

    A check-in is (lon, lat, epoch seconds) where the member first reached a grid.
    """

    lon: np.ndarray
    lat: np.ndarray
    t: np.ndarray
    checkins: list[tuple[float, float, float]]
    faults: dict[str, bool]


def route(
    grids: list[str],
    starts_at: datetime,
    ends_at: datetime,
    kind: str,
    pools: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> Route | None:
    """A shift's patrol of ``grids`` by a team of type ``kind``; None if under 10 fixes."""
    ebike = rng.random() < EBIKE_SHARE.get(kind, 0.2)
    speed = rng.uniform(3, 5) if ebike else rng.uniform(1, 1.5)
    start, end = starts_at.timestamp() + rng.uniform(0, 900), ends_at.timestamp()
    short = rng.random() < SHORT_SHARE
    stop = min(
        end, start + (rng.uniform(600, 1800) if short else (end - start) * rng.uniform(0.6, 1))
    )
    points, owner = _waypoints(grids, pools, speed * (stop - start), rng)
    n = len(points)
    dwell = np.where(rng.random(n) < PAUSE_SHARE, rng.uniform(60, 360, n), 0.0)
    idle = n > 4 and rng.random() < IDLE_SHARE
    if idle:  # the phone left lying on a desk or a bench
        dwell[n // 3] = rng.uniform(40, 90) * 60
    along = np.concatenate([[0.0], np.cumsum(_metres(points))])
    arrive = start + np.concatenate([[0.0], np.cumsum(np.diff(along) / speed + dwell[:-1])])
    depart = arrive + dwell
    ticks = np.arange(start, min(stop, float(depart[-1])), int(rng.integers(10, 31)))
    t = np.round(ticks + rng.uniform(-2, 2, len(ticks)))  # phones write whole seconds
    if len(t) < 10:
        return None
    # Distance along the route at each fix: still while pausing, steady between waypoints.
    d = np.interp(t, np.column_stack([arrive, depart]).ravel(), np.repeat(along, 2))
    east, north = rng.normal(0, GPS_NOISE_M, (2, len(t)))
    lon, lat = moved(
        np.interp(d, along, points[:, 0]), np.interp(d, along, points[:, 1]), east, north
    )
    idle = idle and bool(arrive[n // 3] + 1800 < t[-1])  # the patrol got that far
    checkins = []
    for code in grids:
        first = np.flatnonzero(owner == code)
        if len(first) and arrive[first[0]] < t[-1] and rng.random() < CHECKIN_SHARE:
            checkins.append((*points[first[0]], float(np.round(arrive[first[0]]))))
    return Route(lon, lat, t, checkins, {"short patrols": short, "phones left lying": idle})


def recorded(
    route: Route, name: str, rng: np.random.Generator, planted: dict[str, int]
) -> TrackFixes:
    """The route as the phone uploads it: maybe a lost signal or a spike, maybe in GCJ-02."""
    lon, lat, t = route.lon.copy(), route.lat.copy(), route.t
    keep = np.ones(len(t), dtype=bool)
    faults = dict(route.faults)
    faults["signal gaps"] = t[-1] - t[0] > 2400 and rng.random() < GAP_SHARE
    if faults["signal gaps"]:
        lost = rng.uniform(t[0] + 600, t[-1] - 1800)
        keep &= (t < lost) | (t >= lost + rng.uniform(12, 25) * 60)
    faults["GPS spikes"] = len(t) > 20 and rng.random() < SPIKE_SHARE
    if faults["GPS spikes"]:
        at, k = int(rng.integers(5, len(t) - 8)), int(rng.integers(1, 4))
        angle, far = rng.uniform(0, 2 * math.pi), rng.uniform(600, 1500)
        lon[at : at + k], lat[at : at + k] = moved(
            lon[at : at + k], lat[at : at + k], far * math.cos(angle), far * math.sin(angle)
        )
    declared = GCJ02 if rng.random() < GCJ02_SHARE else WGS84
    faults["uploads in GCJ-02"] = declared is GCJ02
    for what, happened in faults.items():
        planted[what] = planted.get(what, 0) + int(happened)
    given_lon, given_lat = from_storage(lon[keep], lat[keep], declared)
    return TrackFixes(given_lon, given_lat, t[keep], declared, name=name)


def moved(lon: np.ndarray, lat: np.ndarray, east: Any, north: Any) -> tuple[np.ndarray, np.ndarray]:
    """Points moved by metres east and north (equirectangular, fine within a city)."""
    kx = _METRES_PER_DEGREE_LON * np.cos(np.radians(lat))
    return lon + east / kx, lat + north / _METRES_PER_DEGREE_LAT


def _waypoints(
    grids: list[str],
    pools: dict[str, np.ndarray],
    need_m: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Points to head for, 2-4 in each grid in turn, round and round until far enough."""
    chunks, owners = [], []
    length, last = 0.0, None
    while length < need_m:
        for code in grids:
            pool = pools[code]
            pick = pool[rng.integers(0, len(pool), int(rng.integers(2, 5)))]
            chunks.append(pick)
            owners.append(np.full(len(pick), code, dtype=object))
        lap = np.vstack(chunks[-len(grids) :] if last is None else [last, *chunks[-len(grids) :]])
        step = float(_metres(lap).sum())
        last, length = lap[-1:], length + step
        if step < 1.0:  # grids too small to walk in: stay put
            break
    return np.vstack(chunks), np.concatenate(owners)


def _metres(points: np.ndarray) -> np.ndarray:
    """Lengths of the steps between consecutive lon/lat points (equirectangular, metres)."""
    kx = _METRES_PER_DEGREE_LON * math.cos(math.radians(float(points[0, 1])))
    return np.hypot(np.diff(points[:, 0]) * kx, np.diff(points[:, 1]) * _METRES_PER_DEGREE_LAT)
