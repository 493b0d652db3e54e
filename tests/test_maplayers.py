"""area_layer: inline layers and fetched layers, inspected on the map and in its script."""

from __future__ import annotations

import json
import re

import folium
import pytest
from factories import tiny_city

from geogrid import maplayers, maps
from geogrid.maplayers import MISSING_COLOUR, RemoteAreas, area_layer, colour_for, zoom_bucket

URL = "/api/layers/3/grid.geojson"


def rendered(m: folium.Map) -> str:
    return m.get_root().render()


def options_in(html: str, layer: RemoteAreas) -> tuple[str, dict]:
    """The URL and options a fetched layer's script gives ``GeogridAreas``."""
    found = re.search(
        rf"var {layer.get_name()} = new GeogridAreas\(\s*(\".*?\"), (\{{.*?\}})\s*\);",
        html,
        re.S,
    )
    assert found, "the layer's script is missing"
    return json.loads(found.group(1)), json.loads(found.group(2))


def grids():
    return tiny_city().query("level == 'grid'")


def test_a_url_gives_a_fetched_layer_in_the_layer_control():
    m = maps.base_map()
    layer = area_layer(URL, name="网格", min_zoom=12).add_to(m)
    folium.LayerControl().add_to(m)
    html = rendered(m)
    url, options = options_in(html, layer)
    assert url == URL
    assert options["minZoom"] == 12
    assert options["buckets"] == list(maplayers.ZOOM_BUCKETS)
    assert options["tooltip"] == {"fields": ["code", "name"], "aliases": ["编码", "名称"]}
    # The class is defined once, before the layer, and draws on a canvas.
    assert html.count("window.GeogridAreas = L.GeoJSON.extend") == 1
    assert html.index("window.GeogridAreas =") < html.index(f"var {layer.get_name()} =")
    assert "L.canvas(" in html
    # Listed in the layer control under its name, and shown at once.
    assert re.search(rf"{re.escape(json.dumps('网格'))}\s*:\s*{layer.get_name()}", html)
    assert f"{layer.get_name()}.addTo({m.get_name()})" in html


def test_two_fetched_layers_share_one_class_definition():
    m = maps.base_map()
    area_layer(URL, name="a").add_to(m)
    area_layer(URL.replace("grid", "county"), name="b", show=False).add_to(m)
    html = rendered(m)
    assert html.count("window.GeogridAreas = L.GeoJSON.extend") == 1


def test_a_hidden_layer_is_not_added_to_the_map():
    m = maps.base_map()
    layer = area_layer(URL, name="a", show=False).add_to(m)
    assert f"{layer.get_name()}.addTo(" not in rendered(m)


def test_values_and_the_colour_rule_reach_the_fetched_layer():
    m = maps.base_map()
    values = {"370705001001001": {"count": 12}, "370705002001001": {"count": 0}}
    layer = area_layer(
        URL,
        name="事件数",
        values=values,
        style_property="count",
        colours=[(0, "#ffffcc"), (5, "#fd8d3c"), (10, "#bd0026")],
        tooltip={"code": "编码", "name": "名称", "count": "事件数"},
    ).add_to(m)
    _, options = options_in(rendered(m), layer)
    assert options["values"] == values
    assert options["colourRule"] == {
        "property": "count",
        "kind": "bins",
        "bins": [[0.0, "#ffffcc"], [5.0, "#fd8d3c"], [10.0, "#bd0026"]],
        "missing": MISSING_COLOUR,
    }
    assert options["tooltip"]["fields"] == ["code", "name", "count"]
    assert options["tooltip"]["aliases"] == ["编码", "名称", "事件数"]


def test_values_may_come_from_a_url():
    m = maps.base_map()
    layer = area_layer(
        URL, name="x", values="/api/maps/stats?level=grid", style_property="count", colours={}
    ).add_to(m)
    _, options = options_in(rendered(m), layer)
    assert options["valuesUrl"] == "/api/maps/stats?level=grid" and options["values"] is None


def test_a_url_with_a_zoom_is_passed_as_given():
    m = maps.base_map()
    layer = area_layer(URL + "?z=10&within=370705", name="x").add_to(m)
    url, _ = options_in(rendered(m), layer)
    assert url == URL + "?z=10&within=370705"


def test_values_in_the_page_cannot_close_the_script():
    m = maps.base_map()
    layer = area_layer(URL, name="x", values={"1": {"note": "</script><b>"}}).add_to(m)
    html = rendered(m)
    assert "</script><b>" not in html
    assert options_in(html, layer)[1]["values"] == {"1": {"note": "</script><b>"}}


def test_a_frame_gives_an_inline_layer_with_tooltip_and_colours():
    values = {"370705001001001": {"count": 12}, "370705001001002": {"count": 3}}
    group = area_layer(
        grids(),
        name="事件数",
        values=values,
        style_property="count",
        colours=[(0, "#ffffcc"), (10, "#bd0026")],
        tooltip=("code", "name", "count"),
    )
    assert isinstance(group, folium.FeatureGroup) and group.layer_name == "事件数"
    (layer,) = [c for c in group._children.values() if isinstance(c, folium.GeoJson)]
    (tooltip,) = [c for c in layer._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    assert tooltip.fields == ["code", "name", "count"]
    assert tooltip.aliases == ["编码", "名称", "count"]
    fills = {
        f["properties"]["code"]: layer.style_function(f)["fillColor"]
        for f in layer.data["features"]
    }
    assert fills == {
        "370705001001001": "#bd0026",
        "370705001001002": "#ffffcc",
        "370705002001001": MISSING_COLOUR,
        "370705002001002": MISSING_COLOUR,
    }


def test_inline_names_are_escaped():
    areas = grids().copy()
    areas.loc[areas.index[0], "name"] = "<img src=x onerror=alert(1)>"
    group = area_layer(areas, name="x")
    (layer,) = [c for c in group._children.values() if isinstance(c, folium.GeoJson)]
    names = [f["properties"]["name"] for f in layer.data["features"]]
    assert "&lt;img src=x onerror=alert(1)&gt;" in names


def test_an_inline_layer_can_wait_for_a_zoom():
    m = maps.base_map()
    group = area_layer(grids(), name="网格", min_zoom=13).add_to(m)
    html = rendered(m)
    assert re.search(rf"\({m.get_name()}, {group.get_name()}, 13\)", html)


def test_categories_colour_by_value():
    assert colour_for("high", {"high": "#f00", "low": "#00f"}) == "#f00"
    assert colour_for("none", {"high": "#f00"}) == MISSING_COLOUR
    assert colour_for(None, [(0, "#fff")]) == MISSING_COLOUR
    assert colour_for(7, [(0, "#a"), (5, "#b"), (10, "#c")]) == "#b"
    assert colour_for(-1, [(0, "#a")]) == MISSING_COLOUR


def test_bad_colour_rules_are_refused():
    with pytest.raises(TypeError):
        area_layer(URL, name="x", style_property="count")
    with pytest.raises(TypeError):
        area_layer(URL, name="x", colours={"a": "#fff"})
    with pytest.raises(ValueError):
        area_layer(URL, name="x", style_property="n", colours=[(5, "#a"), (0, "#b")])


def test_zoom_buckets():
    assert [zoom_bucket(z) for z in (0, 6, 7, 8, 11.5, 12, 17, 18, 22)] == [
        6,
        6,
        6,
        8,
        10,
        12,
        16,
        18,
        18,
    ]


def test_the_layer_survives_offline_and_map_parts():
    m = maps.base_map()
    area_layer(URL, name="x").add_to(m)
    parts = maps.map_parts(maps.offline(m, lambda path: f"/vendor/{path}"))
    assert "new GeogridAreas(" in parts.script
