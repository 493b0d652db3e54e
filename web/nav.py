"""The navigation bar: each page a role may open, in the order the bar shows them.

Pages add one :class:`NavEntry` here. The bar (``base.html``) shows the entries whose
role list admits the signed-in user and whose view exists, and the home page sends a
signed-in user to their role's first entry. Showing a link is a convenience only; every
view checks the role itself (:func:`web.auth.page_actor`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, redirect, url_for
from werkzeug.wrappers import Response

from geogrid.actors import (
    ADMINISTRATOR,
    DEPARTMENT,
    GRID_WORKER,
    OFFICIAL,
    PATROL_MEMBER,
    PLANNER,
    STATION_OFFICER,
)
from web.auth import current_actor, is_public

EVERYONE: tuple[str, ...] = ()


@dataclass(frozen=True)
class NavEntry:
    """A page in the bar: its endpoint, its label (English, translated) and who sees it."""

    endpoint: str
    label: str
    roles: tuple[str, ...] = EVERYONE

    def admits(self, role: str) -> bool:
        """Whether a user in ``role`` sees this entry."""
        return not self.roles or role in self.roles


NAV: tuple[NavEntry, ...] = (
    NavEntry("dashboard.dashboard", "Dashboard", (ADMINISTRATOR, OFFICIAL)),
    NavEntry("patrol_pages.my_area", "My area", (PATROL_MEMBER,)),
    NavEntry("station_pages.station", "Station", (ADMINISTRATOR, STATION_OFFICER)),
    NavEntry(
        "incident_pages.incidents",
        "Incidents",
        (ADMINISTRATOR, OFFICIAL, GRID_WORKER, DEPARTMENT, STATION_OFFICER),
    ),
    NavEntry(
        "incident_pages.new_incident",
        "File an incident",
        (ADMINISTRATOR, OFFICIAL, GRID_WORKER, PATROL_MEMBER, STATION_OFFICER),
    ),
    NavEntry("planner.generations", "Boundaries", (ADMINISTRATOR, PLANNER)),
    NavEntry("maps.grids", "Grid map"),
)


def init_app(app: Flask) -> None:
    """Offer the signed-in user's entries to every template."""
    app.context_processor(lambda: {"nav_entries": visible_entries})


def visible_entries() -> list[NavEntry]:
    """The entries of the bar for this request's user (none for visitors)."""
    actor = current_actor()
    if is_public(actor):
        return []
    views = current_app.view_functions
    return [entry for entry in NAV if entry.endpoint in views and entry.admits(actor.role)]


def home() -> Response:
    """``/``: the signed-in user's first page; the grid map for visitors."""
    entries = visible_entries()
    return redirect(url_for(entries[0].endpoint if entries else "maps.grids"))
