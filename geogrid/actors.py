"""Who is acting: a person's name, role and scope of codes, as every library call sees them.

The web app turns a login into an :class:`Actor`; the CLI makes one from ``--user`` and
``--role``. Permissions are checked in the library, so every channel obeys the same rules.
A scope is a set of unified codes: an actor may touch an area when its code starts with
one of them (a county code covers every grid in the county). Administrators and the
system act everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from geogrid.errors import InputError

ADMINISTRATOR = "administrator"
OFFICIAL = "official"
GRID_WORKER = "grid_worker"
PATROL_MEMBER = "patrol_member"
STATION_OFFICER = "station_officer"
PLANNER = "planner"
#: Staff of a department (城管局, 司法局 …) who handle incidents dispatched to it.
DEPARTMENT = "department"
#: A member of the public filing through the whistle, the hotline or Open311.
RESIDENT = "resident"
#: geogrid itself, e.g. escalating a missed deadline.
SYSTEM = "system"

ROLES = (
    ADMINISTRATOR,
    OFFICIAL,
    GRID_WORKER,
    PATROL_MEMBER,
    STATION_OFFICER,
    PLANNER,
    DEPARTMENT,
    RESIDENT,
    SYSTEM,
)
#: Roles whose scope is everything.
UNSCOPED_ROLES = (ADMINISTRATOR, SYSTEM)


@dataclass(frozen=True)
class Actor:
    """A person (or geogrid itself) acting in a role over a scope of codes."""

    name: str
    role: str
    scope: tuple[str, ...] = ()
    #: For department staff: the department they act for, e.g. 城市管理局.
    department: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(
                f"unknown role {self.role!r}; known roles: {', '.join(ROLES)}", field="role"
            )
        if not self.name.strip():
            raise InputError("an actor needs a name", field="actor")

    def covers(self, code: str | None) -> bool:
        """Whether ``code`` is inside this actor's scope (None is covered only by the unscoped)."""
        if self.role in UNSCOPED_ROLES:
            return True
        if code is None:
            return False
        return any(code.startswith(prefix) for prefix in self.scope)


SYSTEM_ACTOR = Actor(name="geogrid", role=SYSTEM)
