"""The rows of an incident file: the template's columns, parsed and checked all at once.

Each column is parsed as a whole (pandas, numpy) and every bad cell becomes a
:class:`RowProblem` naming its line and field; nothing is dropped and nothing guessed.
:func:`parse_rows` gives the parsed values of every row together with the problems;
:mod:`geogrid.incident_import` places the points, decides and writes.

Values people type in Chinese systems are taken too: categories by code or by their
Chinese or English name, and the states, channels and satisfaction words below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime

import numpy as np
import pandas as pd

from geogrid.codes import normalise_code
from geogrid.crs import ACCEPTED, parse_coord_type
from geogrid.errors import FileFormatError, GeogridError, InputError
from geogrid.models import CHANNELS, IncidentCategory

#: States an imported incident may be in (the workflow's, less the transient ones).
IMPORT_STATES = (
    "reported",
    "accepted",
    "dispatched",
    "in_progress",
    "resolved",
    "evaluated",
    "rejected",
)
STATE_WORDS = {
    "已上报": "reported", "待受理": "reported", "已受理": "accepted", "已派遣": "dispatched",
    "处理中": "in_progress", "处置中": "in_progress", "已办结": "resolved",
    "已评价": "evaluated", "不予受理": "rejected", "已驳回": "rejected",
}  # fmt: skip
CHANNEL_WORDS = {
    "小红哨": "whistle", "网格员": "grid_worker", "12345": "hotline", "热线": "hotline",
    "平安联盟": "alliance", "导入": "import",
}  # fmt: skip
SATISFACTION_WORDS = {
    "satisfied": "satisfied", "unsatisfied": "unsatisfied", "满意": "satisfied",
    "基本满意": "satisfied", "非常满意": "satisfied", "不满意": "unsatisfied",
}  # fmt: skip
_TIME_FORM = "YYYY-MM-DD HH:MM[:SS]"
_TRUE = {"1", "true", "t", "yes", "y", "是"}
_FALSE = {"0", "false", "f", "no", "n", "否"}
#: A client id becomes the idempotency key ``import:<client_id>``.
KEY_PREFIX = "import:"
MAX_CLIENT_ID = 200
#: Times before this are taken for typing errors.
EARLIEST = pd.Timestamp("2000-01-01", tz="Asia/Shanghai")
_SHANGHAI_NS = 8 * 3600 * 10**9


@dataclass(frozen=True)
class FieldMap:
    """Which file column holds each field; the defaults are the template's column names."""

    client_id: str = "client_id"
    category: str = "category"
    description: str = "description"
    reported_at: str = "reported_at"
    lon: str = "lon"
    lat: str = "lat"
    coord_type: str = "coord_type"
    grid_code: str = "grid_code"
    channel: str = "channel"
    address: str = "address"
    state: str = "state"
    accepted_at: str = "accepted_at"
    resolved_at: str = "resolved_at"
    evaluated_at: str = "evaluated_at"
    satisfaction: str = "satisfaction"
    contact_name: str = "contact_name"
    contact_phone: str = "contact_phone"
    complex: str = "complex"

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> FieldMap:
        """A map from ``field=column`` pairs (the CLI's ``--field``); others keep defaults."""
        known = {spec.name for spec in fields(cls)}
        given = {}
        for pair in pairs:
            name, sep, column = pair.partition("=")
            if not sep or name.strip() not in known or not column.strip():
                raise InputError(
                    f"--field takes FIELD=COLUMN with FIELD one of {', '.join(sorted(known))};"
                    f" not {pair!r}",
                    field="field",
                )
            given[name.strip()] = column.strip()
        return cls(**given)

    def resolve(self, header: Iterable[str]) -> dict[str, str | None]:
        """The column each field is read from, None where the file has none."""
        header = list(header)
        columns: dict[str, str | None] = {}
        for spec in fields(self):
            column = getattr(self, spec.name)
            if column in header:
                columns[spec.name] = column
            elif column != spec.default:
                raise FileFormatError(
                    f"no column {column!r} for {spec.name}; the file has {', '.join(header)}",
                    field=spec.name,
                )
            else:
                alias = TEMPLATE_ZH.get(spec.name)
                columns[spec.name] = alias if alias in header else None
        missing = [name for name in REQUIRED if columns[name] is None]
        if not (columns["lon"] and columns["lat"]) and not columns["grid_code"]:
            missing.append("lon and lat, or grid_code")
        if missing:
            raise FileFormatError(
                f"the file has no column for {', '.join(missing)} (columns: {', '.join(header)})",
                field=missing[0].split()[0],
            )
        return columns


#: Chinese column names read when the English template name is absent.
TEMPLATE_ZH = {
    "client_id": "编号", "category": "类别", "description": "描述", "reported_at": "上报时间",
    "lon": "经度", "lat": "纬度", "coord_type": "坐标系", "grid_code": "网格编码",
    "channel": "渠道", "address": "地址", "state": "状态", "accepted_at": "受理时间",
    "resolved_at": "办结时间", "evaluated_at": "评价时间", "satisfaction": "满意度",
    "contact_name": "联系人", "contact_phone": "联系电话", "complex": "复杂",
}  # fmt: skip
REQUIRED = ("client_id", "category", "description", "reported_at")
TIME_FIELDS = ("reported_at", "accepted_at", "resolved_at", "evaluated_at")


@dataclass(frozen=True)
class RowProblem:
    """A cell (or a whole line) that cannot be imported: where, which field, why."""

    line: int
    field: str | None
    message: str


@dataclass
class Problems:
    """Every problem counted; the first ``limit`` by line kept with their messages."""

    limit: int
    count: int = 0
    by_field: dict[str, int] = field(default_factory=dict)
    kept: list[RowProblem] = field(default_factory=list)

    def add(self, lines: np.ndarray, mask: np.ndarray, field: str | None, message) -> None:
        """Problems at ``lines[mask]``; ``message`` is text or a function of a row position."""
        positions = np.flatnonzero(mask)
        if not len(positions):
            return
        self.count += len(positions)
        self.by_field[field or "line"] = self.by_field.get(field or "line", 0) + len(positions)
        for position in positions[: self.limit]:
            text = message(position) if callable(message) else message
            self.kept.append(RowProblem(int(lines[position]), field, text))

    def listed(self) -> list[RowProblem]:
        """The kept problems in line order, at most ``limit``."""
        return sorted(self.kept, key=lambda p: (p.line, p.field or ""))[: self.limit]


@dataclass
class Rows:
    """The parsed rows of a file, one entry per data row, in file order."""

    lines: np.ndarray
    values: pd.DataFrame
    problems: Problems
    #: Rows whose every cell parsed: only these are placed and checked further.
    ok: np.ndarray


def parse_rows(
    frame: pd.DataFrame,
    columns: Mapping[str, str | None],
    categories: Mapping[str, IncidentCategory],
    *,
    crs: str | None,
    now: datetime,
    limit: int,
) -> Rows:
    """Parse every field of every row; problems name the line and the field."""
    lines = frame.index.to_numpy(dtype=np.int64)
    rows = Rows(
        lines, pd.DataFrame(index=range(len(frame))), Problems(limit), np.ones(len(frame), bool)
    )

    def bad(mask: np.ndarray, name: str, message) -> None:
        mask = np.asarray(mask, dtype=bool)
        rows.problems.add(lines, mask, name, message)
        rows.ok &= ~mask

    cells = {name: _cells(frame, column, name) for name, column in columns.items()}
    values = rows.values
    values["client_id"] = _client_ids(cells["client_id"], lines, bad)
    values["category"] = _category(cells["category"], categories, bad)
    bad(pd.isna(cells["description"]), "description", "description is missing")
    values["description"] = cells["description"]
    for name in TIME_FIELDS:
        values[name] = _times(cells[name], name, bad)
    reported = values["reported_at"]
    bad(pd.isna(cells["reported_at"]), "reported_at", "reported_at is missing")
    bad(reported > pd.Timestamp(now) + pd.Timedelta(minutes=5), "reported_at",
        "reported_at is in the future")  # fmt: skip
    bad(reported < EARLIEST, "reported_at", f"reported_at is before {EARLIEST:%Y-%m-%d}")
    values["channel"] = _words(cells["channel"], CHANNEL_WORDS, CHANNELS, "channel", bad)
    values["channel"] = values["channel"].where(values["channel"].notna(), "import")
    values["state"] = _words(cells["state"], STATE_WORDS, IMPORT_STATES, "state", bad)
    values["satisfaction"] = _words(
        cells["satisfaction"], SATISFACTION_WORDS, ("satisfied", "unsatisfied"), "satisfaction",
        bad,
    )  # fmt: skip
    values["complex"] = _flags(cells["complex"], bad)
    for name in ("address", "contact_name", "contact_phone"):
        values[name] = cells[name]
    _location(values, cells, crs, bad)
    _states_and_times(values, rows.ok.copy(), bad)
    return rows


#: Fields whose every cell is stripped; fields of a few distinct words are tidied word by
#: word; the others (times, numbers, free text) go to parsers that ignore spaces, or as given.
_STRIPPED = ("client_id", "description")
_WORDS = ("category", "channel", "state", "satisfaction", "complex", "coord_type", "grid_code")


def _cells(frame: pd.DataFrame, column: str | None, name: str) -> np.ndarray:
    """A column's cells as text, None where empty; stripped where it matters."""
    cells = np.full(len(frame), None, dtype=object)
    if column is None:
        return cells
    given = frame[column]
    filled = given.notna().to_numpy()
    texts = given.to_numpy(dtype=object)[filled]
    if name in _STRIPPED:
        # A loop beats pandas' .str methods on a million cells.
        texts = [text.strip() or None for text in texts]
    cells[filled] = texts
    if name in _WORDS:
        codes, distinct = pd.factorize(cells)
        tidy = np.array([str(word).strip() or None for word in distinct] + [None], dtype=object)
        cells = tidy[codes]
    return cells


def _lookup(cells: np.ndarray, meaning) -> np.ndarray:
    """``meaning(text)`` for every cell, computed once per distinct text (None stays None)."""
    codes, distinct = pd.factorize(cells)
    meant = np.array([meaning(text) for text in distinct] + [None], dtype=object)
    return meant[codes]


def _true(meant: np.ndarray) -> np.ndarray:
    """Where a looked-up meaning is True (None and False are not)."""
    return np.array([value is True for value in meant], dtype=bool)


def _client_ids(ids: np.ndarray, lines: np.ndarray, bad) -> np.ndarray:
    missing = pd.isna(ids)
    bad(missing, "client_id", "client_id is missing: every row needs its own id")
    too_long = np.array([text is not None and len(text) > MAX_CLIENT_ID for text in ids])
    bad(too_long, "client_id", f"client_id is longer than {MAX_CLIENT_ID} characters")
    repeated = pd.Series(ids).duplicated(keep="first").to_numpy() & ~missing
    if repeated.any():
        first_line = pd.Series(lines).groupby(ids, dropna=False).transform("first").to_numpy()
        bad(
            repeated, "client_id", lambda i: f"client_id {ids[i]!r} is also on line {first_line[i]}"
        )
    return ids


def _category(given: np.ndarray, categories: Mapping[str, IncidentCategory], bad) -> np.ndarray:
    names = {}
    for code, category in categories.items():
        for word in (code, category.name_zh, category.name_en):
            names[word.strip().lower()] = code
    codes = _lookup(given, lambda text: names.get(text.lower()))
    missing = pd.isna(given)
    bad(missing, "category", "category is missing")
    known = ", ".join(sorted(categories))
    bad(pd.isna(codes) & ~missing, "category",
        lambda i: f"unknown category {given[i]!r}; known: {known}")  # fmt: skip
    return codes


def _times(given: np.ndarray, name: str, bad) -> pd.Series:
    """ISO 8601 times (``/`` accepted between date parts); no offset means Shanghai time."""
    ns = np.full(len(given), np.iinfo(np.int64).min, dtype=np.int64)
    filled = ~pd.isna(given)
    try:
        ns[filled] = _parsed_ns(given[filled], zoned=False)
    except ValueError:  # offsets on some or different ones: parse each kind on its own
        at = np.flatnonzero(filled)
        zoned = np.array([_zoned(text) for text in given[at]], dtype=bool)
        ns[at[~zoned]] = _parsed_ns(given[at[~zoned]], zoned=False)
        ns[at[zoned]] = _parsed_ns(given[at[zoned]], zoned=True)
    # The rare cells ISO 8601 refuses get a second chance with date parts split by "/".
    retry = np.flatnonzero(filled & (ns == np.iinfo(np.int64).min))
    if len(retry):
        texts = np.array([text.replace("/", "-") for text in given[retry]], dtype=object)
        with contextlib.suppress(ValueError):
            ns[retry] = _parsed_ns(texts, zoned=any(_zoned(text) for text in texts))
    parsed = pd.Series(pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC"))
    bad(parsed.isna().to_numpy() & filled, name,
        lambda i: f"{name} {given[i]!r} is not a date and time ({_TIME_FORM})")  # fmt: skip
    # Microseconds, as PostgreSQL keeps them, so deadlines agree with what is stored.
    return parsed.dt.floor("us")


def _parsed_ns(texts: np.ndarray, *, zoned: bool) -> np.ndarray:
    """UTC nanoseconds of ISO 8601 texts (int64 minimum where unreadable)."""
    if not len(texts):
        return np.zeros(0, dtype=np.int64)
    parsed = pd.DatetimeIndex(pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=zoned))
    if parsed.tz is not None:
        return parsed.tz_convert("UTC").as_unit("ns").asi8
    local = parsed.as_unit("ns").asi8
    return np.where(parsed.isna(), local, local - _SHANGHAI_NS)


def _zoned(text: str) -> bool:
    tail = text[10:]
    return text[-1:] in ("Z", "z") or "+" in tail or "-" in tail


def _words(
    given: np.ndarray, words: Mapping[str, str], known: tuple[str, ...], name: str, bad
) -> pd.Series:
    lookup = {word.lower(): word for word in known} | dict(words)
    values = _lookup(given, lambda text: lookup.get(text.lower()))
    bad(pd.isna(values) & ~pd.isna(given), name,
        lambda i: f"unknown {name} {given[i]!r}; one of {', '.join(known)}")  # fmt: skip
    return pd.Series(values, dtype=object)


def _flags(given: np.ndarray, bad) -> np.ndarray:
    meaning = _lookup(
        given, lambda text: text.lower() in _TRUE or (text.lower() not in _FALSE and None)
    )
    bad(pd.isna(meaning) & ~pd.isna(given), "complex",
        lambda i: f"complex {given[i]!r} is not yes/no (1/0, 是/否)")  # fmt: skip
    return _true(meaning)


def _location(values: pd.DataFrame, cells: Mapping[str, np.ndarray], crs: str | None, bad) -> None:
    """Numbers and coordinate types of points, or a grid code; ranges checked for lon/lat."""
    has_lon, has_lat = ~pd.isna(cells["lon"]), ~pd.isna(cells["lat"])
    has_code = ~pd.isna(cells["grid_code"])
    point = has_lon | has_lat
    bad(~point & ~has_code, "lon", "no location: give lon, lat and coord_type, or grid_code")
    bad(has_lat & ~has_lon, "lon", "lon is missing (lat is given)")
    bad(has_lon & ~has_lat, "lat", "lat is missing (lon is given)")
    numbers = {}
    for name, has in (("lon", has_lon), ("lat", has_lat)):
        given = cells[name]
        numbers[name] = pd.to_numeric(pd.Series(given), errors="coerce").to_numpy(dtype=float)
        bad(has & ~np.isfinite(numbers[name]), name,
            lambda i, g=given, n=name: f"{n} {g[i]!r} is not a finite number")  # fmt: skip
    declared = np.where(pd.isna(cells["coord_type"]), crs, cells["coord_type"])
    kind = np.where(point, _lookup(declared, _coord_type), None)
    no_type = point & pd.isna(declared)
    bad(no_type, "coord_type",
        f"coord_type is missing: give it per row or --crs for the file ({ACCEPTED})")  # fmt: skip
    bad(point & ~no_type & pd.isna(kind), "coord_type",
        lambda i: f"coord_type {declared[i]!r} is unknown; use {ACCEPTED}")  # fmt: skip
    degrees = point & _true(_lookup(declared, _in_degrees))
    _ranges(numbers["lon"], numbers["lat"], degrees, bad)
    values["lon"], values["lat"], values["coord_type"] = numbers["lon"], numbers["lat"], kind
    values["grid_code"] = _codes(cells["grid_code"], bad)
    values["by_code"] = has_code & ~point


def _coord_type(text: str):
    try:
        return parse_coord_type(text, "coord_type")
    except GeogridError:
        return None  # reported row by row by the caller


def _in_degrees(text: str) -> bool:
    """Whether a coordinate type gives lon/lat in degrees (not a projected x/y)."""
    kind = _coord_type(text)
    return kind is not None and kind.epsg in (None, 4326, 4490)


def _ranges(lon: np.ndarray, lat: np.ndarray, degrees: np.ndarray, bad) -> None:
    """Degrees in range for lon/lat types; a latitude past 90 with a plausible one is a swap."""
    finite = np.isfinite(lon) & np.isfinite(lat)
    swapped = degrees & finite & (np.abs(lat) > 90) & (np.abs(lon) <= 90)
    bad(swapped, "lat",
        lambda i: f"lat/lon look swapped: lat {lat[i]} is beyond ±90 while lon {lon[i]} could"
        " be a latitude; give longitude in lon, latitude in lat")  # fmt: skip
    bad(degrees & finite & ~swapped & (np.abs(lon) > 180), "lon",
        lambda i: f"lon {lon[i]} is outside [-180, 180]")  # fmt: skip
    bad(degrees & finite & ~swapped & (np.abs(lon) <= 180) & (np.abs(lat) > 90), "lat",
        lambda i: f"lat {lat[i]} is outside [-90, 90]")  # fmt: skip


def _codes(given: np.ndarray, bad) -> np.ndarray:
    messages: dict[str, str] = {}

    def normalised(text: str) -> str | None:
        try:
            return normalise_code(text, field="grid_code")
        except GeogridError as exc:
            messages[text] = exc.message
            return None

    codes = _lookup(given, normalised)
    bad(pd.isna(codes) & ~pd.isna(given), "grid_code", lambda i: messages[given[i]])
    return codes


def _states_and_times(values: pd.DataFrame, ok: np.ndarray, bad) -> None:
    """The state (derived from the times when not given) and the order of the times."""
    accepted, resolved, evaluated = (values[n].notna().to_numpy() for n in TIME_FIELDS[1:])
    derived = np.select(
        [evaluated, resolved, accepted], ["evaluated", "resolved", "accepted"], "reported"
    )
    given = values["state"].to_numpy(dtype=object)
    state = np.where(pd.isna(given), derived, given)
    values["state"] = state
    satisfied = values["satisfaction"].notna().to_numpy()
    rules = (
        (np.isin(state, ("accepted", "dispatched", "in_progress")) & ~accepted, "accepted_at",
         "a {state} incident needs accepted_at"),
        (np.isin(state, ("resolved", "evaluated")) & ~resolved, "resolved_at",
         "a {state} incident needs resolved_at"),
        ((state == "evaluated") & ~evaluated, "evaluated_at",
         "an evaluated incident needs evaluated_at"),
        ((state == "evaluated") & ~satisfied, "satisfaction",
         "an evaluated incident needs satisfaction (satisfied or unsatisfied)"),
        ((state == "reported") & accepted, "accepted_at",
         "a reported incident has no accepted_at yet; give its state"),
        (~np.isin(state, ("resolved", "evaluated")) & resolved, "resolved_at",
         "a {state} incident has no resolved_at; give its state"),
        ((state != "evaluated") & evaluated, "evaluated_at",
         "a {state} incident has no evaluated_at; give its state"),
        ((state != "evaluated") & satisfied, "satisfaction",
         "a {state} incident has no satisfaction yet; give its state"),
    )  # fmt: skip
    for mask, name, message in rules:
        bad(ok & mask, name, lambda i, m=message: m.format(state=state[i]))
    order = (
        ("accepted_at", "reported_at"), ("resolved_at", "reported_at"),
        ("resolved_at", "accepted_at"), ("evaluated_at", "resolved_at"),
    )  # fmt: skip
    for later, earlier in order:
        before = (values[later] < values[earlier]).to_numpy()
        bad(ok & before, later, lambda i, a=later, b=earlier: f"{a} is before {b}")
