"""Planner map builders, inspected as Folium objects: layers, legends, tooltips, colours."""

from __future__ import annotations

import json

import folium
import pandas as pd
import pytest
import shapely
from factories import tiny_city
from geometries import NW, SE, SW, boundary_set, local_point, lonlat
from shapely import box

from geogrid.maps import Legend, map_parts, offline
from geogrid.planner_maps import (
    CHANGE_COLOURS,
    CHECK_COLOURS,
    NEW_SIDE,
    OLD_SIDE,
    MapTitle,
    change_frame,
    comparison_map,
    generation_map,
    issue_shapes,
    planner_label,
    side_by_side,
    validation_layer,
)

LEVELS = ["county", "township", "community", "grid"]


def children(element, kind):
    return [child for child in element._children.values() if isinstance(child, kind)]


def geojsons(m: folium.Map) -> dict[str, folium.GeoJson]:
    """Every GeoJson layer of the map, by the name of its group."""
    found = {}
    for group in children(m, folium.FeatureGroup):
        for layer in children(group, folium.GeoJson):
            found[group.layer_name] = layer
    return found


def tooltip_fields(layer: folium.GeoJson) -> list[str]:
    (tooltip,) = children(layer, folium.GeoJsonTooltip)
    return tooltip.fields


def legend_text(m: folium.Map) -> str:
    return " ".join(legend.html for legend in children(m, Legend))


def last_child(m: folium.Map):
    return list(m._children.values())[-1]


# -- change_frame ------------------------------------------------------------------------


def test_changes_are_told_by_code_and_row():
    old = pd.DataFrame({"code": ["a", "b", "c"], "id": [1, 2, 3]})
    new = pd.DataFrame({"code": ["a", "b", "d"], "id": [1, 5, 6]})
    changes = change_frame(old, new)
    assert dict(zip(changes["code"], changes["change"], strict=True)) == {
        "a": "unchanged",  # the same row spans both generations
        "b": "redrawn",  # the same code on a new row
        "c": "removed",
        "d": "added",
    }


def test_no_areas_no_changes():
    empty = pd.DataFrame({"code": [], "id": []})
    assert change_frame(empty, empty).empty


# -- a generation and its issues --------------------------------------------------------


def test_the_generation_map_has_a_layer_per_level_and_the_control_last():
    m = generation_map(tiny_city(), levels=LEVELS, language="en")
    assert list(geojsons(m)) == ["Grid", "Community", "Township", "County"]
    grid = geojsons(m)["Grid"]
    assert tooltip_fields(grid) == ["code", "name"]
    assert isinstance(last_child(m), folium.LayerControl)
    assert "Grid (4)" in legend_text(m)


def quadrant_city():
    """A community (code ...001) of four grids, the north-east one also overlapping SE."""
    overlapping_ne = box(100, 50, 200, 200)  # reaches 50 m into SE
    return boundary_set(
        [
            ("370705001001", "community", box(0, 0, 200, 200)),
            ("370705001001001", "grid", SW, 320),
            ("370705001001002", "grid", SE, 280),
            ("370705001001003", "grid", NW, 300),
            ("370705001001004", "grid", overlapping_ne, 900),
        ]
    )


def issues():
    gap_at = local_point(150, 10)
    return [
        {
            "severity": "error",
            "check": "overlap",
            "code": "370705001001002",
            "related_code": "370705001001004",
            "message": "The grids 370705001001002 and 370705001001004 overlap by 5000.0 m²",
            "location": list(local_point(150, 75)),
        },
        {
            "severity": "error",
            "check": "gap",
            "code": "370705001001",
            "related_code": None,
            "message": "a gap <b>here</b>",
            "location": list(gap_at),
        },
        {
            "severity": "warning",
            "check": "households_range",
            "code": "370705001001004",
            "related_code": None,
            "message": "900 households",
            "location": None,
        },
        # Nothing to draw: no location and no area of that code.
        {"severity": "error", "check": "geometry_empty", "code": None, "message": "no boundary"},
    ]


def test_issue_shapes_are_the_overlap_the_outline_and_the_place():
    areas = quadrant_city()
    shapes = issue_shapes(issues(), areas)
    overlap = shapes[(shapes["check"] == "overlap") & (shapes["shape"] == "region")]
    expected = shapely.intersection(lonlat(SE), lonlat(box(100, 50, 200, 200)))
    assert len(overlap) == 1
    assert overlap.geometry.iloc[0].area == pytest.approx(expected.area, rel=1e-6)
    # The gap is in the community; its place is the reported location.
    gap_place = shapes[(shapes["check"] == "gap") & (shapes["shape"] == "place")].geometry.iloc[0]
    assert (gap_place.x, gap_place.y) == pytest.approx(local_point(150, 10))
    # A warning with no location is placed inside the area it names.
    sizing = shapes[shapes["check"] == "households_range"]
    assert set(sizing["shape"]) == {"outline", "place"}
    place = sizing[sizing["shape"] == "place"].geometry.iloc[0]
    assert lonlat(box(100, 50, 200, 200)).contains(place)
    assert "geometry_empty" not in set(shapes["check"])


def test_the_validation_layer_colours_by_check_with_a_legend_and_tooltips():
    m = validation_layer(issues(), quadrant_city(), language="en")
    layers = geojsons(m)
    assert set(layers) == {"Overlap (1)", "Gap (1)", "Households out of range (1)"}
    overlap = layers["Overlap (1)"]
    assert tooltip_fields(overlap) == ["check_label", "code", "name", "message"]
    features = overlap.data["features"]
    styles = [overlap.style_function(feature) for feature in features]
    assert {s["color"] for s in styles} == {CHECK_COLOURS["overlap"]}
    shapes = [feature["properties"]["shape"] for feature in features]
    region = styles[shapes.index("region")]
    assert region["fill"] and region["fillOpacity"] > 0.5
    assert features[0]["properties"]["name"] == "area 370705001001002"
    # Messages go into the tooltip's HTML, so they are escaped.
    gap = layers["Gap (1)"].data["features"][0]["properties"]
    assert gap["message"] == "a gap &lt;b&gt;here&lt;/b&gt;"
    # Warnings are dashed.
    sizing = layers["Households out of range (1)"]
    assert all(sizing.style_function(f)["dashArray"] for f in sizing.data["features"])
    legend = legend_text(m)
    assert "Overlap (1)" in legend and "Gap (1)" in legend and CHECK_COLOURS["gap"] in legend
    assert isinstance(last_child(m), folium.LayerControl)


def test_issues_compose_over_the_generation_with_one_control_last():
    areas = quadrant_city()
    m = generation_map(areas, levels=["community", "grid"], language="zh_CN")
    validation_layer(issues(), areas, m=m, language="zh_CN", fit=False)
    assert len(children(m, folium.LayerControl)) == 1
    assert isinstance(last_child(m), folium.LayerControl)
    assert {"网格", "社区/村", "重叠 (1)", "缝隙 (1)"} <= set(geojsons(m))
    assert len(children(m, Legend)) == 2


def test_an_empty_report_draws_nothing():
    m = validation_layer([], quadrant_city().iloc[:0])
    assert geojsons(m) == {} and children(m, Legend) == []


# -- two generations compared ------------------------------------------------------------


def redrawn_grids():
    old = tiny_city().query("level == 'grid'").copy()
    old["id"] = [1, 2, 3, 4]
    new = old.copy()
    new.loc[new["code"] == "370705001001001", ["id", "geometry"]] = [
        5,
        box(119.00, 36.70, 119.015, 36.72),
    ]
    new = new[new["code"] != "370705002001002"]
    return old, new


def features_by_code(layer_group) -> dict[str, tuple[dict, dict]]:
    (layer,) = children(layer_group, folium.GeoJson)
    return {
        f["properties"]["code"]: (f["properties"], layer.style_function(f))
        for f in layer.data["features"]
    }


def test_each_side_colours_its_areas_by_change():
    old, new = redrawn_grids()
    changes = change_frame(old[["code", "id"]], new[["code", "id"]])
    left = comparison_map(old, changes, title="Generation 1", side=OLD_SIDE, language="en")
    right = comparison_map(new, changes, title="Generation 2", side=NEW_SIDE, language="en")
    before = features_by_code(children(left, folium.FeatureGroup)[0])
    after = features_by_code(children(right, folium.FeatureGroup)[0])
    assert before["370705002001002"][1]["fillColor"] == CHANGE_COLOURS["removed"]
    assert before["370705001001001"][1]["fillColor"] == CHANGE_COLOURS["redrawn"]
    assert after["370705001001001"][0]["change_label"] == "Redrawn"
    assert after["370705001001002"][1]["fillColor"] == CHANGE_COLOURS["unchanged"]
    assert "370705002001002" not in after
    (layer,) = children(children(right, folium.FeatureGroup)[0], folium.GeoJson)
    assert tooltip_fields(layer) == ["code", "name", "change_label"]
    assert "Removed (1)" in legend_text(left) and "Added" not in legend_text(left)
    assert "Added (0)" in legend_text(right) and "Unchanged (2)" in legend_text(right)
    assert [t.text for t in children(right, MapTitle)] == ["Generation 2"]
    assert isinstance(last_child(right), folium.LayerControl)


def test_side_by_side_maps_share_one_page_and_move_together():
    old, new = redrawn_grids()
    changes = change_frame(old[["code", "id"]], new[["code", "id"]])
    bounds = tuple(pd.concat([old.geometry, new.geometry]).total_bounds)
    left = comparison_map(old, changes, title="1", side=OLD_SIDE, bounds=bounds)
    right = comparison_map(new, changes, title="2", side=NEW_SIDE, bounds=bounds)
    side_by_side(left, right)
    parts = map_parts(offline(left, lambda path: f"/vendor/{path}"))
    assert parts.html.index(left.get_name()) < parts.html.index(right.get_name())
    assert parts.header.count("leaflet.js") == 1  # Leaflet loaded once for both
    sync = parts.script[parts.script.index("geogridSynchronised") - 600 :]
    assert f"[{left.get_name()}, {right.get_name()}]" in sync
    assert 'source.on("move zoomend"' in parts.script
    # Both maps open on the same view.
    assert parts.script.count(json.dumps([[36.7, 119.0], [36.72, 119.04]])) == 2


def test_words_fall_back_to_the_shared_map_labels():
    assert planner_label("overlap", "zh_CN") == "重叠"
    assert planner_label("grid", "en") == "Grid"
    assert planner_label("unknown_check", "en") == "unknown_check"
