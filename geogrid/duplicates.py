"""Possible duplicates: the same problem reported twice, and merging one into the other.

Two incidents are *possible* duplicates when they have the same category, were reported
within ``settings.duplicate_window_h`` hours of each other (either side) and lie within
``settings.duplicate_distance_m`` metres of each other (on the ellipsoid, PostGIS
geography). An incident filed by grid code has no point; it matches the incidents of
the same grid in the window, at no stated distance. Merged and rejected incidents are
never offered. Intake only points them out: a person decides, and :func:`merge` does it.

Merging closes the source as ``merged`` with ``duplicate_of`` pointing at the target and
appends an event to both logs (``merged_into`` / ``merged_from``, each naming the other),
so both histories stay whole. Decisions:

* different categories may be merged: the finder only proposes same-category pairs, but
  a person may see that a "noise" and a "dispute" report are one quarrel; the target keeps
  its category and the event records both;
* the source must be open (not evaluated, rejected or merged) and the target too: a new
  report folded into a closed incident would never be looked at again;
* incidents already merged into the source keep pointing at it (their own logs are not
  rewritten); follow ``duplicate_of`` to the end of the chain;
* administrators, and officials or grid workers whose scope covers both incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from geoalchemy2 import Geography
from geoalchemy2.shape import to_shape
from sqlalchemy import DateTime, Float, Select, and_, bindparam, cast, func, null, or_, select
from sqlalchemy.orm import Session

from geogrid.actors import Actor
from geogrid.errors import Forbidden, IllegalTransition, InputError, NotFound
from geogrid.geocode import degree_margin
from geogrid.incidents import PLACING_ROLES, in_scope, record_event
from geogrid.models import CLOSED_STATES, STORAGE_SRID, Incident
from geogrid.settings import Settings

#: Never offered as duplicates: already folded into another, or turned away.
_NOT_OFFERED = ("merged", "rejected")
MAX_CANDIDATES = 20


@dataclass(frozen=True)
class DuplicateCandidate:
    """An earlier (or later) incident that may report the same problem."""

    incident_id: int
    #: Metres between the points; None when either was filed by grid code.
    distance_m: float | None
    hours_apart: float
    state: str

    def as_dict(self) -> dict[str, Any]:
        """The candidate as JSON-ready data."""
        # Spelled out: dataclasses.asdict deep-copies, a cost on every filing.
        return {
            "incident_id": self.incident_id,
            "distance_m": self.distance_m,
            "hours_apart": self.hours_apart,
            "state": self.state,
        }


def find_possible_duplicates(
    session: Session, settings: Settings, incident: Incident, *, limit: int = MAX_CANDIDATES
) -> list[DuplicateCandidate]:
    """Open incidents of the same category near the incident in space and time, nearest first."""
    here = _point_of(incident)
    if here is None and incident.grid_code is None:
        return []
    window = timedelta(hours=settings.duplicate_window_h)
    params: dict[str, Any] = {
        "id": incident.id,
        "category": incident.category,
        "reported_at": incident.reported_at,
        "since": incident.reported_at - window,
        "until": incident.reported_at + window,
        "grid_code": incident.grid_code,
        "limit": limit,
    }
    if here is not None:
        metres = settings.duplicate_distance_m
        params |= {"lon": here[0], "lat": here[1], "metres": metres}
        params["margin"] = degree_margin(metres, here[1])
    rows = session.execute(_candidates_query(by_point=here is not None), params).all()
    found = [
        DuplicateCandidate(
            incident_id=row[0],
            distance_m=None if row[3] is None else round(float(row[3]), 1),
            hours_apart=round(abs((row[1] - incident.reported_at).total_seconds()) / 3600, 2),
            state=row[2],
        )
        for row in rows
    ]
    found.sort(key=lambda c: (c.distance_m is None, c.distance_m or 0.0, c.hours_apart))
    return found


def _point_of(incident: Incident) -> tuple[float, float] | None:
    """The incident's point (storage lon, lat), read from the loaded row, not asked for again."""
    if incident.geom is None:
        return None
    shape = to_shape(incident.geom)
    return shape.x, shape.y


@cache
def _candidates_query(*, by_point: bool) -> Select[Any]:
    """The candidates of one incident, nearest first: by its point, or by its grid.

    Built once, with bound parameters: composing it took longer than running it.
    """
    reported_at = bindparam("reported_at", type_=DateTime(timezone=True))
    conditions = [
        Incident.id != bindparam("id"),
        Incident.category == bindparam("category"),
        Incident.state.not_in(_NOT_OFFERED),
        Incident.reported_at.between(bindparam("since"), bindparam("until")),
    ]
    same_grid = Incident.grid_code == bindparam("grid_code")
    apart = func.abs(func.extract("epoch", Incident.reported_at - reported_at))
    if not by_point:
        # Filed by grid code: the incidents of the same grid, at no stated distance.
        query = select(Incident.id, Incident.reported_at, Incident.state, null())
        query = query.where(*conditions, same_grid).order_by(apart, Incident.reported_at)
        return query.limit(bindparam("limit"))
    geography = Geography(srid=STORAGE_SRID)
    lon, lat = bindparam("lon", type_=Float), bindparam("lat", type_=Float)
    spot = func.ST_SetSRID(func.ST_MakePoint(lon, lat), STORAGE_SRID)
    here = cast(spot, geography)
    box = func.ST_Expand(spot, bindparam("margin", type_=Float))
    within = and_(
        # The box lets the GiST index on geom pick the candidates; geography measures them.
        Incident.geom.op("&&")(box),
        func.ST_DWithin(cast(Incident.geom, geography), here, bindparam("metres", type_=Float)),
    )
    # A report filed by grid code in the same grid may be the same problem too.
    by_code = and_(Incident.geom.is_(None), same_grid)
    distance = func.ST_Distance(cast(Incident.geom, geography), here)
    return (
        select(Incident.id, Incident.reported_at, Incident.state, distance)
        .where(*conditions, or_(within, by_code))
        # Nearest first in SQL too, so only ``limit`` rows travel however busy the place is.
        .order_by(distance.asc().nulls_last(), apart, Incident.reported_at)
        .limit(bindparam("limit"))
    )


def merge(
    session: Session, incident_id: int, into_id: int, actor: Actor, note: str = ""
) -> Incident:
    """Fold incident ``incident_id`` into ``into_id``: the source closes as merged, both logged."""
    if actor.role not in PLACING_ROLES:
        raise Forbidden(
            "only an administrator, an official or a grid worker may merge incidents",
            field="role",
        )
    if incident_id == into_id:
        raise InputError(f"incident {incident_id} cannot be merged into itself", field="into")
    source, target = _lock_pair(session, incident_id, into_id)
    for incident, field in ((source, "id"), (target, "into")):
        if not in_scope(actor, incident):
            raise Forbidden(
                f"incident {incident.id} is outside the scope of {actor.name}", field=field
            )
    if source.state in CLOSED_STATES:
        raise IllegalTransition(
            f"incident {source.id} is {source.state}; only an open incident can be merged",
            field="id",
        )
    if target.state in CLOSED_STATES:
        hint = f" (into {target.duplicate_of})" if target.duplicate_of else ""
        raise IllegalTransition(
            f"incident {target.id} is {target.state}{hint}; merge into an open incident",
            field="into",
        )
    from_state = source.state
    source.state = "merged"
    source.duplicate_of = target.id
    session.flush()
    categories = {"category": source.category, "into_category": target.category}
    into = {"into": target.id, **categories}
    record_event(session, source, actor, "merged_into", from_state, note=note, data=into)
    came_from = {"from": source.id, **categories}
    record_event(session, target, actor, "merged_from", target.state, note=note, data=came_from)
    return source


def _lock_pair(session: Session, first_id: int, second_id: int) -> tuple[Incident, Incident]:
    # Lock in id order so two merges of the same pair in opposite directions cannot deadlock.
    rows = session.scalars(
        select(Incident)
        .where(Incident.id.in_((first_id, second_id)))
        .order_by(Incident.id)
        .with_for_update()
    ).all()
    by_id = {incident.id: incident for incident in rows}
    for wanted, field in ((first_id, "id"), (second_id, "into")):
        if wanted not in by_id:
            raise NotFound(f"there is no incident {wanted}", field=field)
    return by_id[first_id], by_id[second_id]
