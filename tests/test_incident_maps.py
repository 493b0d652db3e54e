"""The incident map builders, inspected without a browser: layers, legends, tooltips, colours."""

from __future__ import annotations

import folium
import geopandas as gpd
import pytest
import shapely
from factories import tiny_city

from geogrid import incident_maps, maps
from geogrid.crs import wgs84_to_gcj02
from geogrid.errors import ConfigError
from geogrid.incident_maps import (
    DUPLICATE_COLOUR,
    GRID_COLOUR,
    INCIDENT_COLOUR,
    PointPicker,
    filing_map,
    incident_map,
    map_coord_type,
)

G1 = "370705001001001"
POINT = shapely.Point(119.005, 36.71)


def children_of(element, kind):
    return [child for child in element._children.values() if isinstance(child, kind)]


def groups_of(m):
    return {group.layer_name: group for group in children_of(m, folium.FeatureGroup)}


def grids(*codes):
    city = tiny_city()
    return city[city["code"].isin(codes)][["code", "name", "geometry"]]


def duplicates():
    return gpd.GeoDataFrame(
        {
            "incident_id": [12, 13],
            "category_name": ["环境卫生", "环境卫生"],
            "state": ["已受理", "已上报"],
            "distance_m": [35.2, None],
            "url": ["/incidents/12", "/incidents/13"],
        },
        # Incident 13 was filed by grid: it has no point to draw.
        geometry=[shapely.Point(119.0053, 36.7101), None],
        crs="EPSG:4490",
    )


def tooltip_text(marker):
    (tooltip,) = children_of(marker, folium.Tooltip)
    return tooltip.text


def legend_of(m):
    (legend,) = children_of(m, maps.Legend)
    return legend


def test_the_incident_its_grid_and_its_duplicates_are_layers():
    m = incident_map(POINT, grids(G1), duplicates=duplicates(), incident_label="#11 环境卫生")
    layers = groups_of(m)
    assert list(layers) == ["网格", "可能重复的事件", "事件"]
    # The grid: code and name on hover, in the grid colour.
    (grid,) = children_of(layers["网格"], folium.GeoJson)
    (tooltip,) = children_of(grid, folium.GeoJsonTooltip)
    assert (tooltip.fields, tooltip.aliases) == (["code", "name"], ["编码", "名称"])
    assert [f["properties"]["code"] for f in grid.data["features"]] == [G1]
    assert grid.style_function(None)["color"] == GRID_COLOUR
    # The incident: a point in Leaflet's lat, lon order.
    (point,) = children_of(layers["事件"], folium.CircleMarker)
    assert point.location == [36.71, 119.005]
    assert point.options["color"] == INCIDENT_COLOUR
    assert tooltip_text(point) == "#11 环境卫生"
    # Duplicates with a point only; each says which, how far, and links to it.
    (duplicate,) = children_of(layers["可能重复的事件"], folium.CircleMarker)
    assert duplicate.options["color"] == DUPLICATE_COLOUR
    assert tooltip_text(duplicate) == "#12 环境卫生 · 已受理 · 35 m"
    (popup,) = children_of(duplicate, folium.Popup)
    assert 'href="/incidents/12"' in popup.html.render()
    assert len(children_of(m, folium.LayerControl)) == 1


def test_the_legend_names_each_layer_with_its_count():
    m = incident_map(POINT, grids(G1), duplicates=duplicates())
    html = legend_of(m).html
    assert "<h4>图例</h4>" in html
    assert "网格 (1)" in html and "可能重复的事件 (1)" in html and "事件 (1)" in html
    assert INCIDENT_COLOUR in html and DUPLICATE_COLOUR in html


def test_the_view_fits_the_grid_and_the_point():
    m = incident_map(shapely.Point(119.012, 36.715), grids(G1))
    (fit,) = children_of(m, folium.FitBounds)
    (south, west), (north, east) = fit.bounds
    assert (south, west) == pytest.approx((36.70, 119.00))
    # The point's margin reaches past the grid's east edge (119.01).
    assert north == pytest.approx(36.72) and east == pytest.approx(119.015)


def test_a_grid_filed_incident_shows_its_grid_point_as_approximate():
    point = grids(G1).geometry.iloc[0].representative_point()
    m = incident_map(point, grids(G1), approximate=True, language="en")
    layers = groups_of(m)
    assert list(layers) == ["Grid", "Grid's representative point (filed by grid)"]
    (marker,) = children_of(
        layers["Grid's representative point (filed by grid)"], folium.CircleMarker
    )
    assert marker.options["dashArray"] == "4 4" and marker.options["fillOpacity"] < 0.5


def test_an_incident_outside_every_grid_still_draws():
    m = incident_map(shapely.Point(118.99, 36.69), grids(), duplicates=None)
    assert list(groups_of(m)) == ["事件"]
    assert "事件 (1)" in legend_of(m).html


def test_text_in_tooltips_is_escaped():
    hostile = duplicates().assign(category_name="<script>x</script>")
    m = incident_map(POINT, grids(G1), duplicates=hostile, incident_label="<b>#1</b>")
    (point,) = children_of(groups_of(m)["事件"], folium.CircleMarker)
    assert tooltip_text(point) == "&lt;b&gt;#1&lt;/b&gt;"
    (duplicate,) = children_of(groups_of(m)["可能重复的事件"], folium.CircleMarker)
    assert "<script>" not in tooltip_text(duplicate)


def test_on_gcj02_tiles_everything_is_shifted_onto_the_tiles():
    m = incident_map(POINT, grids(G1), coord_type="gcj02")
    (point,) = children_of(groups_of(m)["事件"], folium.CircleMarker)
    lon, lat = wgs84_to_gcj02(119.005, 36.71)
    assert point.location == pytest.approx([lat, lon])
    (grid,) = children_of(groups_of(m)["网格"], folium.GeoJson)
    west = min(x for x, _ in grid.data["features"][0]["geometry"]["coordinates"][0])
    assert west == pytest.approx(wgs84_to_gcj02(119.0, 36.70)[0], abs=1e-4)


def test_builders_compose_on_one_map():
    m = maps.grid_map(tiny_city(), levels=["county", "grid"])
    incident_map(POINT, grids(G1), m=m)
    assert len(children_of(m, folium.LayerControl)) == 1
    assert "事件" in groups_of(m) and "区县" in groups_of(m)


def test_the_filing_map_draws_the_grids_and_records_a_click():
    m = filing_map(
        grids(G1, "370705001001002"), grid_field="grid_code", status_element="location-text"
    )
    (group,) = children_of(m, folium.FeatureGroup)
    assert group.layer_name == "可选网格"
    (grid,) = children_of(group, folium.GeoJson)
    assert {f["properties"]["name"] for f in grid.data["features"]} == {
        "东关第1网格",
        "东关第2网格",
    }
    (picker,) = children_of(m, PointPicker)
    assert (picker.lon_field, picker.lat_field, picker.grid_field) == ("lon", "lat", "grid_code")
    assert picker.style["interactive"] is False  # the marker never swallows the next click
    script = maps.map_parts(maps.offline(m, lambda path: f"/vendor/{path}")).script
    assert 'map.on("click"' in script and 'byId("lon")' in script
    assert "lon.value = latlng.lng.toFixed(7)" in script
    assert "可选网格 (2)" in legend_of(m).html
    assert legend_of(m).html.endswith("所选位置</div>")  # a key, not a count


def test_a_filing_map_with_no_grids_still_renders():
    m = filing_map(grids())
    assert children_of(m, folium.FeatureGroup) == []
    maps.map_parts(maps.offline(m, lambda path: f"/vendor/{path}"))


def test_a_filing_map_of_grids_from_a_url_needs_unshifted_tiles():
    with pytest.raises(ConfigError):
        filing_map(
            "/layers/areas?level=grid", coord_type="gcj02", bounds=(119, 36.7, 119.04, 36.72)
        )
    pytest.importorskip("geogrid.maplayers")
    m = filing_map("/layers/areas?level=grid", bounds=(119, 36.7, 119.04, 36.72))
    (fit,) = children_of(m, folium.FitBounds)
    assert fit.bounds == [[36.7, 119], [36.72, 119.04]]


@pytest.mark.parametrize(
    ("tiles", "declared", "expected"),
    [
        ("none", "", "cgcs2000"),
        ("", "", "cgcs2000"),
        ("tianditu:abc123", "", "cgcs2000"),
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "", "wgs84"),
        ("https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=8", "", "gcj02"),
        ("https://tiles.example.org/{z}/{x}/{y}.png", "GCJ02", "gcj02"),
        ("https://webrd01.is.autonavi.com/{z}/{x}/{y}", "wgs84", "wgs84"),
    ],
)
def test_the_clicked_point_is_in_the_tiles_coordinate_type(tiles, declared, expected):
    assert map_coord_type(tiles, declared) == expected


@pytest.mark.parametrize("declared", ["bd09", "EPSG:3857", "mars"])
def test_tiles_leaflet_cannot_show_are_a_config_error(declared):
    with pytest.raises(ConfigError) as caught:
        map_coord_type("none", declared)
    assert caught.value.field == "GEOGRID_TILES_COORD_TYPE"


def test_labels_fall_back_to_the_shared_map_labels():
    assert incident_maps.map_label("code", "en") == "Code"
    assert incident_maps.map_label("duplicates", "en") == "Possible duplicates"
