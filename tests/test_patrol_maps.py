"""The patrol map builders, by inspecting the folium.Map they return: layers, legends, tooltips,
colours. The grids are the tiny city's four; T1 works G1 and G2, T2 works G3.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geogrid import patrol_maps
from geogrid.maps import Legend
from tests.factories import tiny_city

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
#: 09:00 Shanghai time on Monday 2 March 2026.
NINE = datetime(2026, 3, 2, 1, tzinfo=UTC).timestamp()


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    city = tiny_city()
    return city[city["level"] == "grid"][["code", "name", "geometry"]].reset_index(drop=True)


def assignments(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["grid_code", "team_mark", "shift"])


def layers(m: folium.Map) -> dict[str, folium.FeatureGroup]:
    return {
        child.layer_name: child
        for child in m._children.values()
        if isinstance(child, folium.FeatureGroup)
    }


def legends(m: folium.Map) -> dict[str, list[tuple[str, str, int]]]:
    """Each legend's rows as (label, fill or line colour, count)."""
    return {
        child.title: [
            (text, style.get("fillColor", style["color"]), n) for text, style, n in child.entries
        ]
        for child in m._children.values()
        if isinstance(child, Legend)
    }


def geojson(group: folium.FeatureGroup, index: int = 0) -> folium.GeoJson:
    return [c for c in group._children.values() if isinstance(c, folium.GeoJson)][index]


def fills(layer: folium.GeoJson) -> dict[str, str]:
    """Each feature's fill colour by grid code."""
    return {
        feature["properties"]["code"]: layer.style_function(feature)["fillColor"]
        for feature in layer.data["features"]
    }


def tooltip(layer: folium.GeoJson) -> tuple[list[str], list[str]]:
    (found,) = [c for c in layer._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    return found.fields, found.aliases


def control_is_last(m: folium.Map) -> bool:
    children = list(m._children.values())
    controls = [c for c in children if isinstance(c, folium.LayerControl)]
    return len(controls) == 1 and children[-1] is controls[0]


def test_assignments_are_coloured_by_team_with_a_legend_and_tooltips(grids):
    given = assignments(
        (G1, "T1", "daily 08:00–20:00"), (G2, "T1", "daily 08:00–20:00"), (G3, "T2", "daily")
    )
    m = patrol_maps.assignment_map(grids, given)
    layer = geojson(layers(m)["责任网格（按巡防队）"])
    colours = patrol_maps.team_colours(["T1", "T2"])
    assert fills(layer) == {G1: colours["T1"], G2: colours["T1"], G3: colours["T2"], G4: "#cccccc"}
    assert tooltip(layer) == (
        ["code", "name", "teams", "shifts"],
        ["编码", "名称", "巡防队", "班次"],
    )
    assert legends(m)["责任网格（按巡防队）"] == [
        ("T1", colours["T1"], 2),
        ("T2", colours["T2"], 1),
        ("未分配", "#cccccc", 1),
    ]
    assert control_is_last(m)
    # Fitted to the grids, in Leaflet's lat, lon order.
    fit = [c for c in m._children.values() if isinstance(c, folium.map.FitBounds)][0]
    assert fit.bounds == [[36.70, 119.00], [36.72, 119.04]]


def test_assignments_by_shift_give_a_grid_with_two_shifts_its_own_colour(grids):
    given = assignments(
        (G1, "T1", "08:00–12:00"), (G1, "T1", "20:00–08:00"), (G2, "T1", "08:00–12:00")
    )
    m = patrol_maps.assignment_map(grids, given, colour_by="shift", language="en")
    rows = legends(m)["Assigned grids (by shift)"]
    assert [(label, n) for label, _, n in rows] == [
        ("08:00–12:00", 1),
        ("08:00–12:00 + 20:00–08:00", 1),
        ("Not assigned", 2),
    ]
    with pytest.raises(ValueError):
        patrol_maps.assignment_map(grids, given, colour_by="grid")


def test_builders_compose_on_one_map_with_one_layer_control_last(grids):
    m = patrol_maps.assignment_map(grids, assignments((G1, "T1", "daily")))
    visits = pd.DataFrame(
        [(G1, "visited", 2, 14.0), (G2, "not_visited", 0, 0.0), (G3, "off_shift", 0, 0.0)],
        columns=["grid_code", "status", "visits", "minutes_inside"],
    )
    same = patrol_maps.visit_map(grids, visits, show=False, m=m, fit=False)
    assert same is m
    assert list(layers(m)) == ["责任网格（按巡防队）", "本班次巡查情况"]
    assert layers(m)["本班次巡查情况"].show is False
    assert control_is_last(m)
    layer = geojson(layers(m)["本班次巡查情况"])
    assert fills(layer) == {G1: "#2a9d4b", G2: "#d7301f", G3: "#bdbdbd", G4: "#cccccc"}
    assert legends(m)["本班次巡查情况"] == [
        ("已巡查", "#2a9d4b", 1),
        ("未巡查", "#d7301f", 1),
        ("当前不在班次", "#bdbdbd", 1),
    ]
    status = {f["properties"]["code"]: f["properties"]["status"] for f in layer.data["features"]}
    assert status[G1] == "已巡查"
    html = m.get_root().render()  # every layer renders
    # The hidden layer's legend is hidden with it, and shown when the layer is ticked.
    hidden = layers(m)["本班次巡查情况"].get_name()
    assert re.search(rf"overlayadd overlayremove.*?\}}\)\(\s*map_\w+,\s*{hidden},", html, re.S)


def test_coverage_is_a_choropleth_of_minutes_summed_over_shifts(grids):
    shifts = pd.DataFrame(
        {
            "grid_code": [G1, G1, G2, G3],
            "visits": [1, 2, 0, 1],
            "minutes_inside": [20.0, 15.0, 0.0, np.nan],
            "reach_share": [0.4, 0.6, 0.0, np.nan],
        }
    )
    m = patrol_maps.coverage_map(grids, shifts)
    layer = geojson(layers(m)["实测覆盖：网格内分钟数"])
    # G1: 35 minutes (>= 30), G2: 0, G3 measured nothing (its grid unknown then), G4 no shift.
    assert fills(layer) == {G1: "#74c476", G2: "#edf8e9", G3: "#cccccc", G4: "#cccccc"}
    props = {f["properties"]["code"]: f["properties"] for f in layer.data["features"]}
    assert (props[G1]["minutes"], props[G1]["visits"], props[G1]["share"]) == ("35.0", "3", "50%")
    rows = legends(m)["实测覆盖：网格内分钟数"]
    assert [n for _, _, n in rows] == [1, 0, 1, 0, 0, 2]
    assert rows[1][0] == "≥ 10 分钟" and rows[-1][0] == "无班次"

    share = patrol_maps.coverage_map(grids, shifts, measure="reach_share", language="en")
    layer = geojson(layers(share)["Measured coverage: share of area"])
    assert fills(layer)[G1] == "#74c476"  # a mean of 50%
    with pytest.raises(ValueError):
        patrol_maps.coverage_map(grids, shifts, measure="visits")


def test_gaps_are_drawn_alone_darker_for_a_higher_score(grids):
    gaps = pd.DataFrame(
        {
            "rank": [1, 2],
            "grid_code": [G3, G2],
            "risk": [12.0, 3.0],
            "shortfall": [1.0, 0.5],
            "score": [12.0, 1.5],
        }
    )
    m = patrol_maps.gap_layer(grids, gaps)
    layer = geojson(layers(m)["防范盲区（高风险、巡查不足）"])
    assert fills(layer) == {G3: "#cb181d", G2: "#fcae91"}
    assert layer.style_function(layer.data["features"][0])["dashArray"] == "6 4"
    props = {f["properties"]["code"]: f["properties"] for f in layer.data["features"]}
    assert (props[G3]["rank"], props[G3]["shortfall"]) == ("1", "100%")
    assert [n for _, _, n in legends(m)["防范盲区（高风险、巡查不足）"]] == [1, 0, 1]

    none = patrol_maps.gap_layer(grids, gaps.iloc[:0])
    assert "防范盲区（高风险、巡查不足）" in layers(none) and legends(none) == {}
    none.get_root().render()


def track_frame(*tracks: tuple[int, str, list[tuple[float, float, float]]]) -> gpd.GeoDataFrame:
    """Tracks as :func:`geogrid.tracks.tracks_frame` gives them: LineStringM, time as M."""
    rows = []
    for track_id, mark, fixes in tracks:
        t = np.array([fix[2] for fix in fixes])
        line = shapely.from_wkt(
            "LINESTRING M (" + ", ".join(f"{x} {y} {m}" for x, y, m in fixes) + ")"
        )
        rows.append(
            {
                "track_id": track_id,
                "team_mark": mark,
                "started_at": datetime.fromtimestamp(t.min(), UTC),
                "ended_at": datetime.fromtimestamp(t.max(), UTC),
                "point_count": len(fixes),
                "geometry": line,
            }
        )
    columns = ["track_id", "team_mark", "started_at", "ended_at", "point_count", "geometry"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry="geometry", crs=4490)


def test_tracks_are_lines_with_their_times_and_a_dot_every_ten_minutes():
    walk = [(119.002 + 0.0003 * i, 36.705, NINE + 60 * i) for i in range(25)]  # 09:00-09:24
    m = patrol_maps.track_layer(track_frame((7, "T1", walk)), colours={"T1": "#123456"})
    group = layers(m)["巡逻轨迹"]
    lines, ticks = geojson(group, 0), geojson(group, 1)
    (feature,) = lines.data["features"]
    assert feature["geometry"]["type"] == "LineString"
    assert len(feature["geometry"]["coordinates"][0]) == 2  # time is not drawn as a height
    props = feature["properties"]
    assert (props["track"], props["started"], props["ended"], props["fixes"]) == (
        "7",
        "2026-03-02 09:00",
        "09:24",
        25,
    )
    assert lines.style_function(feature)["color"] == "#123456"
    assert [f["properties"]["time"] for f in ticks.data["features"]] == ["09:00", "09:10", "09:20"]
    assert tooltip(lines)[1] == ["轨迹", "巡防队", "开始", "结束", "定位点"]
    assert legends(m)["巡逻轨迹"] == [("T1", "#123456", 1)]


def test_no_tracks_still_make_a_layer(grids):
    empty = track_frame()
    m = patrol_maps.track_layer(empty, m=patrol_maps.assignment_map(grids, assignments()))
    assert "巡逻轨迹" in layers(m) and "巡逻轨迹" not in legends(m)
    m.get_root().render()


def test_leads_are_dots_by_status_with_the_note_escaped():
    leads = pd.DataFrame(
        {
            "lead_id": [1, 2],
            "lon": [119.005, 119.025],
            "lat": [36.71, 36.71],
            "category": ["public_order", "safety_hazard"],
            "status": ["new", "verified"],
            "at": [datetime(2026, 3, 2, 1, 30, tzinfo=UTC)] * 2,
            "grid_code": [G1, None],
            "note": ['<img src=x onerror="alert(1)">', "井盖缺失"],
        }
    )
    m = patrol_maps.lead_layer(leads, language="en")
    layer = geojson(layers(m)["Leads"])
    first, second = layer.data["features"]
    assert first["properties"]["note"].startswith("&lt;img")
    assert (first["properties"]["status"], first["properties"]["time"]) == (
        "New",
        "2026-03-02 09:30",
    )
    assert second["properties"]["grid"] == ""
    assert layer.style_function(first)["fillColor"] == "#d7301f"
    assert isinstance(layer.marker, folium.CircleMarker)
    assert legends(m)["Leads"] == [("New", "#d7301f", 1), ("Verified", "#ef8a17", 1)]


def test_a_proposal_shows_teams_and_what_changes(grids):
    proposal = pd.DataFrame(
        [("T1", G1, "locked"), ("T1", G2, "added"), ("T2", G3, "kept"), ("T2", G4, "added")],
        columns=["team_mark", "grid_code", "change"],
    )
    removed = pd.DataFrame([("T2", G2)], columns=["team_mark", "grid_code"])
    colours = {"T1": "#111111", "T2": "#222222"}
    m = patrol_maps.proposal_map(grids, proposal, removed, colours=colours)
    assert list(layers(m)) == ["优化方案（按巡防队）", "方案变化"]
    teams = geojson(layers(m)["优化方案（按巡防队）"])
    assert fills(teams) == {G1: "#111111", G2: "#111111", G3: "#222222", G4: "#222222"}
    changes = geojson(layers(m)["方案变化"])
    strokes = {
        f["properties"]["code"]: (
            changes.style_function(f)["color"],
            changes.style_function(f)["weight"],
        )
        for f in changes.data["features"]
    }
    assert strokes == {
        G1: ("#6a3d9a", 4),
        G2: ("#ef8a17", 4),
        G3: ("#57606a", 1),
        G4: ("#ef8a17", 4),
    }
    assert all(changes.style_function(f)["fillOpacity"] == 0 for f in changes.data["features"])
    props = {f["properties"]["code"]: f["properties"] for f in changes.data["features"]}
    assert (props[G2]["now"], props[G2]["proposed"], props[G2]["status"]) == ("T2", "T1", "新增")
    assert props[G4]["now"] == "-"
    assert legends(m)["方案变化"] == [
        ("新增", "#ef8a17", 2),
        ("保持", "#57606a", 1),
        ("锁定保留", "#6a3d9a", 1),
    ]
    assert control_is_last(m)


def test_team_colours_are_stable_and_distinct_for_many_teams():
    marks = [f"PA-370705-{i:04d}" for i in range(40)]
    colours = patrol_maps.team_colours(reversed(marks))
    assert list(colours) == marks  # sorted, so every map of a page agrees
    assert len(set(colours.values())) == 40
    assert colours == patrol_maps.team_colours(marks)


@pytest.mark.parametrize(
    ("days", "language", "words"),
    [
        ("daily", "zh_CN", "每天 08:00–20:00"),
        ("mon-fri", "zh_CN", "周一至周五 08:00–20:00"),
        ("mon,wed,sat", "zh_CN", "周一、周三、周六 08:00–20:00"),
        ("sat,sun", "en", "Sat, Sun 08:00–20:00"),
        ("daily", "en", "Daily 08:00–20:00"),
    ],
)
def test_shift_patterns_in_words(days, language, words):
    assert patrol_maps.shift_text(days, "08:00", "20:00", language) == words
