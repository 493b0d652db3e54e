"""Bulk geocoding: many points into the grids of a generation, in memory.

The index (:class:`geogrid.pointindex.GridIndex`) is built from the generation's
areas and applies exactly the rules of :func:`geogrid.geocode.locate`; a benchmark and
a test check that both agree on every point. Indexes of non-draft generations never
change, so they are cached per database, generation, level and near-edge distance.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from geogrid.crs import check_lonlat, parse_coord_type, to_storage
from geogrid.errors import GeogridError, InputError
from geogrid.files import read_table, write_table
from geogrid.generations import generation_areas, metric_srid_of, resolve_generation
from geogrid.models import Generation
from geogrid.pointindex import GridIndex
from geogrid.settings import Settings

_CACHE_SIZE = 8
_cache: OrderedDict[tuple[Any, ...], GridIndex] = OrderedDict()
_cache_lock = threading.Lock()


def grid_index(
    session: Session, settings: Settings, generation: Generation, level: str
) -> GridIndex:
    """The in-memory index of a level of a generation (cached unless it is a draft)."""
    key = (str(session.get_bind().engine.url), generation.id, level, settings.near_edge_m)
    cacheable = generation.status != "draft"
    with _cache_lock:
        if cacheable and key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    areas = generation_areas(session, generation.id, level=level)
    if areas.empty:
        raise InputError(f"generation {generation.id} has no {level} areas", field="level")
    index = GridIndex.build(
        list(areas["code"]),
        np.asarray(areas.geometry.values, dtype=object),
        metric_epsg=metric_srid_of(session, generation),
        near_m=settings.near_edge_m,
    )
    if cacheable:
        with _cache_lock:
            _cache[key] = index
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return index


def place_points(
    session: Session,
    settings: Settings,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    level: str | None = None,
    generation: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Place storage-CRS points; one row per point: grid_code, status, candidates, nearest."""
    level = level or settings.scheme.default_geocode_level
    settings.scheme.level(level)
    gen = resolve_generation(session, generation)
    index = grid_index(session, settings, gen, level)
    placement = index.locate(
        np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), progress=progress
    )
    frame = placement.to_frame()
    frame.insert(1, "generation", gen.id)
    return frame


@dataclass
class GeocodeSummary:
    """What a file geocoding did."""

    rows: int
    out: Path
    statuses: dict[str, int]
    unreadable: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A printable account, every unreadable row with its line number."""
        counts = ", ".join(f"{n} {status}" for status, n in self.statuses.items())
        lines = [f"geocoded {self.rows} rows into {self.out}: {counts}"]
        lines += [f"  line {line}: {message}" for line, message in self.unreadable]
        return lines


def geocode_file(
    session: Session,
    settings: Settings,
    source: Path,
    out: Path,
    *,
    lon_field: str,
    lat_field: str,
    crs: str,
    level: str | None = None,
    generation: int | None = None,
    method: str = "index",
    progress: bool = False,
) -> GeocodeSummary:
    """Add grid_code, generation, status and candidates to every row; no row is dropped."""
    coord_type = parse_coord_type(crs)
    table = read_table(source, progress=progress)
    frame = table.frame
    for name in (lon_field, lat_field):
        if name not in frame.columns:
            raise InputError(f"{source.name} has no column {name!r}", field=name)
    lon, lat, errors = _coordinates(frame, lon_field, lat_field, table.lines)
    ok = ~np.isnan(lon)
    storage_lon, storage_lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    if ok.any():
        storage_lon[ok], storage_lat[ok] = to_storage(lon[ok], lat[ok], coord_type)
    placed = _place(
        session, settings, storage_lon[ok], storage_lat[ok], level, generation, method, progress
    )
    result = _merge(frame, placed, ok, errors, table.lines)
    result = _with_unreadable_rows(result, table.problems, errors)
    write_table(result, out)
    statuses = result["status"].value_counts().to_dict()
    return GeocodeSummary(len(result), out, statuses, sorted(errors.items()))


def _with_unreadable_rows(
    result: pd.DataFrame, problems: list, errors: dict[int, str]
) -> pd.DataFrame:
    """Rows the reader could not split into fields stay in the output, marked, in their place."""
    if not problems:
        return result
    for problem in problems:
        errors[problem.record] = problem.message
    lines = [problem.record for problem in problems]
    blank = pd.DataFrame(
        {"status": "unreadable", "error": [problem.message for problem in problems]},
        index=pd.Index(lines, name=result.index.name),
    )
    return pd.concat([result, blank]).sort_index(kind="stable")


def _coordinates(
    frame: pd.DataFrame, lon_field: str, lat_field: str, lines: list[int]
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    lon = pd.to_numeric(frame[lon_field], errors="coerce").to_numpy(dtype=float, copy=True)
    lat = pd.to_numeric(frame[lat_field], errors="coerce").to_numpy(dtype=float, copy=True)
    errors: dict[int, str] = {}
    for position in np.flatnonzero(np.isnan(lon) | np.isnan(lat)):
        bad = lon_field if np.isnan(lon[position]) else lat_field
        errors[lines[position]] = f"{bad} {frame[bad].iloc[position]!r} is not a number"
    for position in np.flatnonzero(~(np.isnan(lon) | np.isnan(lat))):
        try:
            check_lonlat(lon[position], lat[position], lon_field=lon_field, lat_field=lat_field)
        except GeogridError as exc:
            errors[lines[position]] = exc.message
    bad_rows = np.array([line in errors for line in lines], dtype=bool)
    lon[bad_rows] = np.nan
    lat[bad_rows] = np.nan
    return lon, lat, errors


def _place(session, settings, lon, lat, level, generation, method, progress) -> pd.DataFrame:
    if method == "index":
        return place_points(
            session, settings, lon, lat, level=level, generation=generation, progress=progress
        )
    from geogrid.geocode import locate

    rows = []
    for x, y in zip(lon, lat, strict=True):
        location = locate(
            session, settings, float(x), float(y), "cgcs2000", level=level, generation=generation
        )
        rows.append(
            {
                "grid_code": location.grid_code,
                "generation": location.generation,
                "status": location.status,
                "candidates": ";".join(location.candidates),
                "nearest_code": (location.nearest or {}).get("code"),
                "nearest_distance_m": (location.nearest or {}).get("distance_m"),
                "swapped_code": location.swapped_code,
            }
        )
    return pd.DataFrame(rows)


def _merge(
    frame: pd.DataFrame,
    placed: pd.DataFrame,
    ok: np.ndarray,
    errors: dict[int, str],
    lines: list[int],
) -> pd.DataFrame:
    result = frame.copy()
    columns = [
        "grid_code",
        "generation",
        "status",
        "candidates",
        "nearest_code",
        "nearest_distance_m",
        "swapped_code",
    ]
    for column in columns:
        values = np.full(len(frame), None, dtype=object)
        values[ok] = placed[column].to_numpy(dtype=object)
        result[column] = values
    result.loc[~ok, "status"] = "unreadable"
    result["error"] = [errors.get(line, "") for line in lines]
    return result
