"""Incident pages: the list, one incident (map, details, timeline, actions) and filing.

Thin views over the library the JSON API (``web/incidents.py``) uses:
:mod:`geogrid.incidents` reads what the actor may see, :mod:`geogrid.workflow` takes
actions, :mod:`geogrid.intake` files. The library checks roles and scopes for the actor
:func:`web.auth.page_actor` gives; a page only decides what to offer. Forms carry the CSRF
token; an action or a filing that succeeds redirects to the incident (post/redirect/get)
with a flash message, one that fails re-renders the form naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from geoalchemy2.shape import to_shape
from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from geogrid import incidents as library
from geogrid import sla, workflow
from geogrid.actors import (
    ADMINISTRATOR,
    DEPARTMENT,
    GRID_WORKER,
    OFFICIAL,
    PATROL_MEMBER,
    STATION_OFFICER,
    UNSCOPED_ROLES,
    Actor,
)
from geogrid.boundaries import areas_frame
from geogrid.categories import list_categories
from geogrid.crs import GCJ02
from geogrid.duplicates import find_possible_duplicates
from geogrid.errors import Conflict, CoordinateError, Forbidden, GeogridError, InputError
from geogrid.generations import resolve_generation
from geogrid.geocode import OUTSIDE, locate
from geogrid.incident_input import IncidentInput
from geogrid.incident_maps import filing_map, incident_map, map_coord_type
from geogrid.intake import file_incident
from geogrid.maps import map_parts, offline
from geogrid.models import (
    CHANNELS,
    INCIDENT_STATES,
    Area,
    Incident,
    IncidentCategory,
)
from geogrid.settings import Settings
from geogrid.workdays import SHANGHAI, load_calendar
from web.auth import page_actor
from web.db import get_session, get_settings
from web.errors import handle_geogrid_error, status_for
from web.i18n import current_language, gettext
from web.incident_forms import OPEN, action_params, filing_fields, list_filters, new_form_key
from web.vendor import asset_url

bp = Blueprint("incident_pages", __name__)

#: Who opens the list (web/nav.py); patrol members also open incidents they filed in scope.
LIST_ROLES = (ADMINISTRATOR, OFFICIAL, GRID_WORKER, DEPARTMENT, STATION_OFFICER)
VIEW_ROLES = (*LIST_ROLES, PATROL_MEMBER)
#: Residents file through the API and Open311, not this page.
FILING_ROLES = (ADMINISTRATOR, OFFICIAL, GRID_WORKER, PATROL_MEMBER, STATION_OFFICER)
#: Roles the library lets file by grid code instead of a point.
BY_GRID_ROLES = library.PLACING_ROLES
PAGE_SIZE = 50
_ID = f"<int(max={2**63 - 1}):incident_id>"
#: Above this many grids the filing map fetches them from the layers endpoint, simplified
#: for the zoom, rather than carrying every polygon in the page.
INLINE_GRIDS = 300
#: Channels staff may choose on the form; ``import`` belongs to the historic import.
FORM_CHANNELS = tuple(channel for channel in CHANNELS if channel != "import")
#: Event data worth showing in the timeline, in this order.
EVENT_FACTS = (
    "assignee", "department", "days", "granted_days", "denied_days", "satisfied", "complex",
    "to_level", "grid_code", "into", "from", "resolve_due_at", "report_in_due_at",
)  # fmt: skip


# -- the list ------------------------------------------------------------------------------


@bp.get("/incidents")
def incidents() -> tuple[str, int]:
    """Incidents the actor may see, newest report first, filtered and paged on the server."""
    actor = page_actor(*LIST_ROLES)
    session = get_session()
    now = datetime.now(SHANGHAI)
    categories = _categories(session)
    error, found, total, overdue = None, [], 0, 0
    try:
        filters, page = list_filters(request.args)
        found = library.list_incidents(
            session, actor, **filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, now=now
        )
        total = library.count_incidents(session, actor, **filters, now=now)
        overdue = library.count_incidents(session, actor, **{**filters, "overdue": True}, now=now)
    except InputError as failed:
        error, page = failed, 1
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return render_template(
        "incidents.html",
        incidents=found,
        total=total,
        overdue_total=overdue,
        page=page,
        pages=pages,
        page_url=lambda number: url_for(".incidents", **{**request.args.to_dict(), "page": number}),
        args=request.args,
        error=error,
        states=(OPEN, *INCIDENT_STATES),
        categories=categories,
        channels=CHANNELS,
        areas=_picker_areas(session, actor),
        grid_names=_area_names(session, {i.grid_code for i in found if i.grid_code}),
        overdue=lambda incident: _overdue(incident, now),
    ), 400 if error else 200


# -- one incident --------------------------------------------------------------------------


@bp.get(f"/incidents/{_ID}")
def incident(incident_id: int) -> str:
    """One incident: its map, details, timeline and the actions the actor may take now."""
    actor = page_actor(*VIEW_ROLES)
    return _incident_page(actor, incident_id)


@bp.post(f"/incidents/{_ID}/actions/<action>")
def act(incident_id: int, action: str) -> Response | tuple[str, int]:
    """Take a workflow action from its form, then back to the incident with a message."""
    actor = page_actor(*VIEW_ROLES)
    transition = workflow.transition_of(action)
    try:
        note, params = action_params(transition, request.form)
        workflow.act(get_session(), get_settings(), incident_id, action, actor, note=note, **params)
    except InputError as failed:
        # A form the actor may send but filled in wrongly: shown again, the field named.
        return _incident_page(actor, incident_id, failed=failed, failed_action=action), 400
    flash(gettext("%(action)s: done.", action=word("action", action)), "success")
    return redirect(url_for(".incident", incident_id=incident_id))


def _incident_page(
    actor: Actor,
    incident_id: int,
    *,
    failed: GeogridError | None = None,
    failed_action: str | None = None,
) -> str:
    session, settings = get_session(), get_settings()
    incident = library.get_incident(session, incident_id, actor)
    now = datetime.now(SHANGHAI)
    language = current_language()
    categories = _categories(session)
    grids = _grids_of(session, settings.scheme.default_geocode_level, incident)
    duplicates = _duplicates_of(session, settings, incident, actor, categories)
    point, approximate = _point_of(incident, grids)
    coord_type = map_coord_type(settings.tiles)
    m = incident_map(
        point,
        grids,
        duplicates=duplicates,
        incident_label=f"#{incident.id} {categories.get(incident.category, incident.category)}",
        approximate=approximate,
        coord_type=coord_type,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
        language=language,
    )
    show_reporter = library.may_see_contact(actor, incident)
    extras = library.load_extras(session, [incident], actor)[incident.id]
    overdue = sla.overdue_status(load_calendar(session), incident, now)
    return render_template(
        "incident.html",
        incident=incident,
        map=map_parts(offline(m, asset_url)),
        category_name=categories.get(incident.category, incident.category),
        category=session.get(IncidentCategory, incident.category),
        grid_name=_grid_name(grids, incident.grid_code),
        nearest=(incident.placement_detail or {}).get("nearest"),
        overdue=overdue,
        contact=extras.contact if show_reporter else None,
        show_reporter=show_reporter,
        events=[
            _event_view(event, show_reporter) for event in library.events_of(session, incident.id)
        ],
        duplicates=duplicates,
        actions=[
            workflow.ACTIONS[name]
            for name in workflow.allowed_actions(incident, actor, scheme=settings.scheme)
        ],
        departments=sorted({c.department for c in list_categories(session) if c.department}),
        actor=actor,
        failed=failed,
        failed_action=failed_action,
        form=request.form if failed else {},
    )


def _grids_of(session: Session, level: str, incident: Incident) -> gpd.GeoDataFrame:
    """The incident's grid, the grids it nearly fell into, or the nearest one if outside."""
    detail = incident.placement_detail or {}
    codes = [incident.grid_code or library.nearest_code(incident), *detail.get("candidates", [])]
    frames = [
        areas_frame(session, level=level, within=code, generation=incident.generation)
        for code in dict.fromkeys(code for code in codes if code)
    ]
    if not frames:
        return gpd.GeoDataFrame({"code": [], "name": [], "geometry": []}, crs="EPSG:4490")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def _grid_name(grids: gpd.GeoDataFrame, code: str | None) -> str:
    names = grids.loc[grids["code"] == code, "name"] if code else []
    return str(names.iloc[0]) if len(names) else ""


def _point_of(incident: Incident, grids: gpd.GeoDataFrame) -> tuple[Any, bool]:
    """The incident's stored point, or its grid's representative point when filed by grid."""
    if incident.geom is not None:
        return to_shape(incident.geom), False
    own = grids[grids["code"] == incident.grid_code]
    return (own.geometry.iloc[0].representative_point(), True) if len(own) else (None, False)


def _duplicates_of(
    session: Session,
    settings: Settings,
    incident: Incident,
    actor: Actor,
    categories: dict[str, str],
) -> gpd.GeoDataFrame:
    """Possible duplicates the actor may see, with their points, nearest first."""
    found = find_possible_duplicates(session, settings, incident)
    rows = session.scalars(select(Incident).where(Incident.id.in_([c.incident_id for c in found])))
    visible = {row.id: row for row in rows if library.may_see(actor, row)}
    records = [
        {
            "incident_id": candidate.incident_id,
            "category_name": categories.get(visible[candidate.incident_id].category, ""),
            "state": word("state", candidate.state),
            "distance_m": candidate.distance_m,
            "hours_apart": candidate.hours_apart,
            "url": url_for(".incident", incident_id=candidate.incident_id),
            "geometry": _shape_or_none(visible[candidate.incident_id].geom),
        }
        for candidate in found
        if candidate.incident_id in visible
    ]
    columns = ["incident_id", "category_name", "state", "distance_m", "hours_apart", "url"]
    frame = pd.DataFrame(records, columns=[*columns, "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4490")


def _shape_or_none(geom: Any) -> Any:
    return to_shape(geom) if geom is not None else None


@dataclass(frozen=True)
class EventView:
    """One step of the timeline as the page shows it."""

    at: str
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str
    note: str
    facts: list[tuple[str, str]]


def _event_view(event: Any, show_resident: bool) -> EventView:
    shown = library.event_as_dict(event, show_resident=show_resident)
    facts = [
        (word("fact", name), _fact_value(name, shown["data"][name]))
        for name in EVENT_FACTS
        if shown["data"].get(name) not in (None, "")
    ]
    return EventView(
        at=local_time(event.at),
        actor=shown["actor"],
        role=word("role", event.role),
        action=word("action", event.action),
        from_state=word("state", event.from_state) if event.from_state else None,
        to_state=word("state", event.to_state),
        note=event.note,
        facts=facts,
    )


def _fact_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if name.endswith("_at") and isinstance(value, str):
        return local_time(datetime.fromisoformat(value))
    if name == "to_level":
        return word("level", value)
    return str(value)


# -- filing --------------------------------------------------------------------------------


@bp.route("/incidents/new", methods=["GET", "POST"])
def new_incident() -> Response | str | tuple[str, int]:
    """File an incident by clicking the map or choosing a grid; one incident per form."""
    actor = page_actor(*FILING_ROLES)
    if request.method == "GET":
        return _filing_page(actor, {}, new_form_key())
    session, settings = get_session(), get_settings()
    form = request.form
    key = form.get("idempotency_key", "").strip() or new_form_key()
    try:
        given = IncidentInput.from_mapping(filing_fields(form, map_coord_type(settings.tiles)))
        _check_inside_a_grid(session, given)
        result = file_incident(session, settings, given, actor, idempotency_key=key)
    except Conflict as failed:
        # This form was sent before with other values: a fresh form, the values kept.
        return _filing_page(actor, form, new_form_key(), failed), status_for(failed)
    except (InputError, Forbidden) as failed:
        return _filing_page(actor, form, key, failed), status_for(failed)
    filed = result.incident
    if not result.created:
        flash(gettext("Already filed as incident #%(id)s; nothing new was written.", id=filed.id))
    else:
        flash(gettext("Filed as incident #%(id)s.", id=filed.id), "success")
    if result.duplicates:
        flash(gettext("Possible duplicates nearby: %(n)s.", n=len(result.duplicates)))
    if not library.may_see(actor, filed):
        outside = "Its grid %(code)s is outside your scope; that grid's staff will handle it."
        flash(gettext(outside, code=filed.grid_code or "-"))
        return redirect(url_for(".new_incident"))
    return redirect(url_for(".incident", incident_id=filed.id))


def _check_inside_a_grid(session: Session, given: IncidentInput) -> None:
    """Staff click where the incident is; a click outside every grid is a slip, not a report."""
    if given.grid_code is not None or given.lon is None or given.lat is None:
        return
    location = locate(session, get_settings(), given.lon, given.lat, given.coord_type)
    if location.status == OUTSIDE:
        raise CoordinateError(
            f"the point {given.lon:.6f}, {given.lat:.6f} is outside every grid; "
            "click inside a grid on the map",
            field="location",
        )


def _filing_page(actor: Actor, form: Any, key: str, failed: GeogridError | None = None) -> str:
    session, settings = get_session(), get_settings()
    level = settings.scheme.default_geocode_level
    generation = resolve_generation(session, None).id
    names = _scope_area_names(session, actor, [level], generation)
    coord_type = map_coord_type(settings.tiles)
    grids, bounds = _filing_grids(session, actor, level, generation, len(names), coord_type)
    m = filing_map(
        grids,
        bounds=bounds,
        grid_count=len(names),
        lon_field="lon",
        lat_field="lat",
        grid_field="grid_code" if actor.role in BY_GRID_ROLES else None,
        status_element="location-text",
        coord_type=coord_type,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
        language=current_language(),
    )
    return render_template(
        "incident_new.html",
        map=map_parts(offline(m, asset_url)),
        categories=list_categories(session),
        english=current_language() == "en",
        grids=names if actor.role in BY_GRID_ROLES else [],
        channels=FORM_CHANNELS,
        coord_type=coord_type,
        form=form,
        key=key,
        failed=failed,
    )


def _filing_grids(
    session: Session, actor: Actor, level: str, generation: int, count: int, coord_type: str
) -> tuple[gpd.GeoDataFrame | str, tuple[float, float, float, float] | None]:
    """The grids to click on: inline for a few, else the layers endpoint's URL and extent."""
    fetched = (
        count > INLINE_GRIDS
        and coord_type != GCJ02.name  # the endpoint's outlines cannot be shifted
        and "layers.areas" in current_app.view_functions
    )
    if not fetched:
        return _scope_grids(session, level, actor), None
    url = url_for("layers.areas", generation=generation, level=level)
    return url, _scope_extent(session, actor, level, generation)


# -- shared helpers ------------------------------------------------------------------------


@bp.context_processor
def _page_helpers() -> dict[str, Any]:
    return {"word": word, "when": local_time}


def word(kind: str, code: str | None) -> str:
    """A code (a state, an action, a channel, a field...) in the page's language."""
    key = f"{kind}:{code}"
    text = gettext(key)
    return (code or "") if text == key else text


def local_time(moment: datetime | None) -> str:
    """An instant as Shanghai wall-clock time to the minute ('' for none)."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


def _overdue(incident: Incident, now: datetime) -> bool:
    return any(deadline.missed(incident, now) for deadline in sla.DEADLINES.values())


def _categories(session: Session) -> dict[str, str]:
    """Category names by code in the page's language, retired ones too (old incidents)."""
    english = current_language() == "en"
    return {
        c.code: (c.name_en if english else c.name_zh) or c.code
        for c in list_categories(session, include_retired=True)
    }


def _scope_prefixes(actor: Actor) -> list[str | None]:
    """The code prefixes of the actor's areas; None is everything."""
    everywhere = actor.role in UNSCOPED_ROLES or (actor.role == DEPARTMENT and not actor.scope)
    return [None] if everywhere else list(actor.scope)


def _scope_grids(session: Session, level: str, actor: Actor) -> gpd.GeoDataFrame:
    """The grids of the actor's scope in the current generation."""
    frames = [areas_frame(session, level=level, within=p) for p in _scope_prefixes(actor)]
    if not frames:
        return gpd.GeoDataFrame({"code": [], "name": [], "geometry": []}, crs="EPSG:4490")
    grids = pd.concat(frames, ignore_index=True).drop_duplicates("code")
    return gpd.GeoDataFrame(grids, crs=frames[0].crs)


def _picker_areas(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """Areas to filter the list by: the levels above the grid in scope, and grids too when
    the scope is a community or less (a county's thousand grids would swamp the list)."""
    scheme = get_settings().scheme
    levels = scheme.level_names
    grid_depth = levels.index(scheme.default_geocode_level)
    community = scheme.levels[max(grid_depth - 1, 0)].length
    narrow = all(p is not None and len(p) >= community for p in _scope_prefixes(actor))
    shown = levels[: grid_depth + (1 if narrow else 0)]
    return _scope_area_names(session, actor, shown, resolve_generation(session, None).id)


def _scope_area_names(
    session: Session, actor: Actor, levels: list[str], generation: int
) -> list[tuple[str, str]]:
    """(code, name) of a generation's areas at these levels in the actor's scope, by code."""
    query = select(Area.code, Area.name).where(Area.valid_in(generation), Area.level.in_(levels))
    return [
        (code, name or "")
        for code, name in session.execute(query.where(_in_scope(actor)).order_by(Area.code))
    ]


def _scope_extent(
    session: Session, actor: Actor, level: str, generation: int
) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the actor's areas at a level, or None if there are none."""
    box = func.ST_Extent(Area.geom)
    query = select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box))
    query = query.where(Area.valid_in(generation), Area.level == level, _in_scope(actor))
    row = session.execute(query).one()
    return None if row[0] is None else (row[0], row[1], row[2], row[3])


def _in_scope(actor: Actor) -> ColumnElement[bool]:
    prefixes = _scope_prefixes(actor)
    if None in prefixes:
        return true()
    return or_(false(), *(Area.code.startswith(p, autoescape=True) for p in prefixes if p))


def _area_names(session: Session, codes: set[str]) -> dict[str, str]:
    """Names of areas by code, from the newest generation that has each (codes never move)."""
    if not codes:
        return {}
    rows = session.execute(
        select(Area.code, Area.name).where(Area.code.in_(codes)).order_by(Area.generation_high)
    )
    return {code: name or "" for code, name in rows}


@bp.errorhandler(GeogridError)
def _error_page(error: GeogridError) -> tuple[Any, int]:
    """A refusal on these pages, with the way back to the incident and the list."""
    status = status_for(error)
    if status >= 500:
        return handle_geogrid_error(error)
    return render_template(
        "incident_error.html",
        status=status,
        error={"field": None, **error.as_dict()},
        incident_id=(request.view_args or {}).get("incident_id"),
    ), status
