"""The Folium map builders and the offline asset table, inspected without a browser."""

from __future__ import annotations

import folium
import folium.plugins
import geopandas as gpd
import pytest
import shapely
from branca.element import CssLink, JavascriptLink
from factories import tiny_city

from geogrid import maps
from geogrid.errors import ConfigError

LEVELS = ["county", "township", "community", "grid"]


def local(path: str) -> str:
    return f"/vendor/{path}"


def children_of(element, kind):
    return [child for child in element._children.values() if isinstance(child, kind)]


def geojson_of(group: folium.FeatureGroup) -> folium.GeoJson:
    (layer,) = children_of(group, folium.GeoJson)
    return layer


def tooltip_of(group: folium.FeatureGroup) -> folium.GeoJsonTooltip:
    (tooltip,) = children_of(geojson_of(group), folium.GeoJsonTooltip)
    return tooltip


def test_each_level_is_its_own_layer_with_code_and_name_tooltips():
    m = maps.grid_map(tiny_city(), levels=LEVELS, language="zh_CN")
    groups = children_of(m, folium.FeatureGroup)
    # Finest first, so coarser outlines are painted over it.
    assert [group.layer_name for group in groups] == ["网格", "社区/村", "街道/乡镇", "区县"]
    grid_layer = geojson_of(groups[0])
    assert tooltip_of(groups[0]).fields == ["code", "name"]
    assert tooltip_of(groups[0]).aliases == ["编码", "名称"]
    codes = {f["properties"]["code"] for f in grid_layer.data["features"]}
    assert codes == {"370705001001001", "370705001001002", "370705002001001", "370705002001002"}
    names = {f["properties"]["name"] for f in grid_layer.data["features"]}
    assert "东关第1网格" in names
    assert len(children_of(m, folium.LayerControl)) == 1


def test_tooltip_names_are_escaped_html():
    areas = tiny_city().query("level == 'grid'").copy()
    areas.loc[areas.index[0], "name"] = "<img src=x onerror=alert(1)>"
    m = maps.grid_map(areas, levels=["grid"])
    names = [
        f["properties"]["name"]
        for f in geojson_of(children_of(m, folium.FeatureGroup)[0]).data["features"]
    ]
    assert "&lt;img src=x onerror=alert(1)&gt;" in names
    assert not any("<img" in name for name in names)


def test_the_finest_level_is_filled_and_coarser_ones_are_outlines():
    m = maps.grid_map(tiny_city(), levels=LEVELS)
    styles = {
        group.layer_name: geojson_of(group).style_function(None)
        for group in children_of(m, folium.FeatureGroup)
    }
    assert styles["网格"]["fill"] and 0 < styles["网格"]["fillOpacity"] < 0.3
    assert not any(styles[name]["fill"] for name in ("社区/村", "街道/乡镇", "区县"))
    assert styles["区县"]["weight"] > styles["社区/村"]["weight"] > styles["网格"]["weight"]


def test_bounds_are_given_to_leaflet_as_lat_lon():
    m = maps.grid_map(tiny_city(), levels=LEVELS)
    (fit,) = children_of(m, folium.FitBounds)
    assert fit.bounds == [[36.70, 119.00], [36.72, 119.04]]


def test_the_legend_lists_the_drawn_levels_with_counts():
    m = maps.grid_map(tiny_city(), levels=["township", "community", "grid", "microgrid"])
    (legend,) = children_of(m, maps.Legend)
    assert [(text, count) for text, _, count in legend.entries] == [
        ("街道/乡镇", 2),
        ("社区/村", 2),
        ("网格", 4),
    ]
    assert "图例" in legend.html and "网格 (4)" in legend.html


def test_english_labels():
    m = maps.grid_map(tiny_city(), levels=LEVELS, language="en")
    assert children_of(m, folium.FeatureGroup)[0].layer_name == "Grid"
    (legend,) = children_of(m, maps.Legend)
    assert legend.title == "Legend"
    assert tooltip_of(children_of(m, folium.FeatureGroup)[0]).aliases == ["Code", "Name"]


def test_legend_text_is_escaped():
    legend = maps.Legend("<b>", [("<script>", {"color": "#000", "weight": 1, "fill": False}, 1)])
    assert "<script>" not in legend.html and "&lt;script&gt;" in legend.html


def test_maps_compose_like_explore():
    city = tiny_city()
    m = maps.grid_map(city[city["level"] == "township"], levels=["township"])
    same = maps.grid_map(city[city["level"] == "grid"], levels=["grid"], m=m)
    assert same is m
    assert len(children_of(m, folium.FeatureGroup)) == 2
    assert len(children_of(m, folium.LayerControl)) == 1


def test_projected_areas_are_drawn_in_lon_lat():
    projected = tiny_city().to_crs("EPSG:4549")
    m = maps.grid_map(projected, levels=LEVELS)
    (fit,) = children_of(m, folium.FitBounds)
    assert fit.bounds[0] == pytest.approx([36.70, 119.00], abs=1e-6)


def test_no_tiles_means_no_tile_layer():
    m = maps.grid_map(tiny_city(), levels=LEVELS, tiles="none")
    assert children_of(m, folium.TileLayer) == []


def test_tianditu_tiles_carry_the_key_and_labels_in_the_language():
    zh = maps.tile_layers("tianditu:abc123", language="zh_CN")
    assert [layer.tiles.split("/")[3] for layer in zh] == ["vec_w", "cva_w"]
    assert all("tk=abc123" in layer.tiles and "{z}" in layer.tiles for layer in zh)
    en = maps.tile_layers("tianditu:abc123", language="en")
    assert "LAYER=eva" in en[1].tiles


def test_xyz_tiles_need_placeholders_and_attribution():
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    (layer,) = maps.tile_layers(url, attribution="© Example")
    assert layer.tiles == url
    with pytest.raises(ConfigError) as no_credit:
        maps.tile_layers(url)
    assert no_credit.value.field == "GEOGRID_TILES_ATTRIBUTION"
    with pytest.raises(ConfigError):
        maps.tile_layers("https://tiles.example.org/tile.png", attribution="x")
    with pytest.raises(ConfigError):
        maps.tile_layers("tianditu:")


def test_display_tolerance_is_half_a_pixel_four_zooms_past_the_fitted_view():
    # 0.3° fits a 1000-pixel map at zoom 12; half a pixel at zoom 16, scaled by cos(37°).
    tolerance = maps.display_tolerance((119.0, 36.7, 119.3, 37.0))
    assert tolerance == pytest.approx(360 / (256 * 2**16) / 2 * 0.79864, rel=1e-4)
    assert maps.display_tolerance(None) == 0.0


def test_simplification_drops_invisible_vertices_only():
    # A box with 200 extra vertices along its edges, each off the line by 1e-7 degrees.
    wobbly = shapely.Polygon(
        [(119.0 + i * 0.0001, 36.7 + (1e-7 if i % 2 else 0)) for i in range(101)]
        + [(119.01, 36.71)]
        + [(119.01 - i * 0.0001, 36.71 + (1e-7 if i % 2 else 0)) for i in range(101)]
    )
    areas = gpd.GeoDataFrame(
        {"code": ["370705001001001"], "level": ["grid"], "name": ["网格"]},
        geometry=[wobbly],
        crs="EPSG:4490",
    )
    m = maps.grid_map(areas, levels=["grid"])
    (group,) = children_of(m, folium.FeatureGroup)
    ring = geojson_of(group).data["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 5  # the four corners, closed
    assert shapely.Polygon(ring).area == pytest.approx(0.01 * 0.01, rel=1e-4)


def test_levels_to_draw():
    levels = ["county", "township", "community", "grid", "microgrid"]
    assert maps.levels_to_draw(levels, None) == ["county", "township"]
    assert maps.levels_to_draw(levels, "county") == ["county", "township", "community", "grid"]
    assert maps.levels_to_draw(levels, "community") == ["community", "grid", "microgrid"]


def header_links(m: folium.Map) -> list[str]:
    figure = m.get_root()
    figure.render()
    return [
        child.url
        for child in figure.header._children.values()
        if isinstance(child, JavascriptLink | CssLink)
    ]


def test_offline_points_every_asset_at_a_local_copy():
    m = maps.offline(maps.grid_map(tiny_city(), levels=LEVELS), local)
    folium.plugins.HeatMap([[36.71, 119.01]]).add_to(m)
    folium.plugins.MarkerCluster().add_to(m)
    maps.offline(m, local)
    links = header_links(m)
    assert "/vendor/leaflet/dist/leaflet.js" in links
    assert "/vendor/bootstrap3/dist/css/glyphicons.css" in links
    assert "/vendor/leaflet.heat/dist/leaflet-heat.js" in links
    assert all(url.startswith("/vendor/") for url in links), links
    # Folium's class-level lists are untouched, so other maps are not affected.
    assert folium.Map.default_js[0][1].startswith("https://")


@pytest.mark.parametrize(
    "plugin", [folium.plugins.Draw(), folium.plugins.BoatMarker((36.71, 119.01))], ids=repr
)
def test_offline_refuses_an_asset_with_no_local_copy(plugin):
    # Draw is not installed; BoatMarker reuses MarkerCluster's asset name for another file.
    m = maps.grid_map(tiny_city(), levels=LEVELS)
    plugin.add_to(m)
    with pytest.raises(ConfigError, match="no local copy"):
        maps.offline(m, local)


def test_map_parts_refuses_a_map_that_still_links_to_a_cdn():
    with pytest.raises(ConfigError, match="other sites"):
        maps.map_parts(maps.grid_map(tiny_city(), levels=LEVELS))
    parts = maps.map_parts(maps.offline(maps.grid_map(tiny_city(), levels=LEVELS), local))
    assert 'src="/vendor/leaflet/dist/leaflet.js"' in parts.header
    assert 'class="folium-map"' in parts.html
    assert "L.map(" in parts.script and "370705001001001" in parts.script
