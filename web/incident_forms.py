"""The incident pages' forms and query strings, read into what the library takes.

Each reader refuses what it cannot use with an :class:`~geogrid.errors.InputError` naming
the form field, so a page can show the form again with that field marked. Nothing here
checks roles or scopes: the library does, for the actor the view passes.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Any

from werkzeug.datastructures import MultiDict

from geogrid.errors import InputError
from geogrid.models import CLOSED_STATES, INCIDENT_STATES
from geogrid.workdays import SHANGHAI
from geogrid.workflow import Transition

#: A pseudo-state in the list filter: every state in which something is still expected.
OPEN = "open"
OPEN_STATES = tuple(state for state in INCIDENT_STATES if state not in CLOSED_STATES)
_FLAGS = {"true": True, "on": True, "1": True, "false": False, "0": False}


def list_filters(args: MultiDict[str, str]) -> tuple[dict[str, Any], int]:
    """The library's filters from the query string; InputError naming the field."""
    refuse_nul(args)
    state = args.get("state", "").strip() or None
    area = args.get("area", "").strip() or None
    if area is not None and not (area.isascii() and area.isdigit()):
        raise InputError(
            f"area must be a code or the start of one (digits), not {area!r}", field="area"
        )
    since, until = _day(args, "since"), _day(args, "until")
    if since and until and until < since:
        raise InputError("the period ends before it begins", field="until")
    filters = {
        "state": list(OPEN_STATES) if state == OPEN else state,
        "category": args.get("category", "").strip() or None,
        "channel": args.get("channel", "").strip() or None,
        "grid_prefix": area,
        "since": _midnight(since) if since else None,
        # The last day is included: up to the midnight after it.
        "until": _midnight(until + timedelta(days=1)) if until else None,
        "overdue": True if args.get("overdue") else None,
    }
    page = args.get("page", "1").strip()
    if not page.isascii() or not page.isdigit() or int(page) < 1:
        raise InputError(f"page must be a whole number from 1, not {page!r}", field="page")
    return filters, int(page)


def action_params(transition: Transition, form: MultiDict[str, str]) -> tuple[str, dict[str, Any]]:
    """The note and the parameters of an action from its form (blank fields left out)."""
    refuse_nul(form)
    params: dict[str, Any] = {}
    for name in (*transition.required, *transition.optional):
        raw = form.get(name, "").strip()
        if name == "note" or not raw:
            continue
        if name in ("complex", "satisfied"):
            if raw not in _FLAGS:
                raise InputError(f"{name} must be yes or no, not {raw!r}", field=name)
            params[name] = _FLAGS[raw]
        elif name == "days":
            if not raw.isascii() or not raw.isdigit():
                raise InputError(f"days must be a whole number, not {raw!r}", field="days")
            params[name] = int(raw)
        else:
            params[name] = raw
    return form.get("note", "").strip(), params


def new_form_key() -> str:
    """A fresh idempotency key for one rendering of the form: a double submit files once."""
    return f"web-{secrets.token_urlsafe(18)}"


def filing_fields(form: MultiDict[str, str], coord_type: str) -> dict[str, Any]:
    """The form as intake's input; the coordinate type is the map's, set by the server."""
    refuse_nul(form)
    lon, lat = form.get("lon", "").strip(), form.get("lat", "").strip()
    grid_code = form.get("grid_code", "").strip()
    if not (lon and lat) and not grid_code:
        raise InputError("choose the location: click the map, or choose a grid", field="location")
    fields: dict[str, Any] = {
        "category": form.get("category", ""),
        "description": form.get("description", ""),
        "address": form.get("address", ""),
        "contact_name": form.get("contact_name", ""),
        "contact_phone": form.get("contact_phone", ""),
        "channel": form.get("channel", "").strip() or None,
    }
    if lon and lat:
        fields |= {"lon": lon, "lat": lat, "coord_type": coord_type}
    if grid_code:
        fields["grid_code"] = grid_code
    return fields


def _day(args: MultiDict[str, str], name: str) -> date | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{name} {raw!r} is not a date like 2026-11-30", field=name) from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def refuse_nul(values: MultiDict[str, str]) -> None:
    """InputError naming the first field holding a NUL character."""
    # PostgreSQL text cannot hold NUL: refused here as the field's fault, not a 500.
    for name, value in values.items(multi=True):
        if "\x00" in value:
            raise InputError(f"{name} contains a NUL character", field=name)
