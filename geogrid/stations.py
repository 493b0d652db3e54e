"""Police stations (派出所) and community police offices (警务室), and the grids they answer for.

A station's *family* is the station and the community offices under it; the grids a
station answers for are its family's (an office answers for its own). Grid codes are
checked against the current generation. Functions take a session and flush.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from geogrid.alliance_values import (
    STATION_LABELS,
    check_grid_codes,
    clean_text,
    lonlat_of,
    normalise_station_code,
    required_text,
    set_fields,
    station_kind,
    storage_point,
)
from geogrid.crs import CoordType
from geogrid.errors import Conflict, InputError, NotFound
from geogrid.models import PatrolTeam, PoliceStation, StationGrid


@dataclass(frozen=True)
class StationInfo:
    """A station or community office as listed: its point, its own grids, its teams."""

    code: str
    name: str
    kind: str
    kind_label: str
    parent_code: str | None
    lon: float
    lat: float
    grid_codes: list[str]
    teams: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def check_station_parent(
    code: str, kind: str, parent_code: str | None, parent_kind: str | None
) -> None:
    """A community office sits under a station; a station under nothing. InputError if not.

    ``parent_kind`` is the kind of the station ``parent_code`` names, None if none exists.
    """
    if kind == "station" and parent_code:
        raise InputError(
            f"{code} is a station (派出所); only a community office has a parent station",
            field="parent_code",
        )
    if kind == "community_office" and not parent_code:
        raise InputError(
            f"{code} is a community office (警务室): name the station it belongs to",
            field="parent_code",
        )
    if parent_code and parent_kind is None:
        raise NotFound(f"there is no station {parent_code}", field="parent_code")
    if parent_code and parent_kind != "station":
        raise InputError(
            f"{parent_code} is a community office; an office belongs to a station",
            field="parent_code",
        )


def add_station(
    session: Session,
    *,
    code: str,
    name: str,
    lon: float,
    lat: float,
    coord_type: CoordType,
    kind: str = "station",
    parent_code: str | None = None,
    grid_codes: Iterable[str] = (),
) -> PoliceStation:
    """A new station or community office at a point given in ``coord_type``."""
    code = normalise_station_code(code)
    if session.get(PoliceStation, code) is not None:
        raise Conflict(f"there is already a station {code}", field="code")
    kind = station_kind(kind)
    parent_code = normalise_station_code(parent_code, field="parent_code") if parent_code else None
    check_station_parent(code, kind, parent_code, _kind_of(session, parent_code))
    station = PoliceStation(code=code, kind=kind, parent_code=parent_code)
    set_fields(
        station,
        {"name": required_text(name, field="name"), "geom": storage_point(lon, lat, coord_type)},
    )
    session.add(station)
    session.flush()
    set_station_grids(session, code, grid_codes)
    return station


def update_station(
    session: Session,
    code: str,
    *,
    name: str | None = None,
    lonlat: tuple[float, float] | None = None,
    coord_type: CoordType | None = None,
) -> list[str]:
    """Rename or move a station (``lonlat`` given in ``coord_type``); the fields changed."""
    station = get_station(session, code, field="code")
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = required_text(name, field="name")
    if lonlat is not None:
        if coord_type is None:
            raise InputError("declare the coordinate type of the new point", field="crs")
        values["geom"] = storage_point(*lonlat, coord_type)
    changed = set_fields(station, values)
    session.flush()
    return changed


def get_station(session: Session, code: str, *, field: str = "station_code") -> PoliceStation:
    """A station by code; NotFound naming the field otherwise."""
    station = session.get(PoliceStation, clean_text(code).upper())
    if station is None:
        raise NotFound(f"there is no station {clean_text(code)!r}", field=field)
    return station


def _kind_of(session: Session, code: str | None) -> str | None:
    if not code:
        return None
    return session.scalar(select(PoliceStation.kind).where(PoliceStation.code == code))


def set_station_grids(
    session: Session, code: str, grid_codes: Iterable[str], *, replace: bool = False
) -> tuple[list[str], list[str]]:
    """Give a station grids (all of them when ``replace``); the codes added and removed."""
    station = get_station(session, code)
    wanted = list(dict.fromkeys(check_grid_codes(session, grid_codes)))
    own = set(own_grid_codes(session, station.code))
    added = [grid for grid in wanted if grid not in own]
    removed = sorted(own - set(wanted)) if replace else []
    session.add_all(StationGrid(station_code=station.code, grid_code=grid) for grid in added)
    if removed:
        session.execute(
            delete(StationGrid).where(
                StationGrid.station_code == station.code, StationGrid.grid_code.in_(removed)
            )
        )
    session.flush()
    return added, removed


def own_grid_codes(session: Session, code: str) -> list[str]:
    """The grids a station or office answers for itself, not through its offices."""
    return list(
        session.scalars(
            select(StationGrid.grid_code)
            .where(StationGrid.station_code == code)
            .order_by(StationGrid.grid_code)
        )
    )


def station_family(session: Session, code: str) -> list[str]:
    """A station and the community offices under it (an office: itself alone)."""
    station = get_station(session, code)
    offices = session.scalars(
        select(PoliceStation.code)
        .where(PoliceStation.parent_code == station.code)
        .order_by(PoliceStation.code)
    )
    return [station.code, *offices]


def station_grid_codes(session: Session, code: str) -> list[str]:
    """The grids a station answers for: its own and those of its community offices."""
    return list(
        session.scalars(
            select(StationGrid.grid_code)
            .where(StationGrid.station_code.in_(station_family(session, code)))
            .distinct()
            .order_by(StationGrid.grid_code)
        )
    )


def list_stations(session: Session, *, parent_code: str | None = None) -> list[StationInfo]:
    """Stations and offices by code, with their own grids and number of active teams."""
    teams = (
        select(PatrolTeam.station_code.label("key"), func.count().label("n"))
        .where(PatrolTeam.active)
        .group_by(PatrolTeam.station_code)
        .subquery()
    )
    query = (
        select(PoliceStation, func.coalesce(teams.c.n, 0))
        .outerjoin(teams, teams.c.key == PoliceStation.code)
        .order_by(PoliceStation.code)
    )
    if parent_code is not None:
        query = query.where(PoliceStation.parent_code == clean_text(parent_code).upper())
    grids: dict[str, list[str]] = {}
    for station_code, grid_code in session.execute(
        select(StationGrid.station_code, StationGrid.grid_code).order_by(StationGrid.grid_code)
    ):
        grids.setdefault(station_code, []).append(grid_code)
    out = []
    for station, team_count in session.execute(query):
        lon, lat = lonlat_of(station.geom)
        out.append(
            StationInfo(
                station.code,
                station.name,
                station.kind,
                STATION_LABELS[station.kind],
                station.parent_code,
                lon,
                lat,
                grids.get(station.code, []),
                team_count,
            )
        )
    return out
