"""Area layers for any map: inline for small areas, fetched from the layers endpoint for a city.

:func:`area_layer` is the one building block the page map builders share. Given a
GeoDataFrame it draws the areas inline (a ``folium.GeoJson`` with a tooltip), which suits
a county or less. Given the URL of the layers endpoint (``web/layers.py``) it adds a
layer whose script fetches the areas as GeoJSON simplified for the map's zoom
(:mod:`geogrid.outlines`), draws them on one canvas shared by the map (thousands of
polygons stay smooth, SVG would not), and, for a finer level with ``min_zoom``, fetches
only the chunks in view once the map is zoomed in that far. Values given inline
(``{code: {property: value}}``) or as the URL of a JSON endpoint are joined onto the
features by code, and one property is coloured by a mapping or by bins.

The page knows every fetched layer is drawn when ``window.geogridLayers.ready`` is true
(the ``geogrid:layers-ready`` event fires then); benchmarks and browser tests wait on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
from branca.element import Element, Figure
from folium.template import Template

# The level styles are grid_map's, so both kinds of map look alike.
from geogrid.maps import NO_TILES, Legend, base_map, label, level_styles

#: Zoom levels at which outlines are simplified afresh; a map at zoom z draws the largest
#: bucket not above z (the first bucket below 6), so one answer per bucket is cached.
ZOOM_BUCKETS = (6, 8, 10, 12, 14, 16, 18)
#: A map zoomed in further draws the last bucket, whose error is under half a pixel at 19.
MAX_BUCKET = ZOOM_BUCKETS[-1]
#: Chunks of a finer level are tiles this many zoom levels above the bucket: a view is
#: about five tiles of its own zoom wide, so one to four chunks cover it.
CHUNK_ZOOM_OFFSET = 2

DEFAULT_STYLE: dict[str, Any] = {
    "color": "#1d6fa5",
    "weight": 1,
    "opacity": 0.9,
    "fill": True,
    "fillColor": "#1d6fa5",
    "fillOpacity": 0.15,
}
#: Areas with no value for the styled property.
MISSING_COLOUR = "#cccccc"
#: The inline frame's column holding the styled property's raw value.
_STYLE_VALUE = "_style_value"

Colours = Mapping[Any, str] | Sequence[tuple[float, str]]


def zoom_bucket(zoom: float) -> int:
    """The simplification bucket a map at this zoom draws."""
    fitting = [bucket for bucket in ZOOM_BUCKETS if bucket <= math.floor(zoom)]
    return fitting[-1] if fitting else ZOOM_BUCKETS[0]


def area_layer(
    source: gpd.GeoDataFrame | str,
    *,
    name: str,
    style: Mapping[str, Any] | None = None,
    tooltip: Sequence[str] | Mapping[str, str] = ("code", "name"),
    values: Mapping[str, Mapping[str, Any]] | str | None = None,
    style_property: str | None = None,
    colours: Colours | None = None,
    show: bool = True,
    min_zoom: int | None = None,
    language: str = "zh_CN",
) -> folium.map.Layer:
    """A layer of areas for ``LayerControl``: inline from a GeoDataFrame, or fetched from a URL.

    ``tooltip`` names the properties shown on hover, or maps each to its label (``code``
    and ``name`` are labelled in ``language``). ``values`` (inline, or a URL answering
    ``{code: {property: value}}``) are joined onto the areas by code; ``style_property``
    picks the one that sets the fill colour through ``colours``: a mapping from value to
    colour, or bins ``[(at_least, colour), ...]`` in ascending order. Areas without a
    value are grey. ``min_zoom`` hides the layer (and fetches nothing) below that zoom.
    """
    base = {**DEFAULT_STYLE, **(style or {})}
    rule = _colour_rule(style_property, colours)
    fields, aliases = _tooltip_fields(tooltip, language)
    if isinstance(source, str):
        return RemoteAreas(
            source,
            name=name,
            style=base,
            tooltip_fields=fields,
            tooltip_aliases=aliases,
            values=values,
            colour_rule=rule,
            show=show,
            min_zoom=min_zoom,
        )
    if isinstance(values, str):
        raise TypeError("values from a URL need areas from a URL too; join them into the frame")
    return _inline_layer(source, name, base, fields, aliases, values, rule, show, min_zoom)


@dataclass(frozen=True)
class LevelSource:
    """A level drawn from the layers endpoint: its URL, how many areas, from which zoom."""

    level: str
    url: str
    areas: int
    min_zoom: int | None = None


def levels_map(
    sources: Sequence[LevelSource],
    *,
    bounds: Sequence[float] | None = None,
    m: folium.Map | None = None,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
) -> folium.Map:
    """Each level fetched from its URL as a layer, like :func:`geogrid.maps.grid_map` draws them.

    ``sources`` are coarsest first; the finest is filled lightly, coarser ones are
    outlines drawn over it. ``bounds`` (west, south, east, north) are fitted.
    """
    if m is None:
        m = base_map(tiles, attribution=attribution, language=language)
    drawn = [source for source in sources if source.areas]
    styles = level_styles([source.level for source in drawn])
    # Finest first, so the coarser outlines are painted over the fills.
    for source in reversed(drawn):
        area_layer(
            source.url,
            name=label(source.level, language),
            style=styles[source.level],
            min_zoom=source.min_zoom,
            language=language,
        ).add_to(m)
    if drawn:
        entries = [(label(s.level, language), styles[s.level], s.areas) for s in drawn]
        Legend(label("legend", language), entries).add_to(m)
    if not any(isinstance(child, folium.LayerControl) for child in m._children.values()):
        folium.LayerControl(collapsed=False).add_to(m)
    if bounds is not None:
        west, south, east, north = bounds
        m.fit_bounds([[south, west], [north, east]])  # Leaflet's order: lat, lon
    return m


def colour_for(value: Any, colours: Colours) -> str:
    """The colour of a value under a mapping or ascending ``(at_least, colour)`` bins."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_COLOUR
    if isinstance(colours, Mapping):
        return colours.get(value, colours.get(str(value), MISSING_COLOUR))
    chosen = MISSING_COLOUR
    for at_least, colour in colours:
        if value >= at_least:
            chosen = colour
    return chosen


class RemoteAreas(folium.map.Layer):
    """Areas fetched from the layers endpoint, simplified per zoom, drawn on a shared canvas."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = new GeogridAreas(
            {{ this.url|tojson }}, {{ this.js_options|tojson }}
        );
        {% endmacro %}
        """
    )

    def __init__(
        self,
        url: str,
        *,
        name: str,
        style: Mapping[str, Any],
        tooltip_fields: Sequence[str],
        tooltip_aliases: Sequence[str],
        values: Mapping[str, Mapping[str, Any]] | str | None = None,
        colour_rule: Mapping[str, Any] | None = None,
        show: bool = True,
        min_zoom: int | None = None,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "GeogridAreas"
        self.url = url
        self.style = dict(style)
        self.tooltip_fields = list(tooltip_fields)
        self.tooltip_aliases = list(tooltip_aliases)
        self.values = values
        self.colour_rule = dict(colour_rule) if colour_rule else None
        self.min_zoom = min_zoom

    @property
    def js_options(self) -> dict[str, Any]:
        """What the page's ``GeogridAreas`` is given: everything but the URL."""
        return {
            "name": self.layer_name,
            "style": self.style,
            "tooltip": {"fields": self.tooltip_fields, "aliases": self.tooltip_aliases},
            "values": None if isinstance(self.values, str) else self.values,
            "valuesUrl": self.values if isinstance(self.values, str) else None,
            "colourRule": self.colour_rule,
            "minZoom": self.min_zoom,
            "buckets": list(ZOOM_BUCKETS),
            "chunkOffset": CHUNK_ZOOM_OFFSET,
        }

    def render(self, **kwargs: Any) -> None:
        """Render, with the page's ``GeogridAreas`` class defined once before any layer."""
        figure = self.get_root()
        if isinstance(figure, Figure):
            figure.script.add_child(Element(areas_script()), name="geogrid_areas_class")
        super().render(**kwargs)


class _MinZoom(folium.MacroElement):
    """Show an inline layer only from ``min_zoom`` on."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (map, layer, minZoom) {
            var wanted = map.hasLayer(layer);
            function update() {
                var show = map.getZoom() >= minZoom;
                if (show && wanted && !map.hasLayer(layer)) { map.addLayer(layer); }
                if (!show && map.hasLayer(layer)) { map.removeLayer(layer); }
            }
            map.on("overlayadd", function (e) { if (e.layer === layer) { wanted = true; } });
            map.on("overlayremove", function (e) { if (e.layer === layer) { wanted = false; } });
            map.on("zoomend", update);
            update();
        })({{ this.map_name }}, {{ this.layer_name }}, {{ this.min_zoom }});
        {% endmacro %}
        """
    )

    def __init__(self, layer: folium.map.Layer, min_zoom: int) -> None:
        super().__init__()
        self._name = "MinZoom"
        self.layer = layer
        self.min_zoom = int(min_zoom)

    def render(self, **kwargs: Any) -> None:
        """Name the map and the layer this gate works on, known once both are placed."""
        self.layer_name = self.layer.get_name()
        parent = self.layer._parent
        while parent is not None and not isinstance(parent, folium.Map):
            parent = parent._parent
        self.map_name = parent.get_name() if parent is not None else "null"
        super().render(**kwargs)


def _inline_layer(
    areas: gpd.GeoDataFrame,
    name: str,
    base: dict[str, Any],
    fields: list[str],
    aliases: list[str],
    values: Mapping[str, Mapping[str, Any]] | None,
    rule: dict[str, Any] | None,
    show: bool,
    min_zoom: int | None,
) -> folium.FeatureGroup:
    frame = _display_frame(areas, fields, values, rule)
    group = folium.FeatureGroup(name=name, show=show)
    folium.GeoJson(
        frame,
        name=name,
        style_function=lambda feature: _feature_style(feature, base, rule),
        highlight_function=lambda _feature: {"weight": base["weight"] + 2},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases, sticky=True)
        if fields
        else None,
    ).add_to(group)
    if min_zoom is not None:
        group.add_child(_MinZoom(group, min_zoom))
    return group


def _display_frame(
    areas: gpd.GeoDataFrame,
    fields: list[str],
    values: Mapping[str, Mapping[str, Any]] | None,
    rule: dict[str, Any] | None,
) -> gpd.GeoDataFrame:
    if areas.crs is not None and not areas.crs.is_geographic:
        areas = areas.to_crs("EPSG:4490")
    frame = areas[["code", "name", "geometry"]].copy()
    for code_column in ("code", "name"):
        frame[code_column] = frame[code_column].fillna("").astype(str)
    for prop in sorted({p for joined in (values or {}).values() for p in joined}):
        frame[prop] = [(values or {}).get(code, {}).get(prop) for code in frame["code"]]
    wanted = set(fields) | ({rule["property"]} if rule else set())
    for column in wanted - set(frame.columns):
        frame[column] = areas[column] if column in areas.columns else None
    if rule is not None:
        # The raw value, before the tooltip's copy of it is escaped into text.
        frame[_STYLE_VALUE] = frame[rule["property"]]
    # GeoJsonTooltip puts values into innerHTML as they are; names come from uploaded files.
    for column in fields:
        frame[column] = [None if v is None else escape(str(v)) for v in frame[column]]
    return frame


def _feature_style(
    feature: Mapping[str, Any], base: dict[str, Any], rule: dict[str, Any] | None
) -> dict[str, Any]:
    if rule is None:
        return base
    value = feature["properties"].get(_STYLE_VALUE)
    colours = rule["categories"] if rule["kind"] == "categories" else rule["bins"]
    return {**base, "fill": True, "fillColor": colour_for(value, colours)}


def _colour_rule(style_property: str | None, colours: Colours | None) -> dict[str, Any] | None:
    if style_property is None:
        if colours is not None:
            raise TypeError("colours need a style_property to colour by")
        return None
    if colours is None:
        raise TypeError(f"style_property {style_property!r} needs colours")
    rule: dict[str, Any] = {"property": style_property}
    if isinstance(colours, Mapping):
        rule.update(kind="categories", categories={str(k): v for k, v in colours.items()})
    else:
        bins = [(float(at_least), str(colour)) for at_least, colour in colours]
        if [b for b, _ in bins] != sorted(b for b, _ in bins):
            raise ValueError("bins must be in ascending order of their lower bounds")
        rule.update(kind="bins", bins=bins)
    rule["missing"] = MISSING_COLOUR
    return rule


def _tooltip_fields(
    tooltip: Sequence[str] | Mapping[str, str], language: str
) -> tuple[list[str], list[str]]:
    if isinstance(tooltip, Mapping):
        return list(tooltip), list(tooltip.values())
    fields = list(tooltip)
    return fields, [label(field, language) for field in fields]


@cache
def areas_script() -> str:
    """The page script defining ``GeogridAreas`` (``maplayers.js`` beside this module)."""
    return (Path(__file__).with_name("maplayers.js")).read_text(encoding="utf-8")
