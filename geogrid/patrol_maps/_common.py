"""What both audiences' patrol maps share: their words, team colours, grid frames and layers,
legends that follow their layer, and the map's start and finish.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Iterable, Mapping
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
from branca.element import MacroElement
from folium.template import Template

from geogrid.maplayers import area_layer
from geogrid.maps import Legend, base_map, display_tolerance, label

#: Distinct colours for teams, then golden-angle hues for stations with many teams.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)  # fmt: skip
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
    return {mark: palette_colour(i) for i, mark in enumerate(ordered)}


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


def add_legend(
    m: folium.Map,
    layer: folium.map.Layer,
    title: str,
    entries: list[tuple[str, dict[str, Any], int]],
    position: str = "bottomright",
) -> None:
    """Add a legend of ``(label, style, count)`` rows, shown only while ``layer`` is on."""
    if not entries:
        return  # an empty layer needs no key
    legend = Legend(title, entries, position=position)
    legend.add_to(m)
    LegendFollowsLayer(layer, legend).add_to(m)


def start_map(m: folium.Map | None, tiles: str, attribution: str, language: str) -> folium.Map:
    """The map to draw on: ``m`` when given (so layers compose), else a new base map."""
    return m if m is not None else base_map(tiles, attribution=attribution, language=language)


def finish_map(m: folium.Map, frame: gpd.GeoDataFrame, fit: bool) -> folium.Map:
    """Fit the frame; keep one layer control, last (its script names the layers before it)."""
    if fit and len(frame) and not frame.geometry.is_empty.all():
        west, south, east, north = frame.total_bounds
        m.fit_bounds([[south, west], [north, east]])  # Leaflet's order: lat, lon
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def grid_frame(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Grids in lon/lat, simplified for display (a station's grids: no more is needed)."""
    if grids.crs is not None and not grids.crs.is_geographic:
        grids = grids.to_crs("EPSG:4490")
    frame = grids[["code", "name", "geometry"]].copy()
    if len(frame):
        tolerance = display_tolerance(tuple(frame.total_bounds))
        frame["geometry"] = frame.geometry.simplify(tolerance, preserve_topology=True)
    return frame


def grid_layer(
    grids: gpd.GeoDataFrame,
    name: str,
    values: Mapping[str, Mapping[str, Any]],
    style_property: str,
    colours: Any,
    tooltip: Mapping[str, str],
    show: bool,
    style: Mapping[str, Any] | None = None,
) -> folium.map.Layer:
    """Grids as one layer filled by ``style_property`` through ``colours``, with tooltips."""
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


def tooltip_fields(language: str, *keys: str) -> dict[str, str]:
    """Tooltip fields and their words: the grid's code and name, then ``keys``."""
    return {key: text(key, language) for key in ("code", "name", *keys)}


def palette_colour(i: int) -> str:
    """The ``i``-th team colour: the palette's, then golden-angle hues."""
    if i < len(_PALETTE):
        return _PALETTE[i]
    hue = (i * 137.508) % 360 / 360  # the golden angle keeps successive hues apart
    red, green, blue = colorsys.hls_to_rgb(hue, 0.42, 0.65)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def swatch(colour: str) -> dict[str, Any]:
    """A legend row's style for an area filled with ``colour``."""
    return {"color": "#333333", "weight": 1, "fill": True, "fillColor": colour}


def format_minutes(value: float | None) -> str:
    """Minutes to a tenth, or ``-`` where none were measured."""
    return "-" if value is None or pd.isna(value) else f"{value:.1f}"
