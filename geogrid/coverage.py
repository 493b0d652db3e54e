"""Patrol coverage, measured: per grid and shift, per team, and the dose hot grids got.

Definitions (all per *grid-shift*: one team's shift on one grid, as
:func:`geogrid.assignments.shifts_for` lists them, measured from that team's tracks
within the shift's window):

* **minutes inside** — time inside the grid (closed polygon, so the boundary street
  counts), with each leg between two fixes split where it crosses the boundary and its
  time shared by length (:mod:`geogrid.coverage_time`). Overlapping tracks of two
  members count once.
* **visit** — a spell inside, entry to exit. Spells less than ``merge_gap_s`` (60 s)
  apart are one visit (a walk along the boundary street weaving in and out is one
  visit); a visit shorter than ``min_dwell_s`` (2 minutes: passing through) is none.
* **longest gap** — the longest time without a visit: from the shift's start to the first
  visit, between visits, and from the last visit to the shift's end; the whole shift
  when there was no visit.
* **reach share** — the share of the grid's area within ``reach_m`` (50 m) of the
  team's track in the shift (:mod:`geogrid.coverage_reach`).
* **hours on patrol** (per team) — the time its tracks ran within its shifts' windows
  (the union: two members out together count once); **grids visited** — assigned grids
  with at least one visit, against the grids assigned.
* **dosage** — the hot-spot policing finding that short, unpredictable stops deter
  crime beyond the stop itself, best at about 10 to 15 minutes, with diminishing returns
  after that (Koper, "Just enough police presence", Justice Quarterly 12(4), 1995; put
  into practice by Telep, Mitchell and Weisburd in Sacramento, Justice Quarterly 31(5),
  2014, with 15-minute visits about every two hours). By default a grid-shift meets the
  target when it had at least one visit of 10 minutes or more and no more than two hours
  passed without one (shift start and end included). :class:`DosageTarget` configures it.

The analysis is pure (:func:`measure_coverage`, over arrays and frames in metres);
:func:`coverage_for_day` reads the shifts, grids and tracks of a day and calls it.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid import assignments, tracks
from geogrid.alliance_values import patrol_level
from geogrid.coverage_dosage import DosageTarget, dosage_rows, gap_minutes, team_rows
from geogrid.coverage_pieces import merge_intervals, shift_pieces
from geogrid.coverage_reach import reach_shares
from geogrid.coverage_time import Edges, inside_spells
from geogrid.crs import geometry_to_metric, to_metric
from geogrid.errors import InputError
from geogrid.generations import metric_srid_of, resolve_generation
from geogrid.models import Area
from geogrid.settings import Settings
from geogrid.shapes import frame_from_rows, wkb_column
from geogrid.workdays import SHANGHAI

__all__ = ["CoverageResult", "DosageTarget", "coverage_for_day", "measure_coverage"]

SHIFT_COLUMNS = [
    "team_id",
    "team_mark",
    "grid_code",
    "assignment_id",
    "starts_at",
    "ends_at",
    "tracks",
    "minutes_inside",
    "visits",
    "longest_gap_min",
    "first_visit_at",
    "last_visit_at",
    "reach_share",
]


@dataclass
class CoverageResult:
    """Coverage of a day: per grid-shift, per team, dosage rows and the visits themselves."""

    shifts: pd.DataFrame
    teams: pd.DataFrame
    dosage: pd.DataFrame
    visits: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: parameters and every table as a list of records."""
        return {
            "parameters": json_ready(self.parameters),
            "shifts": table_records(self.shifts),
            "teams": table_records(self.teams),
            "dosage": table_records(self.dosage),
            "visits": table_records(self.visits),
        }

    def lines(self) -> list[str]:
        """A printable summary."""
        shifts, dosage = self.shifts, self.dosage
        visited = int((shifts["visits"] > 0).sum()) if len(shifts) else 0
        lines = [
            f"{len(shifts)} grid-shifts of {len(self.teams)} teams: {visited} visited, "
            f"{len(shifts) - visited} not visited; {len(self.visits)} visits",
        ]
        if len(shifts):
            line = f"minutes inside {shifts['minutes_inside'].sum():.0f}"
            reach = shifts["reach_share"].mean()
            if not pd.isna(reach):
                line += f", mean share within {self.parameters['reach_m']:g} m {reach:.1%}"
            lines.append(line)
        if len(dosage):
            met = int(dosage["met"].sum())
            lines.append(f"dosage target met in {met} of {len(dosage)} grid-shifts")
        return lines


def measure_coverage(
    fixes: pd.DataFrame,
    grids: gpd.GeoDataFrame,
    shifts: pd.DataFrame,
    *,
    reach_m: float | None = 50.0,
    min_dwell_s: float = 120.0,
    merge_gap_s: float = 60.0,
    target: DosageTarget | None = None,
    hot_grids: Collection[str] | None = None,
    workers: int | None = None,
) -> CoverageResult:
    """Coverage of ``shifts`` by the teams' ``fixes`` in ``grids`` (all in metres).

    ``fixes``: track_id, team_id, x, y, t (epoch seconds), each track's fixes together
    in time order. ``grids``: grid_code and polygons. ``shifts``: team_id, grid_code,
    starts_at, ends_at (aware datetimes), other columns kept. Dosage rows are made for the
    grid-shifts of ``hot_grids`` (every grid-shift when None). ``reach_m`` None leaves
    the reach out (it is most of the work).
    """
    _check(reach_m=reach_m, min_dwell_s=min_dwell_s, merge_gap_s=merge_gap_s)
    target = target or DosageTarget()
    rows = shifts.reset_index(drop=True).copy()
    rows["_from"] = _epoch(rows["starts_at"])
    rows["_to"] = _epoch(rows["ends_at"])
    polygon_of = {code: i for i, code in enumerate(grids["grid_code"])}
    rows["_polygon"] = [polygon_of.get(code, -1) for code in rows["grid_code"]]
    pieces, pair_row, pair_piece, piece_team = shift_pieces(fixes, rows)
    known = rows["_polygon"].to_numpy()[pair_row] >= 0
    pair_row, pair_piece = pair_row[known], pair_piece[known]
    polygons = np.asarray(grids.geometry.values, dtype=object)
    row_polygon = rows["_polygon"].to_numpy()
    # The reach (GEOS, on its own threads) and the time inside (numpy, here) at once.
    with ThreadPoolExecutor(1) as background:
        reach = background.submit(
            _reach_or_none,
            pieces,
            polygons,
            pair_row,
            pair_piece,
            np.maximum(row_polygon, 0),
            reach_m=reach_m,
            workers=workers,
        )
        inside = inside_spells(pieces, Edges.of(polygons), pair_piece, row_polygon[pair_row])
        shares = reach.result()
    spell_row = pair_row[inside.spells["pair"].to_numpy()]
    starts, ends = inside.spells["starts"].to_numpy(), inside.spells["ends"].to_numpy()
    union = merge_intervals(spell_row, starts, ends)
    merged = merge_intervals(spell_row, starts, ends, gap=merge_gap_s)
    visits = merged[merged["ends"] - merged["starts"] >= min_dwell_s].reset_index(drop=True)
    table = _shift_table(rows, union, visits, shares, pair_row)
    visit_table = _visit_table(rows, visits)
    team_table = team_rows(table, pieces, piece_team)
    hot = table if hot_grids is None else table[table["grid_code"].isin(set(hot_grids))]
    parameters = {
        "reach_m": reach_m,
        "min_dwell_s": min_dwell_s,
        "merge_gap_s": merge_gap_s,
        "target": asdict(target),
    }
    return CoverageResult(
        table, team_table, dosage_rows(hot, visit_table, target), visit_table, parameters
    )


def coverage_for_day(
    session: Session,
    settings: Settings,
    *,
    day: date,
    station_code: str | None = None,
    reach_m: float | None = 50.0,
    min_dwell_s: float = 120.0,
    merge_gap_s: float = 60.0,
    target: DosageTarget | None = None,
    hot_grids: Collection[str] | None = None,
    workers: int | None = None,
) -> CoverageResult:
    """Coverage of the shifts starting on ``day`` (of ``station_code``'s teams, or all)."""
    _check(reach_m=reach_m, min_dwell_s=min_dwell_s, merge_gap_s=merge_gap_s)
    shift_list = assignments.shifts_for(session, day=day, station_code=station_code)
    shifts = pd.DataFrame(
        [asdict(s) for s in shift_list],
        columns=["team_id", "team_mark", "grid_code", "starts_at", "ends_at", "assignment_id"],
    )
    generation = resolve_generation(session, None)
    srid = metric_srid_of(session, generation)
    grids = read_grids(session, generation.id, sorted(set(shifts["grid_code"])), srid)
    fixes = read_fixes(session, day, shifts, srid)
    result = measure_coverage(
        fixes,
        grids,
        shifts,
        reach_m=reach_m,
        min_dwell_s=min_dwell_s,
        merge_gap_s=merge_gap_s,
        target=target,
        hot_grids=hot_grids,
        workers=workers,
    )
    result.parameters.update(
        {"day": day.isoformat(), "station_code": station_code, "generation": generation.id}
    )
    return result


def _reach_or_none(pieces, polygons, pair_row, pair_piece, row_polygon, *, reach_m, workers):
    if reach_m is None:
        return np.full(len(row_polygon), np.nan)
    return reach_shares(
        pieces, polygons, pair_row, pair_piece, row_polygon, reach_m=reach_m, workers=workers
    )


# -- reading a day ----------------------------------------------------------------------


def read_grids(session: Session, generation: int, codes: list[str], srid: int) -> gpd.GeoDataFrame:
    """The grids of ``codes`` (grid_code, geometry) in the generation, in metres."""
    query = select(Area.code.label("grid_code"), wkb_column(Area.geom).label("geometry")).where(
        Area.valid_in(generation), Area.level == patrol_level(session), Area.code.in_(codes)
    )
    frame = frame_from_rows(session.execute(query).all(), ["grid_code", "geometry"])
    metric = geometry_to_metric(np.asarray(frame.geometry.values, dtype=object), srid)
    return gpd.GeoDataFrame({"grid_code": frame["grid_code"]}, geometry=metric, crs=srid)


def read_fixes(session: Session, day: date, shifts: pd.DataFrame, srid: int) -> pd.DataFrame:
    """The fixes (track_id, team_id, x, y, t) of the shift teams' tracks, in metres."""
    if shifts.empty:
        return pd.DataFrame({c: [] for c in ("track_id", "team_id", "x", "y", "t")})
    team_ids = sorted(set(int(t) for t in shifts["team_id"]))
    days = [day]
    if max(shifts["ends_at"]) > datetime.combine(day + timedelta(1), datetime.min.time(), SHANGHAI):
        days.append(day + timedelta(1))  # night shifts run into the next day
    frames = [tracks.tracks_frame(session, day=d, team_ids=team_ids) for d in days]
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("track_id")
    coords, owner = shapely.get_coordinates(
        np.asarray(frame.geometry.values, dtype=object), include_m=True, return_index=True
    )
    x, y = to_metric(coords[:, 0], coords[:, 1], srid)
    return pd.DataFrame(
        {
            "track_id": frame["track_id"].to_numpy()[owner],
            "team_id": frame["team_id"].to_numpy()[owner],
            "x": x,
            "y": y,
            "t": coords[:, 2],
        }
    )


# -- tables -----------------------------------------------------------------------------


def _shift_table(rows, union, visits, shares, pair_row) -> pd.DataFrame:
    n = len(rows)
    table = rows.drop(columns=["_polygon"]).copy()
    inside_s = np.bincount(
        union["key"].to_numpy(dtype=np.int64),
        weights=(union["ends"] - union["starts"]).to_numpy(),
        minlength=n,
    )
    key = visits["key"].to_numpy(dtype=np.int64)
    table["tracks"] = np.bincount(pair_row, minlength=n)
    table["minutes_inside"] = inside_s / 60
    table["visits"] = np.bincount(key, minlength=n)
    table["longest_gap_min"] = gap_minutes(
        n, key, visits["starts"].to_numpy(), visits["ends"].to_numpy(), table["_from"], table["_to"]
    )
    first = visits.groupby("key")["starts"].min()
    last = visits.groupby("key")["ends"].max()
    table["first_visit_at"] = _datetimes(first.reindex(range(n)))
    table["last_visit_at"] = _datetimes(last.reindex(range(n)))
    table["reach_share"] = shares
    unmeasured = rows["_polygon"].to_numpy() < 0
    for column in ("minutes_inside", "longest_gap_min", "reach_share"):
        table.loc[unmeasured, column] = np.nan
    extra = [c for c in table.columns if c not in SHIFT_COLUMNS and not c.startswith("_")]
    return table[[c for c in SHIFT_COLUMNS if c in table.columns] + extra + ["_from", "_to"]]


def _visit_table(rows: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    key = visits["key"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "shift": key,
            "team_mark": rows["team_mark"].to_numpy()[key] if "team_mark" in rows else None,
            "grid_code": rows["grid_code"].to_numpy()[key],
            "starts_at": _datetimes(visits["starts"]),
            "ends_at": _datetimes(visits["ends"]),
            "minutes": (visits["ends"] - visits["starts"]).to_numpy() / 60,
            "_from": visits["starts"].to_numpy(),
            "_to": visits["ends"].to_numpy(),
        }
    )


def _epoch(values: pd.Series) -> np.ndarray:
    if values.empty:
        return np.zeros(0)
    stamps = pd.to_datetime(values, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def _datetimes(seconds: Any) -> pd.Series:
    stamps = pd.to_datetime(pd.Series(seconds, dtype=float), unit="s", utc=True)
    return stamps.dt.tz_convert(SHANGHAI)


def _check(**values: float | None) -> None:
    for name, value in values.items():
        if value is None and name == "reach_m":
            continue
        if not (np.isfinite(value) and value >= 0) or (name == "reach_m" and value <= 0):
            raise InputError(f"{name} must be a positive number, not {value!r}", field=name)


def table_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The visible columns of ``frame`` as JSON-ready records."""
    visible = frame[[c for c in frame.columns if not str(c).startswith("_")]]
    return [json_ready(row) for row in visible.to_dict("records")]


def json_ready(value: Any) -> Any:
    """Dates as ISO text, numpy scalars as Python ones, NaN and NaT as None."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, datetime | date):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NaT:
        return None
    return value
