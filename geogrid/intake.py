"""Intake: the one entry point for a new incident, whatever channel it comes through.

The JSON API, Open311, the CLI and the historic import all call :func:`file_incident`,
so every incident is checked, geocoded and given deadlines the same way:

1. the input is parsed (:meth:`IncidentInput.from_mapping`); every error names its field;
2. the location is either a point (lon, lat and a *required* coordinate type, converted
   to CGCS2000 and placed into a grid of the current generation by
   :func:`geogrid.geocode.locate`) or, for grid workers, officials and administrators
   whose scope covers it, a grid code (``placement`` ``by_code``, no point);
3. a point outside every grid is accepted and flagged for a person to place, never
   dropped, however far out (with a louder warning past :data:`FAR_OUTSIDE_M`): a report
   from beyond the border still came from a resident. Impossible coordinates are refused
   (out of range, NaN, the 0,0 a phone sends without a fix), and so is a point outside
   whose lat and lon, exchanged, fall in a grid: that is a swapped pair, not a stray;
4. deadlines come from the category and the working-day calendar; a year the calendar
   does not cover leaves them empty with an alert, it does not refuse the incident;
5. the incident, its contact and its first event are written by one statement inside one
   savepoint, so a failure leaves nothing half-written; the caller owns the transaction.

Idempotency: with a key, the insert is ``INSERT ... ON CONFLICT (idempotency_key) DO
NOTHING``; the unique constraint, not a prior look-up, is what makes a second incident
impossible under any concurrency. A losing insert reads the winner's row: the same
request (same digest) gets the first incident back, a different one is a Conflict.
The digest covers the parsed input *and the actor*, so a key reused by someone else
never hands them another person's incident. A look-up by key comes first only so a
retry is cheap and answers even after, say, the category was retired.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Float, Select, Text, bindparam, func, literal, null, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from geogrid import sla
from geogrid.actors import RESIDENT, Actor
from geogrid.categories import get_category
from geogrid.duplicates import DuplicateCandidate, find_possible_duplicates
from geogrid.errors import CodeError, Conflict, CoordinateError, Forbidden, InputError
from geogrid.generations import resolve_generation
from geogrid.geocode import EDGE, NEAR_EDGE, OUTSIDE, locate
from geogrid.incident_input import IncidentInput
from geogrid.incidents import PLACING_ROLES, IncidentExtras, incident_as_dict
from geogrid.models import STORAGE_SRID, Area, Incident, IncidentContact, IncidentEvent
from geogrid.settings import Settings
from geogrid.workdays import SHANGHAI, WorkCalendar, load_calendar

__all__ = ["IncidentInput", "IntakeResult", "file_incident", "request_digest"]

#: How far in the future a report time may lie (phones' clocks drift).
FUTURE_TOLERANCE = timedelta(minutes=5)
#: Beyond this distance from the nearest grid, an outside point gets a louder warning.
FAR_OUTSIDE_M = 50_000.0
#: Channels a resident may report through; the others belong to staff and the import.
RESIDENT_CHANNELS = ("whistle", "hotline")
#: The channel assumed when none is given, by the filer's role.
_DEFAULT_CHANNEL = {"grid_worker": "grid_worker", "patrol_member": "alliance"}
MAX_KEY_LENGTH = 255


@dataclass
class IntakeResult:
    """What filing did: the incident, whether it is new, possible duplicates, warnings."""

    incident: Incident
    created: bool
    duplicates: list[DuplicateCandidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: What the answer shows beyond the row, when filing knew it (a new incident).
    extras: IncidentExtras | None = None

    def as_dict(
        self, session: Session, actor: Actor, *, with_reporter: bool = True
    ) -> dict[str, Any]:
        """The result as JSON-ready data, the incident as ``actor`` may see it."""
        incident = incident_as_dict(
            session, self.incident, actor, with_reporter=with_reporter, extras=self.extras
        )
        return {
            "incident": incident,
            "created": self.created,
            "duplicates": [candidate.as_dict() for candidate in self.duplicates],
            "warnings": list(self.warnings),
        }


@dataclass
class _Placement:
    #: Every column :func:`_insert_statement` places: the grid, and the point if any.
    values: dict[str, Any]
    warnings: list[str]


def file_incident(
    session: Session,
    settings: Settings,
    data: IncidentInput | Any,
    actor: Actor,
    *,
    idempotency_key: str | None = None,
    calendar: WorkCalendar | None = None,
    now: datetime | None = None,
) -> IntakeResult:
    """File one incident (an IncidentInput or a JSON-like mapping); flushes, never commits."""
    given = data if isinstance(data, IncidentInput) else IncidentInput.from_mapping(data)
    now = _aware(now or datetime.now(SHANGHAI))
    key = _checked_key(idempotency_key)
    digest = request_digest(given, actor)
    if key is not None:
        earlier = session.scalar(_by_key(), {"key": key})
        if earlier is not None:
            return _replay(session, settings, earlier, digest)
    reported_at = _reported_at(given, now)
    channel = _channel(given, actor)
    category = get_category(session, given.category)
    placement = _place(session, settings, given, actor)
    deadlines = sla.deadlines(
        calendar or load_calendar(session), category, reported_at, complex_=given.complex
    )
    values = {
        **placement.values,
        "category": category.code,
        "description": given.description,
        "channel": channel,
        "complex": given.complex,
        "reported_at": reported_at,
        "reported_by": actor.name,
        "address": given.address,
        "photos": list(given.photos),
        "department": category.department,
        "accept_due_at": deadlines.accept_due_at,
        "resolve_due_at": deadlines.resolve_due_at,
        "deadline_alert": deadlines.alert,
        "idempotency_key": key,
        "request_digest": digest,
    }
    incident = _insert(session, values, given, actor)
    if incident is None:
        # Another submission with this key won the race; answer as a retry would.
        earlier = session.scalar(_by_key(), {"key": key})
        if earlier is None:  # pragma: no cover - the winner rolled back between statements
            raise Conflict(
                "a submission with this key was abandoned; retry", field="Idempotency-Key"
            )
        return _replay(session, settings, earlier, digest)
    warnings = placement.warnings
    if deadlines.alert:
        warnings.append(f"no deadlines: {deadlines.alert}")
    duplicates = find_possible_duplicates(session, settings, incident)
    if duplicates:
        ids = ", ".join(f"#{candidate.incident_id}" for candidate in duplicates)
        warnings.append(f"possible duplicates of {ids}: check and merge if they are the same")
    # Known without asking: nothing can have been merged into a row no one else sees yet.
    extras = IncidentExtras(category.name_zh, (), _contact(given))
    return IntakeResult(incident, True, duplicates, warnings, extras)


def request_digest(given: IncidentInput, actor: Actor) -> str:
    """SHA-256 of a canonical JSON of the parsed input and who submitted it."""
    # Every field is a plain value but these two (asdict would deep-copy them all).
    payload = {spec.name: getattr(given, spec.name) for spec in fields(given)}
    payload["photos"] = list(given.photos)
    payload["reported_at"] = (
        given.reported_at.astimezone(SHANGHAI).isoformat() if given.reported_at else None
    )
    payload["submitted_by"] = [actor.name, actor.role]
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _insert(
    session: Session, values: dict[str, Any], given: IncidentInput, actor: Actor
) -> Incident | None:
    """The new incident, or None when another submission holds the key."""
    contact = _contact(given)
    params = {
        **values,
        "contact_name": given.contact_name,
        "contact_phone": given.contact_phone,
        "event_actor": actor.name,
        "event_role": actor.role,
        "event_data": {name: values[name] for name in _EVENT_DATA},
    }
    statement = _insert_statement(values["storage_lon"] is not None, contact is not None)
    # One savepoint, so a failure leaves the caller's transaction usable; one statement, so
    # the incident, its contact and its first event are written together or not at all.
    with session.begin_nested():
        return session.scalars(statement, params).first()


@cache
def _by_key() -> Select[tuple[Incident]]:
    # Built once, like the insert: the look-up runs on every submission with a key.
    return select(Incident).where(Incident.idempotency_key == bindparam("key"))


@cache
def _insert_statement(with_point: bool, with_contact: bool) -> Select[tuple[Incident]]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING, the contact and the first event in CTEs.

    Built once per shape, with bound parameters, because composing it took longer than
    running it. The event's state and level come from the inserted row, as
    :func:`geogrid.incidents.record_event` reads them.
    """
    columns = {name: bindparam(name) for name in (*_INCIDENT_COLUMNS, *_PLACEMENT_COLUMNS)}
    lon, lat = bindparam("storage_lon", type_=Float), bindparam("storage_lat", type_=Float)
    columns["geom"] = (
        func.ST_SetSRID(func.ST_MakePoint(lon, lat), STORAGE_SRID) if with_point else null()
    )
    new = (
        insert(Incident)
        .values(columns)
        .on_conflict_do_nothing(index_elements=[Incident.idempotency_key])
        .returning(*Incident.__table__.c)
        .cte("new_incident")
    )
    first_event = select(
        new.c.id,
        new.c.reported_at,
        bindparam("event_actor", type_=Text),
        bindparam("event_role", type_=Text),
        literal("report"),
        new.c.state,
        new.c.level,
        bindparam("event_data", type_=JSONB),
    )
    event_columns = ["incident_id", "at", "actor", "role", "action", "to_state", "level", "data"]
    ctes = [insert(IncidentEvent).from_select(event_columns, first_event).cte("first_event")]
    if with_contact:
        name, phone = bindparam("contact_name", type_=Text), bindparam("contact_phone", type_=Text)
        contact = insert(IncidentContact).from_select(
            ["incident_id", "name", "phone"], select(new.c.id, name, phone)
        )
        ctes.append(contact.cte("contact"))
    return select(Incident).from_statement(select(new).add_cte(*ctes))


#: What file_incident sets besides the placement; the rest are the columns' defaults.
_INCIDENT_COLUMNS = (
    "category", "description", "channel", "complex", "reported_at", "reported_by", "address",
    "photos", "department", "accept_due_at", "resolve_due_at", "deadline_alert",
    "idempotency_key", "request_digest",
)  # fmt: skip
#: What a placement sets (None where it does not apply), besides the point itself.
_PLACEMENT_COLUMNS = (
    "given_lon", "given_lat", "coord_type", "grid_code", "generation", "placement",
    "placement_detail",
)  # fmt: skip
#: What the first event records of where and how the incident came in.
_EVENT_DATA = ("channel", "grid_code", "generation", "placement")


def _contact(given: IncidentInput) -> dict[str, str] | None:
    if not (given.contact_name or given.contact_phone):
        return None
    return {"name": given.contact_name, "phone": given.contact_phone}


def _replay(session: Session, settings: Settings, earlier: Incident, digest: str) -> IntakeResult:
    if earlier.request_digest != digest:
        # Which incident holds the key is not said: the key may be someone else's.
        raise Conflict(
            "this Idempotency-Key was already used for a different request (another body or "
            "another filer); use a new key for a new incident",
            field="Idempotency-Key",
        )
    duplicates = find_possible_duplicates(session, settings, earlier)
    note = f"already filed as incident {earlier.id} with this Idempotency-Key; returned it"
    return IntakeResult(earlier, False, duplicates, [note])


# -- location ----------------------------------------------------------------------------


def _place(session: Session, settings: Settings, given: IncidentInput, actor: Actor) -> _Placement:
    if given.grid_code is not None:
        return _by_code(session, settings, given.grid_code, actor)
    assert given.lon is not None and given.lat is not None  # IncidentInput guarantees a point
    location = locate(session, settings, given.lon, given.lat, given.coord_type)
    if location.status == OUTSIDE and location.swapped_code is not None:
        raise CoordinateError(
            f"lat/lon look swapped: ({given.lon}, {given.lat}) is outside every grid but "
            f"({given.lat}, {given.lon}) falls in grid {location.swapped_code}; give longitude "
            "in lon and latitude in lat",
            field="lat",
            swapped=True,
            swapped_code=location.swapped_code,
        )
    values = {
        "given_lon": given.lon,
        "given_lat": given.lat,
        "coord_type": location.crs,
        "storage_lon": location.storage_lon,
        "storage_lat": location.storage_lat,
        "grid_code": location.grid_code,
        "generation": location.generation,
        "placement": location.status,
        "placement_detail": {
            "candidates": location.candidates,
            "nearest": location.nearest,
            "swapped_code": location.swapped_code,
        },
    }
    return _Placement(values, _location_warnings(location, settings))


def _location_warnings(location: Any, settings: Settings) -> list[str]:
    others = ", ".join(location.candidates)
    if location.status == NEAR_EDGE:
        return [
            f"within {settings.near_edge_m:g} m of {others}: filed in {location.grid_code}; "
            "confirm the grid"
        ]
    if location.status == EDGE:
        return [
            f"on the boundary of {location.grid_code} and {others}: filed in "
            f"{location.grid_code} (the smallest code); confirm the grid"
        ]
    if location.status != OUTSIDE:
        return []
    warnings = ["outside every grid: kept and flagged for a person to place"]
    nearest = location.nearest
    if nearest is not None:
        warnings[0] += f" (nearest grid {nearest['code']}, {nearest['distance_m']:.0f} m away)"
        if nearest["distance_m"] > FAR_OUTSIDE_M:
            warnings.append(
                f"far outside the grids ({nearest['distance_m'] / 1000:.0f} km from the nearest):"
                f" check the coordinates and that they are {location.crs}"
            )
    return warnings


def _by_code(session: Session, settings: Settings, grid_code: str, actor: Actor) -> _Placement:
    if actor.role not in PLACING_ROLES:
        raise Forbidden(
            "only grid workers, officials and administrators file by grid code; "
            "give lon, lat and coord_type",
            field="grid_code",
        )
    if not actor.covers(grid_code):
        raise Forbidden(
            f"grid {grid_code} is outside the scope of {actor.name}; file it with a point",
            field="grid_code",
        )
    level = settings.scheme.default_geocode_level
    settings.scheme.validate(grid_code, level, field="grid_code")
    generation = resolve_generation(session, None)
    area = session.scalar(
        select(Area.id).where(
            Area.code == grid_code, Area.level == level, Area.valid_in(generation.id)
        )
    )
    if area is None:
        raise CodeError(
            f"there is no {level} {grid_code} in the current generation {generation.id}",
            field="grid_code",
        )
    values = {
        "given_lon": None,
        "given_lat": None,
        "coord_type": None,
        "storage_lon": None,
        "storage_lat": None,
        "grid_code": grid_code,
        "generation": generation.id,
        "placement": "by_code",
        "placement_detail": {},
    }
    return _Placement(values, [])


# -- small checks ------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def _reported_at(given: IncidentInput, now: datetime) -> datetime:
    if given.reported_at is None:
        return now
    if given.reported_at > now + FUTURE_TOLERANCE:
        raise InputError(
            f"reported_at {given.reported_at.isoformat()} is in the future "
            f"(now {now.astimezone(SHANGHAI).isoformat(timespec='seconds')})",
            field="reported_at",
        )
    return given.reported_at


def _channel(given: IncidentInput, actor: Actor) -> str:
    channel = given.channel or _DEFAULT_CHANNEL.get(actor.role, "whistle")
    if actor.role == RESIDENT and channel not in RESIDENT_CHANNELS:
        raise Forbidden(
            f"a resident reports through {' or '.join(RESIDENT_CHANNELS)}, not {channel}",
            field="channel",
        )
    return channel


def _checked_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise InputError("Idempotency-Key must be a non-empty string", field="Idempotency-Key")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InputError(
            f"Idempotency-Key must be at most {MAX_KEY_LENGTH} printable characters",
            field="Idempotency-Key",
        )
    return key
