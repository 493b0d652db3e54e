"""Coordinate types and conversions: whatever comes in is stored as CGCS2000 lon/lat.

Every coordinate entering geogrid carries a declared type (``wgs84``, ``cgcs2000``,
``gcj02``, ``bd09`` or ``EPSG:n``); storage is CGCS2000 (EPSG:4490) and the axis order is
lon, lat everywhere (pyproj with ``always_xy=True``).

WGS84 and CGCS2000 are treated as the same numbers. Their ellipsoids differ by well under
a millimetre on the ground and the frames agreed to a few centimetres at epoch 2000.0;
plate motion since then adds a few centimetres a year, still far below phone GNSS error
and the width of a grid. PROJ has no better answer either: its EPSG:4326 -> EPSG:4490
operation is a "ballpark" (null) transformation, so EPSG types agree with the named ones.

GCJ-02 (Amap, Tencent, WeChat) shifts points by up to ~700 m, BD-09 (Baidu) by ~1.5 km.
Decision on how to compute them: prcoords is the reference (public domain, tested
against the published formula), but its API is one Python call per point (about 4 us
forward, 11 us for its precise inverse), i.e. seconds to tens of seconds for a
million points. So the published forward formulas are re-expressed here in numpy, and
each inverse is solved by fixed-point iteration to convergence (the forward image within
1e-8 degrees of the input) rather than prcoords' approximations; round trips come back
within 0.1 mm. A million points take ~0.25 s forward and ~0.7 s (GCJ-02) or ~1 s (BD-09)
back on a small machine. ``tests/test_crs.py`` holds the numbers to prcoords at many
points and asserts round trips under 0.05 m across China.

"In China" is prcoords' box (lat 0.8293-55.8271, lon 72.004-137.8347), as used by most
implementations: outside it GCJ-02 is plain WGS84. The BD-09 layer on top of GCJ-02 is
applied everywhere, as prcoords does. The inverse decides "in China" on its input, so
only points within ~700 m of the box's edge (all of it outside China's territory) may
not round-trip.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geogrid.errors import CoordinateError

STORAGE_EPSG = 4490

Floats: TypeAlias = NDArray[np.float64]
#: What a conversion returns: floats for scalar input, arrays shaped like the input.
Coordinates: TypeAlias = tuple[Any, Any]
Geometries: TypeAlias = Any  # a shapely geometry or an array of them (None allowed)


@dataclass(frozen=True)
class CoordType:
    """A declared coordinate type: a named datum or offset, or an EPSG CRS."""

    name: str
    # None for GCJ-02 and BD-09: no EPSG code describes an obfuscation.
    epsg: int | None


WGS84 = CoordType("wgs84", 4326)
CGCS2000 = CoordType("cgcs2000", STORAGE_EPSG)
GCJ02 = CoordType("gcj02", None)
BD09 = CoordType("bd09", None)
_NAMED = {t.name: t for t in (WGS84, CGCS2000, GCJ02, BD09)}
_EPSG_PATTERN = re.compile(r"epsg:\s*(\d+)")
ACCEPTED = "wgs84, cgcs2000, gcj02, bd09 or EPSG:n (e.g. EPSG:4490, EPSG:3857, EPSG:4549)"

# prcoords' box where Chinese providers apply GCJ-02.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

# GCJ-02 expresses its metre offsets on the Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_E2 = 0.00669342162296594323

_BD_WAVE = math.radians(3000.0)  # the ripple's frequency, radians per degree
_BD_DLON, _BD_DLAT = 0.0065, 0.0060

_TOLERANCE_DEG = 1e-8  # a miss of ~1 mm; float64 at 100 degrees resolves ~1e-14
_MAX_ITERATIONS = 12  # the offsets' slopes are < 0.01: 3 or 4 rounds suffice

# CGCS2000 3-degree Gauss-Krüger zones, "CM" variants: one EPSG code per 3 degrees.
_GK_FIRST_EPSG, _GK_FIRST_CM, _GK_LAST_CM = 4534, 75, 135


def parse_coord_type(text: str | None, field: str = "crs") -> CoordType:
    """The coordinate type a user declared, e.g. ``gcj02`` or ``EPSG:4549``."""
    if text is None or not isinstance(text, str) or not text.strip():
        raise CoordinateError(
            f"{field} is missing: declare the coordinate type, one of {ACCEPTED}",
            field=field,
            accepted=ACCEPTED,
        )
    key = text.strip().lower()
    if key in _NAMED:
        return _NAMED[key]
    match = _EPSG_PATTERN.fullmatch(key)
    if match is None:
        raise CoordinateError(
            f"{field} {text!r} is not a coordinate type; use one of {ACCEPTED}",
            field=field,
            accepted=ACCEPTED,
        )
    epsg = int(match[1])
    if epsg in (WGS84.epsg, CGCS2000.epsg):
        return WGS84 if epsg == WGS84.epsg else CGCS2000
    if not _usable_epsg(epsg):
        raise CoordinateError(
            f"{field} {text!r} is not a horizontal EPSG CRS that geogrid can use",
            field=field,
            accepted=ACCEPTED,
        )
    return CoordType(f"EPSG:{epsg}", epsg)


@lru_cache(maxsize=256)
def _usable_epsg(epsg: int) -> bool:
    try:
        crs = CRS.from_epsg(epsg)
    except CRSError:
        return False
    return crs.is_geographic or crs.is_projected


# --- GCJ-02 and BD-09 ------------------------------------------------------------------


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """GCJ-02 (Amap/Tencent) lon/lat of WGS84 points; unchanged outside China."""
    x, y, shape = _flat(lon, lat)
    inside = _in_china(x, y)
    x[inside], y[inside] = _gcj_forward(x[inside], y[inside])
    return _shaped(x, y, shape)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """WGS84 lon/lat of GCJ-02 points (exact inverse); unchanged outside China."""
    if isinstance(lon, float | int) and isinstance(lat, float | int):
        return _gcj02_to_wgs84_point(float(lon), float(lat))
    x, y, shape = _flat(lon, lat)
    inside = _in_china(x, y)
    gx, gy = x[inside], y[inside]
    x[inside], y[inside] = _invert(_gcj_forward, gx, gy, gx, gy)
    return _shaped(x, y, shape)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """BD-09 (Baidu) lon/lat of GCJ-02 points."""
    x, y, shape = _flat(lon, lat)
    return _shaped(*_bd_forward(x, y), shape)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """GCJ-02 lon/lat of BD-09 (Baidu) points (exact inverse)."""
    x, y, shape = _flat(lon, lat)
    return _shaped(*_invert(_bd_forward, x, y, x - _BD_DLON, y - _BD_DLAT), shape)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """BD-09 (Baidu) lon/lat of WGS84 points."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """WGS84 lon/lat of BD-09 (Baidu) points."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _gcj_forward(lon: Any, lat: Any, xp: Any = np) -> tuple[Any, Any]:
    # The published GCJ-02 formula: offsets in metres from sums of sines around
    # (105E, 35N), turned into degrees with Krasovsky radii of curvature at the point.
    # ``xp`` is numpy for arrays or :data:`_SCALAR_MATH` for one point (~13 us instead of
    # ~460 us there: numpy's cost per call dwarfs one value's work).
    x, y = lon - 105.0, lat - 35.0
    x_waves = _waves(x, xp)
    y_waves = _waves(y, xp)
    shared = 2.0 * x_waves.sin_6 + 2.0 * x_waves.sin_2
    north_m = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * xp.sqrt(xp.abs(x))
        + (
            shared
            + 2.0 * y_waves.sin_1
            + 4.0 * y_waves.sin_1_3
            + 16.0 * xp.sin(np.pi * y / 12.0)
            + 32.0 * xp.sin(np.pi * y / 30.0)
        )
        * 20.0
        / 3.0
    )
    east_m = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * xp.sqrt(xp.abs(x))
        + (
            shared
            + 2.0 * x_waves.sin_1
            + 4.0 * x_waves.sin_1_3
            + 15.0 * xp.sin(np.pi * x / 12.0)
            + 30.0 * xp.sin(np.pi * x / 30.0)
        )
        * 20.0
        / 3.0
    )
    sin2_lat = xp.sin(xp.radians(lat)) ** 2
    w2 = 1.0 - _KRASOVSKY_E2 * sin2_lat
    meridian_radius = _KRASOVSKY_A * (1.0 - _KRASOVSKY_E2) / (w2 * xp.sqrt(w2))
    parallel_radius = _KRASOVSKY_A * xp.sqrt((1.0 - sin2_lat) / w2)  # cos(lat) >= 0
    return lon + xp.degrees(east_m / parallel_radius), lat + xp.degrees(north_m / meridian_radius)


class _Waves(NamedTuple):
    sin_1_3: Floats  # sin(pi t / 3)
    sin_1: Floats  # sin(pi t)
    sin_2: Floats  # sin(2 pi t)
    sin_6: Floats  # sin(6 pi t)


def _waves(t: Any, xp: Any = np) -> _Waves:
    # np.sin costs ~20 ns a value in float64 and dominates the formula, which the inverse
    # evaluates up to four times; triple- and double-angle identities give the faster
    # waves from sin and cos of pi t / 3, exact to a few ulp.
    third = np.pi * t / 3.0
    s, c = xp.sin(third), xp.cos(third)
    sin_1 = s * (3.0 - 4.0 * s * s)
    cos_1 = c * (4.0 * c * c - 3.0)
    sin_2 = 2.0 * sin_1 * cos_1
    return _Waves(s, sin_1, sin_2, sin_2 * (3.0 - 4.0 * sin_2 * sin_2))


def _bd_forward(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    # The published BD-09 formula, in polar form about (0, 0): a ripple on the radius and
    # on the angle, then a fixed shift.
    radius = np.hypot(lon, lat) + 2e-5 * np.sin(lat * _BD_WAVE)
    angle = np.arctan2(lat, lon) + 3e-6 * np.cos(lon * _BD_WAVE)
    return radius * np.cos(angle) + _BD_DLON, radius * np.sin(angle) + _BD_DLAT


def _invert(
    forward: Callable[[Floats, Floats], tuple[Floats, Floats]],
    target_lon: Floats,
    target_lat: Floats,
    lon: Floats,
    lat: Floats,
) -> tuple[Floats, Floats]:
    # Fixed point of p -> p - (forward(p) - target). Both offsets change by under 1% of
    # any change in position, so each round shrinks the error a hundredfold; once a
    # point's miss is below tolerance, its last step left it ~100 times closer still.
    # Only points still missing are carried into the next round.
    lon, lat = lon.copy(), lat.copy()
    active = np.arange(lon.size)
    for _ in range(_MAX_ITERATIONS):
        image_lon, image_lat = forward(lon[active], lat[active])
        miss_lon, miss_lat = image_lon - target_lon[active], image_lat - target_lat[active]
        lon[active] -= miss_lon
        lat[active] -= miss_lat
        # NaN compares False, so a NaN input drops out instead of holding the loop open.
        active = active[(np.abs(miss_lon) > _TOLERANCE_DEG) | (np.abs(miss_lat) > _TOLERANCE_DEG)]
        if not active.size:
            break
    return lon, lat


def _gcj02_to_wgs84_point(lon: float, lat: float) -> tuple[float, float]:
    # One point, as a server's single lookups ask: the same fixed point as _invert, on
    # plain floats (tests/test_crs.py holds it to the array path).
    if not (_in_china(lon, lat) and math.isfinite(lon) and math.isfinite(lat)):
        return lon, lat
    x, y = lon, lat
    for _ in range(_MAX_ITERATIONS):
        image_lon, image_lat = _gcj_forward(x, y, _SCALAR_MATH)
        miss_lon, miss_lat = image_lon - lon, image_lat - lat
        x, y = x - miss_lon, y - miss_lat
        if abs(miss_lon) <= _TOLERANCE_DEG and abs(miss_lat) <= _TOLERANCE_DEG:
            break
    return x, y


class _ScalarMath(NamedTuple):
    sin: Callable[[float], float]
    cos: Callable[[float], float]
    sqrt: Callable[[float], float]
    abs: Callable[[float], float]
    radians: Callable[[float], float]
    degrees: Callable[[float], float]


#: The numpy functions the GCJ-02 formula uses, for one point.
_SCALAR_MATH = _ScalarMath(math.sin, math.cos, math.sqrt, abs, math.radians, math.degrees)


def _in_china(lon: Any, lat: Any) -> Any:
    return (
        (lon >= _CHINA_LON[0])
        & (lon <= _CHINA_LON[1])
        & (lat >= _CHINA_LAT[0])
        & (lat <= _CHINA_LAT[1])
    )


def _flat(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats, tuple[int, ...]]:
    # Fresh 1-D float copies, so conversions can write in place and boolean masks work
    # the same for scalars and arrays of any shape.
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return x.flatten(), y.flatten(), x.shape


def _shaped(x: Floats, y: Floats, shape: tuple[int, ...]) -> Coordinates:
    if shape == ():
        return float(x[0]), float(y[0])
    return x.reshape(shape), y.reshape(shape)


# --- storage ---------------------------------------------------------------------------

_Conversion: TypeAlias = Callable[[ArrayLike, ArrayLike], Coordinates]
_TO_WGS84: dict[CoordType, _Conversion] = {GCJ02: gcj02_to_wgs84, BD09: bd09_to_wgs84}
_FROM_WGS84: dict[CoordType, _Conversion] = {GCJ02: wgs84_to_gcj02, BD09: wgs84_to_bd09}


def to_storage(lon: ArrayLike, lat: ArrayLike, coord_type: CoordType) -> Coordinates:
    """CGCS2000 lon/lat of points given in ``coord_type`` (x/y for projected EPSG types)."""
    if coord_type in _TO_WGS84:
        return _TO_WGS84[coord_type](lon, lat)
    x, y, shape = _flat(lon, lat)
    if coord_type not in (WGS84, CGCS2000):
        x, y = _transformer(_epsg_of(coord_type), STORAGE_EPSG).transform(x, y)
    return _shaped(x, y, shape)


def from_storage(lon: ArrayLike, lat: ArrayLike, coord_type: CoordType) -> Coordinates:
    """Points stored as CGCS2000 lon/lat, expressed in ``coord_type``."""
    if coord_type in _FROM_WGS84:
        return _FROM_WGS84[coord_type](lon, lat)
    x, y, shape = _flat(lon, lat)
    if coord_type not in (WGS84, CGCS2000):
        x, y = _transformer(STORAGE_EPSG, _epsg_of(coord_type)).transform(x, y)
    return _shaped(x, y, shape)


def geometry_to_storage(geoms: Geometries, coord_type: CoordType) -> Geometries:
    """A geometry (or array of them) given in ``coord_type``, in CGCS2000 lon/lat."""
    if coord_type in (WGS84, CGCS2000):
        return geoms
    return shapely.transform(geoms, lambda x, y: to_storage(x, y, coord_type), interleaved=False)


def geometry_from_storage(geoms: Geometries, coord_type: CoordType) -> Geometries:
    """A stored CGCS2000 geometry (or array of them), expressed in ``coord_type``."""
    if coord_type in (WGS84, CGCS2000):
        return geoms
    return shapely.transform(geoms, lambda x, y: from_storage(x, y, coord_type), interleaved=False)


def _epsg_of(coord_type: CoordType) -> int:
    if coord_type.epsg is None:
        raise CoordinateError(f"no EPSG code for coordinate type {coord_type.name}", field="crs")
    return coord_type.epsg


@lru_cache(maxsize=64)
def _transformer(source_epsg: int, target_epsg: int) -> Transformer:
    # Transformers are costly to build and thread-safe to share (pyproj >= 3.1).
    return Transformer.from_crs(source_epsg, target_epsg, always_xy=True)


# --- checks ----------------------------------------------------------------------------


def check_lonlat(lon: Any, lat: Any, *, lon_field: str = "lon", lat_field: str = "lat") -> None:
    """Raise CoordinateError naming the field if a lon/lat is missing or out of range."""
    x, y = np.broadcast_arrays(_numbers(lon, lon_field), _numbers(lat, lat_field))
    bad = ~np.isfinite(x) | ~np.isfinite(y) | (np.abs(x) > 180) | (np.abs(y) > 90)
    if not bad.any():
        return
    index = int(np.argmax(bad.ravel()))
    bad_lon, bad_lat = float(x.flat[index]), float(y.flat[index])
    message, field, details = _describe(bad_lon, bad_lat, lon_field, lat_field)
    if x.ndim:
        message, details["index"] = f"point {index}: {message}", index
    raise CoordinateError(message, field=field, lon=bad_lon, lat=bad_lat, **details)


def looks_swapped(lon: float, lat: float) -> bool:
    """Whether (lat, lon) would be a point in China while (lon, lat) is not."""
    return bool(_in_china(lat, lon) and not _in_china(lon, lat))


def _numbers(value: Any, field: str) -> Floats:
    if value is None:
        raise CoordinateError(f"{field} is missing", field=field)
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CoordinateError(f"{field} {value!r} is not a number", field=field) from None


def _describe(
    lon: float, lat: float, lon_field: str, lat_field: str
) -> tuple[str, str, dict[str, Any]]:
    # The first problem found, in the order a person would fix them.
    if not math.isfinite(lon):
        return f"{lon_field} {lon} is not a finite number", lon_field, {}
    if not math.isfinite(lat):
        return f"{lat_field} {lat} is not a finite number", lat_field, {}
    if abs(lat) > 90 and abs(lon) <= 90:
        hint = " (the other way round they fall in China)" if looks_swapped(lon, lat) else ""
        message = (
            f"lat/lon look swapped: {lat_field} {lat} is beyond ±90 while {lon_field} {lon} "
            f"could be a latitude{hint}; give longitude in {lon_field}, latitude in {lat_field}"
        )
        return message, lat_field, {"swapped": True}
    if abs(lon) > 180:
        return f"{lon_field} {lon} is outside [-180, 180]", lon_field, {}
    return f"{lat_field} {lat} is outside [-90, 90]", lat_field, {}


# --- metres ----------------------------------------------------------------------------


def metric_crs_for(lon: float, lat: float) -> int:
    """EPSG code of a metric CRS for a place: a CGCS2000 3° Gauss-Krüger zone, else UTM."""
    check_lonlat(lon, lat)
    if _in_china(lon, lat):
        # Zone n is centred on 3n degrees and a zone edge (3n + 1.5) goes east. The box
        # reaches 1.5° past the outer zones, where Gauss-Krüger stretches lengths ~0.1%.
        meridian = min(max(3 * math.floor(lon / 3 + 0.5), _GK_FIRST_CM), _GK_LAST_CM)
        return _GK_FIRST_EPSG + (meridian - _GK_FIRST_CM) // 3
    zone = min(int((lon + 180) // 6) + 1, 60)  # lon 180 belongs to zone 60
    return (32600 if lat >= 0 else 32700) + zone


def metric_transformer(epsg: int) -> Transformer:
    """Cached transformer from stored CGCS2000 lon/lat to the metric CRS ``epsg``."""
    return _transformer(STORAGE_EPSG, epsg)


def to_metric(lon: ArrayLike, lat: ArrayLike, epsg: int) -> Coordinates:
    """Stored CGCS2000 lon/lat as x/y metres in the metric CRS ``epsg``."""
    x, y, shape = _flat(lon, lat)
    return _shaped(*metric_transformer(epsg).transform(x, y), shape)


def geometry_to_metric(geoms: Geometries, epsg: int) -> Geometries:
    """A stored CGCS2000 geometry (or array of them) in metres in the metric CRS ``epsg``."""
    return shapely.transform(geoms, metric_transformer(epsg).transform, interleaved=False)
