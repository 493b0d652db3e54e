"""The officials' dashboard: ``GET /dashboard`` and its league table as XLSX.

Filters, all in the query string so a view can be bookmarked and shared: ``area`` (a
code the user covers; by default their scope's first), ``period`` (``month``, ``week``
or ``range``, with ``month=YYYY-MM``, ``week=YYYY-Www`` or ``from``/``to`` days; by
default the last full month, Shanghai time), ``category`` (the map, figures, league
table, overdue list and export all count its incidents only), ``level`` (the units the map
counts by) and ``slice`` (``week`` or ``month``, for emerging hotspots). The view reads
everything through :mod:`geogrid.dashboard` with the signed-in actor, so an area outside
the scope is a 403 however the URL was made.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import folium
import openpyxl
import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, render_template, url_for
from sqlalchemy.orm import Session

from geogrid import dashboard as board
from geogrid import sheets
from geogrid.actors import ADMINISTRATOR, OFFICIAL, Actor
from geogrid.dashboard_maps import (
    emerging_map,
    emerging_values,
    fit_to,
    heat_map,
    hotspot_map,
    rate_map,
)
from geogrid.emerging import emerging_hotspots
from geogrid.errors import InputError
from geogrid.generations import resolve_generation
from geogrid.hotspots import grid_counts, hotspots
from geogrid.maps import base_map, display_tolerance, label, map_parts, offline
from geogrid.models import Generation
from geogrid.periods import Period
from geogrid.reports import Report, report_category
from geogrid.settings import Settings
from geogrid.workdays import SHANGHAI
from web.auth import page_actor
from web.db import get_session, get_settings
from web.i18n import current_language, gettext
from web.incidents import query_text
from web.vendor import asset_url

bp = Blueprint("dashboard", __name__)

#: The people units are judged by.
VIEWERS = (OFFICIAL, ADMINISTRATOR)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Filters:
    """What the dashboard shows, read from the query string and checked against the scope."""

    area: board.AreaChoice
    period: Period
    period_kind: str
    category: str | None
    level: str
    slice: str

    def args(self) -> dict[str, str]:
        """The filters as query arguments, for links to the export and to other areas."""
        args = {"area": self.area.code, "period": self.period_kind, "level": self.level}
        if isinstance(self.period, board.DateRange):
            args.update({"from": self.period.first_day.isoformat()})
            args.update({"to": self.period.last.isoformat()})
        else:
            args[self.period_kind] = self.period.label
        if self.category:
            args["category"] = self.category
        args["slice"] = self.slice
        return args


@bp.get("/dashboard")
def dashboard() -> str:
    """The map, deadline figures, overdue list and league table of one area and period."""
    actor = page_actor(*VIEWERS)
    session, settings = get_session(), get_settings()
    generation = resolve_generation(session, None)
    now = datetime.now(SHANGHAI)
    filters = _filters(session, settings, actor, generation.id, now)
    language = current_language()
    report = _report(session, settings, actor, filters, now)
    overdue, overdue_total = board.overdue_incidents(
        session,
        actor,
        within=filters.area.code,
        now=now,
        category=filters.category,
        language=language,
    )
    m = _map(session, settings, actor, filters, generation, language)
    return render_template(
        "dashboard.html",
        map=map_parts(offline(m, asset_url)),
        filters=filters,
        report=report,
        league=report.rows(),
        overdue=overdue,
        overdue_total=overdue_total,
        incident_url=_incident_url,
        links=board.area_links(session, settings.scheme, actor, filters.area, generation.id),
        levels=board.analysis_levels(settings.scheme, filters.area.level),
        league_level=report.level,
        categories=board.category_choices(session, language),
        level_label=lambda level: label(level, language),
        local_time=_local_time,
        period_text=_period_text(filters.period),
        export_url=url_for("dashboard.league_xlsx", **filters.args()),
        area_url=lambda code: url_for("dashboard.dashboard", **{**filters.args(), "area": code}),
        now=now,
    )


@bp.get("/dashboard/league.xlsx")
def league_xlsx() -> Response:
    """The league table (and deadline figures) of the dashboard's filters as XLSX."""
    actor = page_actor(*VIEWERS)
    session, settings = get_session(), get_settings()
    generation = resolve_generation(session, None).id
    now = datetime.now(SHANGHAI)
    filters = _filters(session, settings, actor, generation, now)
    report = _report(session, settings, actor, filters, now)
    language = current_language()
    period = filters.period.label.replace("/", "_")
    only = f"-{filters.category}" if filters.category else ""
    name = f"league-{filters.area.code}-{period}-{report.level}{only}.xlsx"
    with tempfile.TemporaryDirectory(prefix="geogrid-league-") as folder:
        path = Path(folder) / name
        sheets.write_report_xlsx(report, path, language=language)
        if isinstance(filters.period, board.DateRange):
            _retitle(path, report, language)
        content = path.read_bytes()
    response = Response(content, mimetype=XLSX)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    # Scoped figures: no shared cache keeps one official's table for another.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/dashboard/emerging.json")
def emerging_json() -> Response:
    """The emerging hotspot layer's values ``{code: {...}}`` for the dashboard's filters."""
    actor = page_actor(*VIEWERS)
    session, settings = get_session(), get_settings()
    generation = resolve_generation(session, None).id
    filters = _filters(session, settings, actor, generation, datetime.now(SHANGHAI))
    values = emerging_values(_emerging(session, filters, generation), current_language())
    response = jsonify(values)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# -- filters -------------------------------------------------------------------------------


def _filters(
    session: Session, settings: Settings, actor: Actor, generation: int, now: datetime
) -> Filters:
    scheme = settings.scheme
    area = board.choose_area(session, scheme, actor, query_text("area"), generation)
    period_kind = query_text("period") or "month"
    period = board.choose_period(
        period_kind,
        now=now,
        month=query_text("month"),
        week=query_text("week"),
        first=query_text("from"),
        last=query_text("to"),
    )
    chosen = report_category(session, query_text("category"))
    category = chosen.code if chosen else None
    allowed = board.analysis_levels(scheme, area.level)
    level = query_text("level") or allowed[-1]
    scheme.level(level)  # an unknown level name is an error
    if level not in allowed:
        # A level kept from a coarser area: count by the finest the new area has.
        level = allowed[-1]
    slice_kind = query_text("slice") or "month"
    if slice_kind not in board.SLICES:
        raise InputError(f"slices are week or month, not {slice_kind!r}", field="slice")
    return Filters(area, period, period_kind, category, level, slice_kind)


def _report(
    session: Session, settings: Settings, actor: Actor, filters: Filters, now: datetime
) -> Report:
    """The deadline figures and league table of the filters' area, period and category."""
    return board.deadline_report(
        session, settings, actor, filters.area, filters.period, now=now, category=filters.category
    )


# -- the map -------------------------------------------------------------------------------


def _map(
    session: Session,
    settings: Settings,
    actor: Actor,
    filters: Filters,
    generation: Generation,
    language: str,
) -> folium.Map:
    area, period = filters.area, filters.period
    bounds = board.area_bounds(session, area.code, generation.id)
    source, units = _units(session, filters, generation, bounds)
    counts = grid_counts(
        session,
        generation_id=generation.id,
        level=filters.level,
        within=area.code,
        start=period.start,
        end=period.end,
        category=filters.category,
    )
    rates, basis = board.incident_rates(counts, units)
    points = board.incident_points(
        session,
        actor,
        within=area.code,
        start=period.start,
        end=period.end,
        category=filters.category,
    )
    m = base_map(settings.tiles, attribution=settings.tiles_attribution, language=language)
    # Fitted first, so that layers fetched by zoom ask for the zoom the page opens at.
    fit_to(m, bounds)
    heat_map(points, m=m, language=language)
    rate_map(source, rates, basis=basis, m=m, language=language)
    found = hotspots(session, counts, generation_id=generation.id, level=filters.level)
    hotspot_map(source, found.frame, note=found.note, m=m, language=language)
    first, last = board.emerging_window(period, filters.slice)
    # A dozen Gi* runs take seconds the first time: a page fetching its areas fetches this
    # layer's values too, so the page itself never waits for them.
    emerging = (
        url_for("dashboard.emerging_json", **filters.args(), lang=language)
        if isinstance(source, str)
        else _emerging(session, filters, generation.id)
    )
    window = f"{first.label} – {last.label}"
    emerging_map(source, emerging, slice=filters.slice, window=window, m=m, language=language)
    return m


def _emerging(session: Session, filters: Filters, generation: int) -> pd.DataFrame:
    first, last = board.emerging_window(filters.period, filters.slice)
    return emerging_hotspots(
        session,
        generation_id=generation,
        level=filters.level,
        within=filters.area.code,
        start=first.start,
        end=last.end,
        slice=filters.slice,
        category=filters.category,
    )


def _units(
    session: Session, filters: Filters, generation: Generation, bounds: tuple[float, ...]
) -> tuple[Any, Any]:
    """The units' outlines for the map (the layers endpoint's URL, or inline) and their table."""
    if "layers.areas" in current_app.view_functions:
        url = url_for(
            "layers.areas", generation=generation.id, level=filters.level, within=filters.area.code
        )
        return url, board.unit_areas(session, generation, filters.level, filters.area.code)
    units = board.unit_areas(
        session,
        generation,
        filters.level,
        filters.area.code,
        simplify=display_tolerance(bounds),
    )
    return units, units


# -- presentation ---------------------------------------------------------------------------


def _incident_url(incident_id: int) -> str:
    """The incident's page when the incident pages exist, else its API answer."""
    if "incident_pages.incident" in current_app.view_functions:
        return url_for("incident_pages.incident", incident_id=incident_id)
    return url_for("incidents.show", incident_id=incident_id)


def _local_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _period_text(period: Period) -> str:
    if isinstance(period, board.DateRange):
        return f"{period.first_day.isoformat()} – {period.last.isoformat()}"
    return period.label


def _retitle(path: Path, report: Report, language: str) -> None:
    """Name a custom range as such in the sheets' title rows, not as a daily report."""
    workbook = openpyxl.load_workbook(path)
    rest = sheets.title(report, language).split(" ", 1)[1]
    for worksheet in workbook.worksheets:
        worksheet["A1"] = f"{gettext('Custom range')} {rest}"
    workbook.save(path)
