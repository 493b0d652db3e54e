"""Folium maps of patrols: assignments, visits, coverage, gaps, tracks, leads and proposals.

Pure builders over GeoDataFrames and DataFrames, each ``f(frames..., m=None) -> folium.Map``
like :func:`geogrid.maps.grid_map`: without a map they make one, with one they add their
layer to it, so a page composes a station's assignments, coverage, gaps and a proposal
on one map. Every layer has a legend, tooltips with the grid's code and name, and a
place in the layer control (kept last, so it lists every layer added before it).

Grids arrive as ``code``, ``name`` and polygons in lon/lat (projected frames are
brought back). A station answers for tens of grids, so they are drawn inline through
:func:`geogrid.maplayers.area_layer`.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template

from geogrid.maplayers import MISSING_COLOUR, area_layer
from geogrid.maps import NO_TILES, Legend, base_map, display_tolerance, label
from geogrid.workdays import SHANGHAI

#: Distinct colours for teams, then golden-angle hues for stations with many teams.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)  # fmt: skip
VISIT_COLOURS = {"visited": "#2a9d4b", "not_visited": "#d7301f", "off_shift": "#bdbdbd"}
CHANGE_COLOURS = {"added": "#ef8a17", "kept": "#57606a", "locked": "#6a3d9a"}
_CHANGE_STROKES = {
    change: {"color": colour, "weight": 1 if change == "kept" else 4}
    for change, colour in CHANGE_COLOURS.items()
}
LEAD_COLOURS = {
    "new": "#d7301f",
    "verified": "#ef8a17",
    "passed_on": "#1d6fa5",
    "rejected": "#7f7f7f",
    "closed": "#2a9d4b",
}
#: Light to dark green: more patrol is darker.
_GREENS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
_REDS = ("#fcae91", "#fb6a4a", "#cb181d")
#: Bins of minutes inside a grid in a day, and of the share of its area reached.
MINUTE_BINS = (0.0, 10.0, 30.0, 60.0, 120.0)
SHARE_BINS = (0.0, 0.25, 0.5, 0.75, 0.9)
_GRID_STYLE = {"color": "#333333", "weight": 1, "opacity": 0.8, "fillOpacity": 0.45}

#: Map words: key → (Chinese, English).
_LABELS = {
    "assignments": ("责任网格（按巡防队）", "Assigned grids (by team)"),
    "by_shift": ("责任网格（按班次）", "Assigned grids (by shift)"),
    "teams": ("巡防队", "Teams"),
    "shifts": ("班次", "Shifts"),
    "not_assigned": ("未分配", "Not assigned"),
    "visited_now": ("本班次巡查情况", "Visited this shift"),
    "visited": ("已巡查", "Visited"),
    "not_visited": ("未巡查", "Not visited"),
    "off_shift": ("当前不在班次", "Not on shift now"),
    "status": ("状态", "Status"),
    "visits": ("到访次数", "Visits"),
    "minutes": ("网格内时长（分钟）", "Minutes inside"),
    "min": ("分钟", "min"),
    "share": ("覆盖面积比例", "Share of area reached"),
    "coverage_minutes": ("实测覆盖：网格内分钟数", "Measured coverage: minutes inside"),
    "coverage_share": ("实测覆盖：面积比例", "Measured coverage: share of area"),
    "no_shift": ("无班次", "No shift"),
    "gaps": ("防范盲区（高风险、巡查不足）", "Coverage gaps (high risk, low dosage)"),
    "rank": ("排名", "Rank"),
    "risk": ("风险", "Risk"),
    "shortfall": ("未防护比例", "Unprotected share"),
    "score": ("盲区分值", "Gap score"),
    "tracks": ("巡逻轨迹", "Tracks"),
    "track": ("轨迹", "Track"),
    "started": ("开始", "Started"),
    "ended": ("结束", "Ended"),
    "fixes": ("定位点", "Fixes"),
    "time": ("时间", "Time"),
    "leads": ("线索", "Leads"),
    "category": ("类别", "Category"),
    "note": ("说明", "Note"),
    "new": ("新线索", "New"),
    "verified": ("已核实", "Verified"),
    "passed_on": ("已移交", "Passed on"),
    "rejected": ("已驳回", "Rejected"),
    "closed": ("已办结", "Closed"),
    "proposal": ("优化方案（按巡防队）", "Proposal (by team)"),
    "changes": ("方案变化", "Changes"),
    "added": ("新增", "Added"),
    "kept": ("保持", "Kept"),
    "locked": ("锁定保留", "Locked, kept"),
    "now": ("现有", "Now"),
    "proposed": ("方案", "Proposed"),
}


def text(key: str, language: str) -> str:
    """A patrol map label in the language; the shared map labels and then the key otherwise."""
    if key not in _LABELS:
        return label(key, language)
    chinese, english = _LABELS[key]
    return chinese if language == "zh_CN" else english


_DAYS = {
    "daily": ("每天", "Daily"),
    "mon": ("周一", "Mon"),
    "tue": ("周二", "Tue"),
    "wed": ("周三", "Wed"),
    "thu": ("周四", "Thu"),
    "fri": ("周五", "Fri"),
    "sat": ("周六", "Sat"),
    "sun": ("周日", "Sun"),
}


def shift_text(weekdays: str, starts: str, ends: str, language: str) -> str:
    """A shift pattern in words: ``mon-fri 08:00-20:00`` as 周一至周五 08:00–20:00."""
    chinese = language == "zh_CN"
    days = re.sub(
        r"[a-z]+", lambda word: _DAYS.get(word[0], (word[0],) * 2)[0 if chinese else 1], weekdays
    )
    days = days.replace("-", "至" if chinese else "–").replace(",", "、" if chinese else ", ")
    return f"{days} {starts}–{ends}"


def team_colours(marks: Iterable[str]) -> dict[str, str]:
    """A colour for each distinct team (sorted), the same on every map of a page."""
    ordered = sorted(set(marks))
    return {mark: _colour(i) for i, mark in enumerate(ordered)}


# -- assignments and visits ---------------------------------------------------------------


def assignment_map(
    grids: gpd.GeoDataFrame,
    assignments: pd.DataFrame,
    *,
    colour_by: str = "team_mark",
    colours: Mapping[str, str] | None = None,
    name: str | None = None,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """Grids coloured by their team (``colour_by="team_mark"``) or shift (``"shift"``).

    ``assignments``: grid_code, team_mark, shift (as people read it, ``daily 08:00-20:00``).
    A grid worked by several teams or shifts gets a colour of its own; grids with none
    are grey. ``colours`` maps a team (or shift) to its colour; by default one each.
    ``name`` names the layer and its legend (by default, assigned grids by team or shift).
    """
    if colour_by not in ("team_mark", "shift"):
        raise ValueError(f"colour_by is team_mark or shift, not {colour_by!r}")
    grids = _grid_frame(grids)
    per_grid = {
        code: {
            "teams": ", ".join(sorted(set(rows["team_mark"]))),
            "shifts": "; ".join(sorted(set(rows["shift"]))),
            "category": " + ".join(sorted(set(rows[colour_by]))),
        }
        for code, rows in assignments.groupby("grid_code")
    }
    categories = sorted({values["category"] for values in per_grid.values()})
    palette = dict(colours or {})
    palette.update({c: _colour(i) for i, c in enumerate(categories) if c not in palette})
    name = name or text("assignments" if colour_by == "team_mark" else "by_shift", language)
    m = _start(m, tiles, attribution, language)
    tooltip = _tooltip(language, "teams", "shifts")
    layer = _area(grids, name, per_grid, "category", palette, tooltip, show).add_to(m)
    counts = pd.Series([per_grid.get(code, {}).get("category") for code in grids["code"]])
    entries = [(c, _swatch(palette[c]), int((counts == c).sum())) for c in categories]
    if counts.isna().any():
        entries.append(
            (text("not_assigned", language), _swatch(MISSING_COLOUR), int(counts.isna().sum()))
        )
    _legend(m, layer, name, entries)
    return _finish(m, grids, fit)


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
    grids = _grid_frame(grids)
    per_grid = {
        row.grid_code: {
            "state": row.status,
            "status": text(row.status, language),
            "visits": str(int(row.visits)),
            "minutes": _minutes(row.minutes_inside),
        }
        for row in visits.itertuples(index=False)
    }
    name = text("visited_now", language)
    m = _start(m, tiles, attribution, language)
    tooltip = _tooltip(language, "status", "visits", "minutes")
    layer = _area(grids, name, per_grid, "state", VISIT_COLOURS, tooltip, show).add_to(m)
    states = [per_grid.get(code, {}).get("state") for code in grids["code"]]
    _legend(m, layer, name, _status_entries(states, VISIT_COLOURS, language))
    return _finish(m, grids, fit)


# -- coverage and gaps --------------------------------------------------------------------


def coverage_map(
    grids: gpd.GeoDataFrame,
    shifts: pd.DataFrame,
    *,
    measure: str = "minutes_inside",
    bins: Sequence[float] | None = None,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """A choropleth of measured coverage per grid: minutes inside, or share of area reached.

    ``shifts`` is :attr:`geogrid.coverage.CoverageResult.shifts` (grid_code, visits,
    minutes_inside, reach_share): a grid's minutes and visits are summed over its
    shifts, its share averaged. Grids without a shift that day are grey.
    """
    if measure not in ("minutes_inside", "reach_share"):
        raise ValueError(f"measure is minutes_inside or reach_share, not {measure!r}")
    grids = _grid_frame(grids)
    per_grid = _coverage_per_grid(shifts)
    lower = list(bins or (MINUTE_BINS if measure == "minutes_inside" else SHARE_BINS))
    colours = [(at_least, _GREENS[min(i, len(_GREENS) - 1)]) for i, at_least in enumerate(lower)]
    name = text("coverage_minutes" if measure == "minutes_inside" else "coverage_share", language)
    m = _start(m, tiles, attribution, language)
    tooltip = _tooltip(language, "minutes", "visits", "share")
    layer = _area(grids, name, per_grid, measure, colours, tooltip, show).add_to(m)
    measured = [per_grid.get(code, {}).get(measure) for code in grids["code"]]
    measured = np.asarray([v for v in measured if v is not None], dtype=float)
    entries = _bin_entries(measured, colours, lambda at: _bin_label(at, measure, language))
    missing = len(grids) - len(measured)
    if missing:
        entries.append((text("no_shift", language), _swatch(MISSING_COLOUR), missing))
    _legend(m, layer, name, entries)
    return _finish(m, grids, fit)


def gap_layer(
    grids: gpd.GeoDataFrame,
    gaps: pd.DataFrame,
    *,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """The coverage gaps (:attr:`geogrid.gaps.GapsResult.gaps`) outlined in red by score.

    Only the gaps are drawn: hot grids short of the dose, darker for a higher score
    (risk times the unprotected share), in thirds of the highest score.
    """
    grids = _grid_frame(grids)
    gaps = gaps[gaps["grid_code"].isin(set(grids["code"]))]
    per_grid = {
        row.grid_code: {
            "rank": str(int(row.rank)),
            "risk": f"{row.risk:.1f}",
            "shortfall": f"{row.shortfall:.0%}",
            "score": f"{row.score:.2f}",
            "_score": float(row.score),
        }
        for row in gaps.itertuples(index=False)
    }
    top = max((values["_score"] for values in per_grid.values()), default=0.0)
    colours = [(0.0, _REDS[0]), (top / 3, _REDS[1]), (2 * top / 3, _REDS[2])] if top else []
    colours = colours or [(0.0, _REDS[1])]
    name = text("gaps", language)
    style = {"color": "#67000d", "weight": 3, "dashArray": "6 4", "fillOpacity": 0.55}
    tooltip = _tooltip(language, "rank", "risk", "shortfall", "score")
    drawn = grids[grids["code"].isin(set(per_grid))]
    layer = _area(drawn, name, per_grid, "_score", colours, tooltip, show, style)
    m = _start(m, tiles, attribution, language)
    layer.add_to(m)
    scores = np.asarray([values["_score"] for values in per_grid.values()], dtype=float)
    score = text("score", language)
    entries = _bin_entries(scores, colours, lambda at: f"{score} ≥ {at:.2f}") if per_grid else []
    _legend(m, layer, name, entries)
    return _finish(m, drawn, fit)


# -- tracks and leads ---------------------------------------------------------------------


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
    m = _start(m, tiles, attribution, language)
    group.add_to(m)
    counts = tracks["team_mark"].value_counts()
    entries = [(mark, _line(palette[mark]), int(counts[mark])) for mark in sorted(counts.index)]
    _legend(m, group, name, entries)
    return _finish(m, lines, fit)


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
    m = _start(m, tiles, attribution, language)
    group.add_to(m)
    entries = _status_entries(list(leads["status"]), LEAD_COLOURS, language)
    _legend(m, group, name, entries, position="bottomleft")
    return _finish(m, points, fit)


# -- the optimiser's proposal ---------------------------------------------------------------


def proposal_map(
    grids: gpd.GeoDataFrame,
    proposal: pd.DataFrame,
    removed: pd.DataFrame | None = None,
    *,
    colours: Mapping[str, str] | None = None,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """A proposal: grids coloured by proposed team, and a layer of what changes per grid.

    ``proposal``: team_mark, grid_code, change (added, kept, locked); ``removed``:
    team_mark, grid_code of the assignments it would end. A grid is ``added`` when it
    gets a team it does not have, else ``locked`` or ``kept``.
    """
    grids = _grid_frame(grids)
    proposed = proposal.assign(shift="")
    m = assignment_map(
        grids,
        proposed,
        colours=colours or team_colours(proposal["team_mark"]),
        name=text("proposal", language),
        show=show,
        m=m,
        language=language,
        tiles=tiles,
        attribution=attribution,
        fit=fit,
    )
    removed = removed if removed is not None else pd.DataFrame(columns=["team_mark", "grid_code"])
    per_grid = {}
    for code, rows in proposal.groupby("grid_code"):
        changes = set(rows["change"])
        change = "added" if "added" in changes else "locked" if "locked" in changes else "kept"
        now = set(rows.loc[rows["change"] != "added", "team_mark"])
        now |= set(removed.loc[removed["grid_code"] == code, "team_mark"])
        per_grid[code] = {
            "change": change,
            "status": text(change, language),
            "now": ", ".join(sorted(now)) or "-",
            "proposed": ", ".join(sorted(set(rows["team_mark"]))),
        }
    name = text("changes", language)
    tooltip = _tooltip(language, "status", "now", "proposed")
    # Outlines, so the proposed teams' colours show through.
    layer = _outline_layer(grids, per_grid, name, tooltip, show).add_to(m)
    changes = [values["change"] for values in per_grid.values()]
    entries = [
        (text(change, language), {**stroke, "fill": False}, changes.count(change))
        for change, stroke in _CHANGE_STROKES.items()
        if change in changes
    ]
    _legend(m, layer, name, entries, position="bottomleft")
    return _finish(m, grids, False)


# -- helpers ------------------------------------------------------------------------------


class LegendFollowsLayer(MacroElement):
    """Show a legend only while its layer is on the map (layers start hidden, or are ticked off)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (map, layer, legend) {
            function sync() {
                var box = legend.getContainer();
                if (box) { box.style.display = map.hasLayer(layer) ? "" : "none"; }
            }
            map.on("overlayadd overlayremove", sync);
            sync();
        })(
            {{ this._parent.get_name() }},
            {{ this.layer.get_name() }},
            {{ this.legend.get_name() }}
        );
        {% endmacro %}
        """
    )

    def __init__(self, layer: folium.map.Layer, legend: Legend) -> None:
        super().__init__()
        self._name = "LegendFollowsLayer"
        self.layer = layer
        self.legend = legend


def _legend(
    m: folium.Map,
    layer: folium.map.Layer,
    title: str,
    entries: list[tuple[str, dict[str, Any], int]],
    position: str = "bottomright",
) -> None:
    if not entries:
        return  # an empty layer needs no key
    legend = Legend(title, entries, position=position)
    legend.add_to(m)
    LegendFollowsLayer(layer, legend).add_to(m)


def _start(m: folium.Map | None, tiles: str, attribution: str, language: str) -> folium.Map:
    return m if m is not None else base_map(tiles, attribution=attribution, language=language)


def _finish(m: folium.Map, frame: gpd.GeoDataFrame, fit: bool) -> folium.Map:
    """Fit the frame; keep one layer control, last (its script names the layers before it)."""
    if fit and len(frame) and not frame.geometry.is_empty.all():
        west, south, east, north = frame.total_bounds
        m.fit_bounds([[south, west], [north, east]])  # Leaflet's order: lat, lon
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _grid_frame(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Grids in lon/lat, simplified for display (a station's grids: no more is needed)."""
    if grids.crs is not None and not grids.crs.is_geographic:
        grids = grids.to_crs("EPSG:4490")
    frame = grids[["code", "name", "geometry"]].copy()
    if len(frame):
        tolerance = display_tolerance(tuple(frame.total_bounds))
        frame["geometry"] = frame.geometry.simplify(tolerance, preserve_topology=True)
    return frame


def _area(
    grids: gpd.GeoDataFrame,
    name: str,
    values: Mapping[str, Mapping[str, Any]],
    style_property: str,
    colours: Any,
    tooltip: Mapping[str, str],
    show: bool,
    style: Mapping[str, Any] | None = None,
) -> folium.map.Layer:
    if grids.empty:
        # An empty layer still has its place in the control (a tooltip needs features).
        return folium.FeatureGroup(name=name, show=show)
    return area_layer(
        grids,
        name=name,
        style={**_GRID_STYLE, **(style or {})},
        tooltip=tooltip,
        values=values,
        style_property=style_property,
        colours=colours,
        show=show,
    )


def _outline_layer(
    grids: gpd.GeoDataFrame,
    per_grid: Mapping[str, Mapping[str, Any]],
    name: str,
    tooltip: Mapping[str, str],
    show: bool,
) -> folium.FeatureGroup:
    """Grids outlined by their change; transparent inside, yet hoverable for the tooltip."""
    frame = grids[grids["code"].isin(set(per_grid))].copy()
    for key in tooltip:
        if key not in ("code", "name"):
            frame[key] = [per_grid[code][key] for code in frame["code"]]
    for key in tooltip:  # tooltips are HTML; names come from uploaded boundary files
        frame[key] = frame[key].fillna("").astype(str).map(escape)
    frame["_change"] = [per_grid[code]["change"] for code in frame["code"]]
    group = folium.FeatureGroup(name=name, show=show)
    if len(frame):
        folium.GeoJson(
            frame,
            style_function=lambda feature: {
                **_CHANGE_STROKES[feature["properties"]["_change"]],
                "opacity": 0.95,
                "fill": True,
                "fillOpacity": 0.0,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=list(tooltip), aliases=list(tooltip.values()), sticky=True
            ),
        ).add_to(group)
    return group


def _tooltip(language: str, *keys: str) -> dict[str, str]:
    return {key: text(key, language) for key in ("code", "name", *keys)}


def _coverage_per_grid(shifts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    per_grid = {}
    for code, rows in shifts.groupby("grid_code"):
        minutes = rows["minutes_inside"].dropna()
        share = rows["reach_share"].dropna() if "reach_share" in rows else pd.Series([], float)
        per_grid[code] = {
            "minutes_inside": float(minutes.sum()) if len(minutes) else None,
            "reach_share": float(share.mean()) if len(share) else None,
            "minutes": _minutes(minutes.sum() if len(minutes) else None),
            "visits": str(int(rows["visits"].sum())),
            "share": f"{share.mean():.0%}" if len(share) else "-",
        }
    return per_grid


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
        (text(state, language), _swatch(colour), states.count(state))
        for state, colour in colours.items()
        if state in states
    ]


def _bin_entries(
    values: np.ndarray, bins: Sequence[tuple[float, str]], label_of: Any
) -> list[tuple[str, dict[str, Any], int]]:
    """Legend rows of ascending ``(at_least, colour)`` bins, each with its count."""
    uppers = [at_least for at_least, _ in bins[1:]] + [np.inf]
    return [
        (label_of(at_least), _swatch(colour), int(((values >= at_least) & (values < upper)).sum()))
        for (at_least, colour), upper in zip(bins, uppers, strict=True)
    ]


def _colour(i: int) -> str:
    if i < len(_PALETTE):
        return _PALETTE[i]
    hue = (i * 137.508) % 360 / 360  # the golden angle keeps successive hues apart
    red, green, blue = colorsys.hls_to_rgb(hue, 0.42, 0.65)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def _swatch(colour: str) -> dict[str, Any]:
    return {"color": "#333333", "weight": 1, "fill": True, "fillColor": colour}


def _line(colour: str) -> dict[str, Any]:
    return {"color": colour, "weight": 3, "fill": False}


def _bin_label(at_least: float, measure: str, language: str) -> str:
    if measure == "reach_share":
        return f"≥ {at_least:.0%}"
    return f"≥ {at_least:g} {text('min', language)}"


def _minutes(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.1f}"


def _clock(moment: Any, *, date: bool = False) -> str:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert(SHANGHAI).strftime("%Y-%m-%d %H:%M" if date else "%H:%M")
