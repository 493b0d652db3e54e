"""The dashboard map builders, checked by inspecting the Folium map they return."""

from __future__ import annotations

import folium
import numpy as np
import pandas as pd
import pytest
from factories import tiny_city
from folium.plugins import HeatMap

from geogrid.dashboard_legend import LayerLegend
from geogrid.dashboard_maps import (
    EMERGING_CATEGORIES,
    HOTSPOT_BINS,
    class_breaks,
    emerging_map,
    fit_to,
    heat_map,
    hotspot_map,
    rate_map,
)
from geogrid.maplayers import RemoteAreas

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"


@pytest.fixture
def grids():
    areas = tiny_city()
    return areas[areas["level"] == "grid"].reset_index(drop=True)


def children(m: folium.Map, kind: type) -> list:
    return [child for child in m._children.values() if isinstance(child, kind)]


def geojson_of(layer: folium.FeatureGroup) -> folium.GeoJson:
    (found,) = [child for child in layer._children.values() if isinstance(child, folium.GeoJson)]
    return found


def fills(layer: folium.FeatureGroup) -> dict[str, str]:
    """The fill colour each area is drawn with, by code."""
    geojson = geojson_of(layer)
    return {
        feature["properties"]["code"]: geojson.style_function(feature)["fillColor"]
        for feature in geojson.data["features"]
    }


def tooltip_fields(layer: folium.FeatureGroup) -> list[str]:
    geojson = geojson_of(layer)
    (tooltip,) = [c for c in geojson._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    return list(tooltip.fields)


def legend_for(m: folium.Map, layer) -> LayerLegend:
    (legend,) = [legend for legend in children(m, LayerLegend) if legend.layer is layer]
    return legend


def layer_named(m: folium.Map, name: str):
    (layer,) = [
        child
        for child in m._children.values()
        if isinstance(child, folium.map.Layer) and child.layer_name == name
    ]
    return layer


def test_the_heat_map_holds_every_point_and_says_it_is_a_picture():
    points = pd.DataFrame({"lon": [119.005, 119.015, 119.035], "lat": [36.71] * 3})
    m = heat_map(points, language="en")
    (heat,) = children(m, HeatMap)
    assert heat.layer_name == "Incident heat map"
    assert len(heat.data) == 3
    assert heat.data[0][:2] == [36.71, 119.005]  # Leaflet's lat, lon
    legend = legend_for(m, heat)
    assert "a picture, not a test" in legend.html and "3 incidents" in legend.html
    # The layer control comes last, after every layer it lists.
    assert isinstance(list(m._children.values())[-1], folium.LayerControl)


def test_heat_map_weights_count_as_incidents():
    points = pd.DataFrame({"lon": [119.005, 119.015], "lat": [36.71, 36.71], "weight": [4, 1]})
    m = heat_map(points)
    (heat,) = children(m, HeatMap)
    assert [row[2] for row in heat.data] == [4.0, 1.0]
    assert "5 件事件" in legend_for(m, heat).html


def test_rates_are_classed_and_the_legend_names_the_basis(grids):
    rates = pd.DataFrame(
        {"count": [0, 3, 6, 30], "rate": [0.0, 10.0, 20.0, 100.0]}, index=[G1, G2, G3, G4]
    )
    m = rate_map(grids, rates, basis="households", language="en", show=True, classes=3)
    layer = layer_named(m, "Incident counts and rates")
    assert tooltip_fields(layer) == ["code", "name", "count", "rate"]
    colours = fills(layer)
    assert colours[G1] == "#f0f0f0"  # no incident: its own class
    assert len({colours[G2], colours[G3], colours[G4]}) == 3
    legend = legend_for(m, layer)
    assert legend.title == "Incidents per 1,000 households"
    assert "rate per 1,000 households" in legend.html
    assert [count for _, _, count in legend.entries] == [1, 1, 1, 1]
    assert [text for text, _, _ in legend.entries] == ["0", "10 – 17", "17 – 47", "≥ 47"]


def test_rates_per_km2_and_units_without_a_rate(grids):
    rates = pd.DataFrame(
        {"count": [1, 2, 0, 0], "rate": [1.5, 3.0, 0.0, np.nan]}, index=grids["code"]
    )
    m = rate_map(grids, rates, basis="area")
    layer = layer_named(m, "事件数与发生率")
    assert fills(layer)[G4] == "#cccccc"
    legend = legend_for(m, layer)
    assert legend.title == "每平方公里事件数"
    assert ("无数据", "#cccccc", 1) in legend.entries


def test_hotspots_by_confidence_bin(grids):
    hotspots = pd.DataFrame(
        {
            "count": [12, 9, 1, 0],
            "z": [3.2, 2.1, -0.3, -2.7],
            "p_sim": [0.001, 0.02, 0.6, 0.004],
            "p_fdr": [0.004, 0.04, 0.6, 0.008],
            "bin": [3, 2, 0, -3],
            "label": ["hot_99", "hot_95", "not_significant", "cold_99"],
        },
        index=[G1, G2, G3, G4],
    )
    m = hotspot_map(grids, hotspots, language="en")
    layer = layer_named(m, "Hotspots and coldspots (Gi*)")
    assert tooltip_fields(layer) == ["code", "name", "count", "z", "p", "confidence"]
    assert fills(layer) == {
        G1: HOTSPOT_BINS[3][1],
        G2: HOTSPOT_BINS[2][1],
        G3: HOTSPOT_BINS[0][1],
        G4: HOTSPOT_BINS[-3][1],
    }
    # The tooltip shows the corrected p-value, not the raw one.
    properties = {
        f["properties"]["code"]: f["properties"] for f in geojson_of(layer).data["features"]
    }
    assert (
        properties[G1]["p"] == "0.004"
        and properties[G4]["confidence"] == "Coldspot, 99% confidence"
    )
    legend = legend_for(m, layer)
    assert [text for text, _, _ in legend.entries] == [
        "Hotspot, 99% confidence",
        "Hotspot, 95% confidence",
        "Hotspot, 90% confidence",
        "Not significant",
        "Coldspot, 90% confidence",
        "Coldspot, 95% confidence",
        "Coldspot, 99% confidence",
    ]
    assert [count for _, _, count in legend.entries] == [1, 1, 0, 1, 0, 0, 1]
    assert [colour for _, colour, _ in legend.entries] == [c for _, c in HOTSPOT_BINS.values()]
    assert "FDR" in legend.html


def test_emerging_categories_with_their_legend(grids):
    emerging = pd.DataFrame(
        {
            "category": ["new", "intensifying", "no pattern", "persistent"],
            "trend_tau": [0.1, 0.6, 0.0, 0.05],
            "trend_p": [0.5, 0.01, 1.0, 0.8],
            "slices_hot": [1, 5, 0, 11],
            "last_bin": [3, 2, 0, 2],
        },
        index=[G1, G2, G3, G4],
    )
    m = emerging_map(grids, emerging, slice="week", window="2026-W30 – 2026-W41", language="en")
    layer = layer_named(m, "Emerging hotspots")
    assert layer.show is False  # off until asked for
    assert tooltip_fields(layer) == ["code", "name", "category", "trend", "trend_p", "slices_hot"]
    assert fills(layer)[G2] == EMERGING_CATEGORIES["intensifying"]
    legend = legend_for(m, layer)
    assert len(legend.entries) == len(EMERGING_CATEGORIES)
    assert ("Intensifying hotspot", EMERGING_CATEGORIES["intensifying"], 1) in legend.entries
    assert ("Sporadic hotspot", EMERGING_CATEGORIES["sporadic"], 0) in legend.entries
    assert "weekly slices · 2026-W30 – 2026-W41" in legend.html


def test_the_builders_compose_into_one_map_with_one_layer_control(grids):
    points = pd.DataFrame({"lon": [119.005], "lat": [36.71]})
    rates = pd.DataFrame({"count": [1, 0, 0, 0], "rate": [1.0, 0, 0, 0]}, index=grids["code"])
    hotspots = pd.DataFrame(
        {"count": [1, 0, 0, 0], "z": [1.0, 0, 0, 0], "p_fdr": [0.5] * 4, "bin": [0] * 4},
        index=grids["code"],
    )
    emerging = pd.DataFrame({"category": ["no pattern"] * 4}, index=grids["code"])
    m = heat_map(points, language="en")
    assert rate_map(grids, rates, basis="area", m=m, language="en") is m
    hotspot_map(grids, hotspots, m=m, language="en")
    emerging_map(grids, emerging, m=m, language="en")
    fit_to(m, tuple(grids.total_bounds))
    names = [c.layer_name for c in m._children.values() if isinstance(c, folium.map.Layer)]
    assert names == [
        "Incident heat map",
        "Incident counts and rates",
        "Hotspots and coldspots (Gi*)",
        "Emerging hotspots",
    ]
    (control,) = children(m, folium.LayerControl)
    order = list(m._children.values())
    last_layer = max(i for i, c in enumerate(order) if isinstance(c, folium.map.Layer))
    assert order.index(control) > last_layer
    assert len(children(m, LayerLegend)) == 4
    html = m.get_root().render()
    assert 'map.hasLayer(layer) ? "" : "none"' in html  # legends follow their layers
    assert "[[36.7, 119.0], [36.72, 119.04]]" in html  # fitted in Leaflet's lat, lon order


def test_layers_from_the_layers_endpoint_are_fetched_not_inlined():
    rates = pd.DataFrame({"count": [2], "rate": [4.0]}, index=[G1])
    m = rate_map("/layers/areas?generation=1&level=grid", rates, basis="households", show=True)
    (layer,) = children(m, RemoteAreas)
    assert layer.values == {G1: {"count": 2, "rate": 4.0}}
    assert layer.colour_rule["property"] == "rate"
    assert layer.tooltip_fields == ["code", "name", "count", "rate"]


def test_names_from_files_are_escaped_in_legends():
    layer = folium.FeatureGroup(name="x")
    legend = LayerLegend("<b>t</b>", [("<script>", "#fff", 1)], layer, note="a & b")
    assert "<script>" not in legend.html and "&lt;script&gt; (1)" in legend.html
    assert "a &amp; b" in legend.html


def test_class_breaks_leave_zero_out_and_merge_equal_bounds():
    assert class_breaks(np.array([0.0, 0.0, np.nan])) == []
    assert class_breaks(np.array([0.0, 2.0, 2.0, 2.0])) == [2.0]
    assert class_breaks(np.array([0.0, 2.0, 4.0]), 5) == [2.0, 3.0]  # two values, two classes
    assert class_breaks(np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10.0]), 5) == [
        1.0,
        2.8,
        4.6,
        6.4,
        8.2,
    ]


def test_emerging_values_from_a_url_leave_the_counts_out_of_the_legend():
    m = emerging_map("/layers/grid.geojson", "/dashboard/emerging.json?area=370705", language="en")
    (layer,) = children(m, RemoteAreas)
    assert layer.values == "/dashboard/emerging.json?area=370705"
    assert layer.js_options["valuesUrl"] == "/dashboard/emerging.json?area=370705"
    legend = legend_for(m, layer)
    assert [count for _, _, count in legend.entries] == [None] * len(EMERGING_CATEGORIES)
    assert "(" not in legend.html.split("</h4>")[1].split("<p")[0]
