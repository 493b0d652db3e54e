"""Alliance values as people write them: types, marks, station codes, phones, points, grids.

Each function turns what a form, a command line or a spreadsheet cell holds into the
value stored, or raises an error naming the field. Phones are masked on the way in
(``138****1234``): the full number is never stored, returned or repeated in an error.
Grid codes are checked against the current generation at the level patrols work at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid.codes import CodeScheme, normalise_code
from geogrid.crs import CoordType, check_lonlat, to_storage
from geogrid.errors import CodeError, InputError
from geogrid.generations import resolve_generation
from geogrid.models import STORAGE_SRID, Area, Meta

#: The Chinese label of each organisation type, for the interface.
ORGANISATION_LABELS = {
    "property_management": "物业服务企业",
    "compound_guard": "小区门卫",
    "company_security": "单位保安",
    "sanitation": "环卫",
    "parks": "园林绿化",
    "taxi": "出租车司机",
    "shop": "沿街商户",
    "volunteer": "志愿者",
    "police": "公安",
}
#: The Chinese label of each station kind.
STATION_LABELS = {"station": "派出所", "community_office": "社区警务室"}

# Words people write in a type column, beyond the codes and the labels above. "保安"
# alone is left out on purpose: it is either a compound guard or company security.
_ORGANISATION_WORDS = {
    "物业": "property_management",
    "物业公司": "property_management",
    "门卫": "compound_guard",
    "小区保安": "compound_guard",
    "企业保安": "company_security",
    "保安公司": "company_security",
    "环卫工人": "sanitation",
    "园林": "parks",
    "公园": "parks",
    "出租车": "taxi",
    "商户": "shop",
    "店主": "shop",
    "志愿者队伍": "volunteer",
    "民警": "police",
    "警察": "police",
}
_STATION_WORDS = {"警务室": "community_office", "office": "community_office"}

#: A unified mark: PA, the county code (6 digits), a 4-digit number within the county.
MARK_FORMAT = "PA-<county code, 6 digits>-<4 digits>, e.g. PA-370705-0042"
_MARK = re.compile(r"PA-?(\d{6})-?(\d{4})")
_STATION_CODE = re.compile(r"[0-9A-Z][0-9A-Z_-]{0,31}")
_MASKED_PHONE = re.compile(r"(\d{3})\*+(\d{4})")
_PHONE_CHARACTERS = re.compile(r"[\s\-()（）]")
_SAME_POINT_DEG = 1e-9  # ~0.1 mm
_POINT_COLUMNS = ("geom", "base")


# -- values as people write them -------------------------------------------------------


def organisation_kind(value: Any, *, field: str = "kind") -> str:
    """The organisation type a word names: a code, its Chinese label, or a common word."""
    return _known_word(value, ORGANISATION_LABELS, _ORGANISATION_WORDS, field, "organisation type")


def station_kind(value: Any, *, field: str = "kind") -> str:
    """``station`` or ``community_office`` from a code or a word (派出所, 警务室)."""
    return _known_word(value, STATION_LABELS, _STATION_WORDS, field, "station kind")


def _known_word(
    value: Any, labels: dict[str, str], words: dict[str, str], field: str, what: str
) -> str:
    text = clean_text(value)
    by_word = {**{code: code for code in labels}, **{v: k for k, v in labels.items()}, **words}
    found = by_word.get(text) or by_word.get(text.lower())
    if found is None:
        accepted = ", ".join(f"{code} ({label})" for code, label in labels.items())
        raise InputError(f"{what} {text!r} is not known; use one of {accepted}", field=field)
    return found


def clean_text(value: Any) -> str:
    """A cell or argument as text with its whitespace collapsed ("" for None)."""
    return " ".join(str(value).split()) if value is not None else ""


def required_text(value: Any, *, field: str) -> str:
    """Non-empty text, or InputError naming the field."""
    text = clean_text(value)
    if not text:
        raise InputError(f"{field} is missing", field=field)
    return text


def mask_phone(value: Any, *, field: str = "phone") -> str:
    """The phone as kept: first 3 and last 4 digits (``138****1234``); "" for none.

    An already masked number is accepted. The number itself never appears in an error.
    """
    text = clean_text(value).replace(" ", "")
    if not text:
        return ""
    masked = _MASKED_PHONE.fullmatch(text)
    if masked:
        return f"{masked[1]}****{masked[2]}"
    digits = _PHONE_CHARACTERS.sub("", text)
    if not re.fullmatch(r"\+?\d+", digits):
        raise InputError(
            f"{field} is not a phone number: only digits, spaces, - and a leading +86",
            field=field,
        )
    digits = digits.removeprefix("+")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not 8 <= len(digits) <= 12:
        # Fewer than 8 digits would be shown whole by the mask.
        raise InputError(
            f"{field} has {len(digits)} digits; a phone number has 8 to 12 (a mobile 11)",
            field=field,
        )
    return f"{digits[:3]}****{digits[-4:]}"


def check_capacity(value: Any, *, field: str = "capacity") -> float:
    """A team's weekly capacity: a positive finite number."""
    try:
        capacity = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{field} {value!r} is not a number", field=field) from None
    if not 0 < capacity < float("inf"):
        raise InputError(f"{field} must be a positive number, not {value}", field=field)
    return capacity


def normalise_mark(value: Any, *, field: str = "mark") -> str:
    """A unified mark written as ``PA-370705-0042`` (hyphens and case optional on input)."""
    text = clean_text(value).replace(" ", "").upper()
    match = _MARK.fullmatch(text)
    if match is None:
        raise InputError(f"mark {text!r} is not a unified mark: {MARK_FORMAT}", field=field)
    return f"PA-{match[1]}-{match[2]}"


def normalise_station_code(value: Any, *, field: str = "code") -> str:
    """A station code such as ``370705-PS03``: letters, digits, - and _, at most 32."""
    text = clean_text(value).replace(" ", "").upper()
    if not _STATION_CODE.fullmatch(text):
        raise InputError(
            f"station code {text!r} must be 1-32 letters, digits, - or _ (e.g. 370705-PS03)",
            field=field,
        )
    return text


def storage_point(
    lon: Any, lat: Any, coord_type: CoordType, *, lon_field: str = "lon", lat_field: str = "lat"
) -> tuple[float, float]:
    """A lon/lat given in ``coord_type``, checked and converted to CGCS2000."""
    check_lonlat(lon, lat, lon_field=lon_field, lat_field=lat_field)
    x, y = to_storage(float(lon), float(lat), coord_type)
    check_lonlat(x, y, lon_field=lon_field, lat_field=lat_field)
    return float(x), float(y)


def set_fields(row: Any, values: dict[str, Any]) -> list[str]:
    """Set the attributes that differ from ``values``; the names of those changed."""
    changed = []
    for name, value in values.items():
        # Point columns come as storage lon/lat; a point re-imported within ~0.1 mm is
        # unchanged (WKB round trips and conversions may move the last digits).
        if name in _POINT_COLUMNS:
            if not _same_point(getattr(row, name), value):
                setattr(row, name, _point(value) if value is not None else None)
                changed.append(name)
        elif getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    return changed


def _point(lonlat: tuple[float, float]) -> Any:
    return from_shape(shapely.Point(*lonlat), srid=STORAGE_SRID)


def _same_point(stored: Any, lonlat: tuple[float, float] | None) -> bool:
    if stored is None or lonlat is None:
        return stored is None and lonlat is None
    point = to_shape(stored)
    return (
        abs(point.x - lonlat[0]) <= _SAME_POINT_DEG and abs(point.y - lonlat[1]) <= _SAME_POINT_DEG
    )


def lonlat_of(geom: Any) -> tuple[float, float] | None:
    """The stored lon/lat of a point column value (None stays None)."""
    if geom is None:
        return None
    point = to_shape(geom)
    return (point.x, point.y)


# -- grids ------------------------------------------------------------------------------


def patrol_level(session: Session) -> str:
    """The level patrols work at: ``grid`` where the database's code scheme has it."""
    stored = session.scalar(select(Meta.value).where(Meta.key == "code_scheme"))
    return CodeScheme.parse(stored).default_geocode_level if stored else "grid"


def unknown_grid_codes(session: Session, codes: Iterable[str]) -> list[str]:
    """The codes that are not a grid of the current generation, in the order given."""
    codes = list(dict.fromkeys(codes))
    generation = resolve_generation(session, None)
    known = set(
        session.scalars(
            select(Area.code).where(
                Area.code.in_(codes),
                Area.level == patrol_level(session),
                Area.valid_in(generation.id),
            )
        )
    )
    return [code for code in codes if code not in known]


def check_grid_codes(
    session: Session, codes: Iterable[str], *, field: str = "grid_code"
) -> list[str]:
    """Grid codes normalised and checked against the current generation; CodeError if not."""
    normalised = [normalise_code(code, field=field) for code in codes]
    unknown = unknown_grid_codes(session, normalised)
    if unknown:
        raise CodeError(
            f"no grid {', '.join(unknown)} in the current generation", field=field, codes=unknown
        )
    return normalised
