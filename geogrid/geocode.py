"""Geocoding into grids: which area of a level holds a point, and how sure that is.

The rules, shared by the PostGIS lookup here and the in-memory bulk path
(:mod:`geogrid.pointindex`), which must agree on every point:

* Containment is decided in the storage coordinates (CGCS2000 lon/lat) on the closed
  polygon: a point on a boundary is in every area whose boundary it lies on.
* ``inside`` — exactly one area holds the point and no other area is within
  ``near_edge_m`` metres.
* ``near_edge`` — one area holds it, and others are within ``near_edge_m``; they are
  given as ``candidates`` so a person can confirm.
* ``edge`` — several areas hold it (a shared boundary, or an overlap in a draft). The
  fixed rule: the point goes to the area with the **smallest code**; the others are
  candidates. Never none, never two.
* ``outside`` — no area holds it. The point is kept and flagged, with the nearest area
  and its distance, the areas within ``near_edge_m`` as candidates (a point a few
  centimetres outside the coverage most likely belongs to them), and ``swapped_code``
  when the point with lat and lon exchanged would fall in an area.

Distances are in metres in the generation's projected CRS (a CGCS2000 Gauss-Krüger
zone in China), computed the same way in PostGIS (``ST_Transform`` + ``ST_Distance``)
and in memory (pyproj + shapely). The codes of the coarser levels come from the
grid's code (its prefixes), which validation guarantees to nest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from geogrid.crs import check_lonlat, parse_coord_type, to_storage
from geogrid.generations import metric_srid_of, resolve_generation
from geogrid.models import STORAGE_SRID, Area, Generation
from geogrid.settings import Settings

INSIDE, NEAR_EDGE, EDGE, OUTSIDE = "inside", "near_edge", "edge", "outside"
STATUSES = (INSIDE, NEAR_EDGE, EDGE, OUTSIDE)

#: Metres per degree of latitude, rounded down, so a degree margin is never too small.
_METRES_PER_DEGREE = 110_000.0
#: How many areas nearest by bounding box are measured exactly to find the nearest.
_NEAREST_CANDIDATES = 10


@dataclass
class Location:
    """Where a point falls: the grid, its status, and the codes of every level above."""

    lon: float
    lat: float
    crs: str
    storage_lon: float
    storage_lat: float
    generation: int
    level: str
    status: str
    grid_code: str | None = None
    codes: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)
    nearest: dict[str, Any] | None = None
    swapped_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The location as JSON-ready data (containers copied: the caller may change them)."""
        # Not dataclasses.asdict: its deep copy was a tenth of a server's lookup.
        data = dict(self.__dict__)
        data.update(
            codes=dict(self.codes),
            names=dict(self.names),
            candidates=list(self.candidates),
            nearest=None if self.nearest is None else dict(self.nearest),
        )
        return data


def locate(
    session: Session,
    settings: Settings,
    lon: float,
    lat: float,
    crs: str | None,
    *,
    level: str | None = None,
    generation: int | None = None,
) -> Location:
    """Place one point into the areas of a level through PostGIS."""
    coord_type = parse_coord_type(crs)
    check_lonlat(lon, lat)
    scheme = settings.scheme
    level = level or scheme.default_geocode_level
    scheme.level(level)
    gen = resolve_generation(session, generation)
    srid = metric_srid_of(session, gen)
    storage_lon, storage_lat = (float(v) for v in to_storage(lon, lat, coord_type))
    location = Location(
        lon=lon,
        lat=lat,
        crs=coord_type.name,
        storage_lon=storage_lon,
        storage_lat=storage_lat,
        generation=gen.id,
        level=level,
        status=OUTSIDE,
    )
    near = _areas_near(session, gen, level, srid, storage_lon, storage_lat, settings.near_edge_m)
    covering = sorted(code for code, covers, _ in near if covers)
    close = sorted(
        code for code, covers, distance in near if not covers and distance <= settings.near_edge_m
    )
    if covering:
        location.grid_code = covering[0]
        location.candidates = sorted(covering[1:] + close)
        location.status = EDGE if len(covering) > 1 else (NEAR_EDGE if close else INSIDE)
        location.codes, location.names = _hierarchy(session, gen, scheme, location.grid_code)
        return location
    location.candidates = close
    location.nearest = _nearest(session, gen, level, srid, storage_lon, storage_lat)
    location.swapped_code = _covering_code(session, gen, level, storage_lat, storage_lon)
    return location


def degree_margin(metres: float, lat: float) -> float:
    """A margin in degrees that covers ``metres`` in any direction at this latitude."""
    cos_lat = max(math.cos(math.radians(min(abs(lat) + 1.0, 89.0))), 0.01)
    return metres / (_METRES_PER_DEGREE * cos_lat) * 1.5 + 1e-9


def _areas_near(
    session: Session, gen: Generation, level: str, srid: int, lon: float, lat: float, metres: float
) -> list[tuple[str, bool, float]]:
    params = _point_params(gen, level, srid, lon, lat) | {"margin": degree_margin(metres, lat)}
    return [
        (code, bool(covers), float(distance))
        for code, covers, distance in session.execute(_areas_near_query(), params)
    ]


def _nearest(
    session: Session, gen: Generation, level: str, srid: int, lon: float, lat: float
) -> dict[str, Any] | None:
    params = _point_params(gen, level, srid, lon, lat) | {"candidates": _NEAREST_CANDIDATES}
    row = session.execute(_nearest_query(), params).first()
    return None if row is None else {"code": row[0], "distance_m": float(row[1])}


def _covering_code(
    session: Session, gen: Generation, level: str, lon: float, lat: float
) -> str | None:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    params = {"generation": gen.id, "level": level, "lon": lon, "lat": lat}
    return session.scalar(_covering_query(), params)


def _point_params(gen: Generation, level: str, srid: int, lon: float, lat: float) -> dict[str, Any]:
    return {"generation": gen.id, "level": level, "srid": srid, "lon": lon, "lat": lat}


# The queries are built once, with bound parameters: every request composing them again
# cost more than PostGIS took to answer them.


def _here() -> ColumnElement[Any]:
    lon, lat = bindparam("lon", type_=Float), bindparam("lat", type_=Float)
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), STORAGE_SRID)


def _in_level() -> list[ColumnElement[bool]]:
    return [Area.level == bindparam("level"), Area.valid_in(bindparam("generation"))]


@cache
def _areas_near_query() -> Select[Any]:
    here, srid = _here(), bindparam("srid", type_=Integer)
    return select(
        Area.code,
        func.ST_Intersects(Area.geom, here),
        func.ST_Distance(func.ST_Transform(Area.geom, srid), func.ST_Transform(here, srid)),
    ).where(
        *_in_level(),
        Area.geom.op("&&")(func.ST_Expand(here, bindparam("margin", type_=Float))),
    )


@cache
def _nearest_query() -> Select[Any]:
    here, srid = _here(), bindparam("srid", type_=Integer)
    # The index orders by distance in degrees; measure a few in metres to pick the nearest.
    candidates = (
        select(Area.code, Area.geom)
        .where(*_in_level())
        .order_by(Area.geom.op("<->")(here))
        .limit(bindparam("candidates"))
        .subquery()
    )
    distance = func.ST_Distance(
        func.ST_Transform(candidates.c.geom, srid), func.ST_Transform(here, srid)
    )
    return select(candidates.c.code, distance).order_by(distance, candidates.c.code).limit(1)


@cache
def _covering_query() -> Select[Any]:
    return select(func.min(Area.code)).where(*_in_level(), func.ST_Intersects(Area.geom, _here()))


def _hierarchy(
    session: Session, gen: Generation, scheme: Any, code: str
) -> tuple[dict[str, str], dict[str, str]]:
    chain = [*scheme.ancestors_of(code), code]
    rows = session.execute(_hierarchy_query(), {"codes": chain, "generation": gen.id}).all()
    order = {level: depth for depth, level in enumerate(scheme.level_names)}
    rows = sorted(rows, key=lambda row: order[row[0]])
    codes = {level: code for level, code, _ in rows}
    names = {level: name for level, _, name in rows}
    return codes, names


@cache
def _hierarchy_query() -> Select[Any]:
    codes = bindparam("codes", type_=ARRAY(String))
    return select(Area.level, Area.code, Area.name).where(
        Area.code == any_(codes), Area.valid_in(bindparam("generation"))
    )
