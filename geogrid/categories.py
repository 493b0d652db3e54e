"""Incident categories: what kinds of incident there are, their deadlines and departments.

The list is configuration an administrator edits (``geogrid incidents category-set``).
A category is never deleted, because incidents keep naming it: it is *retired*
(``active`` false) and then takes no new incidents while its history stays readable.
Changing a category's deadlines applies to incidents filed afterwards; incidents already
filed keep the deadlines they were given at intake.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid.actors import ADMINISTRATOR, SYSTEM, Actor
from geogrid.errors import Forbidden, InputError
from geogrid.models import IncidentCategory

#: Codes are short identifiers used in URLs, files and the Open311 ``service_code``.
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: A deadline of more than a working year is a typo, not a service level.
MAX_DAYS = 250
_DAY_FIELDS = ("accept_days", "resolve_days", "complex_days")
_TEXT_FIELDS = ("name_zh", "name_en", "department")
EDITABLE_FIELDS = (*_TEXT_FIELDS, *_DAY_FIELDS, "risk_weight", "active")


def get_category(session: Session, code: str, *, allow_retired: bool = False) -> IncidentCategory:
    """The category ``code`` for a new incident; InputError naming the known codes otherwise.

    A retired category is refused unless ``allow_retired`` (reading old incidents).
    """
    category = session.get(IncidentCategory, code) if isinstance(code, str) else None
    if category is None:
        known = ", ".join(c.code for c in list_categories(session))
        raise InputError(
            f"unknown category {code!r}; known categories: {known}",
            field="category",
            known=known,
        )
    if not category.active and not allow_retired:
        raise InputError(
            f"category {code!r} ({category.name_zh}) is retired and takes no new incidents",
            field="category",
            retired=True,
        )
    return category


def list_categories(session: Session, include_retired: bool = False) -> list[IncidentCategory]:
    """The categories by code; retired ones only when asked for."""
    query = select(IncidentCategory).order_by(IncidentCategory.code)
    if not include_retired:
        query = query.where(IncidentCategory.active.is_(True))
    return list(session.scalars(query))


def set_category(
    session: Session, code: str, *, actor: Actor | None = None, **fields: Any
) -> IncidentCategory:
    """Create category ``code`` or change some of its fields; returns it flushed.

    ``actor``, when given, must be an administrator (or geogrid itself); callers that
    pass none (the CLI run by the operator) are trusted.
    """
    if actor is not None and actor.role not in (ADMINISTRATOR, SYSTEM):
        raise Forbidden("only an administrator may change incident categories", field="role")
    if not isinstance(code, str) or not _CODE.match(code):
        raise InputError(
            f"category code {code!r} must be 1-32 lower-case letters, digits or _, "
            "starting with a letter",
            field="code",
        )
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise InputError(
            f"unknown category field(s) {', '.join(unknown)}; "
            f"editable: {', '.join(EDITABLE_FIELDS)}",
            field=unknown[0],
        )
    values = {name: _checked(name, value) for name, value in fields.items()}
    category = session.get(IncidentCategory, code)
    if category is None:
        category = IncidentCategory(code=code, **_new_values(values))
        session.add(category)
    else:
        current = {name: getattr(category, name) for name in _DAY_FIELDS}
        _check_complex_days({**current, **values})
        for name, value in values.items():
            setattr(category, name, value)
    session.flush()
    return category


def _check_complex_days(values: dict[str, Any]) -> None:
    if values["complex_days"] < values["resolve_days"]:
        raise InputError(
            f"complex_days ({values['complex_days']}) must be at least resolve_days "
            f"({values['resolve_days']}): a complex incident never gets less time",
            field="complex_days",
        )


def _new_values(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("name_zh", "name_en"):
        if not values.get(name):
            raise InputError(f"a new category needs {name}", field=name)
    # The column defaults, spelled out so the checks see numbers before anything is added.
    defaults: dict[str, Any] = {
        "department": "",
        "accept_days": 1,
        "resolve_days": 3,
        "complex_days": 5,
        "risk_weight": 1.0,
        "active": True,
    }
    merged = {**defaults, **values}
    _check_complex_days(merged)
    return merged


def _checked(name: str, value: Any) -> Any:
    if name in _TEXT_FIELDS:
        return _text(name, value)
    if name in _DAY_FIELDS:
        return _days(name, value)
    if name == "risk_weight":
        return _weight(value)
    if not isinstance(value, bool):
        raise InputError(f"active must be true or false, not {value!r}", field="active")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, not {value!r}", field=name)
    value = value.strip()
    if name != "department" and not value:
        raise InputError(f"{name} must not be empty", field=name)
    if len(value) > 200 or "\x00" in value:
        raise InputError(f"{name} must be at most 200 printable characters", field=name)
    return value


def _days(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(
            f"{name} must be a whole number of working days, not {value!r}", field=name
        )
    if not 0 <= value <= MAX_DAYS:
        raise InputError(f"{name} must be between 0 and {MAX_DAYS}, not {value}", field=name)
    return value


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"risk_weight must be a number, not {value!r}", field="risk_weight")
    if not math.isfinite(value) or value < 0:
        raise InputError(
            f"risk_weight must be a finite number of at least 0, not {value}", field="risk_weight"
        )
    return float(value)
