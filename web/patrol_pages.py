"""A patrol member's pages: "my area" and one grid of it, a track upload, filing a lead.

"My area" (``/patrol``) shows the team's assigned grids and shifts on a map (by shift,
or by whether a visit reached them in the shift running now), the team's tracks of the
last days, the grids not yet visited this shift, a GPX upload whose quality report the
page then shows, and a form to file a lead (线索) by clicking the map or choosing a grid.

Only patrol members open these pages, and only for their own teams: a member's teams
are those whose ``patrol_member.user_name`` is the user (:func:`web.patrols.scope_of`,
as for the JSON API). Another team by ``?team=``, a grid none of the member's teams is
assigned, or another team's track by ``?track=`` is a 403. Times are Asia/Shanghai.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from os.path import commonprefix
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from geogrid import assignments, leads, patrol_maps, tracks
from geogrid.actors import PATROL_MEMBER, Actor
from geogrid.alliance_values import lonlat_of, patrol_level
from geogrid.categories import list_categories
from geogrid.coverage import coverage_for_day
from geogrid.crs import parse_coord_type
from geogrid.errors import Forbidden, InputError, NotFound
from geogrid.generations import generation_areas, resolve_generation
from geogrid.maps import map_parts, offline
from geogrid.models import PatrolMember, PatrolTeam, PatrolTrack
from geogrid.trackfiles import TRACK_FORMATS, read_track_file
from geogrid.workdays import SHANGHAI
from web.auth import page_actor
from web.db import get_session, get_settings
from web.i18n import current_language, gettext
from web.incidents import query_text, query_whole, refuse_nul
from web.patrols import Scope, scope_of
from web.vendor import asset_url

bp = Blueprint("patrol_pages", __name__)

#: Days of tracks shown by default, and at most.
RECENT_DAYS, MAX_DAYS = 3, 14
#: How far back the member's leads are listed.
LEAD_DAYS = 30
#: Track files the upload form takes (the readers of :mod:`geogrid.trackfiles`).
TRACK_SUFFIXES = (".gpx", ".geojson", ".json", ".csv", ".xlsx")
#: GPX records WGS84 by its schema, so that is the form's default.
COORD_TYPES = ("wgs84", "cgcs2000", "gcj02", "bd09")


def shanghai_now() -> datetime:
    """Now, in Shanghai (one place, so tests can set the clock)."""
    return datetime.now(SHANGHAI)


def clock(moment: Any, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A time as Shanghai wall-clock text; "-" for none."""
    if moment is None or pd.isna(moment):
        return "-"
    stamp = pd.Timestamp(moment)
    return (
        (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).tz_convert(SHANGHAI).strftime(pattern)
    )


#: The coordinate types offered for an upload, in words.
_COORD_LABELS = {
    "wgs84": "WGS84 (GPS, GPX files)",
    "cgcs2000": "CGCS2000 (national grid maps)",
    "gcj02": "GCJ-02 (Amap, Tencent maps)",
    "bd09": "BD-09 (Baidu maps)",
}


@bp.context_processor
def _page_helpers() -> dict[str, Any]:
    language = current_language()
    return {
        "clock": clock,
        "word": lambda key: patrol_maps.text(key, language),
        "shift_words": lambda a: patrol_maps.shift_text(a.weekdays, a.starts, a.ends, language),
        "coord_label": lambda kind: gettext(_COORD_LABELS[kind]),
    }


@dataclass
class TeamArea:
    """What "my area" shows of one team: grids, assignments, this shift, tracks and leads."""

    team: PatrolTeam
    grids: gpd.GeoDataFrame
    assignments: list[assignments.AssignmentInfo]
    running: list[assignments.Shift]
    visits: pd.DataFrame
    tracks: gpd.GeoDataFrame
    leads: list[Any]

    def grid_list(self) -> list[tuple[str, str]]:
        """The team's grids as (code, name), by code."""
        return sorted(zip(self.grids["code"], self.grids["name"], strict=True))

    def grid_name(self, code: str) -> str:
        """A grid's name ("" for a grid not in the current generation)."""
        return dict(self.grid_list()).get(code, "")

    def not_visited(self) -> list[tuple[str, str]]:
        """Grids (code, name) of the shift running now that no visit has reached yet."""
        codes = self.visits.loc[self.visits["status"] == "not_visited", "grid_code"]
        return [(code, self.grid_name(code)) for code in sorted(codes)]

    def track_rows(self) -> list[dict[str, Any]]:
        """The tracks as table rows, latest first."""
        columns = ["track_id", "started_at", "ended_at", "point_count"]
        rows = self.tracks[columns].sort_values("started_at", ascending=False)
        return rows.to_dict("records")


# -- pages ----------------------------------------------------------------------------------


@bp.get("/patrol")
def my_area() -> str:
    """The team's grids, shifts, tracks and leads; the upload and lead forms."""
    actor = page_actor(PATROL_MEMBER)
    scope = scope_of(actor)
    own = own_teams(scope)
    if not own:
        return render_template("patrol.html", area=None, teams=[])
    team = scope.team(query_text("team")) if query_text("team") else own[0]
    days = query_whole("days", RECENT_DAYS, low=1, high=MAX_DAYS)
    now = shanghai_now()
    area = team_area(actor, team, now, days=days)
    m = _area_map(area)
    return render_template(
        "patrol.html",
        area=area,
        teams=own,
        days=days,
        now=now,
        report=_track_report(scope, query_whole("track", 0, low=0)),
        map=map_parts(offline(m, asset_url)),
        map_name=m.get_name(),
        categories=list_categories(get_session()),
        coord_types=COORD_TYPES,
        lead_key=uuid.uuid4().hex,
        chosen_grid="",
    )


@bp.get("/patrol/grids/<code>")
def grid(code: str) -> str:
    """One of the team's grids: its shifts, this shift's visits, tracks and leads there."""
    actor = page_actor(PATROL_MEMBER)
    refuse_nul(code, "grid")
    scope = scope_of(actor)
    team = _team_of_grid(scope, code)
    now = shanghai_now()
    area = team_area(actor, team, now, days=RECENT_DAYS)
    shape = area.grids[area.grids["code"] == code]
    if shape.empty:
        raise NotFound(f"grid {code} is not in the current generation", field="grid")
    language, settings = current_language(), get_settings()
    m = patrol_maps.visit_map(
        shape,
        area.visits[area.visits["grid_code"] == code],
        language=language,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
    )
    patrol_maps.track_layer(area.tracks, m=m, language=language, fit=False)
    here = [lead for lead in area.leads if lead.grid_code == code]
    patrol_maps.lead_layer(_leads_frame(here), m=m, language=language, fit=False)
    return render_template(
        "patrol_grid.html",
        area=area,
        grid=shape.iloc[0],
        shifts=[a for a in area.assignments if a.grid_code == code],
        status=_status_of(area.visits, code),
        leads=here,
        now=now,
        map=map_parts(offline(m, asset_url)),
        map_name=m.get_name(),
        categories=list_categories(get_session()),
        lead_key=uuid.uuid4().hex,
        chosen_grid=code,
    )


# -- writes ---------------------------------------------------------------------------------


@bp.post("/patrol/tracks")
def upload_track() -> Response:
    """Store an uploaded track file for the team; show its quality report (first track)."""
    actor = page_actor(PATROL_MEMBER)
    refuse_nul(request.form.to_dict(), "body")
    scope = scope_of(actor)
    team = scope.team(request.form.get("team", "").strip())
    coord_type = parse_coord_type(request.form.get("coord_type") or "wgs84", field="coord_type")
    member = own_member(actor, team)
    session, settings = get_session(), get_settings()
    results = [
        tracks.store_track(
            session,
            settings,
            fixes,
            team_mark=team.mark,
            member_id=member.id if member else None,
            uploaded_by=actor.name,
        )
        for fixes in _read_upload(coord_type)
    ]
    first = results[0].track
    if any(result.created for result in results):
        flash(gettext("Track %(id)s stored.", id=first.id), "ok")
    else:
        flash(gettext("This track was uploaded before as track %(id)s.", id=first.id), "note")
    return redirect(url_for(".my_area", team=team.mark, track=first.id))


@bp.post("/patrol/leads")
def file_lead() -> Response:
    """File a lead at the point clicked on the map, or in one of the team's grids."""
    actor = page_actor(PATROL_MEMBER)
    refuse_nul(request.form.to_dict(), "body")
    scope = scope_of(actor)
    team = scope.team(request.form.get("team", "").strip())
    if not request.form.get("category", "").strip():
        raise InputError("choose the category of what was seen", field="category")
    lon, lat = _lead_point(team)
    member = own_member(actor, team)
    result = leads.file_lead(
        get_session(),
        get_settings(),
        team_mark=team.mark,
        member_id=member.id if member else None,
        lon=lon,
        lat=lat,
        coord_type="cgcs2000",  # the map's own lon/lat, as the grids are drawn
        at=_form_moment("at"),
        category=request.form.get("category", ""),
        note=request.form.get("note", ""),
        idempotency_key=request.form.get("lead_key") or None,
    )
    lead = result.lead
    where = lead.grid_code or gettext("outside every grid")
    if result.created:
        flash(gettext("Lead %(id)s filed (%(grid)s).", id=lead.id, grid=where), "ok")
    else:
        flash(gettext("This lead was filed before as lead %(id)s.", id=lead.id), "note")
    for warning in result.warnings:
        flash(warning, "note")
    return redirect(url_for(".my_area", team=team.mark))


# -- what the pages read --------------------------------------------------------------------


def own_teams(scope: Scope) -> list[PatrolTeam]:
    """The member's teams, by mark."""
    session = get_session()
    return [tracks.team_by_mark(session, mark) for mark in sorted(scope.marks or ())]


def own_member(actor: Actor, team: PatrolTeam) -> PatrolMember | None:
    """The signed-in member's row in ``team`` (uploads and leads are credited to it)."""
    return get_session().scalar(
        select(PatrolMember).where(
            PatrolMember.user_name == actor.name, PatrolMember.team_id == team.id
        )
    )


def team_area(actor: Actor, team: PatrolTeam, now: datetime, *, days: int) -> TeamArea:
    """The team's grids, assignments, the shift running now, recent tracks and leads."""
    session = get_session()
    given = assignments.list_assignments(session, team_mark=team.mark)
    codes = sorted({a.grid_code for a in given})
    running, visits = _this_shift(team, codes, now)
    recent = [
        tracks.tracks_frame(session, day=now.date() - timedelta(days=back), team_ids=[team.id])
        for back in range(days)
    ]
    # Empty days would turn the id and count columns into floats in the concatenation.
    days_with_tracks = [frame for frame in recent if len(frame)] or recent[:1]
    frame = pd.concat(days_with_tracks, ignore_index=True).drop_duplicates("track_id")
    found = leads.list_leads(
        session, actor, team_mark=team.mark, since=now - timedelta(days=LEAD_DAYS), limit=50
    )
    return TeamArea(
        team,
        grid_shapes(codes),
        given,
        running,
        visits,
        gpd.GeoDataFrame(frame, geometry="geometry", crs=recent[0].crs),
        found,
    )


def grid_shapes(codes: list[str]) -> gpd.GeoDataFrame:
    """The grids of ``codes`` in the current generation: code, name, polygons in lon/lat."""
    session = get_session()
    if not codes:
        return gpd.GeoDataFrame({"code": [], "name": []}, geometry=[], crs="EPSG:4490")
    generation = resolve_generation(session, None)
    # A station's or team's grids share a long code prefix: read below it, not the city.
    areas = generation_areas(
        session, generation.id, level=patrol_level(session), within=commonprefix(codes)
    )
    found = areas[areas["code"].isin(set(codes))]
    return found[["code", "name", "geometry"]].reset_index(drop=True)


def _this_shift(
    team: PatrolTeam, codes: list[str], now: datetime
) -> tuple[list[assignments.Shift], pd.DataFrame]:
    """The team's shifts running now, and per grid: visited, not visited, or not on shift."""
    session, settings = get_session(), get_settings()
    running = [
        shift
        for day in (now.date() - timedelta(days=1), now.date())
        for shift in assignments.shifts_for(session, day=day, team_id=team.id)
        if shift.starts_at <= now < shift.ends_at
    ]
    rows = {code: ("off_shift", 0, 0.0) for code in codes}
    for day in sorted({shift.starts_at.date() for shift in running}):
        shifts = coverage_for_day(
            session, settings, day=day, station_code=team.station_code, reach_m=None
        ).shifts
        mine = shifts[
            (shifts["team_id"] == team.id)
            & shifts["assignment_id"].isin({s.assignment_id for s in running})
            & (shifts["starts_at"] <= now)
            & (shifts["ends_at"] > now)
        ]
        for row in mine.itertuples(index=False):
            _, visits, minutes = rows.get(row.grid_code, ("", 0, 0.0))
            visits += int(row.visits)
            minutes += 0.0 if pd.isna(row.minutes_inside) else float(row.minutes_inside)
            rows[row.grid_code] = ("visited" if visits else "not_visited", visits, minutes)
    frame = pd.DataFrame(
        [(code, *values) for code, values in rows.items()],
        columns=["grid_code", "status", "visits", "minutes_inside"],
    )
    return running, frame


def _area_map(area: TeamArea) -> Any:
    """The team's grids by shift and by this shift's visits, its tracks and its leads."""
    language, settings = current_language(), get_settings()
    shifts = assignment_frame(area.assignments, language)
    m = patrol_maps.assignment_map(
        area.grids,
        shifts,
        colour_by="shift",
        show=not area.running,
        language=language,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
    )
    patrol_maps.visit_map(
        area.grids, area.visits, show=bool(area.running), m=m, language=language, fit=False
    )
    colours = patrol_maps.team_colours([area.team.mark])
    patrol_maps.track_layer(area.tracks, colours=colours, m=m, language=language, fit=False)
    patrol_maps.lead_layer(_leads_frame(area.leads), m=m, language=language, fit=False)
    return m


def assignment_frame(given: list[assignments.AssignmentInfo], language: str) -> pd.DataFrame:
    """Assignments as the map builders take them: grid_code, team_mark, shift in words."""
    rows = [
        (a.grid_code, a.team_mark, patrol_maps.shift_text(a.weekdays, a.starts, a.ends, language))
        for a in given
    ]
    return pd.DataFrame(rows, columns=["grid_code", "team_mark", "shift"])


def _leads_frame(found: list[Any]) -> pd.DataFrame:
    columns = ["lead_id", "lon", "lat", "category", "status", "at", "grid_code", "note"]
    return pd.DataFrame([_lead_row(lead) for lead in found], columns=columns)


def _lead_row(lead: Any) -> dict[str, Any]:
    lon, lat = lonlat_of(lead.geom)
    return {
        "lead_id": lead.id,
        "lon": lon,
        "lat": lat,
        "category": lead.category,
        "status": lead.status,
        "at": lead.at,
        "grid_code": lead.grid_code,
        "note": lead.note,
    }


def _track_report(scope: Scope, track_id: int) -> dict[str, Any] | None:
    """The stored quality report of one of the member's teams' tracks (?track=)."""
    if not track_id:
        return None
    track = get_session().get(PatrolTrack, track_id)
    if track is None or track.team_id not in (scope.teams or ()):
        # The same answer for a track that does not exist: ids are not to be probed.
        raise Forbidden(f"track {track_id} is not one of your team's", field="track")
    return {"track": track, "quality": track.quality or {}}


def _team_of_grid(scope: Scope, code: str) -> PatrolTeam:
    """The member's team assigned ``code``; Forbidden when none is."""
    given = assignments.list_assignments(get_session(), grid_code=code.strip())
    marks = sorted({a.team_mark for a in given if scope.sees_team(a.team_mark)})
    if not marks:
        raise Forbidden(f"grid {code} is not assigned to your team", field="grid")
    return scope.team(marks[0])


def _status_of(visits: pd.DataFrame, code: str) -> str:
    found = visits.loc[visits["grid_code"] == code, "status"]
    return str(found.iloc[0]) if len(found) else "off_shift"


def _read_upload(coord_type: Any) -> list[Any]:
    """The tracks in the uploaded file, read through :mod:`geogrid.trackfiles`."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InputError(f"choose a track file: {TRACK_FORMATS}", field="file")
    refuse_nul(upload.filename, "file")  # the name is kept in the track's report
    given = Path(upload.filename.replace("\\", "/")).name
    suffix = Path(given).suffix.lower()
    if suffix not in TRACK_SUFFIXES:
        raise InputError(f"{given}: unsupported format; use {TRACK_FORMATS}", field="file")
    with tempfile.TemporaryDirectory(prefix="geogrid-track-") as folder:
        # Our own name on disk: the given one may be Chinese, or anything at all.
        path = Path(folder) / f"upload{suffix}"
        upload.save(path)
        return read_track_file(path, coord_type=coord_type, name=Path(given).stem)


def _lead_point(team: PatrolTeam) -> tuple[float, float]:
    """The point clicked on the map, else a point inside the grid chosen (one of the team's)."""
    lon, lat = request.form.get("lon", "").strip(), request.form.get("lat", "").strip()
    if lon or lat:
        return _number(lon, "lon"), _number(lat, "lat")
    code = request.form.get("grid", "").strip()
    if not code:
        raise InputError("click the map where it was, or choose one of your grids", field="lon")
    given = assignments.list_assignments(get_session(), team_mark=team.mark, grid_code=code)
    if not given:
        raise Forbidden(f"grid {code} is not assigned to your team", field="grid")
    inside = grid_shapes([code]).geometry.iloc[0].representative_point()
    return inside.x, inside.y


def _number(raw: str, field: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{field} must be a number of degrees, not {raw!r}", field=field) from None


def _form_moment(name: str) -> datetime:
    """An ISO 8601 time from the form (the browser's clock when it was sent); now if none."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return shanghai_now()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{name} {raw!r} is not ISO 8601", field=name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)
