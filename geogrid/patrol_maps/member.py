"""A patrol member's "my area" map: visits this shift, patrol tracks and leads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.maplayers import MISSING_COLOUR
from geogrid.maps import NO_TILES
from geogrid.patrol_maps._common import (
    add_legend,
    finish_map,
    format_minutes,
    grid_frame,
    grid_layer,
    start_map,
    swatch,
    team_colours,
    text,
    tooltip_fields,
)
from geogrid.workdays import SHANGHAI

VISIT_COLOURS = {"visited": "#2a9d4b", "not_visited": "#d7301f", "off_shift": "#bdbdbd"}
LEAD_COLOURS = {
    "new": "#d7301f",
    "verified": "#ef8a17",
    "passed_on": "#1d6fa5",
    "rejected": "#7f7f7f",
    "closed": "#2a9d4b",
}


def visit_map(
    grids: gpd.GeoDataFrame,
    visits: pd.DataFrame,
    *,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """Grids by whether a visit reached them this shift: visited, not visited, not on shift.

    ``visits``: grid_code, status (a key of :data:`VISIT_COLOURS`), visits, minutes_inside.
    """
    grids = grid_frame(grids)
    per_grid = {
        row.grid_code: {
            "state": row.status,
            "status": text(row.status, language),
            "visits": str(int(row.visits)),
            "minutes": format_minutes(row.minutes_inside),
        }
        for row in visits.itertuples(index=False)
    }
    name = text("visited_now", language)
    m = start_map(m, tiles, attribution, language)
    tooltip = tooltip_fields(language, "status", "visits", "minutes")
    layer = grid_layer(grids, name, per_grid, "state", VISIT_COLOURS, tooltip, show).add_to(m)
    states = [per_grid.get(code, {}).get("state") for code in grids["code"]]
    add_legend(m, layer, name, _status_entries(states, VISIT_COLOURS, language))
    return finish_map(m, grids, fit)


def track_layer(
    tracks: gpd.GeoDataFrame,
    *,
    colours: Mapping[str, str] | None = None,
    tick_minutes: float = 10.0,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """Tracks as lines coloured by team, with their times on hover and a dot every few minutes.

    ``tracks`` is :func:`geogrid.tracks.tracks_frame` (track_id, team_mark, started_at,
    ended_at, point_count, LineStringM with time as M); times are shown in Shanghai.
    """
    palette = dict(colours or {})
    palette.update({k: v for k, v in team_colours(tracks["team_mark"]).items() if k not in palette})
    lines = gpd.GeoDataFrame(
        {
            "track": tracks["track_id"].astype("int64").astype(str),
            "team": tracks["team_mark"].map(escape),
            "started": [_clock(t, date=True) for t in tracks["started_at"]],
            "ended": [_clock(t) for t in tracks["ended_at"]],
            "fixes": tracks["point_count"].astype("int64"),
            "_colour": tracks["team_mark"].map(palette),
        },
        geometry=shapely.force_2d(np.asarray(tracks.geometry.values, dtype=object)),
        crs=tracks.crs or "EPSG:4490",
    )
    name = text("tracks", language)
    group = folium.FeatureGroup(name=name, show=show)
    if len(lines):
        fields = ["track", "team", "started", "ended", "fixes"]
        aliases = [text(key, language) for key in ("track", "teams", "started", "ended", "fixes")]
        folium.GeoJson(
            lines,
            style_function=lambda feature: {
                "color": feature["properties"]["_colour"],
                "weight": 3,
                "opacity": 0.85,
            },
            highlight_function=lambda _feature: {"weight": 6},
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases, sticky=True),
        ).add_to(group)
        ticks = _time_ticks(tracks, tick_minutes)
        if len(ticks):
            folium.GeoJson(
                ticks,
                marker=folium.CircleMarker(radius=3, fill=True, fill_opacity=1, weight=1),
                style_function=lambda _feature: {"color": "#ffffff", "fillColor": "#222222"},
                tooltip=folium.GeoJsonTooltip(fields=["time"], aliases=[text("time", language)]),
            ).add_to(group)
    m = start_map(m, tiles, attribution, language)
    group.add_to(m)
    counts = tracks["team_mark"].value_counts()
    entries = [(mark, _line(palette[mark]), int(counts[mark])) for mark in sorted(counts.index)]
    add_legend(m, group, name, entries)
    return finish_map(m, lines, fit)


def lead_layer(
    leads: pd.DataFrame,
    *,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """Leads as dots coloured by status, with category, time, grid and note on hover.

    ``leads``: lead_id, lon, lat (storage lon/lat), category, status, at, grid_code, note.
    """
    points = gpd.GeoDataFrame(
        {
            "category": leads["category"].map(escape),
            "status": [text(status, language) for status in leads["status"]],
            "time": [_clock(at, date=True) for at in leads["at"]],
            "grid": leads["grid_code"].fillna("").map(escape),
            "note": leads["note"].map(lambda note: escape(str(note))[:200]),
            "_colour": leads["status"].map(LEAD_COLOURS).fillna(MISSING_COLOUR),
        },
        geometry=shapely.points(leads["lon"].to_numpy(float), leads["lat"].to_numpy(float)),
        crs="EPSG:4490",
    )
    name = text("leads", language)
    group = folium.FeatureGroup(name=name, show=show)
    if len(points):
        fields = ["category", "status", "time", "grid", "note"]
        folium.GeoJson(
            points,
            marker=folium.CircleMarker(radius=7, fill=True, fill_opacity=0.9, weight=2),
            style_function=lambda feature: {
                "color": "#ffffff",
                "fillColor": feature["properties"]["_colour"],
            },
            tooltip=folium.GeoJsonTooltip(
                fields=fields, aliases=[text(key, language) for key in fields], sticky=True
            ),
        ).add_to(group)
    m = start_map(m, tiles, attribution, language)
    group.add_to(m)
    entries = _status_entries(list(leads["status"]), LEAD_COLOURS, language)
    add_legend(m, group, name, entries, position="bottomleft")
    return finish_map(m, points, fit)


def _time_ticks(tracks: gpd.GeoDataFrame, every_minutes: float) -> gpd.GeoDataFrame:
    """A point every ``every_minutes`` along each track (its first fix included), timed."""
    geoms = np.asarray(tracks.geometry.values, dtype=object)
    coords, owner = shapely.get_coordinates(geoms, include_m=True, return_index=True)
    if not len(coords):
        return gpd.GeoDataFrame({"time": []}, geometry=[], crs="EPSG:4490")
    slot = np.floor(coords[:, 2] / (every_minutes * 60))
    first = np.r_[True, (owner[1:] != owner[:-1]) | (slot[1:] != slot[:-1])]
    chosen = coords[first]
    times = pd.to_datetime(chosen[:, 2], unit="s", utc=True).tz_convert(SHANGHAI)
    return gpd.GeoDataFrame(
        {"time": times.strftime("%H:%M")},
        geometry=shapely.points(chosen[:, 0], chosen[:, 1]),
        crs="EPSG:4490",
    )


def _status_entries(
    states: Sequence[Any], colours: Mapping[str, str], language: str
) -> list[tuple[str, dict[str, Any], int]]:
    """Legend rows of the states present, in the colour table's order."""
    return [
        (text(state, language), swatch(colour), states.count(state))
        for state, colour in colours.items()
        if state in states
    ]


def _line(colour: str) -> dict[str, Any]:
    return {"color": colour, "weight": 3, "fill": False}


def _clock(moment: Any, *, date: bool = False) -> str:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert(SHANGHAI).strftime("%Y-%m-%d %H:%M" if date else "%H:%M")
