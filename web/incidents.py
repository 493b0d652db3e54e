"""The incidents JSON API (小红哨): file, list, read, act on, merge and place incidents.

Thin views over :mod:`geogrid.intake`, :mod:`geogrid.incidents`, :mod:`geogrid.workflow`
and :mod:`geogrid.duplicates`; the library checks roles and scopes for the actor
:func:`web.auth.current_actor` gives. Errors answer ``{"error": {"code", "message",
"field"}}`` (``web/errors.py``). Request bodies are JSON objects: a malformed one is a
400 naming ``body``, another content type a 415.

Filing (``POST /api/incidents``) is open to the public, who may not backdate a report
(``reported_at``) or call it complex; everything else needs a token.
With an ``Idempotency-Key`` header a retried submission answers 200 with the incident
the first one created (201); the same key with a different body is a 409.
Lists never carry the reporter's contact or name, whoever asks; one incident carries
them only for the roles :func:`geogrid.incidents.may_see_contact` allows.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, url_for

from geogrid import duplicates, workflow
from geogrid import incidents as library
from geogrid.categories import list_categories
from geogrid.errors import InputError
from geogrid.intake import file_incident
from geogrid.models import Incident
from geogrid.workdays import SHANGHAI
from web.auth import current_actor, is_public, signed_in_actor
from web.db import get_session, get_settings
from web.i18n import current_language

bp = Blueprint("incidents", __name__, url_prefix="/api")

#: The most incidents one list request returns.
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
#: Fields the anonymous public may not set (see :func:`_check_public_report`).
_STAFF_FIELDS = ("reported_at", "complex")
#: ``workflow.act`` arguments a request body must not set (the server's clock, the actor...).
_NOT_PARAMETERS = frozenset(
    {"session", "settings", "incident_id", "action", "actor", "now", "calendar"}
)
#: Largest id PostgreSQL's bigint holds; larger ones are simply not found.
_MAX_ID = 2**63 - 1
_ID = f"<int(max={_MAX_ID}):incident_id>"


@bp.post("/incidents")
def file() -> tuple[Response, int, dict[str, str]]:
    """File an incident (public); 201 with Location, or 200 with the first one on a retry."""
    session, actor = get_session(), current_actor()
    body = json_body()
    if is_public(actor):
        _check_public_report(body)
    result = file_incident(
        session,
        get_settings(),
        body,
        actor,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    answer = result.as_dict(session, actor, with_reporter=not is_public(actor))
    location = url_for("incidents.show", incident_id=result.incident.id)
    return jsonify(answer), 201 if result.created else 200, {"Location": location}


@bp.get("/incidents")
def index() -> Response:
    """Incidents the actor may see, newest first: ``?state=&category=&channel=&grid=&since=...``."""
    session, actor = get_session(), signed_in_actor()
    filters = {
        "state": _states(),
        "category": query_text("category"),
        "channel": query_text("channel"),
        "grid_prefix": _grid_prefix(),
        "since": query_moment("since"),
        "until": query_moment("until"),
        "overdue": query_flag("overdue"),
    }
    limit = query_whole("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    offset = query_whole("offset", 0, low=0, high=_MAX_ID)
    now = datetime.now(SHANGHAI)
    found = library.list_incidents(session, actor, **filters, limit=limit, offset=offset, now=now)
    return jsonify(
        incidents=library.incidents_as_dicts(session, found, actor, now=now),
        total=library.count_incidents(session, actor, **filters, now=now),
        limit=limit,
        offset=offset,
    )


@bp.get(f"/incidents/{_ID}")
def show(incident_id: int) -> Response:
    """One incident with its events and the actions the actor may take now."""
    session, actor = get_session(), signed_in_actor()
    return jsonify(_full(library.get_incident(session, incident_id, actor), with_events=True))


@bp.get(f"/incidents/{_ID}/events")
def events(incident_id: int) -> Response:
    """The incident's log, oldest first (a resident's name only for who may see it)."""
    session, actor = get_session(), signed_in_actor()
    incident = library.get_incident(session, incident_id, actor)
    show_resident = library.may_see_contact(actor, incident)
    return jsonify(
        events=[
            library.event_as_dict(event, show_resident=show_resident)
            for event in library.events_of(session, incident.id)
        ]
    )


@bp.post(f"/incidents/{_ID}/actions/<action>")
def act(incident_id: int, action: str) -> Response:
    """Take a workflow action; the body holds its note and parameters (assignee, days...)."""
    session, actor = get_session(), signed_in_actor()
    params = json_body(optional=True)
    if not isinstance(params, dict):
        raise InputError('the parameters are a JSON object, e.g. {"note": "..."}', field="body")
    reserved = sorted(_NOT_PARAMETERS & set(params))
    if reserved:
        raise InputError(f"{reserved[0]!r} is not an action parameter", field=reserved[0])
    note = params.pop("note", None)
    incident = workflow.act(
        session,
        get_settings(),
        incident_id,
        action,
        actor,
        note="" if note is None else note,
        **params,
    )
    return jsonify(_full(incident))


@bp.post(f"/incidents/{_ID}/merge")
def merge(incident_id: int) -> Response:
    """Fold this incident into ``{"into": id}``: it closes as merged, both logs keep it."""
    session, actor = get_session(), signed_in_actor()
    params = _object(json_body(), allowed=("into", "note"))
    into = params.get("into")
    if isinstance(into, bool) or not isinstance(into, int) or not 0 < into <= _MAX_ID:
        raise InputError(
            "into must be the id (a whole number) of the incident to keep", field="into"
        )
    merged = duplicates.merge(session, incident_id, into, actor, note=_note(params))
    return jsonify(_full(merged))


@bp.post(f"/incidents/{_ID}/place")
def place(incident_id: int) -> Response:
    """Put an incident into a grid by hand: ``{"grid_code": "...", "note": "..."}``."""
    session, actor = get_session(), signed_in_actor()
    params = _object(json_body(), allowed=("grid_code", "note"))
    grid_code = params.get("grid_code")
    if not isinstance(grid_code, str) or not grid_code.strip():
        raise InputError("grid_code must be the grid's code, as a string", field="grid_code")
    placed = library.place(session, incident_id, grid_code.strip(), actor, note=_note(params))
    return jsonify(_full(placed))


@bp.get("/categories")
def categories() -> Response:
    """The categories new incidents may take (public: a filing form needs them)."""
    english = current_language() == "en"
    return jsonify(
        categories=[
            {
                "code": category.code,
                "name": category.name_en if english else category.name_zh,
                "name_zh": category.name_zh,
                "name_en": category.name_en,
                "department": category.department,
                "accept_days": category.accept_days,
                "resolve_days": category.resolve_days,
                "complex_days": category.complex_days,
            }
            for category in list_categories(get_session())
        ]
    )


# -- shared with the other API modules ---------------------------------------------------


def json_body(*, optional: bool = False) -> Any:
    """The request's JSON body; 415 for another content type, 400 naming ``body`` if broken."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise InputError("the request body is empty; send a JSON object", field="body")
    if not request.is_json:
        abort(415, description="send the body as JSON, with Content-Type: application/json")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text", field="body") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"the body is not valid JSON: {exc}", field="body") from None
    refuse_nul(body, "body")
    return body


def refuse_nul(value: Any, field: str) -> None:
    """InputError naming the field when any text in ``value`` holds a NUL character.

    PostgreSQL text cannot hold NUL, so it would otherwise fail at the insert or the
    query as a database error (a 500) instead of a 400 naming the field.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError(f"{field} contains a NUL character", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, field)
            refuse_nul(item, str(key) if field == "body" else field)
    elif isinstance(value, list):
        for item in value:
            refuse_nul(item, field)


def query_text(name: str) -> str | None:
    """A query parameter, trimmed; None when absent or empty."""
    value = request.args.get(name, "").strip() or None
    refuse_nul(value, name)
    return value


def query_moment(name: str) -> datetime | None:
    """An ISO 8601 instant with an offset, or a date (midnight, Shanghai time)."""
    raw = query_text(name)
    if raw is None:
        return None
    # An unencoded "+08:00" in a query string arrives as " 08:00".
    raw = _LOST_PLUS.sub(r"\1+\2", raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"{name} {raw!r} is not ISO 8601, e.g. 2026-11-30 or 2026-11-30T09:00:00+08:00",
            field=name,
        ) from None
    if len(raw) == 10:
        return datetime.combine(moment.date(), time(0), tzinfo=SHANGHAI)
    if moment.tzinfo is None:
        raise InputError(f"{name} needs a UTC offset, e.g. +08:00 or Z", field=name)
    return moment


def query_flag(name: str) -> bool | None:
    """true/false (also 1/0, yes/no); None when absent."""
    raw = query_text(name)
    if raw is None:
        return None
    value = _FLAGS.get(raw.lower())
    if value is None:
        raise InputError(f"{name} must be true or false, not {raw!r}", field=name)
    return value


def query_whole(name: str, default: int, *, low: int, high: int | None = None) -> int:
    """A whole number within bounds, or ``default`` when absent."""
    raw = query_text(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < low or (high and int(raw) > high):
        bounds = f"{low}-{high}" if high else f"{low} or more"
        raise InputError(f"{name} must be a whole number {bounds}, not {raw!r}", field=name)
    return int(raw)


_LOST_PLUS = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


# -- helpers -------------------------------------------------------------------------------


def _check_public_report(body: Any) -> None:
    """The public reports what and where; when and how complex is for staff to say.

    A backdated anonymous report would count as overdue at once against some grid's
    league table, so the public's reports are timed by the server.
    """
    if isinstance(body, dict):
        for name in _STAFF_FIELDS:
            if body.get(name) is not None:
                raise InputError(
                    f"{name} is set by staff; an anonymous report is timed when it arrives "
                    "(send an API token to file with it)",
                    field=name,
                )


def _full(incident: Incident, *, with_events: bool = False) -> dict[str, Any]:
    """One incident as the actor may see it, with the actions it may take on it now."""
    session, actor = get_session(), signed_in_actor()
    body = library.incident_as_dict(session, incident, actor, with_events=with_events)
    body["allowed_actions"] = workflow.allowed_actions(
        incident, actor, scheme=get_settings().scheme
    )
    return body


def _states() -> list[str] | None:
    raw = query_text("state")
    return [state.strip() for state in raw.split(",") if state.strip()] if raw else None


def _grid_prefix() -> str | None:
    prefix = query_text("grid")
    if prefix is not None and (not prefix.isascii() or not prefix.isdigit()):
        raise InputError(
            f"grid must be a code or a code prefix (digits), not {prefix!r}", field="grid"
        )
    return prefix


def _object(body: Any, *, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError(f"the body is a JSON object with {', '.join(allowed)}", field="body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InputError(
            f"unknown field {unknown[0]!r}; fields: {', '.join(allowed)}", field=unknown[0]
        )
    return body


def _note(params: dict[str, Any]) -> str:
    note = params.get("note") or ""
    if not isinstance(note, str):
        raise InputError("note must be text", field="note")
    return note.strip()
