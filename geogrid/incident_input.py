"""A new incident as submitted: parsed from JSON-like data, every error naming its field.

:class:`IncidentInput` checks itself when built, so a channel that builds one directly
(the import) gets the same rules as one that parses a request body
(:meth:`IncidentInput.from_mapping`). What needs the database (does the category exist,
which grid holds the point) is checked at filing, in :mod:`geogrid.intake`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from geogrid.codes import normalise_code
from geogrid.crs import check_lonlat, parse_coord_type
from geogrid.errors import CoordinateError, InputError
from geogrid.models import CHANNELS
from geogrid.workdays import SHANGHAI

MAX_DESCRIPTION = 4000
MAX_PHOTOS = 9
MAX_PHOTO_REFERENCE = 1000
MAX_ADDRESS = 500
MAX_CONTACT_NAME = 100
#: Digits with the usual separators: 0536-8888888, +86 138 0000 0000, (0536)8888888.
_PHONE = re.compile(r"^\+?[0-9()\- ]{3,32}$")
#: Reports older than this are typos (grid management in China dates from 2004).
EARLIEST_REPORT = datetime(2000, 1, 1, tzinfo=SHANGHAI)
#: Names people reach for, and the field geogrid calls it.
_ALIASES = {
    "crs": "coord_type",
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "latitude": "lat",
    "contact": "contact_name and contact_phone",
}


@dataclass(frozen=True)
class IncidentInput:
    """What a reporter submits for a new incident, checked and normalised."""

    category: str
    description: str
    #: None: chosen from the filer's role at filing (see :mod:`geogrid.intake`).
    channel: str | None = None
    lon: float | None = None
    lat: float | None = None
    #: Required with lon/lat: wgs84, cgcs2000, gcj02, bd09 or EPSG:n (normalised).
    coord_type: str | None = None
    #: Instead of a point: the grid, for grid workers, officials and administrators.
    grid_code: str | None = None
    #: Aware; None means the moment of filing.
    reported_at: datetime | None = None
    address: str = ""
    #: References to photos stored elsewhere (URLs or object keys).
    photos: tuple[str, ...] = ()
    contact_name: str = ""
    contact_phone: str = ""
    complex: bool = False

    def __post_init__(self) -> None:
        self._set("category", _text(self.category, "category", limit=32).lower())
        self._set("description", _text(self.description, "description", limit=MAX_DESCRIPTION))
        if self.channel is not None and self.channel not in CHANNELS:
            raise InputError(
                f"unknown channel {self.channel!r}; channels: {', '.join(CHANNELS)}",
                field="channel",
            )
        self._check_location()
        if self.reported_at is not None:
            _check_moment(self.reported_at)
        self._set("address", _text(self.address, "address", limit=MAX_ADDRESS, empty=True))
        self._set("photos", _photos(self.photos))
        name = _text(self.contact_name, "contact_name", limit=MAX_CONTACT_NAME, empty=True)
        self._set("contact_name", name)
        self._set("contact_phone", _phone(self.contact_phone))
        if not isinstance(self.complex, bool):
            raise InputError(
                f"complex must be true or false, not {_kind(self.complex)}", field="complex"
            )

    @classmethod
    def from_mapping(cls, data: Any) -> IncidentInput:
        """Parse a JSON object (a mapping); unknown keys and wrong types name the field."""
        if not isinstance(data, Mapping):
            raise InputError("an incident is a JSON object of fields", field="body")
        names = {spec.name for spec in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in names)
        if unknown:
            named = [f"{key} (use {_ALIASES[key]})" if key in _ALIASES else key for key in unknown]
            raise InputError(
                f"unknown field(s) {', '.join(named)}; fields: {', '.join(sorted(names))}",
                field=unknown[0],
            )
        # A JSON null means "not given"; category and description are required.
        values = {
            name: _PARSERS[name](value, name) for name, value in data.items() if value is not None
        }
        for required in ("category", "description"):
            if required not in values:
                raise InputError(f"{required} is missing", field=required)
        return cls(**values)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen instance as it is built

    def _check_location(self) -> None:
        point_given = [n for n in ("lon", "lat", "coord_type") if getattr(self, n) is not None]
        if self.grid_code is not None:
            if point_given:
                raise InputError(
                    f"give either a point (lon, lat, coord_type) or grid_code, not both "
                    f"(got grid_code and {', '.join(point_given)})",
                    field="grid_code",
                )
            self._set("grid_code", normalise_code(self.grid_code, field="grid_code"))
            return
        for name in ("lon", "lat"):
            value = getattr(self, name)
            if value is None:
                raise CoordinateError(
                    f"{name} is missing: give lon, lat and coord_type (or a grid_code)",
                    field=name,
                )
            self._set(name, _number(value, name))
        self._set("coord_type", parse_coord_type(self.coord_type, field="coord_type").name)
        check_lonlat(self.lon, self.lat)
        if self.lon == 0 and self.lat == 0:
            raise CoordinateError(
                "lon 0, lat 0 is what a phone sends without a location fix; give the real point",
                field="lon",
            )


# -- field parsers (a JSON value to a Python value) ----------------------------------------


def _text(value: Any, name: str, *, limit: int, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, not {_kind(value)}", field=name)
    value = value.strip()
    if not value and not empty:
        raise InputError(f"{name} must not be empty", field=name)
    if len(value) > limit:
        raise InputError(f"{name} has {len(value)} characters; at most {limit}", field=name)
    if "\x00" in value:
        raise InputError(f"{name} contains a NUL character", field=name)
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CoordinateError(f"{name} must be a number, not {_kind(value)}", field=name)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise CoordinateError(f"{name} {value!r} is not a number", field=name) from None
    if not math.isfinite(number):
        raise CoordinateError(f"{name} {value!r} is not a finite number", field=name)
    return number


def _check_moment(moment: Any) -> None:
    if not isinstance(moment, datetime):
        raise InputError(
            f"reported_at must be a date-time, not {_kind(moment)}", field="reported_at"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(
            "reported_at needs a UTC offset, e.g. 2026-11-30T09:15:00+08:00", field="reported_at"
        )
    if moment < EARLIEST_REPORT:
        raise InputError(
            f"reported_at {moment.isoformat()} is before {EARLIEST_REPORT.year}; check the year",
            field="reported_at",
        )


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise InputError(f"{name} must be an ISO 8601 string, not {_kind(value)}", field=name)
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"{name} {value!r} is not ISO 8601, e.g. 2026-11-30T09:15:00+08:00", field=name
        ) from None


def _photos(value: Any, name: str = "photos") -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InputError(f"photos must be a list of strings, not {_kind(value)}", field="photos")
    if len(value) > MAX_PHOTOS:
        raise InputError(f"at most {MAX_PHOTOS} photos, not {len(value)}", field="photos")
    for reference in value:
        if not isinstance(reference, str) or not reference.strip():
            raise InputError("each photo is a non-empty string (a URL or key)", field="photos")
        if len(reference) > MAX_PHOTO_REFERENCE or not reference.isprintable():
            raise InputError(
                f"a photo reference is at most {MAX_PHOTO_REFERENCE} printable characters",
                field="photos",
            )
    return tuple(reference.strip() for reference in value)


def _phone(value: Any) -> str:
    phone = _text(value, "contact_phone", limit=32, empty=True)
    if phone and not _PHONE.match(phone):
        raise InputError(
            f"contact_phone {phone!r} is not a phone number (digits, +, -, spaces, brackets)",
            field="contact_phone",
        )
    return phone


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, not {_kind(value)}", field=name)
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, not {_kind(value)}", field=name)
    return value


def _code(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{name} must be a string of digits, not {_kind(value)}", field=name)
    return normalise_code(value, field=name)


def _kind(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", tuple: "a list", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


_PARSERS = {
    "category": _string,
    "description": _string,
    "channel": _string,
    "lon": _number,
    "lat": _number,
    "coord_type": _string,
    "grid_code": _code,
    "reported_at": _moment,
    "address": _string,
    "photos": _photos,
    "contact_name": _string,
    "contact_phone": _string,
    "complex": _flag,
}
