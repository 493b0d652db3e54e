"""Patrol rows for tests, inserted directly (not through the alliance imports).

Shared by the patrol test modules (alliance, assignments, tracks, coverage, gaps); the
signatures are stable. Coordinates are CGCS2000 lon/lat as stored; every function
flushes and returns the row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time

import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import Float, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from geogrid.models import (
    PatrolAssignment,
    PatrolMember,
    PatrolOrganisation,
    PatrolTeam,
    PatrolTrack,
    PoliceStation,
    StationGrid,
)

STORAGE_SRID = 4490


def _point(lon: float, lat: float):
    return from_shape(shapely.Point(lon, lat), srid=STORAGE_SRID)


def add_organisation(db, name: str = "安居物业", *, kind: str = "property_management"):
    """An alliance member organisation."""
    organisation = PatrolOrganisation(name=name, kind=kind, county_code="370705")
    db.add(organisation)
    db.flush()
    return organisation


def add_station(
    db,
    code: str,
    *,
    lon: float,
    lat: float,
    grids: Iterable[str] = (),
    name: str | None = None,
    kind: str = "station",
    parent_code: str | None = None,
):
    """A police station at (lon, lat) answering for ``grids``."""
    station = PoliceStation(
        code=code,
        name=name or f"{code}派出所",
        kind=kind,
        parent_code=parent_code,
        geom=_point(lon, lat),
    )
    db.add(station)
    db.flush()
    for grid_code in grids:
        db.add(StationGrid(station_code=code, grid_code=grid_code))
    db.flush()
    return station


def add_team(
    db,
    mark: str,
    station_code: str,
    *,
    base: tuple[float, float] | None = None,
    capacity: float = 1.0,
    name: str | None = None,
    organisation_id: int | None = None,
    active: bool = True,
):
    """A team of ``station_code`` with unified mark ``mark``; ``base`` is (lon, lat)."""
    team = PatrolTeam(
        mark=mark,
        name=name or f"巡防队 {mark}",
        station_code=station_code,
        organisation_id=organisation_id,
        base=_point(*base) if base is not None else None,
        capacity=capacity,
        active=active,
    )
    db.add(team)
    db.flush()
    return team


def add_member(
    db,
    name: str,
    *,
    team=None,
    organisation=None,
    phone_masked: str = "138****1234",
    is_leader: bool = False,
    user_name: str | None = None,
):
    """A member, in ``team`` and ``organisation`` (rows or None)."""
    member = PatrolMember(
        name=name,
        team_id=team.id if team is not None else None,
        organisation_id=organisation.id if organisation is not None else None,
        phone_masked=phone_masked,
        is_leader=is_leader,
        user_name=user_name,
    )
    db.add(member)
    db.flush()
    return member


def add_assignment(
    db,
    team,
    grid_code: str,
    *,
    weekdays: int = 127,
    starts: time = time(8),
    ends: time = time(20),
    valid_from: date = date(2026, 1, 1),
    valid_to: date | None = None,
    locked: bool = False,
    source: str = "manual",
):
    """``team`` (a row) given ``grid_code`` for a shift pattern (bit 0 = Monday)."""
    assignment = PatrolAssignment(
        team_id=team.id,
        grid_code=grid_code,
        weekdays=weekdays,
        starts=starts,
        ends=ends,
        valid_from=valid_from,
        valid_to=valid_to,
        locked=locked,
        source=source,
        created_by="tester",
    )
    db.add(assignment)
    db.flush()
    return assignment


def fixes_digest(fixes: Sequence[tuple[float, float, float]]) -> str:
    """SHA-256 of fixes (lon, lat, epoch seconds), as the factory stores it."""
    text = "\n".join(f"{lon:.7f},{lat:.7f},{t:.3f}" for lon, lat, t in fixes)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def add_track_row(
    db,
    team,
    fixes: Sequence[tuple[float, float, float]],
    *,
    member=None,
    quality: dict | None = None,
    coord_type: str = "cgcs2000",
    source_format: str = "gpx",
):
    """A patrol track of ``team`` through ``fixes`` (lon, lat, epoch seconds), M = time.

    The LineStringM is built by PostGIS from bound arrays (shapely cannot build M).
    """
    if len(fixes) < 2:
        raise ValueError("a track needs at least two fixes")
    xs, ys, ms = (list(map(float, values)) for values in zip(*fixes, strict=True))
    points = (
        func.unnest(literal(xs, ARRAY(Float)), literal(ys, ARRAY(Float)), literal(ms, ARRAY(Float)))
        .table_valued("x", "y", "m", with_ordinality="n")
        .render_derived(name="fix")
    )
    geom = db.scalar(
        select(
            func.ST_SetSRID(
                func.ST_MakeLine(
                    aggregate_order_by(
                        func.ST_MakePointM(points.c.x, points.c.y, points.c.m), points.c.n
                    )
                ),
                STORAGE_SRID,
            )
        )
    )
    track = PatrolTrack(
        team_id=team.id,
        member_id=member.id if member is not None else None,
        started_at=datetime.fromtimestamp(min(ms), UTC),
        ended_at=datetime.fromtimestamp(max(ms), UTC),
        geom=geom,
        point_count=len(fixes),
        coord_type=coord_type,
        source_format=source_format,
        digest=fixes_digest(fixes),
        quality=quality or {},
        uploaded_by="tester",
    )
    db.add(track)
    db.flush()
    return track
