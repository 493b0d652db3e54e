"""Folium maps of grids: pure builders over GeoDataFrames, and the offline asset table.

Builders take ``m=None`` like GeoPandas' ``explore``: without a map they make one, with
a map they add their layers to it, so maps compose (grids, then incidents, then
patrols). Geometries arrive in lon/lat (CGCS2000, EPSG:4490, which Web Mercator tiles
treat as WGS84); Leaflet wants lat/lon, and the swap happens here only, in the bounds
given to ``fit_bounds`` (GeoJSON itself stays lon/lat, as Leaflet reads it).

Pages must work with no internet (DESIGN.md, "Web"), so :func:`offline` points every
script and stylesheet Folium would take from a CDN at the copies the app serves, and
refuses any asset this module does not know.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import folium
import geopandas as gpd
from branca.element import CssLink, Element, Figure, JavascriptLink, MacroElement
from folium.template import Template

from geogrid.errors import ConfigError

#: A tiles setting meaning "no base map": grids are drawn on a plain background.
NO_TILES = "none"
TIANDITU_PREFIX = "tianditu:"

#: 天地图 (the national map service) in Web Mercator; ``{s}`` is one of eight servers.
#: Its tiles are CGCS2000, so grids line up with no offset (unlike GCJ-02 tiles from
#: commercial maps, which would shift every grid by hundreds of metres).
_TIANDITU_URL = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
_TIANDITU_SUBDOMAINS = "01234567"
#: Vector base layer, then the place-name annotation layer in the page's language.
_TIANDITU_ANNOTATION = {"zh_CN": "cva", "en": "eva"}

#: Colours by position in the drawn levels, coarsest first; chosen to stay distinct
#: on a blank background and on 天地图's pale vector map.
_PALETTE = ("#4b2991", "#1d6fa5", "#2a9d4b", "#d7301f", "#ef8a17", "#7f7f7f")

#: Assumed map width in pixels when estimating the zoom at which the areas fit.
_NOMINAL_MAP_PIXELS = 1000
#: Zoom levels past the fitted view at which outlines must still look exact.
_ZOOM_HEADROOM = 4
_MAX_ZOOM = 20

_LABELS = {
    "zh_CN": {
        "county": "区县",
        "township": "街道/乡镇",
        "community": "社区/村",
        "grid": "网格",
        "microgrid": "微网格",
        "code": "编码",
        "name": "名称",
        "legend": "图例",
        "tianditu": "天地图",
        "annotation": "注记",
        "base_map": "底图",
    },
    "en": {
        "county": "County",
        "township": "Township",
        "community": "Community",
        "grid": "Grid",
        "microgrid": "Micro-grid",
        "code": "Code",
        "name": "Name",
        "legend": "Legend",
        "tianditu": "Tianditu",
        "annotation": "Labels",
        "base_map": "Base map",
    },
}


def label(key: str, language: str) -> str:
    """A map label (a level name, ``code``, ``name``...) in the language, else the key itself."""
    return _LABELS.get(language, _LABELS["en"]).get(key, key)


def grid_map(
    areas: gpd.GeoDataFrame,
    *,
    levels: Sequence[str],
    m: folium.Map | None = None,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
    simplify: float | None = None,
    fit: bool = True,
) -> folium.Map:
    """Draw each level of ``areas`` as its own layer, with tooltips, a legend and a layer control.

    ``levels`` are coarsest first; coarser levels are drawn as outlines on top of the
    finest, which is filled lightly so hovering anywhere inside names its grid.
    ``simplify`` is the tolerance in degrees (``0`` keeps every vertex); by default it
    is :func:`display_tolerance` of the areas' bounds.
    """
    areas = _lonlat(areas)
    drawn = [level for level in levels if (areas["level"] == level).any()]
    bounds = tuple(areas.total_bounds) if len(areas) else None
    if m is None:
        m = base_map(tiles, attribution=attribution, language=language)
    tolerance = simplify if simplify is not None else display_tolerance(bounds)
    styles = level_styles(drawn)
    # Finest first, so the coarser outlines are painted over the fills.
    for level in reversed(drawn):
        frame = areas[areas["level"] == level]
        _level_layer(frame, level, styles[level], tolerance, language).add_to(m)
    if drawn:
        Legend(
            label("legend", language),
            [
                (label(level, language), styles[level], int((areas["level"] == level).sum()))
                for level in drawn
            ],
        ).add_to(m)
    if not any(isinstance(child, folium.LayerControl) for child in m._children.values()):
        folium.LayerControl(collapsed=False).add_to(m)
    if fit and bounds is not None:
        west, south, east, north = bounds
        m.fit_bounds([[south, west], [north, east]])  # Leaflet's order: lat, lon
    return m


def base_map(
    tiles: str = NO_TILES, *, attribution: str = "", language: str = "zh_CN"
) -> folium.Map:
    """An empty map with the configured base tiles (none, 天地图 or an XYZ URL)."""
    m = folium.Map(
        location=(35.0, 105.0),
        zoom_start=4,
        tiles=None,
        max_zoom=_MAX_ZOOM,
        control_scale=True,
        prefer_canvas=False,
    )
    for layer in tile_layers(tiles, attribution=attribution, language=language):
        layer.add_to(m)
    _PlainLeafletCredit().add_to(m)
    return m


def tile_layers(
    tiles: str, *, attribution: str = "", language: str = "zh_CN"
) -> list[folium.TileLayer]:
    """The tile layers a ``tiles`` setting stands for; ConfigError for one that cannot work."""
    if tiles == NO_TILES or not tiles:
        return []
    if tiles.startswith(TIANDITU_PREFIX):
        key = tiles[len(TIANDITU_PREFIX) :].strip()
        if not key:
            raise ConfigError("write 天地图 tiles as tianditu:KEY", field="GEOGRID_TILES")
        credit = "&copy; 天地图 (tianditu.gov.cn)"
        annotation = _TIANDITU_ANNOTATION.get(language, "cva")
        return [
            folium.TileLayer(
                _TIANDITU_URL.format(layer="vec", key=key),
                attr=credit,
                name=label("tianditu", language),
                subdomains=_TIANDITU_SUBDOMAINS,
                max_zoom=18,
            ),
            # Place names come as a separate transparent layer drawn over the base.
            folium.TileLayer(
                _TIANDITU_URL.format(layer=annotation, key=key),
                attr=credit,
                name=label("annotation", language),
                subdomains=_TIANDITU_SUBDOMAINS,
                max_zoom=18,
                overlay=True,
                control=True,
            ),
        ]
    if not all(part in tiles for part in ("{z}", "{x}", "{y}")):
        raise ConfigError(
            "tiles must be none, tianditu:KEY or an XYZ URL with {z}, {x} and {y}",
            field="GEOGRID_TILES",
        )
    if not attribution.strip():
        raise ConfigError(
            "tiles from a URL need their attribution; set GEOGRID_TILES_ATTRIBUTION",
            field="GEOGRID_TILES_ATTRIBUTION",
        )
    return [folium.TileLayer(tiles, attr=attribution, name=label("base_map", language))]


def display_tolerance(bounds: Sequence[float] | None) -> float:
    """Simplification tolerance in degrees for areas with these (west, south, east, north) bounds.

    Half a pixel at ``_ZOOM_HEADROOM`` zoom levels past the zoom at which the bounds fill
    a ~1000-pixel map: outlines look exact while a person zooms in a few steps, and a
    district of thousands of grids stays light enough for the browser. A county 0.3°
    across fits at zoom 12, so the tolerance is half a pixel at zoom 16 (about 1 m).
    """
    if bounds is None:
        return 0.0
    west, south, east, north = bounds
    span = max(east - west, north - south, 1e-6)
    # At zoom z a 256-pixel tile spans 360 / 2**z degrees of longitude.
    fit_zoom = math.floor(math.log2(360 * _NOMINAL_MAP_PIXELS / (256 * span)))
    zoom = max(0, min(fit_zoom + _ZOOM_HEADROOM, _MAX_ZOOM))
    pixel = 360 / (256 * 2**zoom)
    # A pixel spans fewer degrees of latitude than of longitude away from the equator.
    return pixel / 2 * math.cos(math.radians(min(max(abs(south), abs(north)), 85.0)))


# ---------------------------------------------------------------------------
# Offline assets


#: Where each of Folium's named assets lives among the npm packages the app serves
#: (``web/assets/node_modules``) or among geogrid's own files (``geogrid/``).
#: The fragment must occur in Folium's CDN URL, so that a plugin reusing a name for
#: another library (BoatMarker calls its script ``markerclusterjs``) is refused.
FOLIUM_ASSETS: dict[str, tuple[str, str]] = {
    # name: (fragment of Folium's URL, local path)
    "leaflet": ("leaflet", "leaflet/dist/leaflet.js"),
    "leaflet_css": ("leaflet", "leaflet/dist/leaflet.css"),
    "jquery": ("jquery", "jquery/dist/jquery.min.js"),
    "bootstrap": ("bootstrap", "bootstrap/dist/js/bootstrap.bundle.min.js"),
    "bootstrap_css": ("bootstrap", "bootstrap/dist/css/bootstrap.min.css"),
    # Only the glyphicon rules of Bootstrap 3, so it cannot restyle Bootstrap 5 pages.
    "glyphicons_css": ("glyphicons", "bootstrap3/dist/css/glyphicons.css"),
    "awesome_markers": (
        "awesome-markers",
        "leaflet.awesome-markers/dist/leaflet.awesome-markers.js",
    ),
    "awesome_markers_css": (
        "awesome-markers",
        "leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    ),
    "awesome_markers_font_css": (
        "fontawesome-free",
        "@fortawesome/fontawesome-free/css/all.min.css",
    ),
    # Not published on npm; geogrid ships its own equivalent.
    "awesome_rotate_css": ("awesome.rotate", "geogrid/leaflet.awesome.rotate.css"),
    "leaflet-heat.js": ("leaflet_heat", "leaflet.heat/dist/leaflet-heat.js"),
    "markerclusterjs": (
        "leaflet.markercluster",
        "leaflet.markercluster/dist/leaflet.markercluster.js",
    ),
    "markerclustercss": ("leaflet.markercluster", "leaflet.markercluster/dist/MarkerCluster.css"),
    "markerclusterdefaultcss": (
        "leaflet.markercluster",
        "leaflet.markercluster/dist/MarkerCluster.Default.css",
    ),
}


def offline(m: folium.Map, asset_url: Callable[[str], str]) -> folium.Map:
    """Point the map's scripts and stylesheets at local copies; ConfigError for any without one.

    ``asset_url`` turns a local path from :data:`FOLIUM_ASSETS` into the URL the app
    serves it at. Each element gets its own lists: Folium's are shared by the class.
    """
    for element in _walk(m.get_root()):
        for attribute in ("default_js", "default_css"):
            links = getattr(element, attribute, None)
            if links:
                setattr(
                    element, attribute, [_localised(name, url, asset_url) for name, url in links]
                )
    return m


def local_asset(name: str, url: str) -> str:
    """The local path of a Folium asset; ConfigError if geogrid has no copy of it."""
    fragment, path = FOLIUM_ASSETS.get(name, ("", ""))
    if not path or fragment.lower() not in url.lower():
        raise ConfigError(
            f"the map needs {name!r} ({url}) but geogrid has no local copy of it; add the "
            "npm package to web/assets/package.json and the file to geogrid.maps.FOLIUM_ASSETS",
        )
    return path


@dataclass(frozen=True)
class MapParts:
    """A rendered map, in the three pieces a page template places: head, body and script."""

    header: str
    html: str
    script: str


def map_parts(m: folium.Map) -> MapParts:
    """Render the map for embedding in a page; ConfigError if it still links to another site."""
    figure = m.get_root()
    figure.render()
    external = [
        child.url
        for child in figure.header._children.values()
        if isinstance(child, JavascriptLink | CssLink) and _is_external(child.url)
    ]
    if external:
        raise ConfigError(
            f"the map links to other sites: {', '.join(external)}; call offline() first"
        )
    return MapParts(figure.header.render(), figure.html.render(), figure.script.render())


class Legend(MacroElement):
    """A small legend control: a swatch, a label and a count per level."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
            .geogrid-legend { background: rgba(255, 255, 255, 0.92); padding: 6px 10px;
                border-radius: 4px; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3);
                font: 13px/1.5 sans-serif; }
            .geogrid-legend h4 { font-size: 13px; font-weight: 600; margin: 0 0 4px; }
            .geogrid-legend i { display: inline-block; width: 18px; height: 12px;
                margin-right: 6px; vertical-align: -1px; border-style: solid; }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", "geogrid-legend");
            div.innerHTML = {{ this.html|tojson }};
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        title: str,
        entries: Sequence[tuple[str, dict[str, Any], int]],
        position: str = "bottomright",
    ) -> None:
        super().__init__()
        self._name = "Legend"
        self.title = title
        self.entries = list(entries)
        self.position = position

    @property
    def html(self) -> str:
        """The legend's inner HTML, every label escaped."""
        rows = []
        for text, style, count in self.entries:
            fill = style["fillColor"] if style.get("fill") else "transparent"
            swatch = (
                f'<i style="border-color:{style["color"]};border-width:{style["weight"]}px;'
                f'background:{fill}"></i>'
            )
            rows.append(f"<div>{swatch}{escape(text)} ({count})</div>")
        return f"<h4>{escape(self.title)}</h4>" + "".join(rows)


class _PlainLeafletCredit(MacroElement):
    """Credit Leaflet in plain text: Leaflet 1.9 adds a national flag to the credit,
    out of place on government pages that show only the map's own data."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.setPrefix(
            '<a href="https://leafletjs.com">Leaflet</a>'
        );
        {% endmacro %}
        """
    )


def _lonlat(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The areas in geographic lon/lat; projected frames are brought back to CGCS2000."""
    if areas.crs is not None and not areas.crs.is_geographic:
        return areas.to_crs("EPSG:4490")
    return areas


def level_styles(levels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Leaflet path styles per level, coarsest first: heavier outlines above, the finest filled.

    Shared by the inline maps here and the fetched layers of :mod:`geogrid.maplayers`,
    so a level looks the same however it arrives.
    """
    finest = len(levels) - 1
    styles = {}
    for depth, level in enumerate(levels):
        colour = _PALETTE[min(depth, len(_PALETTE) - 1)]
        filled = depth == finest
        styles[level] = {
            "color": colour,
            "weight": 1 if filled else 1.5 + (finest - depth) * 0.75,
            "opacity": 0.9,
            "fill": filled,
            "fillColor": colour,
            "fillOpacity": 0.12 if filled else 0.0,
        }
    return styles


def _level_layer(
    frame: gpd.GeoDataFrame, level: str, style: dict[str, Any], tolerance: float, language: str
) -> folium.FeatureGroup:
    display = frame[["code", "name", "geometry"]].copy()
    # Folium's tooltip puts property values into innerHTML as they are; names come from
    # uploaded boundary files, so they are escaped here.
    display["name"] = display["name"].fillna("").astype(str).map(escape)
    if tolerance > 0:
        # Topology-preserving, so no polygon collapses or turns invalid at small sizes.
        display["geometry"] = display.geometry.simplify(tolerance, preserve_topology=True)
    group = folium.FeatureGroup(name=label(level, language), show=True)
    folium.GeoJson(
        display,
        name=level,
        style_function=lambda _feature: style,
        highlight_function=lambda _feature: {"weight": style["weight"] + 2, "fillOpacity": 0.3},
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name"],
            aliases=[label("code", language), label("name", language)],
            sticky=True,
        ),
        smooth_factor=0.5,
    ).add_to(group)
    return group


def _localised(name: str, url: str, asset_url: Callable[[str], str]) -> tuple[str, str]:
    # A link already pointing at this site was localised before; keep it.
    return (name, asset_url(local_asset(name, url)) if _is_external(url) else url)


def _walk(element: Element) -> Iterator[Element]:
    yield element
    if isinstance(element, Figure):
        for part in (element.header, element.html, element.script):
            yield from _walk(part)
    for child in element._children.values():
        yield from _walk(child)


def _is_external(url: str) -> bool:
    return url.startswith(("http://", "https://", "//"))


def levels_to_draw(levels: Sequence[str], area_level: str | None, *, depth: int = 3) -> list[str]:
    """The levels a map of one area shows: its own and up to ``depth`` finer ones.

    With no area, the two coarsest levels: an overview light enough for a whole city,
    from which a person picks an area to see its grids. ``levels`` are coarsest first.
    """
    if area_level is None:
        return list(levels[:2])
    start = list(levels).index(area_level)
    return list(levels[start : start + depth + 1])
