"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) over geogrid's intake.

A facade: every request filed here goes through :func:`geogrid.intake.file_incident`
like any other channel. JSON only (``.json``; ``.xml`` answers a clear error).

Mapping and decisions:

- ``jurisdiction_id`` is a county code of the active generation (another is a 404). It
  may be left out when the generation has a single county. A request whose point lies
  in another county's grid is refused; one outside every grid is kept for a person to
  place, as intake always does.
- services are the active incident categories: ``service_code`` is the category code,
  ``service_name`` Chinese unless ``locale=en`` or ``Accept-Language: en``, ``group``
  the responsible department, ``metadata`` false, ``type`` realtime.
- ``lat``/``long`` are WGS84, as the specification defines them, so ``coord_type``
  (geogrid's extension; ``gcj02`` and ``bd09`` for Chinese phone apps) defaults to
  ``wgs84`` here only; the JSON API still requires it. ``address_string`` alone cannot
  be placed: ``lat`` and ``long`` are required.
- ``first_name``/``last_name``/``phone`` become the reporter's contact (family name
  first when either is Chinese). ``email``, ``device_id`` and ``address_id`` are not
  kept; ``account_id`` is only echoed back. ``media_url`` becomes the one photo. The
  extension ``channel`` lets a token holder (the 12345 hotline bridge) say ``hotline``.
  An ``Idempotency-Key`` header makes a retry answer the first request (200, not 201).
- status: ``closed`` is evaluated, rejected or merged (:data:`CLOSED_STATES`);
  everything else, resolved included, is ``open``, because a resident who is not
  satisfied reopens a resolved incident. The extension ``detailed_status`` gives the
  geogrid state, ``grid_code`` the grid it was recorded in.
- reading: the public (no token) sees every request's status, service, grid and times
  but not its description, address, point, photo or notes; a token holder sees all of
  those for the incidents their scope covers. Reporters' contacts are never shown here.
  Tokens go in ``Authorization: Bearer``; ``api_key`` is accepted in a POST body, never
  in a URL, where access logs would keep it.
- ``GET requests.json`` with no dates covers the last 90 days, at most 1,000 requests.
- errors are GeoReport's ``[{"code": <HTTP status>, "description": "<field>: ..."}]``.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid import incidents as library
from geogrid.actors import SYSTEM_ACTOR, Actor
from geogrid.categories import list_categories
from geogrid.errors import GeogridError, InputError, NotFound
from geogrid.generations import resolve_generation
from geogrid.intake import file_incident
from geogrid.models import (
    CLOSED_STATES,
    INCIDENT_STATES,
    Area,
    Incident,
    IncidentCategory,
    IncidentEvent,
)
from geogrid.workdays import SHANGHAI
from web.auth import current_actor, is_public, use_token
from web.db import get_session, get_settings
from web.errors import error_response, status_for
from web.i18n import current_language
from web.incidents import query_moment, query_text

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

OPEN_STATES = tuple(state for state in INCIDENT_STATES if state not in CLOSED_STATES)
#: Without dates, GET requests covers this much of the past (the specification's default).
DEFAULT_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
#: geogrid's field names as GeoReport calls them, for error descriptions.
OPEN311_FIELDS = {
    "category": "service_code",
    "lon": "long",
    "address": "address_string",
    "photos": "media_url",
    "contact_name": "first_name",
    "contact_phone": "phone",
    "since": "start_date",
    "until": "end_date",
    "state": "status",
    "body": "request",
}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@bp.errorhandler(GeogridError)
def geogrid_error(error: GeogridError) -> tuple[Response | str, int]:
    """A domain error in GeoReport's shape, the field named as GeoReport names it."""
    body = {**error.as_dict(), "field": OPEN311_FIELDS.get(error.field, error.field)}
    return error_response(status_for(error), body)


@bp.get("/services.json")
def services() -> Response:
    """The categories as GeoReport services."""
    session = get_session()
    _jurisdiction(session, required=False)
    english = _language() == "en"
    return jsonify(
        [
            {
                "service_code": category.code,
                "service_name": category.name_en if english else category.name_zh,
                "description": _service_description(category, english),
                "metadata": False,
                "type": "realtime",
                "keywords": ",".join([category.name_zh, category.name_en, category.code]),
                "group": category.department,
            }
            for category in list_categories(session)
        ]
    )


@bp.post("/requests.json")
def create_request() -> tuple[Response, int]:
    """File a service request (form-encoded, public); 201, or 200 on an idempotent retry."""
    if request.mimetype not in _FORM_TYPES:
        abort(415, description="GeoReport requests are form-encoded (x-www-form-urlencoded)")
    form = request.form
    if form.get("api_key"):
        use_token(form["api_key"])
    session, actor = get_session(), current_actor()
    jurisdiction = _jurisdiction(session, required=True)
    result = file_incident(
        session,
        get_settings(),
        _incident_fields(form),
        actor,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    incident = result.incident
    if incident.grid_code is not None and not incident.grid_code.startswith(jurisdiction):
        raise InputError(
            f"the point lies in grid {incident.grid_code}, outside jurisdiction {jurisdiction}",
            field="jurisdiction_id",
        )
    answer = {
        "service_request_id": str(incident.id),
        "service_notice": _notice(incident, _language() == "en"),
        "account_id": form.get("account_id") or None,
        "grid_code": incident.grid_code,
        "detailed_status": incident.state,
    }
    return jsonify([answer]), 201 if result.created else 200


@bp.get("/requests.json")
def list_requests() -> Response:
    """Service requests by id, or by service, dates and status (newest first)."""
    session, reader, public = get_session(), *_reader()
    prefix = _jurisdiction(session, required=False)
    ids = _request_ids()
    if ids is not None:
        found = [_visible(session, reader, incident_id, prefix) for incident_id in ids]
        chosen = [incident for incident in found if incident is not None]
    else:
        chosen = _search(session, reader, prefix)
    return jsonify(_as_requests(session, chosen, public=public))


@bp.get("/requests/<int(max=9223372036854775807):incident_id>.json")
def show_request(incident_id: int) -> Response:
    """One service request, as a list of one (as the specification has it)."""
    session, reader, public = get_session(), *_reader()
    prefix = _jurisdiction(session, required=False)
    incident = _visible(session, reader, incident_id, prefix, quiet=False)
    assert incident is not None  # not quiet: missing or out of view raised
    return jsonify(_as_requests(session, [incident], public=public))


@bp.route("/services.xml")
@bp.route("/requests.xml", methods=["GET", "POST"])
@bp.route("/requests/<path:_rest>.xml")
def xml(_rest: str = "") -> Response:
    """XML is not offered; say so rather than 404."""
    raise InputError("this server speaks GeoReport in JSON only; use .json", field="format")


# -- filing ------------------------------------------------------------------------------


def _incident_fields(form: Any) -> dict[str, Any]:
    """A GeoReport POST as the fields of :class:`geogrid.intake.IncidentInput`."""
    for required in ("service_code", "description"):
        if not form.get(required, "").strip():
            raise InputError(f"{required} is required", field=required)
    if not form.get("lat", "").strip() or not form.get("long", "").strip():
        raise InputError(
            "lat and long are required: geogrid places each request into a grid by its point",
            field="lat" if not form.get("lat", "").strip() else "long",
        )
    media_url = form.get("media_url", "").strip()
    fields = {
        "category": form["service_code"].strip(),
        "description": form["description"],
        "lon": form["long"],
        "lat": form["lat"],
        "coord_type": form.get("coord_type", "").strip() or "wgs84",
        "address": form.get("address_string") or None,
        "photos": [media_url] if media_url else None,
        "contact_name": _contact_name(form) or None,
        "contact_phone": form.get("phone") or None,
        "channel": form.get("channel") or None,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _contact_name(form: Any) -> str:
    first, last = form.get("first_name", "").strip(), form.get("last_name", "").strip()
    if not (first + last).isascii():
        return last + first  # 张 + 三: the family name first, no space
    return " ".join(part for part in (first, last) if part)


def _notice(incident: Incident, english: bool) -> str:
    accept, resolve = _minute(incident.accept_due_at), _minute(incident.resolve_due_at)
    if english:
        where = incident.grid_code or "none yet: a person will place it"
        due = f"accepted by {accept}, resolved by {resolve}" if accept else "deadlines pending"
        return f"Filed as incident {incident.id} in grid {where}; to be {due} (Beijing time)."
    where = incident.grid_code or "待人工定位"
    due = f"受理时限 {accept}，办结时限 {resolve}" if accept else "时限待定"
    return f"已登记为第 {incident.id} 号事件，网格 {where}；{due}（北京时间）。"


# -- reading -----------------------------------------------------------------------------


def _reader() -> tuple[Actor, bool]:
    """Who reads: a token's user in their scope, or the public (everything, public fields)."""
    if "api_key" in request.args:
        raise InputError(
            "never put a token in a URL; send Authorization: Bearer <token>", field="api_key"
        )
    actor = current_actor()
    if is_public(actor):
        return SYSTEM_ACTOR, True
    return actor, False


def _request_ids() -> list[int] | None:
    raw = query_text("service_request_id")
    if raw is None:
        return None
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() and len(part) < 19 for part in parts):
        raise InputError(
            f"service_request_id is a comma-separated list of ids, not {raw!r}",
            field="service_request_id",
        )
    return [int(part) for part in parts][:MAX_REQUESTS]


def _visible(
    session: Session, reader: Actor, incident_id: int, prefix: str | None, *, quiet: bool = True
) -> Incident | None:
    try:
        incident = library.get_incident(session, incident_id, reader)
        if prefix and not (incident.grid_code or "").startswith(prefix):
            raise NotFound(f"there is no request {incident_id} in jurisdiction {prefix}")
    except GeogridError:
        if quiet:
            return None
        raise
    return incident


def _search(session: Session, reader: Actor, prefix: str | None) -> list[Incident]:
    filters = {
        "state": _states(),
        "grid_prefix": _grid_prefix(prefix),
        "since": query_moment("start_date"),
        "until": query_moment("end_date"),
    }
    if filters["since"] is None and filters["until"] is None:
        filters["since"] = datetime.now(SHANGHAI) - DEFAULT_SPAN
    codes = [code.strip() for code in (query_text("service_code") or "").split(",")]
    runs = [
        library.list_incidents(session, reader, category=code, limit=MAX_REQUESTS, **filters)
        for code in ([c for c in codes if c] or [None])
    ]
    newest_first = heapq.merge(*runs, key=lambda i: (i.reported_at, i.id), reverse=True)
    return list(newest_first)[:MAX_REQUESTS]


def _states() -> list[str] | None:
    raw = query_text("status")
    if raw is None:
        return None
    states: list[str] = []
    for status in (part.strip().lower() for part in raw.split(",") if part.strip()):
        if status not in ("open", "closed"):
            raise InputError(f"status is open, closed or both, not {status!r}", field="status")
        states += OPEN_STATES if status == "open" else CLOSED_STATES
    return states


def _grid_prefix(jurisdiction: str | None) -> str | None:
    grid = query_text("grid_code")
    if grid is None:
        return jurisdiction or None
    if not grid.isascii() or not grid.isdigit():
        raise InputError(f"grid_code must be digits, not {grid!r}", field="grid_code")
    if jurisdiction and not grid.startswith(jurisdiction[: len(grid)]):
        raise InputError(f"grid {grid} is not in jurisdiction {jurisdiction}", field="grid_code")
    return grid if len(grid) > len(jurisdiction or "") else jurisdiction or None


def _as_requests(session: Session, chosen: list[Incident], *, public: bool) -> list[dict[str, Any]]:
    """Incidents as GeoReport service requests (public fields only for the public)."""
    categories = {category.code: category for category in session.scalars(select(IncidentCategory))}
    updated = _last_changes(session, [incident.id for incident in chosen])
    english = _language() == "en"
    answers = []
    for incident in chosen:
        category = categories[incident.category]
        answer: dict[str, Any] = {
            "service_request_id": str(incident.id),
            "status": "closed" if incident.state in CLOSED_STATES else "open",
            "service_name": category.name_en if english else category.name_zh,
            "service_code": incident.category,
            "agency_responsible": incident.department or category.department,
            "requested_datetime": library.iso(incident.reported_at),
            "updated_datetime": library.iso(updated.get(incident.id, incident.reported_at)),
            "expected_datetime": library.iso(incident.resolve_due_at),
            "grid_code": incident.grid_code,
            "detailed_status": incident.state,
        }
        if incident.state == "merged":
            answer["status_notes"] = f"duplicate of request {incident.duplicate_of}"
        if not public:
            answer.update(_private_fields(incident))
        answers.append(answer)
    return answers


def _private_fields(incident: Incident) -> dict[str, Any]:
    point = to_shape(incident.geom) if incident.geom is not None else None
    notes = {"rejected": incident.reject_reason, "merged": f"duplicate of {incident.duplicate_of}"}
    return {
        "status_notes": notes.get(incident.state) or incident.satisfaction,
        "description": incident.description,
        "address": incident.address or None,
        # Storage is CGCS2000, which agrees with WGS84 to well under a metre.
        "lat": point.y if point is not None else None,
        "long": point.x if point is not None else None,
        "media_url": (incident.photos or [None])[0],
    }


def _last_changes(session: Session, ids: list[int]) -> dict[int, datetime]:
    """When each incident's log last grew (GeoReport's ``updated_datetime``)."""
    if not ids:
        return {}
    rows = session.execute(
        select(IncidentEvent.incident_id, func.max(IncidentEvent.at))
        .where(IncidentEvent.incident_id.in_(ids))
        .group_by(IncidentEvent.incident_id)
    )
    return {incident_id: moment for incident_id, moment in rows}


# -- small helpers ---------------------------------------------------------------------------


def _jurisdiction(session: Session, *, required: bool) -> str:
    """The county code asked for (or the only one); 404 for one this server does not serve."""
    level = get_settings().scheme.level_names[0]
    generation = resolve_generation(session, None)
    counties = list(
        session.scalars(
            select(Area.code)
            .where(Area.level == level, Area.valid_in(generation.id))
            .order_by(Area.code)
        )
    )
    asked = query_text("jurisdiction_id") or request.form.get("jurisdiction_id", "").strip()
    if asked:
        if asked not in counties:
            raise NotFound(
                f"jurisdiction {asked!r} is not served here; jurisdictions: {', '.join(counties)}",
                field="jurisdiction_id",
            )
        return asked
    if len(counties) == 1 or not required:
        return counties[0] if len(counties) == 1 else ""
    raise InputError(
        f"jurisdiction_id is required: this server serves {', '.join(counties)}",
        field="jurisdiction_id",
    )


def _service_description(category: IncidentCategory, english: bool) -> str:
    a, r, c = category.accept_days, category.resolve_days, category.complex_days
    if english:
        who = f"; handled by {category.department}" if category.department else ""
        return f"Accepted within {a} working day(s), resolved within {r} ({c} if complex){who}."
    who = f"；责任部门：{category.department}" if category.department else ""
    return f"{a} 个工作日内受理，{r} 个工作日内办结（复杂事项 {c} 个）{who}。"


def _language() -> str:
    asked = query_text("locale")
    if asked:
        return "en" if asked.lower().startswith("en") else "zh_CN"
    return current_language()


def _minute(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else None
