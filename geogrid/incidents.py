"""Reading incidents as an actor may see them, and writing their event log.

Every change to an incident appends one :class:`IncidentEvent`; the table is append-only
(a trigger refuses updates and deletes), so the log is the incident's history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from geogrid.actors import Actor
from geogrid.models import Incident, IncidentEvent


def record_event(
    session: Session,
    incident: Incident,
    actor: Actor,
    action: str,
    from_state: str | None,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> IncidentEvent:
    """Append one step to the incident's log; its state and level are read after the change."""
    event = IncidentEvent(
        incident_id=incident.id,
        actor=actor.name,
        role=actor.role,
        action=action,
        from_state=from_state,
        to_state=incident.state,
        level=incident.level,
        note=note,
        data=data or {},
    )
    if at is not None:
        event.at = at
    session.add(event)
    session.flush()
    return event
