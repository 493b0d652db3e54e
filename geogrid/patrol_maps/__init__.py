"""Folium maps of patrols: assignments, visits, coverage, gaps, tracks, leads and proposals.

Pure builders over GeoDataFrames and DataFrames, each ``f(frames..., m=None) -> folium.Map``
like :func:`geogrid.maps.grid_map`: without a map they make one, with one they add their
layer to it, so a page composes a station's assignments, coverage, gaps and a proposal
on one map. Every layer has a legend, tooltips with the grid's code and name, and a
place in the layer control (kept last, so it lists every layer added before it).

Grids arrive as ``code``, ``name`` and polygons in lon/lat (projected frames are
brought back). A station answers for tens of grids, so they are drawn inline through
:func:`geogrid.maplayers.area_layer`.

The builders are split by audience: :mod:`.member` draws a patrol member's area (visits,
tracks, leads), :mod:`.station` a station officer's (assignments by team, coverage,
gaps, the optimiser's proposal); both draw with the words, colours and layers of
:mod:`._common`. Pages import this package and use the names below.
"""

from geogrid.patrol_maps._common import LegendFollowsLayer, shift_text, team_colours, text
from geogrid.patrol_maps.member import (
    LEAD_COLOURS,
    VISIT_COLOURS,
    lead_layer,
    track_layer,
    visit_map,
)
from geogrid.patrol_maps.station import (
    CHANGE_COLOURS,
    MINUTE_BINS,
    SHARE_BINS,
    assignment_map,
    coverage_map,
    gap_layer,
    proposal_map,
)

__all__ = [
    "CHANGE_COLOURS",
    "LEAD_COLOURS",
    "MINUTE_BINS",
    "SHARE_BINS",
    "VISIT_COLOURS",
    "LegendFollowsLayer",
    "assignment_map",
    "coverage_map",
    "gap_layer",
    "lead_layer",
    "proposal_map",
    "shift_text",
    "team_colours",
    "text",
    "track_layer",
    "visit_map",
]
