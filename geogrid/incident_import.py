"""Importing historic incidents from CSV or XLSX: all rows, or none.

The template: these column names (the defaults of :class:`FieldMap`, which maps them to
other names), or their Chinese names (:data:`geogrid.incident_rows.TEMPLATE_ZH`)::

    client_id, category, description, reported_at, lon, lat, coord_type, grid_code,
    channel, address, state, accepted_at, resolved_at, evaluated_at, satisfaction,
    contact_name, contact_phone, complex

``client_id``, ``category``, ``description``, ``reported_at`` are required, and a place:
``lon``/``lat`` with a coordinate type (per row, or one ``crs`` for the file) or a
``grid_code`` of the current generation. ``channel`` defaults to ``import``; ``state``
defaults to what the times say (evaluated, resolved, accepted or reported). Times
without an offset are Shanghai time.

What happens, in order:

1. Every row is parsed and checked (:mod:`geogrid.incident_rows`); the points are
   converted to CGCS2000 and placed with the in-memory index of the current generation
   (:func:`geogrid.bulk.grid_index`), the rule the PostGIS lookup follows. A point outside
   every grid that would fall in one with lat and lon exchanged is a problem, not an
   incident outside; any other point outside is imported and flagged for a person to
   place, as at intake.
2. Any problem at all and nothing is written: the result lists them by line and field.
3. Otherwise the deadlines are computed for all rows at once
   (:mod:`geogrid.incident_deadlines`, equal to :func:`geogrid.sla.deadlines`), and the
   rows are written in bulk (:mod:`geogrid.incident_bulk`) under the idempotency key
   ``import:<client_id>``, each with one ``import`` event carrying its historic times.
   A row whose key is taken was imported before and is skipped, so importing the same
   file twice inserts nothing the second time.

State and times are kept as given; an imported incident that is still open is then
worked (and escalated when overdue) like any other.
"""

from __future__ import annotations

import codecs
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid.actors import ADMINISTRATOR
from geogrid.bulk import grid_index
from geogrid.crs import to_storage
from geogrid.errors import FileFormatError, InputError
from geogrid.files import Table, read_table
from geogrid.generations import resolve_generation
from geogrid.incident_bulk import ImportEvent, Progress, write_incidents
from geogrid.incident_deadlines import deadlines_many
from geogrid.incident_rows import KEY_PREFIX, FieldMap, RowProblem, Rows, parse_rows
from geogrid.models import IncidentCategory
from geogrid.pointindex import OUTSIDE, STATUS_NAMES, GridIndex
from geogrid.settings import Settings
from geogrid.workdays import WorkCalendar, load_calendar, moment_or_now

__all__ = ["FieldMap", "ImportResult", "RowProblem", "import_incidents"]

#: Problems listed with their message at most (all are counted).
MAX_PROBLEMS = 1000


@dataclass
class ImportResult:
    """What an import found and did; ``inserted`` is 0 whenever there was a problem."""

    path: Path
    format: str
    encoding: str
    rows: int
    generation: int | None = None
    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0
    problems_by_field: dict[str, int] = field(default_factory=dict)
    #: Rows by how they were placed: inside, near_edge, edge, outside, by_code.
    placements: dict[str, int] = field(default_factory=dict)
    #: Rows whose deadlines the calendar cannot give, by alert.
    deadline_alerts: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    #: Rows whose client id was imported before (skipped).
    already_imported: int = 0
    events: int = 0
    contacts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the file had no problem (and so was written)."""
        return self.problem_count == 0

    def lines(self, *, verb: str = "inserted") -> list[str]:
        """A printable account: counts, placements, alerts, then every listed problem."""
        head = f"{self.path.name} ({self.format}, {self.encoding}): {self.rows} rows"
        if not self.ok:
            fields = ", ".join(f"{n} {name}" for name, n in sorted(self.problems_by_field.items()))
            lines = [head, f"{self.problem_count} problems ({fields}); nothing was written"]
            lines += [f"  line {p.line} [{p.field or '-'}]: {p.message}" for p in self.problems]
            if self.problem_count > len(self.problems):
                lines.append(f"  ... and {self.problem_count - len(self.problems)} more")
            return lines
        placed = ", ".join(f"{n} {status}" for status, n in self.placements.items() if n)
        lines = [
            head,
            f"{verb} {self.inserted} incidents (generation {self.generation}), "
            f"{self.already_imported} already imported (same client_id), "
            f"{self.contacts} contacts, {self.events} events",
            f"placed: {placed or 'none'}",
        ]
        lines += [
            f"deadline alert on {n} rows: {alert}" for alert, n in self.deadline_alerts.items()
        ]
        timing = ", ".join(f"{phase} {s:.1f} s" for phase, s in self.seconds.items())
        return [*lines, f"time: {timing}"]


def import_incidents(
    session: Session,
    settings: Settings,
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    created_by: str,
    progress: Progress | None = None,
    now: datetime | None = None,
    calendar: WorkCalendar | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> ImportResult:
    """Import every row of a CSV/XLSX of incidents, or none when any row has a problem."""
    path, now = Path(path), moment_or_now(now)
    clock = _Clock()
    generation = resolve_generation(session, None)
    categories = {c.code: c for c in session.scalars(select(IncidentCategory))}
    calendar = calendar or load_calendar(session)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The index is built (numpy, GEOS and PROJ, mostly without the GIL) while the file
        # is read and checked; only that thread uses the session meanwhile.
        level = settings.scheme.default_geocode_level
        building = pool.submit(grid_index, session, settings, generation, level)
        table = _read(path, encoding, progress is not None)
        result = ImportResult(
            path, table.format, table.encoding, len(table.frame) + len(table.problems)
        )
        result.generation = generation.id
        rows = _checked_rows(table, fields, categories, crs, now, max_problems)
        clock.lap(result, "read+check")
        index = building.result()
    clock.lap(result, "index")
    placement = _place(rows, index, progress)
    result.placements = placement.counts
    result.problems = rows.problems.listed()
    result.problem_count = rows.problems.count
    result.problems_by_field = dict(sorted(rows.problems.by_field.items()))
    clock.lap(result, "place")
    if not result.ok or not len(rows.lines):
        return result
    values = rows.values
    due = deadlines_many(
        calendar, categories, values["category"], values["reported_at"], values["complex"]
    )
    result.deadline_alerts = pd.Series(due.alert).value_counts().to_dict()
    incidents = _incident_frame(rows, placement, due, generation.id, created_by)
    clock.lap(result, "deadlines")
    event = ImportEvent(
        created_by, ADMINISTRATOR, now, note=f"imported from {path.name}", data=_event_data
    )
    written = write_incidents(session, incidents, import_event=event, progress=progress)
    result.inserted, result.already_imported = written.inserted, written.skipped
    result.events, result.contacts = written.events, written.contacts
    clock.lap(result, "write")
    return result


def _checked_rows(table: Table, fields, categories, crs, now, max_problems) -> Rows:
    """Every row parsed and checked; lines the reader could not split are problems too."""
    columns = (fields or FieldMap()).resolve(table.frame.columns)
    rows = parse_rows(table.frame, columns, categories, crs=crs, now=now, limit=max_problems)
    for problem in table.problems:
        at = np.array([problem.record])
        rows.problems.add(at, np.array([True]), problem.field, problem.message)
    return rows


@dataclass
class _Placement:
    """Storage coordinates, grid codes, statuses and details of every row."""

    lon: np.ndarray
    lat: np.ndarray
    grid_code: np.ndarray
    status: np.ndarray
    detail: np.ndarray
    counts: dict[str, int]


def _place(rows: Rows, index: GridIndex, progress: Progress | None) -> _Placement:
    """Convert and place the points; grid codes checked; swapped points become problems."""
    values, n = rows.values, len(rows.lines)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    kinds = values["coord_type"].to_numpy()
    # Every row with a readable point is placed, also one with other problems, so that a
    # swapped point is named too: every problem of a file is listed in one go.
    given_lon, given_lat = values["lon"].to_numpy(), values["lat"].to_numpy()
    point = ~values["by_code"].to_numpy() & pd.notna(kinds)
    point &= np.isfinite(given_lon) & np.isfinite(given_lat)
    for kind in {k for k in kinds[point]}:
        at = point & (kinds == kind)
        lon[at], lat[at] = to_storage(given_lon[at], given_lat[at], kind)
    usable = (
        point & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    )
    # Out of range in degrees is reported already; this is a projected x/y gone wrong.
    _flag(rows, rows.ok & point & ~usable, "lon", "the point converts to no lon/lat in CGCS2000")
    grid_code = values["grid_code"].to_numpy(dtype=object).copy()
    status = np.full(n, "by_code", dtype=object)
    detail = np.full(n, None, dtype=object)
    given = pd.notna(grid_code)
    unknown = given & ~pd.Series(grid_code).isin(set(index.codes.tolist())).to_numpy()
    _flag(rows, unknown, "grid_code",
          lambda i: f"there is no grid {grid_code[i]} in the current generation")  # fmt: skip
    at = np.flatnonzero(usable)
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        if progress is not None:
            progress("place", done[0], len(at))

    placed = index.locate(lon[at], lat[at], progress=advance)
    codes = placed.grid_codes()
    swapped = placed.swapped_codes()
    names = np.asarray(STATUS_NAMES, dtype=object)[placed.status]
    for k in np.flatnonzero(placed.status != 0):
        detail[at[k]] = _detail(placed, k, codes, swapped)
    flipped = np.zeros(n, dtype=bool)
    flipped[at] = (placed.status == OUTSIDE) & (placed.swapped_index >= 0)
    swapped_at = dict(zip(at.tolist(), swapped.tolist(), strict=True))
    _flag(rows, flipped, "lat",
          lambda i: f"lat/lon look swapped: ({given_lon[i]}, {given_lat[i]}) is outside every "
          f"grid but ({given_lat[i]}, {given_lon[i]}) falls in grid {swapped_at[i]}; give "
          "longitude in lon and latitude in lat")  # fmt: skip
    for k in np.flatnonzero(given[at] & (codes != grid_code[at])):
        detail[at[k]] = {**(detail[at[k]] or {}), "given_grid_code": grid_code[at[k]]}
    grid_code[at], status[at] = codes, names
    counts = {name: int(np.sum(names == name)) for name in STATUS_NAMES}
    counts["by_code"] = int(np.sum(given & values["by_code"].to_numpy() & ~unknown))
    return _Placement(lon, lat, grid_code, status, detail, counts)


def _detail(placed, k: int, codes: np.ndarray, swapped: np.ndarray) -> dict:
    """What a person needs to confirm or place a point: as intake records it."""
    nearest = None
    if placed.nearest_index[k] >= 0:
        nearest = {
            "code": str(placed.codes[placed.nearest_index[k]]),
            "distance_m": float(placed.nearest_distance_m[k]),
        }
    return {"candidates": placed.candidates(k), "nearest": nearest, "swapped_code": swapped[k]}


def _flag(rows: Rows, mask: np.ndarray, name: str, message) -> None:
    rows.problems.add(rows.lines, mask, name, message)
    rows.ok &= ~mask


def _incident_frame(rows: Rows, placement: _Placement, due, generation: int, created_by: str):
    """The rows as the bulk writer stages them."""
    values = rows.values
    by_code = values["by_code"].to_numpy()
    kinds = values["coord_type"].to_numpy()
    details = placement.detail
    return pd.DataFrame(
        {
            "idempotency_key": KEY_PREFIX + values["client_id"],
            "client_id": values["client_id"],
            "line": rows.lines,
            "category": values["category"],
            "description": values["description"],
            "channel": values["channel"],
            "complex": values["complex"],
            "state": values["state"],
            "reported_at": values["reported_at"],
            "reported_by": created_by,
            "given_lon": np.where(by_code, np.nan, values["lon"]),
            "given_lat": np.where(by_code, np.nan, values["lat"]),
            "coord_type": [None if k is None else k.name for k in kinds],
            "lon": placement.lon,
            "lat": placement.lat,
            "address": values["address"],
            "grid_code": placement.grid_code,
            "generation": generation,
            "placement": placement.status,
            "placement_detail": [
                None if d is None else json.dumps(d, ensure_ascii=False) for d in details
            ],
            "accept_due_at": due.accept_due_at,
            "resolve_due_at": due.resolve_due_at,
            "deadline_alert": due.alert,
            "accepted_at": values["accepted_at"],
            "resolved_at": values["resolved_at"],
            "evaluated_at": values["evaluated_at"],
            "satisfaction": values["satisfaction"],
            "contact_name": values["contact_name"],
            "contact_phone": values["contact_phone"],
        }
    )


def _event_data(incidents: pd.DataFrame) -> list[str]:
    """Each import event's data: the client id, the line, the historic times (Shanghai)."""
    times = [_local_text(incidents[name]) for name in HISTORY]
    ids = [json.dumps(client_id, ensure_ascii=False) for client_id in incidents["client_id"]]
    texts = []
    columns = (incidents["line"], incidents["channel"], incidents["satisfaction"])
    rows = zip(ids, *columns, *times, strict=True)
    for client_id, line, channel, satisfaction, *moments in rows:
        parts = [f'"client_id": {client_id}', f'"line": {line}', f'"channel": "{channel}"']
        parts += [
            f'"{name}": "{t}+08:00"' for name, t in zip(HISTORY, moments, strict=True) if t != "NaT"
        ]
        if isinstance(satisfaction, str):
            parts.append(f'"satisfaction": "{satisfaction}"')
        texts.append("{" + ", ".join(parts) + "}")
    return texts


#: The times an import event carries.
HISTORY = ("reported_at", "accepted_at", "resolved_at", "evaluated_at")


def _local_text(times: pd.Series) -> np.ndarray:
    """ISO 8601 Shanghai wall times to the second ("NaT" where none), fast for a million."""
    utc = pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None)
    local = (utc + pd.Timedelta(hours=8)).to_numpy(dtype="datetime64[s]")
    return np.datetime_as_string(local, unit="s")


def _read(path: Path, encoding: str | None, progress: bool) -> Table:
    """The file's rows; with ``encoding`` a CSV is decoded as told, not detected."""
    if encoding is None:
        return read_table(path, progress=progress)
    if path.suffix.lower() != ".csv":
        raise InputError("an encoding is for CSV files; XLSX says its own", field="encoding")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}", field="encoding") from None
    # GBK files routinely hold characters only their superset GB18030 has.
    codec = {"gbk": "gb18030", "gb2312": "gb18030", "utf-8": "utf-8-sig"}.get(codec, codec)
    if not path.is_file():
        return read_table(path)  # the reader's own error for a missing file
    try:
        text = path.read_bytes().decode(codec)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{path.name} is not {encoding} text: byte {exc.start} (0x{exc.object[exc.start]:02x})"
            " does not decode; give the right --encoding or leave it out to detect it",
            field="encoding",
            file=str(path),
        ) from None
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        copy.write_text(text, encoding="utf-8")
        table = read_table(copy, progress=progress)
    table.path, table.encoding = path, codec.removesuffix("-sig")
    return table


class _Clock:
    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self, result: ImportResult, phase: str) -> None:
        now = time.perf_counter()
        result.seconds[phase] = result.seconds.get(phase, 0.0) + now - self.last
        self.last = now
