"""Patrol track files: GPX, GeoJSON, CSV and XLSX of timestamped points, read into fixes.

A file gives one or more :class:`TrackFixes`: lon, lat and time of each fix as numpy
arrays, in the coordinate type the caller declares (never guessed), with notes on what
the reader left out (waypoints, route points, fixes without a time). Cleaning and storage
are :mod:`geogrid.tracks`' job; here nothing is dropped without a note.

* GPX 1.0 and 1.1 (and GPX with no namespace): each ``<trk>`` is one track, its
  ``<trkseg>`` segments joined in order (a long pause between them is a gap that
  cleaning splits). Waypoints and routes are planned, not recorded: they are counted in
  the notes and ignored. Elements are matched by local name, so the namespace and any
  extensions do not matter.
* GeoJSON: a LineString (or MultiLineString) Feature with a ``coordTimes`` or ``times``
  property array beside its coordinates (what togeojson and most converters write), or
  a FeatureCollection of Point features with a ``time`` property, which make one track.
* CSV and XLSX (through :func:`geogrid.files.read_table`, so UTF-8 and GBK both work):
  columns ``lon``, ``lat``, ``time`` or their aliases (经度, 纬度, 时间 …); an optional
  ``track`` column splits the rows into several tracks.

Times. GPX times are UTC by the GPX schema, so a GPX time without a zone is read as UTC.
CSV, XLSX and GeoJSON times without a zone are read as Asia/Shanghai wall-clock time,
which is what Chinese phone apps and spreadsheets write; times with ``Z`` or an offset
are honoured everywhere. Numbers are Unix epoch seconds, or milliseconds (as JavaScript
and Android write them) when too large to be seconds.

XML safety: see :mod:`geogrid.gpx` (no DTD, hence no entity bombs or external
entities).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geogrid.crs import CoordType, parse_coord_type
from geogrid.errors import FileFormatError, InputError
from geogrid.files import read_table
from geogrid.gpx import read_gpx
from geogrid.workdays import SHANGHAI

TRACK_FORMATS = "GPX (.gpx), GeoJSON (.geojson, .json), CSV (.csv), Excel (.xlsx)"
#: Column names accepted for each field of a table of fixes, compared without case.
COLUMN_ALIASES = {
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "time": ("time", "timestamp", "datetime", "t", "时间", "定位时间", "时间戳"),
    "track": ("track", "track_id", "轨迹", "轨迹编号"),
}
_POINT_TIME_KEYS = ("time", "timestamp", "datetime", "时间")
# Epoch seconds from 2000 to 2100: anything else is not a time a phone recorded.
_EPOCH_RANGE = (946_684_800.0, 4_102_444_800.0)
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_LOOSE_TIME = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d+)?)?"
)


@dataclass
class TrackFixes:
    """One recorded track: lon, lat and time (Unix epoch seconds) of each fix, as given."""

    lon: np.ndarray
    lat: np.ndarray
    t: np.ndarray
    coord_type: CoordType
    #: ``gpx``, ``geojson``, ``csv``, ``xlsx``, or ``array`` for fixes made in code.
    source_format: str = "array"
    name: str = ""
    #: What the reader noticed and left out, in words (shown in the quality report).
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.coord_type, str):
            self.coord_type = parse_coord_type(self.coord_type)
        self.lon = np.asarray(self.lon, dtype=np.float64).ravel()
        self.lat = np.asarray(self.lat, dtype=np.float64).ravel()
        times = np.asarray(self.t)
        if np.issubdtype(times.dtype, np.datetime64):
            times = times.astype("datetime64[us]").astype(np.int64) / 1e6
        self.t = np.asarray(times, dtype=np.float64).ravel()
        if not len(self.lon) == len(self.lat) == len(self.t):
            raise InputError(
                f"lon, lat and t differ in length ({len(self.lon)}, {len(self.lat)}, "
                f"{len(self.t)})",
                field="fixes",
            )

    def __len__(self) -> int:
        return len(self.t)


def read_track_file(
    path: str | Path, *, coord_type: CoordType | str, name: str | None = None
) -> list[TrackFixes]:
    """The tracks in a GPX, GeoJSON, CSV or XLSX file, in the declared coordinate type."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", field="path")
    kind = parse_coord_type(coord_type) if isinstance(coord_type, str) else coord_type
    suffix = path.suffix.lower()
    label = name or path.stem
    if suffix == ".gpx":
        with path.open("rb") as stream:
            return parse_gpx(stream, coord_type=kind, name=label, file=path.name)
    if suffix in (".geojson", ".json"):
        return parse_geojson(path.read_bytes(), coord_type=kind, name=label, file=path.name)
    if suffix in (".csv", ".xlsx"):
        return _table_tracks(path, kind, label)
    raise FileFormatError(
        f"{path.name}: unsupported track format; supported: {TRACK_FORMATS}", file=str(path)
    )


# -- GPX --------------------------------------------------------------------------------


def parse_gpx(
    source: bytes | Any,
    *,
    coord_type: CoordType | str,
    name: str = "track",
    file: str = "upload.gpx",
) -> list[TrackFixes]:
    """The tracks (``<trk>``) of a GPX document: bytes, or a binary stream read as it goes."""
    reader = read_gpx(source, file=file)
    ignored = _ignored_note(reader.waypoints, reader.route_points)
    if not reader.tracks:
        raise FileFormatError(
            f"{file} has no track (<trk>): {ignored or 'nothing at all'}; export the recorded "
            "track, not a route or waypoints",
            file=file,
        )
    tracks, untimed = [], []
    for number, raw in enumerate(reader.tracks, start=1):
        label = raw.name or (name if len(reader.tracks) == 1 else f"{name} #{number}")
        timed = [i for i, text in enumerate(raw.times) if text is not None]
        if not timed:
            untimed.append(f"{label!r} ({len(raw.times)} points)")
            continue
        times = np.array([_gpx_time(raw.times[i], raw.lines[i], file) for i in timed])
        notes = [ignored] if ignored else []
        if raw.segments > 1:
            notes.append(f"{raw.segments} segments joined in order")
        if len(timed) < len(raw.times):
            notes.append(f"{len(raw.times) - len(timed)} points without a <time> left out")
        tracks.append(
            TrackFixes(
                np.take(raw.lon, timed),
                np.take(raw.lat, timed),
                times,
                coord_type,
                source_format="gpx",
                name=label,
                notes=notes,
            )
        )
    if not tracks:
        raise FileFormatError(
            f"{file}: no timestamps: no <trkpt> of track {', '.join(untimed)} has a <time>; "
            "coverage needs the time of every fix, so export the track with times",
            field="time",
            file=file,
        )
    for track in tracks:
        track.notes += [f"track {label} has no timestamps and was left out" for label in untimed]
    return tracks


def _ignored_note(waypoints: int, route_points: int) -> str:
    parts = [f"{waypoints} waypoints"] if waypoints else []
    parts += [f"{route_points} route points"] if route_points else []
    return f"{' and '.join(parts)} ignored (planned, not recorded)" if parts else ""


def _gpx_time(text: str, line: int, file: str) -> float:
    try:
        return epoch_seconds(text, naive_zone=UTC)
    except ValueError as exc:
        raise FileFormatError(
            f"{file}, line {line}: <time>{text}</time> is not a time: {exc}",
            field="time",
            file=file,
            line=line,
        ) from None


# -- GeoJSON ----------------------------------------------------------------------------


def parse_geojson(
    data: bytes, *, coord_type: CoordType | str, name: str = "track", file: str = "upload.geojson"
) -> list[TrackFixes]:
    """The tracks of a GeoJSON document: timed LineStrings, or timed Points as one track."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{file} is not UTF-8 (byte {exc.start})", file=file) from None
    except json.JSONDecodeError as exc:
        message = f"{file} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise FileFormatError(message, file=file, line=exc.lineno) from None
    features = _features(document, file)
    tracks: list[TrackFixes] = []
    points: list[tuple[float, float, float]] = []
    for number, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        where = f"{file}, feature {number}"
        if kind == "Point":
            points.append(_timed_point(geometry, props, where))
        elif kind in ("LineString", "MultiLineString"):
            label = str(props.get("name") or (name if len(features) == 1 else f"{name} #{number}"))
            tracks.append(_timed_line(geometry, props, where, coord_type, label))
        else:
            raise FileFormatError(
                f"{where}: a {kind or 'missing'} geometry; a track is a LineString with "
                "coordTimes, or Points with a time",
                file=file,
                record=number,
            )
    if points:
        lon, lat, t = (np.array(values) for values in zip(*points, strict=True))
        notes = [f"{len(points)} timed points made into one track"]
        tracks.append(TrackFixes(lon, lat, t, coord_type, "geojson", name, notes))
    if not tracks:
        raise FileFormatError(f"{file} has no features", file=file)
    return tracks


def _features(document: Any, file: str) -> list[dict[str, Any]]:
    if isinstance(document, dict) and document.get("type") == "Feature":
        return [document]
    features = document.get("features") if isinstance(document, dict) else None
    if not (isinstance(features, list) and document.get("type") == "FeatureCollection"):
        raise FileFormatError(f"{file} is neither a GeoJSON Feature nor a FeatureCollection")
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise FileFormatError(f"{file}, feature {number} is not a Feature", record=number)
    return features


def _timed_line(
    geometry: dict[str, Any], props: dict[str, Any], where: str, coord_type: Any, label: str
) -> TrackFixes:
    times = props.get("coordTimes", props.get("times"))
    if times is None:
        raise FileFormatError(
            f"{where}: no timestamps: the line has no coordTimes or times property",
            field="time",
        )
    coordinates = geometry.get("coordinates")
    if geometry["type"] == "LineString":
        coordinates, times = [coordinates], [times]
    if not (isinstance(coordinates, list) and isinstance(times, list)):
        raise FileFormatError(f"{where}: coordinates and times must be arrays", field="time")
    lon, lat, t = [], [], []
    for part, part_times in zip(coordinates, times, strict=False):
        if not (isinstance(part, list) and isinstance(part_times, list)):
            raise FileFormatError(f"{where}: coordinates and times must be arrays", field="time")
        if len(part) != len(part_times):
            raise FileFormatError(
                f"{where}: {len(part)} coordinates but {len(part_times)} times", field="time"
            )
        for position, (point, moment) in enumerate(zip(part, part_times, strict=True)):
            lon.append(_number(point, 0, f"{where}, point {position + 1}"))
            lat.append(_number(point, 1, f"{where}, point {position + 1}"))
            t.append(_file_time(moment, f"{where}, point {position + 1}"))
    notes = [f"{len(coordinates)} line parts joined in order"] if len(coordinates) > 1 else []
    return TrackFixes(
        np.array(lon), np.array(lat), np.array(t), coord_type, "geojson", label, notes
    )


def _timed_point(
    geometry: dict[str, Any], props: dict[str, Any], where: str
) -> tuple[float, float, float]:
    key = next((key for key in _POINT_TIME_KEYS if props.get(key) is not None), None)
    if key is None:
        raise FileFormatError(
            f"{where}: no timestamp: a point needs a {' or '.join(_POINT_TIME_KEYS)} property",
            field="time",
        )
    coordinates = geometry.get("coordinates")
    return (
        _number(coordinates, 0, where),
        _number(coordinates, 1, where),
        _file_time(props[key], where),
    )


def _number(values: Any, position: int, where: str) -> float:
    try:
        value = values[position]
    except (TypeError, IndexError, KeyError):
        raise FileFormatError(f"{where}: the coordinates are not [lon, lat]") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FileFormatError(f"{where}: coordinate {value!r} is not a number")
    return float(value)


def _file_time(value: Any, where: str) -> float:
    try:
        return epoch_seconds(value, naive_zone=SHANGHAI)
    except ValueError as exc:
        raise FileFormatError(f"{where}: {value!r} is not a time: {exc}", field="time") from None


# -- CSV and XLSX -----------------------------------------------------------------------


def _table_tracks(path: Path, coord_type: CoordType, name: str) -> list[TrackFixes]:
    table = read_table(path)
    if table.problems:
        first = table.problems[0]
        raise FileFormatError(
            f"{path.name}, line {first.record}: {first.message}", file=str(path), line=first.record
        )
    frame = table.frame
    columns = {key: _column(list(frame.columns), key) for key in COLUMN_ALIASES}
    for key in ("lon", "lat", "time"):
        if columns[key] is None:
            accepted = ", ".join(COLUMN_ALIASES[key])
            raise FileFormatError(
                f"{path.name} has no {key} column (accepted names: {accepted}); it has "
                f"{', '.join(map(str, frame.columns))}",
                field=key,
                file=str(path),
            )
    cells = {key: _cells(frame, column) for key, column in columns.items()}
    groups: dict[str, list[int]] = {}
    for position, label in enumerate(cells["track"]):
        groups.setdefault(label or "", []).append(position)
    tracks = []
    for label, positions in groups.items():
        lon, lat, t, notes = _table_fixes(cells, columns, positions, table.lines, path.name)
        tracks.append(TrackFixes(lon, lat, t, coord_type, table.format, label or name, notes))
    if not tracks:
        raise FileFormatError(f"{path.name} has no rows of fixes", file=str(path))
    return tracks


def _column(names: list[str], key: str) -> str | None:
    wanted = {alias.casefold() for alias in COLUMN_ALIASES[key]}
    return next((name for name in names if str(name).strip().casefold() in wanted), None)


def _cells(frame: pd.DataFrame, column: str | None) -> list[Any]:
    """A column's cells as a list, None where empty (an absent column is all None)."""
    if column is None:
        return [None] * len(frame)
    return [None if pd.isna(value) else value for value in frame[column].tolist()]


def _table_fixes(
    cells: dict[str, list[Any]],
    columns: dict[str, str | None],
    positions: list[int],
    lines: list[int],
    file: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    lon, lat, t, untimed = [], [], [], 0
    for position in positions:
        line, moment = lines[position], cells["time"][position]
        if moment is None:
            untimed += 1
            continue
        for key, values in (("lon", lon), ("lat", lat)):
            text = cells[key][position]
            try:
                # An empty cell is a fix without a position: cleaning counts it as unusable.
                values.append(math.nan if text is None else float(text))
            except (TypeError, ValueError):
                raise FileFormatError(
                    f"{file}, line {line}: {columns[key]} {text!r} is not a number",
                    field=key,
                    line=line,
                ) from None
        t.append(_file_time(moment, f"{file}, line {line}"))
    if not t:
        raise FileFormatError(
            f"{file}: no timestamps: every {columns['time']} cell is empty", field="time"
        )
    notes = [f"{untimed} rows without a time left out"] if untimed else []
    return np.array(lon), np.array(lat), np.array(t), notes


# -- times ------------------------------------------------------------------------------


def epoch_seconds(value: Any, *, naive_zone: tzinfo) -> float:
    """Unix seconds of an ISO-like time text, a datetime or an epoch number (s or ms)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _checked_epoch(float(value))
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return _checked_epoch(float(text))
        moment = _parse_text(text)
    else:
        raise ValueError(f"a {type(value).__name__} is not a time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment.timestamp()


def _parse_text(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _LOOSE_TIME.fullmatch(text)
    if match is None:
        raise ValueError("expected e.g. 2024-05-01T08:00:00Z or 2024-05-01 16:00:00")
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    micro = round(float(match[7] or 0) * 1e6)
    return datetime(year, month, day, hour, minute, second, micro)


def _checked_epoch(seconds: float) -> float:
    if seconds > _EPOCH_RANGE[1] * 10:  # milliseconds, as JavaScript and Android write
        seconds /= 1000.0
    if not _EPOCH_RANGE[0] <= seconds <= _EPOCH_RANGE[1]:
        raise ValueError("an epoch number outside 2000-2100")
    return seconds
