"""Folium maps of incidents: one incident with its grid and possible duplicates, and the
map a person clicks to file one. Pure builders over shapely points and GeoDataFrames.

Both draw in the *map's* coordinate type, the one its base tiles are in
(:func:`map_coord_type`): with no tiles or 天地图 that is CGCS2000, the frame the grids
are stored in, so nothing moves; on GCJ-02 tiles (Amap, Tencent) every stored geometry
is shifted onto the tiles, and a point clicked there is a GCJ-02 point, recorded so.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import shapely
from branca.element import MacroElement
from folium.template import Template

from geogrid.crs import CGCS2000, GCJ02, WGS84, geometry_from_storage, parse_coord_type
from geogrid.errors import ConfigError, CoordinateError
from geogrid.maps import NO_TILES, TIANDITU_PREFIX, Legend, base_map, display_tolerance, label

#: Coordinate types a Web Mercator tile pyramid (what Leaflet shows) can be drawn in.
MAP_COORD_TYPES = (WGS84.name, CGCS2000.name, GCJ02.name)
#: Tile hosts known to serve GCJ-02 (Amap/AutoNavi, Tencent): a guard for deployments
#: that point ``tiles`` at them and forget to declare it, which would misplace every
#: clicked point by hundreds of metres.
_GCJ02_TILE_HOSTS = ("autonavi.com", "amap.com", "map.gtimg.com", "map.qq.com")

INCIDENT_COLOUR = "#d7301f"
GRID_COLOUR = "#1d6fa5"
DUPLICATE_COLOUR = "#ef8a17"
GRID_STYLE: dict[str, Any] = {
    "color": GRID_COLOUR,
    "weight": 2,
    "opacity": 0.9,
    "fill": True,
    "fillColor": GRID_COLOUR,
    "fillOpacity": 0.08,
}
#: Swatches for the legend (Legend reads colour, weight and fill).
_INCIDENT_SWATCH = {
    "color": INCIDENT_COLOUR,
    "weight": 2,
    "fill": True,
    "fillColor": INCIDENT_COLOUR,
}
_DUPLICATE_SWATCH = {
    "color": DUPLICATE_COLOUR,
    "weight": 2,
    "fill": True,
    "fillColor": DUPLICATE_COLOUR,
}
#: A lone point is shown with this margin (degrees, ~300 m) around it.
_POINT_MARGIN = 0.003
_FIT_MAX_ZOOM = 17

_LABELS = {
    "zh_CN": {
        "incident": "事件",
        "grid_point": "网格代表点（按网格上报）",
        "duplicates": "可能重复的事件",
        "chosen": "所选位置",
        "grids": "可选网格",
    },
    "en": {
        "incident": "Incident",
        "grid_point": "Grid's representative point (filed by grid)",
        "duplicates": "Possible duplicates",
        "chosen": "Chosen point",
        "grids": "Grids to choose from",
    },
}


def map_label(key: str, language: str) -> str:
    """A label of these maps in the language (falling back to :func:`geogrid.maps.label`)."""
    return _LABELS.get(language, _LABELS["en"]).get(key) or label(key, language)


def map_coord_type(tiles: str, declared: str = "") -> str:
    """The coordinate type of a point clicked on a map with these base tiles.

    ``declared`` (the tiles' coordinate type, when the deployment states it) wins. With
    no tiles the map shows only the grids, drawn from storage unchanged, so a click is a
    CGCS2000 point by construction; 天地图 serves CGCS2000 tiles. Another XYZ URL follows
    the web's convention (WGS84), unless it is a host known to serve GCJ-02.
    """
    if declared.strip():
        try:
            name = parse_coord_type(declared).name
        except CoordinateError as error:
            raise ConfigError(error.message, field="GEOGRID_TILES_COORD_TYPE") from None
        if name not in MAP_COORD_TYPES:
            raise ConfigError(
                f"base tiles in {name} cannot be shown by Leaflet; use one of "
                f"{', '.join(MAP_COORD_TYPES)}",
                field="GEOGRID_TILES_COORD_TYPE",
            )
        return name
    if not tiles or tiles == NO_TILES or tiles.startswith(TIANDITU_PREFIX):
        return CGCS2000.name
    host = (urlsplit(tiles.replace("{s}", "a")).hostname or "").lower()
    if any(host == known or host.endswith("." + known) for known in _GCJ02_TILE_HOSTS):
        return GCJ02.name
    return WGS84.name


# -- one incident ---------------------------------------------------------------------------


def incident_map(
    incident_point: shapely.Point | None,
    grid_frame: gpd.GeoDataFrame,
    *,
    duplicates: gpd.GeoDataFrame | None = None,
    m: folium.Map | None = None,
    incident_label: str = "",
    approximate: bool = False,
    coord_type: str = CGCS2000.name,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
) -> folium.Map:
    """The incident's point, its grid's outline and nearby possible duplicates, as layers.

    ``incident_point`` and the geometries are stored CGCS2000 lon/lat. ``grid_frame`` has
    ``code``, ``name`` and polygons; ``duplicates`` has ``incident_id``, ``category_name``,
    ``state``, ``distance_m`` (None when unknown), optionally ``url``, and points (None for
    one filed by grid, which is left off the map). ``approximate`` marks the point as a
    grid's representative point (an incident filed by grid has none of its own).
    """
    grids = _displayed(grid_frame, coord_type)
    nearby = _displayed(_located(duplicates), coord_type)
    point = None
    if incident_point is not None:
        point = geometry_from_storage(incident_point, parse_coord_type(coord_type))
    if m is None:
        m = base_map(tiles, attribution=attribution, language=language)
    entries: list[tuple[str, dict[str, Any], int | None]] = []
    if len(grids):
        _grid_layer(grids, label("grid", language), language).add_to(m)
        entries.append((label("grid", language), GRID_STYLE, len(grids)))
    if len(nearby):
        _duplicates_layer(nearby, language).add_to(m)
        entries.append((map_label("duplicates", language), _DUPLICATE_SWATCH, len(nearby)))
    if point is not None:
        key = "grid_point" if approximate else "incident"
        _incident_layer(point, incident_label, approximate, map_label(key, language)).add_to(m)
        entries.append((map_label(key, language), _INCIDENT_SWATCH, 1))
    _finish(m, entries, [grids, nearby], point, language)
    return m


def _incident_layer(
    point: shapely.Point, text: str, approximate: bool, name: str
) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=name, show=True)
    folium.CircleMarker(
        location=(point.y, point.x),  # Leaflet's order: lat, lon
        radius=9,
        color=INCIDENT_COLOUR,
        weight=3,
        dash_array="4 4" if approximate else None,
        fill=True,
        fill_color=INCIDENT_COLOUR,
        fill_opacity=0.15 if approximate else 0.8,
        tooltip=folium.Tooltip(escape(text or name)),
    ).add_to(group)
    return group


def _duplicates_layer(duplicates: gpd.GeoDataFrame, language: str) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=map_label("duplicates", language), show=True)
    for row in duplicates.itertuples(index=False):
        text = _duplicate_text(row)
        url = getattr(row, "url", None)
        folium.CircleMarker(
            location=(row.geometry.y, row.geometry.x),
            radius=7,
            color=DUPLICATE_COLOUR,
            weight=2,
            fill=True,
            fill_color=DUPLICATE_COLOUR,
            fill_opacity=0.7,
            tooltip=folium.Tooltip(escape(text)),
            popup=folium.Popup(f'<a href="{escape(url)}">{escape(text)}</a>') if url else None,
        ).add_to(group)
    return group


def _duplicate_text(row: Any) -> str:
    parts = [f"#{row.incident_id} {row.category_name}".strip(), str(row.state)]
    distance = row.distance_m
    if distance is not None and distance == distance:  # NaN from a missing distance
        parts.append(f"{float(distance):.0f} m")
    return " · ".join(parts)


def _located(duplicates: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """The duplicates that have a point (those filed by grid cannot be drawn)."""
    if duplicates is None or not len(duplicates):
        return None
    return duplicates[duplicates.geometry.notna() & ~duplicates.geometry.is_empty]


# -- filing by clicking ---------------------------------------------------------------------


def filing_map(
    grids: gpd.GeoDataFrame | str,
    *,
    m: folium.Map | None = None,
    lon_field: str = "lon",
    lat_field: str = "lat",
    grid_field: str | None = None,
    status_element: str | None = None,
    bounds: Sequence[float] | None = None,
    grid_count: int | None = None,
    coord_type: str = CGCS2000.name,
    tiles: str = NO_TILES,
    attribution: str = "",
    language: str = "zh_CN",
) -> folium.Map:
    """The grids a person may file in, and a click handler that records the clicked point.

    A click puts lon/lat (in ``coord_type``, the map's) into the form fields with ids
    ``lon_field`` and ``lat_field`` and marks the point; choosing a grid in the select
    ``grid_field`` clears it (a location is a point or a grid, not both). ``grids`` is a
    GeoDataFrame (stored lon/lat) or the URL of the layers endpoint, which needs
    ``bounds`` (west, south, east, north) to frame the map and ``grid_count`` for the legend.
    """
    if m is None:
        m = base_map(tiles, attribution=attribution, language=language)
    name = map_label("grids", language)
    if isinstance(grids, str):
        if coord_type == GCJ02.name:
            raise ConfigError(
                "grids fetched from a URL are drawn as stored and cannot be shifted onto "
                "GCJ-02 tiles; draw them inline",
                field="GEOGRID_TILES",
            )
        # Imported only here: pages that draw grids inline do not need the fetching layer.
        from geogrid.maplayers import area_layer

        area_layer(grids, name=name, style=GRID_STYLE, language=language).add_to(m)
        shown: list[gpd.GeoDataFrame] = []
        count = grid_count
    else:
        shown = [_displayed(grids, coord_type)]
        count = len(shown[0])
        if count:
            _grid_layer(shown[0], name, language, simplify=True).add_to(m)
    picker = PointPicker(lon_field, lat_field, grid_field=grid_field, status_element=status_element)
    picker.add_to(m)
    entries = [(name, GRID_STYLE, count), (map_label("chosen", language), _INCIDENT_SWATCH, None)]
    _finish(m, entries, shown, None, language, bounds=bounds)
    return m


class PointPicker(MacroElement):
    """Click to choose a point: lon/lat into two form fields, and a marker where it is.

    A form re-rendered with a point already chosen shows it again; choosing a grid in
    ``grid_field`` instead clears the point. Drawn as a circle marker, which needs no
    icon image from anywhere.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (map) {
            function byId(id) { return id ? document.getElementById(id) : null; }
            var lon = byId({{ this.lon_field|tojson }});
            var lat = byId({{ this.lat_field|tojson }});
            var grid = byId({{ this.grid_field|tojson }});
            var status = byId({{ this.status_element|tojson }});
            var marker = null;
            function show(latlng) {
                if (marker) { marker.setLatLng(latlng); }
                else {
                    marker = L.circleMarker(latlng, {{ this.style|tojson }}).addTo(map);
                }
                if (status) {
                    status.textContent = latlng.lng.toFixed(6) + ", " + latlng.lat.toFixed(6);
                }
            }
            function clear() {
                if (marker) { map.removeLayer(marker); marker = null; }
                lon.value = ""; lat.value = "";
                if (status) { status.textContent = ""; }
            }
            map.on("click", function (e) {
                var latlng = e.latlng.wrap();
                lon.value = latlng.lng.toFixed(7);
                lat.value = latlng.lat.toFixed(7);
                if (grid) { grid.value = ""; }
                show(latlng);
            });
            if (grid) {
                grid.addEventListener("change", function () { if (grid.value) { clear(); } });
            }
            if (lon.value && lat.value && isFinite(lon.value) && isFinite(lat.value)) {
                show(L.latLng(parseFloat(lat.value), parseFloat(lon.value)));
            }
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        lon_field: str,
        lat_field: str,
        *,
        grid_field: str | None = None,
        status_element: str | None = None,
    ) -> None:
        super().__init__()
        self._name = "PointPicker"
        self.lon_field = lon_field
        self.lat_field = lat_field
        self.grid_field = grid_field
        self.status_element = status_element
        self.style = {
            "radius": 9,
            "color": INCIDENT_COLOUR,
            "weight": 3,
            "fillColor": INCIDENT_COLOUR,
            "fillOpacity": 0.8,
            # The marker must not swallow the next click meant for the map.
            "interactive": False,
        }


class KeyLegend(Legend):
    """:class:`geogrid.maps.Legend` whose entries may go without a count (a chosen point)."""

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
            counted = "" if count is None else f" ({count})"
            rows.append(f"<div>{swatch}{escape(text)}{counted}</div>")
        return f"<h4>{escape(self.title)}</h4>" + "".join(rows)


# -- shared -----------------------------------------------------------------------------


def _displayed(frame: gpd.GeoDataFrame | None, coord_type: str) -> gpd.GeoDataFrame:
    """The frame's geometries in the map's coordinate type (stored lon/lat in, and out)."""
    if frame is None:
        return gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs="EPSG:4490")
    if frame.crs is not None and not frame.crs.is_geographic:
        frame = frame.to_crs("EPSG:4490")
    wanted = parse_coord_type(coord_type)
    if wanted in (WGS84, CGCS2000):
        return frame
    shifted = frame.copy()
    shifted["geometry"] = geometry_from_storage(frame.geometry.values, wanted)
    return shifted


def _grid_layer(
    grids: gpd.GeoDataFrame, name: str, language: str, *, simplify: bool = False
) -> folium.FeatureGroup:
    display = grids[["code", "name", "geometry"]].copy()
    # Names come from uploaded boundary files and Folium's tooltip writes them as HTML.
    display["name"] = display["name"].fillna("").astype(str).map(escape)
    if simplify and len(display) > 1:
        tolerance = display_tolerance(tuple(display.total_bounds))
        display["geometry"] = display.geometry.simplify(tolerance, preserve_topology=True)
    group = folium.FeatureGroup(name=name, show=True)
    folium.GeoJson(
        display,
        name="grid",
        style_function=lambda _feature: GRID_STYLE,
        highlight_function=lambda _feature: {"weight": 3, "fillOpacity": 0.25},
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name"],
            aliases=[label("code", language), label("name", language)],
            sticky=True,
        ),
    ).add_to(group)
    return group


def _finish(
    m: folium.Map,
    entries: list[tuple[str, dict[str, Any], int | None]],
    frames: list[gpd.GeoDataFrame],
    point: shapely.Point | None,
    language: str,
    *,
    bounds: Sequence[float] | None = None,
) -> None:
    """Legend, one layer control, and the view fitted to what was drawn."""
    if entries:
        KeyLegend(label("legend", language), entries).add_to(m)
    if not any(isinstance(child, folium.LayerControl) for child in m._children.values()):
        folium.LayerControl(collapsed=False).add_to(m)
    box = tuple(bounds) if bounds is not None else _bounds(frames, point)
    if box is not None:
        west, south, east, north = box
        m.fit_bounds([[south, west], [north, east]], max_zoom=_FIT_MAX_ZOOM)


def _bounds(
    frames: list[gpd.GeoDataFrame], point: shapely.Point | None
) -> tuple[float, float, float, float] | None:
    shapes = [geometry for frame in frames for geometry in frame.geometry if geometry is not None]
    if point is not None:
        shapes.append(point.buffer(_POINT_MARGIN))
    if not shapes:
        return None
    west, south, east, north = shapely.GeometryCollection(shapes).bounds
    return west, south, east, north
