"""The patrols JSON API (平安联盟): stations, teams, assignments, tracks, leads, coverage.

Thin views over :mod:`geogrid.stations`, :mod:`geogrid.alliance`,
:mod:`geogrid.assignments`, :mod:`geogrid.tracks`, :mod:`geogrid.leads`,
:mod:`geogrid.coverage`, :mod:`geogrid.gaps` and :mod:`geogrid.optimiser`. Every endpoint
needs a token. Who sees what is decided here, from the actor, because the patrol library
reads by station and team rather than by actor (leads excepted, which it scopes itself):

- an administrator sees everything;
- a patrol member sees their own teams (``patrol_member.user_name`` is the user), those
  teams' stations and the grids the teams are assigned; another team or station by URL
  is a 403;
- anyone else in :data:`READERS` sees the stations in their scope: a station whose code
  their scope covers (``370705`` covers ``370705-PS01``), or whose grids (its offices'
  included) it covers all of, and those stations' teams.

Coverage, gaps, conflicts and unassigned grids are for :data:`ANALYSTS`; a scoped one
names a ``station``, so the answer is never a city's worth filtered after the fact.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from geogrid import alliance, assignments, leads, optimiser, stations, tracks
from geogrid.actors import (
    ADMINISTRATOR,
    OFFICIAL,
    PATROL_MEMBER,
    PLANNER,
    STATION_OFFICER,
    Actor,
)
from geogrid.coverage import coverage_for_day
from geogrid.crs import parse_coord_type
from geogrid.errors import Forbidden, InputError
from geogrid.gaps import coverage_gaps
from geogrid.models import PatrolAssignment, PatrolMember, PatrolTeam
from geogrid.trackfiles import TRACK_FORMATS, read_track_file
from geogrid.workdays import SHANGHAI
from web.auth import actor_in_role
from web.db import get_session, get_settings
from web.incidents import json_body, query_moment, query_text, query_whole, refuse_nul

bp = Blueprint("patrols", __name__, url_prefix="/api/patrols")

#: Roles that read the patrol organisation and its assignments.
READERS = (ADMINISTRATOR, OFFICIAL, STATION_OFFICER, PLANNER, PATROL_MEMBER)
#: Roles that read coverage, gaps, conflicts and unassigned grids.
ANALYSTS = (ADMINISTRATOR, OFFICIAL, STATION_OFFICER)
#: Roles that upload tracks and file check-ins and leads.
REPORTERS = (ADMINISTRATOR, STATION_OFFICER, PATROL_MEMBER)
#: The optimiser's time limit a request may ask for, in seconds.
MAX_TIME_LIMIT = 30.0
_SUFFIXES = (".gpx", ".geojson", ".json", ".csv", ".xlsx")
_LEAD_ID = f"<int(max={2**63 - 1}):lead_id>"
#: Largest id of a patrol member (an integer column); larger ones are nobody's.
_MAX_MEMBER_ID = 2**31 - 1
#: Longest stem kept of an uploaded file's name (file systems refuse long names).
_MAX_STEM = 100


@dataclass(frozen=True)
class Scope:
    """What one actor may see: station codes, team ids and marks (None: everything)."""

    actor: Actor
    stations: frozenset[str] | None
    teams: frozenset[int] | None
    marks: frozenset[str] | None

    def check_station(self, code: str | None) -> str | None:
        """The station code, upper-cased; Forbidden unless in scope (None passes)."""
        return None if code is None else self.station(code)

    def station(self, code: str) -> str:
        """The station code, upper-cased; NotFound, or Forbidden unless in scope."""
        code = code.strip().upper()
        stations.get_station(get_session(), code, field="station")
        if self.stations is not None and code not in self.stations:
            raise Forbidden(
                f"station {code} is outside the scope of {self.actor.name}", field="station"
            )
        return code

    def check_team(self, mark: str | None, *, field: str = "team") -> PatrolTeam | None:
        """The team with this mark; Forbidden unless in scope (None passes)."""
        return None if mark is None else self.team(mark, field=field)

    def team(self, mark: str | None, *, field: str = "team") -> PatrolTeam:
        """The team with this mark, required; Forbidden unless in scope."""
        if not mark:
            raise InputError(f"{field} is required: the team's mark", field=field)
        team = tracks.team_by_mark(get_session(), mark, field=field)
        if self.teams is not None and team.id not in self.teams:
            raise Forbidden(
                f"team {team.mark} is outside the scope of {self.actor.name}", field=field
            )
        return team

    def sees_team(self, mark: str) -> bool:
        """Whether a team (by mark) is in scope."""
        return self.marks is None or mark in self.marks


def scope_of(actor: Actor) -> Scope:
    """The stations and teams ``actor`` may see."""
    session = get_session()
    if actor.role == ADMINISTRATOR:
        return Scope(actor, None, None, None)
    if actor.role == PATROL_MEMBER:
        query = select(PatrolTeam).join(PatrolMember, PatrolMember.team_id == PatrolTeam.id)
        query = query.where(PatrolMember.user_name == actor.name, PatrolMember.active)
        teams = list(session.scalars(query))
        seen = frozenset(team.station_code for team in teams)
    else:
        seen = _stations_seen(session, actor)
        teams = list(session.scalars(select(PatrolTeam).where(PatrolTeam.station_code.in_(seen))))
    ids, marks = (frozenset(team.id for team in teams), frozenset(team.mark for team in teams))
    return Scope(actor, seen, ids, marks)


def _stations_seen(session: Session, actor: Actor) -> frozenset[str]:
    """Stations whose code ``actor``'s scope covers, or every grid of (offices' included)."""
    listed = stations.list_stations(session)
    family: dict[str, set[str]] = {s.code: set(s.grid_codes) for s in listed}
    for station in listed:
        if station.parent_code in family:
            family[station.parent_code] |= set(station.grid_codes)
    return frozenset(
        code
        for code, grids in family.items()
        if actor.covers(code) or (grids and all(actor.covers(grid) for grid in grids))
    )


# -- the organisation --------------------------------------------------------------------


@bp.get("/stations")
def station_list() -> Response:
    """Stations and community offices in scope, with their grids and team counts."""
    scope = scope_of(actor_in_role(*READERS))
    found = stations.list_stations(get_session())
    return jsonify(
        stations=[s.as_dict() for s in found if scope.stations is None or s.code in scope.stations]
    )


@bp.get("/teams")
def team_list() -> Response:
    """Active teams in scope, of one station's family with ``?station=``."""
    scope = scope_of(actor_in_role(*READERS))
    station = scope.check_station(query_text("station"))
    found = alliance.list_teams(get_session(), station_code=station)
    return jsonify(teams=[t.as_dict() for t in found if scope.sees_team(t.mark)])


@bp.get("/assignments")
def assignment_list() -> Response:
    """Assignments in scope: ``?station=&team=&grid=&date=`` (running on that date)."""
    scope = scope_of(actor_in_role(*READERS))
    station = scope.check_station(query_text("station"))
    team = scope.check_team(query_text("team"))
    grid = query_text("grid")
    if grid is not None and scope.actor.role == PATROL_MEMBER:
        _check_own_grid(scope, grid)
    found = assignments.list_assignments(
        get_session(),
        station_code=station,
        team_mark=team.mark if team is not None else None,
        grid_code=grid,
        day=query_day("date"),
    )
    return jsonify(assignments=[a.as_dict() for a in found if scope.sees_team(a.team_mark)])


@bp.get("/conflicts")
def conflict_list() -> Response:
    """Overlapping shifts of one team: ``?station=&date=`` (from today on without a date)."""
    station = _analysed_station()
    found = assignments.conflicts(get_session(), station_code=station, day=query_day("date"))
    return jsonify(conflicts=[c.as_dict() for c in found])


@bp.get("/unassigned")
def unassigned_list() -> Response:
    """Grids the station answers for that no active team works: ``?station=&date=``."""
    station = _analysed_station()
    found = assignments.unassigned_grids(get_session(), station_code=station, day=query_day("date"))
    return jsonify(unassigned=[g.as_dict() for g in found])


# -- tracks ------------------------------------------------------------------------------


@bp.post("/tracks")
def track_upload() -> tuple[Response, int]:
    """Upload a track file (``file``, ``team``, ``coord_type``, ``member``): 201, or 200 again."""
    scope = scope_of(actor_in_role(*REPORTERS))
    refuse_nul(request.form.to_dict(), "body")
    coord_type = parse_coord_type(request.form.get("coord_type"), field="coord_type")
    team = scope.team(request.form.get("team", "").strip())
    member_id = _member_id(scope, team, request.form.get("member"), field="member")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InputError(
            f"send the track as the file field; formats: {TRACK_FORMATS}", field="file"
        )
    # The suffix picks the reader; secure_filename would drop a Chinese name whole.
    given = Path(upload.filename.replace("\\", "/")).name
    suffix = Path(given).suffix.lower()
    filename = (secure_filename(Path(given).stem)[:_MAX_STEM] or "upload") + suffix
    if suffix not in _SUFFIXES:
        raise InputError(
            f"{upload.filename}: unsupported format; use {TRACK_FORMATS}", field="file"
        )
    session, settings = get_session(), get_settings()
    with tempfile.TemporaryDirectory(prefix="geogrid-track-") as folder:
        path = Path(folder) / filename
        upload.save(path)
        found = read_track_file(path, coord_type=coord_type, name=Path(given).stem)
    results = [
        tracks.store_track(
            session,
            settings,
            fixes,
            team_mark=team.mark,
            member_id=member_id,
            uploaded_by=scope.actor.name,
        )
        for fixes in found
    ]
    created = any(result.created for result in results)
    body = {
        "created": created,
        "team": team.mark,
        "tracks": [tracks.track_as_dict(t) for result in results for t in result.tracks],
        "uploads": [result.as_dict() for result in results],
    }
    return jsonify(body), 201 if created else 200


@bp.get("/tracks")
def track_list() -> Response:
    """Tracks in scope overlapping a Shanghai day: ``?date=`` (required) ``&team=&station=``."""
    scope = scope_of(actor_in_role(*READERS))
    day = query_day("date", required=True)
    station = scope.check_station(query_text("station"))
    team = scope.check_team(query_text("team"))
    team_ids = [team.id] if team is not None else scope.teams
    found = tracks.list_tracks(
        get_session(),
        day=day,
        station_code=station,
        team_ids=sorted(team_ids) if team_ids is not None else None,
    )
    return jsonify(date=day.isoformat(), tracks=[tracks.track_as_dict(t) for t in found])


# -- check-ins and leads -----------------------------------------------------------------


@bp.post("/checkins")
def checkin() -> tuple[Response, int]:
    """A check-in ``{team, member_id?, lon, lat, coord_type, at?, note?}``; 201, 200 on a retry."""
    body, where = _point_report()
    result = leads.checkin(get_session(), get_settings(), **where, note=_text(body, "note") or "")
    answer = {"checkin": leads.checkin_as_dict(result.checkin), "created": result.created}
    return jsonify({**answer, "warnings": result.warnings}), 201 if result.created else 200


@bp.post("/leads")
def lead_file() -> tuple[Response, int]:
    """File a lead ``{team, member_id?, lon, lat, coord_type, at?, category, note}``.

    With an ``Idempotency-Key`` header a retry answers 200 with the first lead.
    """
    body, where = _point_report("category")
    result = leads.file_lead(
        get_session(),
        get_settings(),
        **where,
        category=_text(body, "category", required=True),
        note=body.get("note"),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    answer = {"lead": leads.lead_as_dict(result.lead), "created": result.created}
    return jsonify({**answer, "warnings": result.warnings}), 201 if result.created else 200


def _point_report(*extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A check-in's or lead's body, and who, where and when it was, for a team in scope."""
    scope = scope_of(actor_in_role(*REPORTERS))
    fields = ("team", "member_id", "lon", "lat", "coord_type", "at", "note", *extra)
    body = _object(json_body(), fields)
    team = scope.team(_text(body, "team"))
    for name in ("lon", "lat"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float | str | None):
            raise InputError(f"{name} must be a number", field=name)
    where = {
        "team_mark": team.mark,
        "member_id": _member_id(scope, team, body.get("member_id")),
        "lon": body.get("lon"),
        "lat": body.get("lat"),
        # Named as the body names it (the library's locate would say "crs").
        "coord_type": parse_coord_type(body.get("coord_type"), field="coord_type").name,
        "at": _moment(body, "at"),
    }
    return body, where


@bp.get("/leads")
def lead_list() -> Response:
    """Leads the actor may see: ``?status=&team=&grid=&since=&until=&limit=``."""
    actor = actor_in_role(*READERS)
    found = leads.list_leads(
        get_session(),
        actor,
        status=query_text("status"),
        team_mark=query_text("team"),
        grid_code=query_text("grid"),
        since=query_moment("since"),
        until=query_moment("until"),
        limit=query_whole("limit", 200, low=1, high=1000),
    )
    return jsonify(leads=[leads.lead_as_dict(lead) for lead in found])


@bp.post(f"/leads/{_LEAD_ID}/decision")
def lead_decision(lead_id: int) -> Response:
    """Decide a lead ``{status?, reward?, amount?}`` (station officer in scope, administrator)."""
    actor = actor_in_role(STATION_OFFICER, ADMINISTRATOR)
    body = _object(json_body(), ("status", "reward", "amount"))
    amount = body.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
        raise InputError("amount must be a number (yuan)", field="amount")
    lead = leads.decide_lead(
        get_session(),
        lead_id,
        actor=actor,
        status=_text(body, "status"),
        reward=_text(body, "reward"),
        amount=None if amount is None else float(amount),
    )
    return jsonify(lead=leads.lead_as_dict(lead))


# -- analysis and the optimiser ------------------------------------------------------------


@bp.get("/coverage")
def coverage() -> Response:
    """Coverage of the shifts starting on ``?date=`` (required), of ``?station=``."""
    station = _analysed_station()
    day = query_day("date", required=True)
    return jsonify(
        coverage_for_day(get_session(), get_settings(), day=day, station_code=station).as_dict()
    )


@bp.get("/gaps")
def gaps() -> Response:
    """Coverage gaps of ``?date=`` (required), ``?station=``, risk of the last ``?days=``."""
    station = _analysed_station()
    day = query_day("date", required=True)
    days = query_whole("days", 28, low=1, high=366)
    result = coverage_gaps(get_session(), get_settings(), day=day, station_code=station, days=days)
    return jsonify(result.as_dict())


@bp.post("/assign")
def assign() -> Response:
    """The optimiser's proposal for ``{station, time_limit?, commit?}``; applied when commit."""
    scope = scope_of(actor_in_role(STATION_OFFICER, ADMINISTRATOR))
    body = _object(json_body(), ("station", "time_limit", "commit"))
    station = scope.station(_text(body, "station", required=True))
    limit = body.get("time_limit", 10.0)
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        limit = -1  # answered below, with the bounds
    if not 0 < limit <= MAX_TIME_LIMIT:
        raise InputError(
            f"time_limit must be seconds, more than 0 and at most {MAX_TIME_LIMIT:g}",
            field="time_limit",
        )
    commit = body.get("commit", False)
    if not isinstance(commit, bool):
        raise InputError("commit must be true or false", field="commit")
    session = get_session()
    proposal = optimiser.propose(session, station, time_limit=float(limit))
    applied = None
    if commit:
        applied = optimiser.apply_proposal(session, proposal, created_by=scope.actor.name)
    return jsonify(
        committed=commit,
        proposal=proposal.as_dict(),
        applied=applied.as_dict() if applied is not None else None,
    )


# -- helpers -------------------------------------------------------------------------------


def query_day(name: str, *, required: bool = False) -> date | None:
    """A calendar date (``2026-03-02``) from the query; 400 naming it when not ISO."""
    raw = query_text(name)
    if raw is None:
        if required:
            raise InputError(f"{name} is required, e.g. {name}=2026-03-02", field=name)
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"{name} {raw!r} is not an ISO date, e.g. 2026-03-02", field=name
        ) from None


def _analysed_station() -> str | None:
    """The ``?station=`` of an analysis, required of (and checked for) a scoped actor."""
    scope = scope_of(actor_in_role(*ANALYSTS))
    station = scope.check_station(query_text("station"))
    if station is None and scope.stations is not None:
        raise InputError("give the station: your scope is not the whole city", field="station")
    return station


def _check_own_grid(scope: Scope, grid: str) -> None:
    own = get_session().scalars(
        select(PatrolAssignment.grid_code).where(PatrolAssignment.team_id.in_(scope.teams or ()))
    )
    if grid not in set(own):
        raise Forbidden(f"grid {grid} is not assigned to your team", field="grid")


def _member_id(scope: Scope, team: PatrolTeam, raw: Any, *, field: str = "member_id") -> int | None:
    """The member given (an id), or the uploading patrol member's own row in ``team``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if scope.actor.role != PATROL_MEMBER:
            return None
        return get_session().scalar(
            select(PatrolMember.id).where(
                PatrolMember.user_name == scope.actor.name, PatrolMember.team_id == team.id
            )
        )
    text = str(raw).strip()
    if (
        isinstance(raw, bool)
        or not text.isascii()
        or not text.isdigit()
        or int(text) > _MAX_MEMBER_ID
    ):
        raise InputError(
            f"{field} must be a member's id (a whole number), not {raw!r}", field=field
        )
    return int(text)


def _object(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError(f"the body is a JSON object with {', '.join(allowed)}", field="body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InputError(
            f"unknown field {unknown[0]!r}; fields: {', '.join(allowed)}", field=unknown[0]
        )
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> Any:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be text", field=name)
    return value.strip()


def _moment(body: dict[str, Any], name: str) -> datetime:
    """An ISO 8601 time from the body (no offset: Shanghai time); now when absent."""
    raw = _text(body, name)
    if raw is None:
        return datetime.now(SHANGHAI)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{name} {raw!r} is not ISO 8601", field=name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)
