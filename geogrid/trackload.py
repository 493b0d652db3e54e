"""Patrol track rows: digest, WKB and values of a cleaned piece; many uploads loaded at once.

A piece's ``digest`` is the SHA-256 of its cleaned fixes (storage lon, lat and time as
float64 bits), so uploading the same recording again, in any format, finds the row.
Geometry enters PostGIS as ISO WKB that numpy builds from the arrays (type 2002,
LineString M, time as M) and ``ST_GeomFromWKB`` reads: no WKT text, no per-point SQL,
and every bit of every coordinate and time is kept.

:func:`coverage_outline` is what "outside every grid" is measured against: the union of
the grids of the current generation (a validated coverage, so ``coverage_union_all``
is exact), prepared and cached per database and generation, tested closed (a fix on
the outline is inside, as :func:`geogrid.geocode.locate` has it). Tracks need no grid
per fix, only inside or not: 3 million fixes take about a second, where placing each
into its grid would take a minute.

:func:`load_tracks` is the bulk path for a city's day (thousands of tracks of hundreds
of fixes): each upload is cleaned (:func:`geogrid.trackclean.clean`), all fixes are
tested against the outline at once, the rows are COPYed into a temporary table and
inserted set-based with ``INSERT ... SELECT ... ON CONFLICT (digest) DO NOTHING``:
pieces already stored are counted, not duplicated. An upload that cannot be stored
(unknown team, nothing left after cleaning, entirely outside the grids) is listed with
its position and reason; the others are stored.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import numpy as np
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tqdm import tqdm

from geogrid.errors import GeogridError, InputError
from geogrid.generations import generation_areas, resolve_generation
from geogrid.models import STORAGE_SRID, PatrolMember, PatrolTeam, PatrolTrack
from geogrid.settings import Settings
from geogrid.trackclean import DEFAULT_RULES, Cleaned, CleaningRules, Quality, clean_many
from geogrid.trackfiles import TrackFixes

_DIGEST_VERSION = b"geogrid patrol track v1\n"
# ISO WKB: little-endian, LineString M (2002), number of points; then x, y, m doubles.
_WKB_HEADER = struct.Struct("<BII")
_LINESTRING_M = 2002
_OUTLINES_KEPT = 8
#: Uploads cleaned together (one coordinate conversion per type and batch).
_CLEAN_BATCH = 500
_outlines: OrderedDict[tuple[Any, ...], shapely.Geometry] = OrderedDict()
_outline_lock = threading.Lock()


def track_digest(piece: TrackFixes) -> str:
    """SHA-256 of cleaned fixes in storage coordinates (lon, lat, t as float64 bits)."""
    digest = hashlib.sha256(_DIGEST_VERSION)
    for values in (piece.lon, piece.lat, piece.t):
        digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
    return digest.hexdigest()


def note_outside(quality: Quality, outside: int) -> None:
    """Record how many fixes fell outside every grid, with a warning when any did."""
    quality.outside_fixes = outside
    if outside:
        quality.warnings.append(
            f"{outside} of {quality.kept} fixes are outside every grid: kept, credited to none"
        )


def coverage_outline(session: Session, settings: Settings) -> tuple[int, shapely.Geometry]:
    """The current generation's id and the prepared union of its grids (cached)."""
    generation = resolve_generation(session, None)
    level = settings.scheme.default_geocode_level
    key = (str(session.get_bind().engine.url), generation.id, level)
    cacheable = generation.status != "draft"
    with _outline_lock:
        if cacheable and key in _outlines:
            _outlines.move_to_end(key)
            return generation.id, _outlines[key]
    areas = generation_areas(session, generation.id, level=level)
    if areas.empty:
        raise InputError(f"generation {generation.id} has no {level} areas", field="level")
    outline = shapely.coverage_union_all(np.asarray(areas.geometry.values, dtype=object))
    shapely.prepare(outline)
    if cacheable:
        with _outline_lock:
            _outlines[key] = outline
            while len(_outlines) > _OUTLINES_KEPT:
                _outlines.popitem(last=False)
    return generation.id, outline


def track_row(
    team_id: int,
    member_id: int | None,
    fixes: TrackFixes,
    piece: TrackFixes,
    cleaned: Cleaned,
    part: int,
    uploaded_by: str,
) -> dict[str, Any]:
    """The values of the patrol_track row of one cleaned piece (geometry as WKB)."""
    quality = {**cleaned.quality.as_dict(), "part": part, "name": fixes.name}
    return {
        "team_id": team_id,
        "member_id": member_id,
        "started_at": datetime.fromtimestamp(float(piece.t[0]), UTC),
        "ended_at": datetime.fromtimestamp(float(piece.t[-1]), UTC),
        "wkb": line_wkb(piece),
        "point_count": len(piece),
        "coord_type": fixes.coord_type.name,
        "source_format": fixes.source_format[:16],
        "digest": track_digest(piece),
        "quality": quality,
        "uploaded_by": uploaded_by,
    }


def line_wkb(piece: TrackFixes) -> bytes:
    """ISO WKB of a piece as a LineString M (x, y, m = epoch seconds), built by numpy."""
    header = _WKB_HEADER.pack(1, _LINESTRING_M, len(piece))
    return header + np.column_stack((piece.lon, piece.lat, piece.t)).astype("<f8").tobytes()


@dataclass
class LoadSummary:
    """What a bulk load did: uploads in, rows new and already there, rejections, timings."""

    uploads: int = 0
    stored: int = 0
    existing: int = 0
    #: Of ``existing``, pieces stored earlier for another team (not this team's patrol).
    other_team: int = 0
    fixes_received: int = 0
    fixes_kept: int = 0
    outside_fixes: int = 0
    #: (position in the input, team mark, why) for each upload not stored.
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The summary in words, every rejection with its position."""
        timing = ", ".join(f"{stage} {value:.1f} s" for stage, value in self.seconds.items())
        lines = [
            f"{self.uploads} uploads: {self.stored} tracks stored, {self.existing} already "
            f"there ({self.other_team} as another team's), {len(self.rejected)} uploads "
            f"rejected ({timing})",
            f"{self.fixes_received} fixes received, {self.fixes_kept} kept, "
            f"{self.outside_fixes} outside every grid",
        ]
        return lines + [f"  #{at} {mark}: {why}" for at, mark, why in self.rejected]


@dataclass
class _Upload:
    position: int
    mark: str
    team_id: int
    member_id: int | None
    fixes: TrackFixes
    cleaned: Cleaned


def load_tracks(
    session: Session,
    settings: Settings,
    many: Iterable[tuple[str, TrackFixes] | tuple[str, TrackFixes, int | None]],
    *,
    rules: CleaningRules = DEFAULT_RULES,
    uploaded_by: str = "",
    progress: bool | None = None,
) -> LoadSummary:
    """Store many uploads ``(team_mark, fixes[, member_id])`` set-based; flushes, never commits.

    An upload that cannot be stored (unknown team, nothing left after cleaning, entirely
    outside) is rejected and listed; the others are stored.
    """
    summary = LoadSummary()
    clock = perf_counter()
    uploads = _cleaned_uploads(session, many, rules, summary, progress)
    summary.seconds["clean"] = perf_counter() - clock
    clock = perf_counter()
    uploads = _placed_uploads(session, settings, uploads, summary)
    summary.seconds["place"] = perf_counter() - clock
    clock = perf_counter()
    rows = [
        track_row(u.team_id, u.member_id, u.fixes, piece, u.cleaned, part, uploaded_by)
        for u in uploads
        for part, piece in enumerate(u.cleaned.pieces, start=1)
    ]
    summary.stored, summary.other_team = _copy_insert(session, rows)
    summary.existing = len(rows) - summary.stored
    summary.fixes_kept = sum(u.cleaned.quality.kept for u in uploads)
    summary.seconds["write"] = perf_counter() - clock
    return summary


def _cleaned_uploads(
    session: Session,
    many: Iterable[Any],
    rules: CleaningRules,
    summary: LoadSummary,
    progress: bool | None,
) -> list[_Upload]:
    teams = dict(session.execute(select(PatrolTeam.mark, PatrolTeam.id)).all())
    members: dict[int, int | None] | None = None
    waiting: list[tuple[int, str, int | None, TrackFixes]] = []
    uploads: list[_Upload] = []
    bar = tqdm(disable=not progress, file=sys.stderr, desc="cleaning", unit="track")
    for position, item in enumerate(many):
        mark, fixes, member_id = (*item, None)[:3]
        summary.uploads += 1
        summary.fixes_received += len(fixes)
        if mark not in teams:
            summary.rejected.append((position, mark, f"there is no team with mark {mark!r}"))
            continue
        if member_id is not None:
            if members is None:
                members = dict(session.execute(select(PatrolMember.id, PatrolMember.team_id)).all())
            if members.get(member_id, -1) != teams[mark]:
                summary.rejected.append((position, mark, f"member {member_id} is not in the team"))
                continue
        waiting.append((position, mark, member_id, fixes))
        if len(waiting) == _CLEAN_BATCH:
            uploads += _clean_batch(waiting, teams, rules, summary, bar)
    uploads += _clean_batch(waiting, teams, rules, summary, bar)
    bar.close()
    return uploads


def _clean_batch(
    waiting: list[tuple[int, str, int | None, TrackFixes]],
    teams: dict[str, int],
    rules: CleaningRules,
    summary: LoadSummary,
    bar: Any,
) -> list[_Upload]:
    uploads = []
    results = clean_many([fixes for *_, fixes in waiting], rules)
    for (position, mark, member_id, fixes), result in zip(waiting, results, strict=True):
        if isinstance(result, GeogridError):
            summary.rejected.append((position, mark, result.message))
        else:
            uploads.append(_Upload(position, mark, teams[mark], member_id, fixes, result))
    bar.update(len(waiting))
    waiting.clear()
    return uploads


def _placed_uploads(
    session: Session, settings: Settings, uploads: list[_Upload], summary: LoadSummary
) -> list[_Upload]:
    if not uploads:
        return []
    generation, outline = coverage_outline(session, settings)
    pieces = [piece for upload in uploads for piece in upload.cleaned.pieces]
    owner = np.repeat(
        np.arange(len(uploads)),
        [sum(len(piece) for piece in upload.cleaned.pieces) for upload in uploads],
    )
    lon = np.concatenate([piece.lon for piece in pieces])
    lat = np.concatenate([piece.lat for piece in pieces])
    outside = ~shapely.intersects_xy(outline, lon, lat)
    outside_counts = np.bincount(owner, weights=outside, minlength=len(uploads)).astype(int)
    fix_counts = np.bincount(owner, minlength=len(uploads))
    kept = []
    for upload, out, total in zip(uploads, outside_counts, fix_counts, strict=True):
        if out == total:
            message = f"entirely outside the grids of generation {generation}"
            summary.rejected.append((upload.position, upload.mark, message))
            continue
        note_outside(upload.cleaned.quality, int(out))
        summary.outside_fixes += int(out)
        kept.append(upload)
    summary.rejected.sort()
    return kept


# The PostgreSQL types of the staging columns, in order, for a binary COPY.
_COPY_TYPES = [
    "int4",
    "int4",
    "timestamptz",
    "timestamptz",
    "bytea",
    "int4",
    "varchar",
    "varchar",
    "varchar",
    "jsonb",
    "text",
]


def _fast_compression(session: Session) -> None:
    # A track's WKB is thousands of doubles; PostgreSQL's default pglz compression of them
    # costs ~1.7 ms a track (10 s for a city's day), lz4 a tenth of that. set_config(...,
    # true) is SET LOCAL: it ends with the transaction, and readers decompress either.
    try:
        with session.begin_nested():
            session.execute(select(func.set_config("default_toast_compression", "lz4", True)))
    except DBAPIError:  # pragma: no cover - a server built without lz4 keeps pglz
        pass


def _staging_table() -> Table:
    """A temporary table shaped like the rows, geometry as WKB bytes."""
    return Table(
        "patrol_track_load",
        MetaData(),
        Column("team_id", Integer),
        Column("member_id", Integer),
        Column("started_at", DateTime(timezone=True)),
        Column("ended_at", DateTime(timezone=True)),
        Column("wkb", LargeBinary),
        Column("point_count", Integer),
        Column("coord_type", String(16)),
        Column("source_format", String(16)),
        Column("digest", String(64)),
        Column("quality", JSONB),
        Column("uploaded_by", Text),
        prefixes=["TEMPORARY"],
    )


def _copy_insert(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """COPY rows into a temporary table and insert the new: (new, stored as another team's)."""
    if not rows:
        return 0, 0
    staging = _staging_table()
    connection = session.connection()
    _fast_compression(session)
    staging.create(connection)
    names = [column.name for column in staging.columns]
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(staging.name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        copy.set_types(_COPY_TYPES)
        for row in rows:
            copy.write_row([Jsonb(row[name]) if name == "quality" else row[name] for name in names])
    source = select(
        *(staging.c[name] for name in names if name != "wkb"),
        func.ST_GeomFromWKB(staging.c.wkb, STORAGE_SRID),
    )
    targets = [name for name in names if name != "wkb"] + ["geom"]
    statement = (
        insert(PatrolTrack)
        .from_select(targets, source)
        .on_conflict_do_nothing(index_elements=[PatrolTrack.digest])
        .returning(PatrolTrack.id)
    )
    created = len(session.execute(statement).all())
    other_team = session.scalar(
        select(func.count())
        .select_from(staging)
        .join(PatrolTrack, PatrolTrack.digest == staging.c.digest)
        .where(PatrolTrack.team_id != staging.c.team_id)
    )
    staging.drop(connection)
    return created, other_team
