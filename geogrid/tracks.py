"""Patrol tracks stored: one upload cleaned, placed and written once; many at a time; read back.

:func:`store_track` cleans the fixes of one upload (:mod:`geogrid.trackclean`: GCJ-02 and
BD-09 converted first, spikes dropped, jumps, gaps and idle spells split off, all
reported), checks that the track touches the coverage (a track entirely outside every
grid of the current generation is refused and nothing is written), and writes each
continuous piece as one ``patrol_track`` row, time as M. Every row keeps the whole
upload's quality report with its part number.

Re-uploading the same file finds the first rows: a piece's ``digest`` is the SHA-256 of
its cleaned fixes (storage lon, lat and time as float64 bits), and the insert is
``INSERT ... ON CONFLICT (digest) DO NOTHING``, so the unique constraint, not a look-up,
makes a second copy impossible under any concurrency. A digest already stored for
another team is a Conflict: the same recording cannot be two teams' patrol.

Rows, digests and WKB, and the bulk path :func:`load_tracks` for a city's day, live in
:mod:`geogrid.trackload` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import LargeBinary, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geogrid.errors import Conflict, CoordinateError, InputError
from geogrid.geocode import locate
from geogrid.models import STORAGE_SRID, PatrolMember, PatrolTeam, PatrolTrack, PoliceStation
from geogrid.settings import Settings
from geogrid.shapes import frame_from_rows, wkb_column
from geogrid.trackclean import DEFAULT_RULES, Cleaned, CleaningRules, Quality, clean
from geogrid.trackfiles import TrackFixes
from geogrid.trackload import (
    LoadSummary,
    coverage_outline,
    load_tracks,
    note_outside,
    track_digest,
    track_row,
)
from geogrid.workdays import SHANGHAI

__all__ = [
    "DEFAULT_RULES",
    "CleaningRules",
    "LoadSummary",
    "Quality",
    "StoreResult",
    "clean",
    "list_tracks",
    "load_tracks",
    "store_track",
    "team_by_mark",
    "track_digest",
    "tracks_frame",
]


@dataclass
class StoreResult:
    """What storing one upload did: its first track, whether anything was new, the report.

    ``tracks`` holds every continuous piece the upload was split into (gaps, jumps, idle
    spells), in time order; ``track`` is the first of them.
    """

    track: PatrolTrack
    created: bool
    quality: Quality
    tracks: list[PatrolTrack] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "created": self.created,
            "tracks": [track_as_dict(track) for track in self.tracks],
            "quality": self.quality.as_dict(),
        }


def store_track(
    session: Session,
    settings: Settings,
    fixes: TrackFixes,
    *,
    team_mark: str,
    member_id: int | None = None,
    uploaded_by: str,
    rules: CleaningRules = DEFAULT_RULES,
) -> StoreResult:
    """Clean, place and store one upload (once, by digest); flushes, never commits."""
    team = team_by_mark(session, team_mark)
    _check_member(session, team, member_id)
    cleaned = clean(fixes, rules)
    _place(session, settings, cleaned)
    if not team.active:
        cleaned.quality.warnings.append(f"team {team.mark} is no longer active")
    tracks, created = [], False
    # One savepoint: every piece of the upload is written, or none.
    with session.begin_nested():
        for part, piece in enumerate(cleaned.pieces, start=1):
            values = track_row(team.id, member_id, fixes, piece, cleaned, part, uploaded_by)
            track, new = _insert_once(session, values, team)
            tracks.append(track)
            created = created or new
    return StoreResult(tracks[0], created, cleaned.quality, tracks)


def team_by_mark(session: Session, mark: str, *, field: str = "team") -> PatrolTeam:
    """The team with this unified mark number; InputError naming ``field`` otherwise."""
    team = session.scalar(select(PatrolTeam).where(PatrolTeam.mark == (mark or "").strip()))
    if team is None:
        raise InputError(f"there is no team with mark {mark!r}", field=field, mark=mark)
    return team


def _check_member(session: Session, team: PatrolTeam, member_id: int | None) -> None:
    if member_id is None:
        return
    member = session.get(PatrolMember, member_id)
    if member is None:
        raise InputError(f"there is no member {member_id}", field="member_id")
    if member.team_id != team.id:
        raise InputError(
            f"member {member_id} ({member.name}) is not in team {team.mark}", field="member_id"
        )


def _place(session: Session, settings: Settings, cleaned: Cleaned) -> None:
    """Count the fixes outside every grid; refuse a track that is entirely outside."""
    generation, outline = coverage_outline(session, settings)
    lon = np.concatenate([piece.lon for piece in cleaned.pieces])
    lat = np.concatenate([piece.lat for piece in cleaned.pieces])
    outside = ~shapely.intersects_xy(outline, lon, lat)
    if outside.all():
        raise _entirely_outside(session, settings, generation, lon[0], lat[0])
    note_outside(cleaned.quality, int(outside.sum()))


def _entirely_outside(
    session: Session, settings: Settings, generation: int, lon: float, lat: float
) -> CoordinateError:
    # The PostGIS lookup of the first fix says how far out it is, and whether swapping helps.
    location = locate(session, settings, float(lon), float(lat), "cgcs2000")
    if location.swapped_code is not None:
        return CoordinateError(
            f"the track lies outside every grid, but with lat and lon exchanged it falls in "
            f"grid {location.swapped_code}: give longitude in lon and latitude in lat",
            field="lat",
            swapped=True,
        )
    nearest = location.nearest or {"code": None, "distance_m": float("nan")}
    return CoordinateError(
        f"the track lies entirely outside the grids of generation {generation} (its first "
        f"fix is {nearest['distance_m'] / 1000:.1f} km from the nearest grid, "
        f"{nearest['code']}); check the declared coordinate type and the coordinates. "
        "Nothing was stored.",
        field="crs",
        nearest=nearest["code"],
        distance_m=nearest["distance_m"],
    )


def _insert_once(
    session: Session, values: dict[str, Any], team: PatrolTeam
) -> tuple[PatrolTrack, bool]:
    row = dict(values)
    wkb = row.pop("wkb")
    statement = (
        insert(PatrolTrack)
        .values(
            **row,
            geom=func.ST_GeomFromWKB(bindparam("wkb", wkb, type_=LargeBinary), STORAGE_SRID),
        )
        .on_conflict_do_nothing(index_elements=[PatrolTrack.digest])
        .returning(PatrolTrack.id)
    )
    track_id = session.scalar(statement)
    if track_id is not None:
        return session.get_one(PatrolTrack, track_id), True
    earlier = session.scalar(select(PatrolTrack).where(PatrolTrack.digest == values["digest"]))
    if earlier is None:  # pragma: no cover - the winner rolled back between statements
        raise Conflict("the same track is being stored by another upload; retry", field="file")
    if earlier.team_id != team.id:
        raise Conflict(
            f"this recording is already stored as track {earlier.id} of another team; "
            f"it cannot also be a patrol of {team.mark}",
            field="team",
            track_id=earlier.id,
        )
    return earlier, False


# -- reading back -----------------------------------------------------------------------


def tracks_frame(
    session: Session,
    *,
    day: date,
    station_code: str | None = None,
    team_ids: Sequence[int] | None = None,
) -> gpd.GeoDataFrame:
    """Tracks overlapping a Shanghai calendar day, whole, as LineStringM (M = epoch seconds).

    One row per track: track_id, team_id, team_mark, station_code, member_id, started_at,
    ended_at, point_count, geometry. ``station_code`` includes the teams of its community
    offices. Read the times with ``shapely.get_coordinates(geoms, include_m=True)``.
    """
    columns = [
        PatrolTrack.id.label("track_id"),
        PatrolTrack.team_id,
        PatrolTeam.mark.label("team_mark"),
        PatrolTeam.station_code,
        PatrolTrack.member_id,
        PatrolTrack.started_at,
        PatrolTrack.ended_at,
        PatrolTrack.point_count,
        wkb_column(PatrolTrack.geom).label("geometry"),
    ]
    query = _day_query(select(*columns), day, station_code, team_ids)
    rows = session.execute(query).all()
    return frame_from_rows(rows, [column.key for column in columns])


def list_tracks(
    session: Session,
    *,
    day: date,
    station_code: str | None = None,
    team_ids: Sequence[int] | None = None,
) -> list[PatrolTrack]:
    """The tracks overlapping a Shanghai calendar day, by team and start."""
    return list(session.scalars(_day_query(select(PatrolTrack), day, station_code, team_ids)))


def _day_query(query: Any, day: date, station_code: str | None, team_ids: Any) -> Any:
    start = datetime.combine(day, time(0), SHANGHAI)
    end = start + timedelta(days=1)
    query = query.join(PatrolTeam, PatrolTeam.id == PatrolTrack.team_id).where(
        PatrolTrack.started_at < end, PatrolTrack.ended_at >= start
    )
    if station_code is not None:
        stations = select(PoliceStation.code).where(
            or_(PoliceStation.code == station_code, PoliceStation.parent_code == station_code)
        )
        query = query.where(PatrolTeam.station_code.in_(stations))
    if team_ids is not None:
        query = query.where(PatrolTrack.team_id.in_([int(team) for team in team_ids]))
    return query.order_by(PatrolTrack.team_id, PatrolTrack.started_at, PatrolTrack.id)


def track_as_dict(track: PatrolTrack) -> dict[str, Any]:
    """A track's row as JSON-ready data (no geometry)."""
    return {
        "id": track.id,
        "team_id": track.team_id,
        "member_id": track.member_id,
        "started_at": track.started_at.astimezone(SHANGHAI).isoformat(),
        "ended_at": track.ended_at.astimezone(SHANGHAI).isoformat(),
        "point_count": track.point_count,
        "coord_type": track.coord_type,
        "source_format": track.source_format,
        "digest": track.digest,
        "uploaded_by": track.uploaded_by,
    }
