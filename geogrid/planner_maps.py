"""Planner maps: a generation's areas, its validation issues, and two generations compared.

Pure builders in the style of :mod:`geogrid.maps`: each takes frames and ``m=None`` and
returns a ``folium.Map`` with a legend, tooltips naming code and name, and a layer
control kept last (Folium's control names the layers created before it, so a builder
that adds layers to a composed map moves the control after them).

A comparison is two maps in one page (:func:`side_by_side`), one per generation, that
pan and zoom together: before and after are seen at once, with no toggling, and Leaflet
is loaded once because both maps share one Folium figure. The synchronising script is a
few lines on Leaflet's own ``move`` events, so no plugin has to be vendored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Figure
from folium.template import Template

from geogrid.maplayers import area_layer
from geogrid.maps import NO_TILES, Legend, base_map, display_tolerance, grid_map, label

#: How an area fared from one generation to the next, in the order legends list them.
CHANGES = ("added", "redrawn", "removed", "unchanged")
CHANGE_COLOURS = {
    "added": "#1a9850",
    "redrawn": "#f46d43",
    "removed": "#a50026",
    "unchanged": "#bdbdbd",
}
#: The changes each side of a comparison can show: nothing is added to the older one.
OLD_SIDE = ("redrawn", "removed", "unchanged")
NEW_SIDE = ("added", "redrawn", "unchanged")

#: A colour per validation check (geogrid.validate.CHECKS), grouped by kind: geometry
#: reds, code purples, then nesting, overlaps, gaps, slivers and the warnings.
CHECK_COLOURS = {
    "geometry_empty": "#67001f",
    "geometry_type": "#67001f",
    "geometry_invalid": "#b2182b",
    "repaired": "#f4a582",
    "code_format": "#40004b",
    "code_level": "#40004b",
    "code_duplicate": "#762a83",
    "parent_mismatch": "#9970ab",
    "parent_missing": "#9970ab",
    "not_nested": "#e08214",
    "overlap": "#e31a1c",
    "gap": "#1f78b4",
    "sliver": "#33a02c",
    "edge_mismatch": "#b15928",
    "households_range": "#8c6d31",
}
OTHER_CHECK_COLOUR = "#525252"
#: Issues drawn at most; a broken import can report thousands, the table lists them all.
MAX_DRAWN_ISSUES = 2000

_LABELS = {
    "zh_CN": {
        "added": "新增",
        "redrawn": "重划",
        "removed": "撤销",
        "unchanged": "未变",
        "change": "变化",
        "changes": "边界变化",
        "issues": "校验问题",
        "check": "问题类型",
        "message": "说明",
        "severity": "级别",
        "error": "错误",
        "warning": "警告",
        "geometry_empty": "缺少边界",
        "geometry_type": "不是面",
        "geometry_invalid": "边界无效",
        "repaired": "已修复",
        "code_format": "编码格式",
        "code_level": "编码层级",
        "code_duplicate": "编码重复",
        "parent_mismatch": "上级不符",
        "parent_missing": "缺少上级",
        "not_nested": "超出上级",
        "overlap": "重叠",
        "gap": "缝隙",
        "sliver": "碎片",
        "edge_mismatch": "边界顶点不一致",
        "households_range": "户数超出范围",
    },
    "en": {
        "added": "Added",
        "redrawn": "Redrawn",
        "removed": "Removed",
        "unchanged": "Unchanged",
        "change": "Change",
        "changes": "Boundary changes",
        "issues": "Validation issues",
        "check": "Check",
        "message": "Message",
        "severity": "Severity",
        "error": "Error",
        "warning": "Warning",
        "geometry_empty": "No boundary",
        "geometry_type": "Not a polygon",
        "geometry_invalid": "Invalid boundary",
        "repaired": "Repaired",
        "code_format": "Code format",
        "code_level": "Code level",
        "code_duplicate": "Duplicate code",
        "parent_mismatch": "Wrong parent",
        "parent_missing": "Missing parent",
        "not_nested": "Outside its parent",
        "overlap": "Overlap",
        "gap": "Gap",
        "sliver": "Sliver",
        "edge_mismatch": "Edges not shared",
        "households_range": "Households out of range",
    },
}


def planner_label(key: str, language: str) -> str:
    """A planner map word (a change, a check) in the language; else :func:`maps.label`."""
    return _LABELS.get(language, _LABELS["en"]).get(key) or label(key, language)


# -- a generation and its validation issues -------------------------------------------


def generation_map(
    areas: gpd.GeoDataFrame,
    *,
    levels: Sequence[str],
    m: folium.Map | None = None,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
    fit: bool = True,
) -> folium.Map:
    """A generation's areas, a layer per level, finest filled, coarser ones outlined."""
    m = grid_map(
        areas,
        levels=levels,
        m=m,
        tiles=tiles,
        attribution=attribution,
        language=language,
        fit=fit,
    )
    return _layer_control_last(m)


def issue_shapes(issues: Sequence[Mapping[str, Any]], areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """What to draw for each issue: its place, and the overlap or the area outline it names.

    ``issues`` are validation issues as stored (``Issue.as_dict``). A place is the
    issue's location, else a point inside the area it names; an overlap is drawn as the
    intersection of its two areas, any other issue about an area as that area's outline.
    Issues naming no drawable place are left out (the report's table still lists them).
    """
    by_code = _geometries_by_code(areas)
    names = dict(zip(areas["code"], areas["name"].fillna(""), strict=True)) if len(areas) else {}
    rows: list[dict[str, Any]] = []
    for issue in list(issues)[:MAX_DRAWN_ISSUES]:
        code, related = issue.get("code"), issue.get("related_code")
        area = by_code.get(code)
        facts = {
            "check": issue.get("check") or "",
            "severity": issue.get("severity") or "error",
            "code": code or "",
            "related_code": related or "",
            "name": names.get(code, ""),
            "message": issue.get("message") or "",
        }
        shape = _issue_region(issue, area, by_code.get(related))
        if shape is not None:
            kind = "outline" if shape is area else "region"
            rows.append({**facts, "shape": kind, "geometry": shape})
        place = _issue_place(issue, area)
        if place is not None:
            rows.append({**facts, "shape": "place", "geometry": place})
    columns = ["check", "severity", "code", "related_code", "name", "message", "shape", "geometry"]
    frame = pd.DataFrame(rows, columns=columns)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=areas.crs or "EPSG:4490")


def validation_layer(
    issues: Sequence[Mapping[str, Any]],
    areas: gpd.GeoDataFrame,
    *,
    m: folium.Map | None = None,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
    fit: bool = True,
) -> folium.Map:
    """Validation issues over the areas they name: a layer per check, coloured by check.

    Errors are filled, warnings drawn dashed; each layer is named with its count and
    the legend lists the checks present. ``areas`` are those the issues name.
    """
    shapes = issue_shapes(issues, areas)
    if m is None:
        m = base_map(tiles, attribution=attribution, language=language)
    tolerance = display_tolerance(tuple(shapes.total_bounds) if len(shapes) else None)
    entries = []
    for check in _checks_in_order(shapes["check"]):
        of_check = shapes[shapes["check"] == check]
        count = int((of_check["shape"] == "place").sum()) or len(of_check)
        colour = CHECK_COLOURS.get(check, OTHER_CHECK_COLOUR)
        name = f"{planner_label(check, language)} ({count})"
        _check_layer(of_check, name, colour, tolerance, language).add_to(m)
        entries.append((planner_label(check, language), _swatch(colour), count))
    if entries:
        Legend(planner_label("issues", language), entries, position="bottomleft").add_to(m)
    if fit and len(shapes):
        _fit(m, shapes.total_bounds)
    return _layer_control_last(m)


# -- two generations compared ----------------------------------------------------------


def change_frame(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Each code of either generation and how it changed: added, redrawn, removed, unchanged.

    ``old`` and ``new`` hold ``code`` and ``id`` (the area row). An area that did not
    change keeps its row from one generation to the next (:mod:`geogrid.drafts`), so the
    same code on another row was redrawn (its boundary or its attributes changed).
    """
    before = dict(zip(old["code"], old["id"], strict=True))
    after = dict(zip(new["code"], new["id"], strict=True))
    rows = []
    for code in sorted(before.keys() | after.keys()):
        if code not in after:
            change = "removed"
        elif code not in before:
            change = "added"
        else:
            change = "unchanged" if before[code] == after[code] else "redrawn"
        rows.append((code, change))
    return pd.DataFrame(rows, columns=["code", "change"])


def change_layer(
    areas: gpd.GeoDataFrame | str,
    changes: pd.DataFrame,
    *,
    name: str,
    language: str = "zh_CN",
    show: bool = True,
) -> folium.map.Layer:
    """One generation's areas (a frame, or the layers endpoint's URL) coloured by change."""
    values = {
        code: {"change": change, "change_label": planner_label(change, language)}
        for code, change in zip(changes["code"], changes["change"], strict=True)
    }
    if isinstance(areas, gpd.GeoDataFrame):
        areas = _simplified(areas)
    return area_layer(
        areas,
        name=name,
        style={"weight": 1, "color": "#404040", "fillOpacity": 0.55},
        tooltip={
            "code": label("code", language),
            "name": label("name", language),
            "change_label": planner_label("change", language),
        },
        values=values,
        style_property="change",
        colours=CHANGE_COLOURS,
        show=show,
        language=language,
    )


def comparison_map(
    areas: gpd.GeoDataFrame | str,
    changes: pd.DataFrame,
    *,
    title: str,
    side: Sequence[str] = NEW_SIDE,
    m: folium.Map | None = None,
    bounds: Sequence[float] | None = None,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
) -> folium.Map:
    """One side of a comparison: a generation's areas coloured by change, titled, with a legend.

    ``side`` lists the changes this generation can show (:data:`OLD_SIDE` or
    :data:`NEW_SIDE`); ``bounds`` (west, south, east, north) default to the areas'.
    """
    if m is None:
        m = base_map(tiles, attribution=attribution, language=language)
    codes = None if isinstance(areas, str) else set(areas["code"])
    shown = changes if codes is None else changes[changes["code"].isin(codes)]
    change_layer(areas, shown, name=title, language=language).add_to(m)
    counts = shown["change"].value_counts()
    entries = [
        (
            planner_label(change, language),
            _swatch(CHANGE_COLOURS[change]),
            int(counts.get(change, 0)),
        )
        for change in CHANGES
        if change in side
    ]
    Legend(planner_label("changes", language), entries).add_to(m)
    MapTitle(title).add_to(m)
    if bounds is None and isinstance(areas, gpd.GeoDataFrame) and len(areas):
        bounds = areas.total_bounds
    if bounds is not None:
        _fit(m, bounds)
    return _layer_control_last(m)


def side_by_side(left: folium.Map, right: folium.Map) -> Figure:
    """Put two maps in one figure, panning and zooming together; render it through ``left``.

    ``maps.map_parts(left)`` then gives both maps' HTML (two ``div.folium-map``, left
    first) and one copy of every script and stylesheet.
    """
    figure = Figure()
    figure.add_child(left)
    figure.add_child(right)
    figure.add_child(_Synchronise(left, right))
    return figure


class MapTitle(folium.MacroElement):
    """A caption in a corner of the map, naming what it shows."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "geogrid-map-title");
            div.textContent = {{ this.text|tojson }};
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str, position: str = "bottomleft") -> None:
        super().__init__()
        self._name = "MapTitle"
        self.text = text
        self.position = position


class _Synchronise(folium.MacroElement):
    """Each map follows the other's centre and zoom; a flag stops the echo."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (maps) {
            var following = false;
            maps.forEach(function (source, index) {
                var target = maps[1 - index];
                source.on("move zoomend", function () {
                    if (following) { return; }
                    following = true;
                    target.setView(source.getCenter(), source.getZoom(), {animate: false});
                    following = false;
                });
            });
            window.geogridSynchronised = maps;
        })([{{ this.left.get_name() }}, {{ this.right.get_name() }}]);
        {% endmacro %}
        """
    )

    def __init__(self, left: folium.Map, right: folium.Map) -> None:
        super().__init__()
        self._name = "Synchronise"
        self.left = left
        self.right = right


# -- helpers ----------------------------------------------------------------------------


def _geometries_by_code(areas: gpd.GeoDataFrame) -> dict[str, Any]:
    if not len(areas):
        return {}
    if areas.crs is not None and not areas.crs.is_geographic:
        areas = areas.to_crs("EPSG:4490")
    return dict(zip(areas["code"], areas.geometry, strict=True))


def _issue_region(issue: Mapping[str, Any], area: Any, related: Any) -> Any:
    """The overlap of two areas, or the outline of the area an issue names."""
    if area is None or shapely.is_empty(area):
        return None
    if issue.get("check") == "overlap" and related is not None:
        overlap = shapely.intersection(area, related)
        polygons = [p for p in shapely.get_parts(overlap) if p.geom_type == "Polygon"]
        if polygons:
            return shapely.MultiPolygon(polygons)
    return area


def _issue_place(issue: Mapping[str, Any], area: Any) -> Any:
    location = issue.get("location")
    if location:
        return shapely.Point(float(location[0]), float(location[1]))
    if area is not None and not shapely.is_empty(area) and shapely.is_valid(area):
        return shapely.point_on_surface(area)
    return None


def _checks_in_order(checks: pd.Series) -> list[str]:
    order = list(CHECK_COLOURS)
    present = list(dict.fromkeys(checks))
    return sorted(present, key=lambda c: order.index(c) if c in order else len(order))


def _check_layer(
    shapes: gpd.GeoDataFrame, name: str, colour: str, tolerance: float, language: str
) -> folium.FeatureGroup:
    display = shapes.copy()
    outlines = display["shape"] == "outline"
    if tolerance > 0 and outlines.any():
        display.loc[outlines, "geometry"] = display.loc[outlines].geometry.simplify(
            tolerance, preserve_topology=True
        )
    display["check_label"] = [planner_label(c, language) for c in display["check"]]
    # GeoJsonTooltip writes values into innerHTML; names come from uploaded files.
    for column in ("check_label", "code", "name", "message"):
        display[column] = [escape(str(v)) for v in display[column]]
    group = folium.FeatureGroup(name=name, show=True)
    folium.GeoJson(
        display[["check_label", "severity", "code", "name", "message", "shape", "geometry"]],
        name=name,
        style_function=lambda feature: _issue_style(feature, colour),
        marker=folium.CircleMarker(radius=7),
        tooltip=folium.GeoJsonTooltip(
            fields=["check_label", "code", "name", "message"],
            aliases=[
                planner_label("check", language),
                label("code", language),
                label("name", language),
                planner_label("message", language),
            ],
            sticky=True,
        ),
    ).add_to(group)
    return group


def _issue_style(feature: Mapping[str, Any], colour: str) -> dict[str, Any]:
    props = feature["properties"]
    warning = props.get("severity") == "warning"
    shape = props.get("shape")
    style = {"color": colour, "weight": 2.5, "opacity": 0.95, "fillColor": colour}
    if shape == "place":
        style.update(fill=True, fillOpacity=0.25 if warning else 0.85, weight=2)
    elif shape == "region":
        style.update(fill=True, fillOpacity=0.6)
    else:
        style.update(fill=False, fillOpacity=0.0)
    if warning:
        style["dashArray"] = "4 4"
    return style


def _swatch(colour: str) -> dict[str, Any]:
    return {"color": colour, "weight": 2, "fill": True, "fillColor": colour}


def _simplified(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not len(areas):
        return areas
    tolerance = display_tolerance(tuple(areas.total_bounds))
    if tolerance <= 0:
        return areas
    simplified = areas.copy()
    simplified["geometry"] = areas.geometry.simplify(tolerance, preserve_topology=True)
    return simplified


def _fit(m: folium.Map, bounds: Sequence[float]) -> None:
    west, south, east, north = (float(b) for b in bounds)
    if np.isfinite([west, south, east, north]).all():
        # Leaflet's order: lat, lon; a margin keeps the outermost edges off the map's border.
        m.fit_bounds([[south, west], [north, east]], padding=(12, 12))


def _layer_control_last(m: folium.Map) -> folium.Map:
    """One layer control, after every layer, so that it lists them all."""
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
    folium.LayerControl(collapsed=False).add_to(m)
    return m
