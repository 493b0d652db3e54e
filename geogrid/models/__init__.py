"""The storage model, one module per area of work, re-exported here.

The schema itself is made only by the Alembic migrations in ``migrations/``; a test
checks that autogenerate finds no difference between these models and them.

Boundaries follow the MapIt model: an area row is valid for the generations
``generation_low..generation_high``. An area that does not change from one generation
to the next keeps its row and gets its ``generation_high`` raised, so a lookup "as of
generation G" is ``generation_low <= G <= generation_high``. The unified code is the
public identifier; row ids are not.
"""

from geogrid.models.base import STORAGE_SRID, Base, sql_list
from geogrid.models.boundaries import (
    AREA_KINDS,
    GENERATION_STATUSES,
    Area,
    AreaNeighbour,
    CalendarOverride,
    Generation,
    Lineage,
    Meta,
)
from geogrid.models.incidents import (
    CHANNELS,
    CLOSED_STATES,
    ESCALATION_LEVELS,
    INCIDENT_STATES,
    PLACEMENTS,
    Incident,
    IncidentBreach,
    IncidentCategory,
    IncidentContact,
    IncidentEvent,
)
from geogrid.models.patrols import (
    LEAD_STATUSES,
    ORGANISATION_TYPES,
    REWARD_DECISIONS,
    STATION_KINDS,
    PatrolAssignment,
    PatrolCheckin,
    PatrolLead,
    PatrolMember,
    PatrolOrganisation,
    PatrolTeam,
    PatrolTrack,
    PoliceStation,
    StationGrid,
)
from geogrid.models.users import USER_ROLES, ApiToken, AppUser

__all__ = [
    "AREA_KINDS",
    "CHANNELS",
    "CLOSED_STATES",
    "ESCALATION_LEVELS",
    "GENERATION_STATUSES",
    "INCIDENT_STATES",
    "LEAD_STATUSES",
    "ORGANISATION_TYPES",
    "PLACEMENTS",
    "REWARD_DECISIONS",
    "STATION_KINDS",
    "STORAGE_SRID",
    "USER_ROLES",
    "ApiToken",
    "AppUser",
    "Area",
    "AreaNeighbour",
    "Base",
    "CalendarOverride",
    "Generation",
    "Incident",
    "IncidentBreach",
    "IncidentCategory",
    "IncidentContact",
    "IncidentEvent",
    "Lineage",
    "Meta",
    "PatrolAssignment",
    "PatrolCheckin",
    "PatrolLead",
    "PatrolMember",
    "PatrolOrganisation",
    "PatrolTeam",
    "PatrolTrack",
    "PoliceStation",
    "StationGrid",
    "sql_list",
]
