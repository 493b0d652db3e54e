"""The station officer's page: assignments, measured coverage, gaps, dosage, the optimiser.

``/station`` shows one station in the officer's scope (``?station=``, its community
offices included) for one day (``?date=``, Shanghai): assignments on a map coloured by
team, measured coverage per grid (minutes inside; ``?measure=share`` for the share of
the area reached, which takes longer), the coverage gaps (high risk, low dosage) and the
dosage table against the 10-15 minutes every two hours rule (:mod:`geogrid.coverage`).

``POST /station/optimiser`` runs the assignment optimiser (:func:`geogrid.optimiser.propose`)
with a short time limit and shows the proposal: the objective's terms, the gap to the
bound, and the changes as a table and on the map. The page carries what it showed in a
signed token, and ``POST /station/optimiser/accept`` applies exactly that
(:func:`geogrid.optimiser.apply_proposal`), so an answer cut short by the time limit
is not solved again differently between seeing it and accepting it. A token is bound to
the officer, the station and the boundary generation, and lasts an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from geogrid import alliance, assignments, optimiser, patrol_maps, stations
from geogrid.actors import ADMINISTRATOR, STATION_OFFICER, Actor
from geogrid.coverage import CoverageResult, coverage_for_day
from geogrid.errors import Conflict, Forbidden, InputError
from geogrid.gaps import GapsResult, coverage_gaps
from geogrid.generations import resolve_generation
from geogrid.maps import map_parts, offline
from geogrid.optimiser_proposal import EndedAssignment, ProposedAssignment, ShiftPattern
from geogrid.shifts import format_weekdays, parse_clock
from web.auth import page_actor
from web.db import get_session, get_settings
from web.i18n import current_language, gettext
from web.incidents import query_text, refuse_nul
from web.patrol_pages import assignment_frame, clock, grid_shapes
from web.patrols import MAX_TIME_LIMIT, Scope, query_day, scope_of
from web.vendor import asset_url

bp = Blueprint("station_pages", __name__)

OFFICERS = (STATION_OFFICER, ADMINISTRATOR)
#: The optimiser's time limit unless the officer asks for more, in seconds.
DEFAULT_TIME_LIMIT = 10.0
#: How long a shown proposal may be accepted, in seconds.
PROPOSAL_MAX_AGE = 3600
MEASURES = {"minutes": "minutes_inside", "share": "reach_share"}
#: Metres around a track that count as reached, for ``?measure=share``.
REACH_M = 50.0
_TOKEN_SALT = "geogrid.station.proposal"


@dataclass(frozen=True)
class ReviewedProposal:
    """The part of a proposal :func:`geogrid.optimiser.apply_proposal` writes, as shown."""

    station_code: str
    valid_from: date
    assignments: list[ProposedAssignment]
    removed: list[EndedAssignment]


@bp.context_processor
def _page_helpers() -> dict[str, Any]:
    language = current_language()
    return {
        "clock": clock,
        "word": lambda key: patrol_maps.text(key, language),
        "pattern_words": lambda shift: _pattern_words(shift, language),
    }


@bp.get("/station")
def station() -> str:
    """One station's assignments, coverage, gaps and dosage for a day; the optimiser form."""
    actor = page_actor(*OFFICERS)
    return _page(actor, query_text("station"), query_day("date"), query_text("measure"))


@bp.post("/station/optimiser")
def run_optimiser() -> str:
    """Run the optimiser for the station and show its proposal beside the current state."""
    actor = page_actor(*OFFICERS)
    refuse_nul(request.form.to_dict(), "body")
    scope = scope_of(actor)
    code = scope.station(request.form.get("station", ""))
    limit = _time_limit(request.form.get("time_limit", ""))
    proposal = optimiser.propose(get_session(), code, time_limit=limit)
    day = _form_day(request.form.get("date", ""))
    return _page(actor, code, day, request.form.get("measure"), proposal=proposal, limit=limit)


@bp.post("/station/optimiser/accept")
def accept_proposal() -> Response:
    """Write the proposal shown (from its token): end replaced assignments, add the new."""
    actor = page_actor(*OFFICERS)
    refuse_nul(request.form.to_dict(), "body")
    reviewed = _reviewed(actor, scope_of(actor), request.form.get("proposal", ""))
    # apply_proposal reads a proposal's valid_from, assignments and removed: exactly what
    # the reviewed one holds, as the officer saw it.
    applied = optimiser.apply_proposal(get_session(), reviewed, created_by=actor.name)
    flash(
        gettext(
            "Proposal accepted from %(day)s: %(added)s assignments added, %(ended)s ended, "
            "%(deleted)s deleted.",
            day=reviewed.valid_from.isoformat(),
            added=len(applied.added),
            ended=len(applied.ended),
            deleted=len(applied.deleted),
        ),
        "ok",
    )
    return redirect(url_for(".station", station=reviewed.station_code))


# -- the page -------------------------------------------------------------------------------


def _page(
    actor: Actor,
    code: str | None,
    day: date | None,
    measure: str | None,
    *,
    proposal: optimiser.Proposal | None = None,
    limit: float = DEFAULT_TIME_LIMIT,
) -> str:
    scope = scope_of(actor)
    session, settings = get_session(), get_settings()
    listed = [
        s
        for s in stations.list_stations(session)
        if scope.stations is None or s.code in scope.stations
    ]
    # A station asked for by URL is checked first: outside the scope is a 403, not "none".
    code = scope.station(code) if code else _first_station(listed) if listed else None
    if code is None:
        return render_template("station.html", station=None, stations=[])
    day = day or assignments.today()
    measure = measure if measure in MEASURES else "minutes"
    grids = grid_shapes(stations.station_grid_codes(session, code))
    running = assignments.list_assignments(session, station_code=code, day=day)
    marks = [team.mark for team in alliance.list_teams(session, station_code=code)]
    reach = REACH_M if measure == "share" else None
    coverage = coverage_for_day(session, settings, day=day, station_code=code, reach_m=reach)
    gaps = coverage_gaps(session, settings, day=day, station_code=code, coverage=coverage)
    colours = patrol_maps.team_colours(marks + [a.team_mark for a in running])
    m = _station_map(grids, running, coverage, gaps, proposal, colours, MEASURES[measure])
    names = dict(zip(grids["code"], grids["name"], strict=True))
    return render_template(
        "station.html",
        station=next(s for s in listed if s.code == code),
        stations=listed,
        day=day,
        measure=measure,
        teams=[(mark, colours[mark]) for mark in sorted(set(marks))],
        names=names,
        assignments=running,
        dosage=_dosage_rows(coverage),
        target=coverage.parameters["target"],
        gaps=gaps.gaps.to_dict("records"),
        hot_threshold=gaps.parameters["hot_threshold"],
        proposal=proposal,
        token=_token(actor, proposal) if proposal is not None else None,
        time_limit=limit,
        max_time_limit=MAX_TIME_LIMIT,
        map=map_parts(offline(m, asset_url)),
    )


def _station_map(
    grids: Any,
    running: list[assignments.AssignmentInfo],
    coverage: CoverageResult,
    gaps: GapsResult,
    proposal: optimiser.Proposal | None,
    colours: dict[str, str],
    measure: str,
) -> Any:
    """Assignments by team, coverage (hidden at first), gaps; the proposal when there is one."""
    language, settings = current_language(), get_settings()
    given = assignment_frame(running, language)
    m = patrol_maps.assignment_map(
        grids,
        given,
        colours=colours,
        show=proposal is None,
        language=language,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
    )
    patrol_maps.coverage_map(
        grids, coverage.shifts, measure=measure, show=False, m=m, language=language, fit=False
    )
    patrol_maps.gap_layer(grids, gaps.gaps, m=m, language=language, fit=False)
    if proposal is not None:
        proposed = pd.DataFrame(
            [(p.team_mark, p.grid_code, p.change) for p in proposal.assignments],
            columns=["team_mark", "grid_code", "change"],
        )
        removed = pd.DataFrame(
            [(r.team_mark, r.grid_code) for r in proposal.removed],
            columns=["team_mark", "grid_code"],
        )
        patrol_maps.proposal_map(
            grids, proposed, removed, colours=colours, m=m, language=language, fit=False
        )
    return m


def _dosage_rows(coverage: CoverageResult) -> list[dict[str, Any]]:
    """Per grid-shift: the dosage against the target, with the minutes inside."""
    dosage = coverage.dosage
    if dosage.empty:
        return []
    minutes = coverage.shifts["minutes_inside"].reindex(dosage["shift"]).to_numpy()
    rows = dosage.assign(minutes_inside=minutes)
    # Unmet first, the longest time without a visit at the top.
    order = ["met", "longest_gap_min", "grid_code"]
    return rows.sort_values(order, ascending=[True, False, True]).to_dict("records")


def _first_station(listed: list[stations.StationInfo]) -> str:
    """A station (派出所) before a community office; by code."""
    return min(listed, key=lambda s: (s.kind != "station", s.code)).code


# -- the optimiser's proposal, carried between showing and accepting ------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_TOKEN_SALT)


def _token(actor: Actor, proposal: optimiser.Proposal) -> str:
    """The changes of a proposal, signed: what accepting it will write, and nothing else."""
    added = [
        [
            a.team_mark,
            a.grid_code,
            [[s.weekdays, f"{s.starts:%H:%M}", f"{s.ends:%H:%M}"] for s in a.shifts],
            a.workload,
            a.travel_m,
        ]
        for a in proposal.assignments
        if a.change == "added"
    ]
    removed = [
        [r.assignment_id, r.team_mark, r.grid_code]
        + [r.shift.weekdays, f"{r.shift.starts:%H:%M}", f"{r.shift.ends:%H:%M}", r.source]
        for r in proposal.removed
    ]
    payload = {
        "by": actor.name,
        "station": proposal.station_code,
        "generation": proposal.generation,
        "valid_from": proposal.valid_from.isoformat(),
        "added": added,
        "removed": removed,
    }
    return _serializer().dumps(payload)


def _reviewed(actor: Actor, scope: Scope, token: str) -> ReviewedProposal:
    """The proposal a token carries, checked: signed, recent, this officer's, still current."""
    try:
        payload = _serializer().loads(token, max_age=PROPOSAL_MAX_AGE)
    except SignatureExpired:
        raise Conflict(
            "the proposal is more than an hour old; run the optimiser again", field="proposal"
        ) from None
    except BadSignature:
        raise InputError(
            "the proposal was not recognised; run the optimiser again", field="proposal"
        ) from None
    if payload["by"] != actor.name:
        raise Forbidden("this proposal was made by another user", field="proposal")
    code = scope.station(payload["station"])
    session = get_session()
    if resolve_generation(session, None).id != payload["generation"]:
        raise Conflict(
            "the grid boundaries changed since the proposal was made; run the optimiser again",
            field="proposal",
        )
    valid_from = date.fromisoformat(payload["valid_from"])
    if valid_from < assignments.today():
        raise Conflict("the proposal would start in the past; run it again", field="proposal")
    removed = [_ended(*row) for row in payload["removed"]]
    for old in removed:
        # A planner may have locked an assignment since; locked ones are kept, always.
        if assignments.assignment_info(session, old.assignment_id).locked:
            raise Conflict(
                f"assignment {old.assignment_id} ({old.team_mark}, {old.grid_code}) was locked "
                "since the proposal was made; run the optimiser again",
                field="proposal",
            )
    added = [
        ProposedAssignment(mark, grid, "added", tuple(_pattern(*s) for s in shifts), (), load, m)
        for mark, grid, shifts, load, m in payload["added"]
    ]
    return ReviewedProposal(code, valid_from, added, removed)


def _ended(
    assignment_id: int, mark: str, grid: str, weekdays: int, starts: str, ends: str, source: str
) -> EndedAssignment:
    return EndedAssignment(assignment_id, mark, grid, _pattern(weekdays, starts, ends), source)


def _pattern(weekdays: int, starts: str, ends: str) -> ShiftPattern:
    return ShiftPattern(
        weekdays, parse_clock(starts, field="starts"), parse_clock(ends, field="ends", end=True)
    )


def _pattern_words(shift: ShiftPattern, language: str) -> str:
    days = format_weekdays(shift.weekdays)
    return patrol_maps.shift_text(days, f"{shift.starts:%H:%M}", f"{shift.ends:%H:%M}", language)


def _time_limit(raw: str) -> float:
    """Seconds for the optimiser: the default when blank, else within the API's bounds."""
    if not raw.strip():
        return DEFAULT_TIME_LIMIT
    try:
        limit = float(raw)
    except ValueError:
        limit = -1.0  # answered below, with the bounds
    if not 0 < limit <= MAX_TIME_LIMIT:
        raise InputError(
            f"time_limit must be seconds, more than 0 and at most {MAX_TIME_LIMIT:g}",
            field="time_limit",
        )
    return limit


def _form_day(raw: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InputError(
            f"date {raw!r} is not an ISO date, e.g. 2026-03-02", field="date"
        ) from None
