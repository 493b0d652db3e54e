"""The demo city generator: real streets, nested codes, sizes, an exact coverage, one seed.

Pure tests (no database). 奎文区 (370705) is built once per module; the whole city only
in the slow test.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geogrid import crs
from geogrid.codes import DEFAULT_SCHEME, CodeScheme
from geogrid.demo import DISTRICTS_FILE, LEVELS, TOWNSHIPS_FILE, build_demo_city
from geogrid.errors import ConfigError, InputError
from geogrid.validate import ValidationRules, validate_areas

SCHEME = CodeScheme.parse(DEFAULT_SCHEME)
WEIFANG_EPSG = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E


@pytest.fixture(scope="module")
def kuiwen() -> gpd.GeoDataFrame:
    """奎文区 as the CLI builds it by default."""
    return build_demo_city(county="370705", seed=7, scheme=SCHEME)


def real_townships(county: str) -> pd.DataFrame:
    townships = pd.read_csv(TOWNSHIPS_FILE, dtype=str)
    return townships[townships["county_code"] == county].sort_values("code")


def level(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    return frame[frame["level"] == name]


def test_kuiwen_has_its_ten_real_streets(kuiwen):
    streets = level(kuiwen, "township").sort_values("code")
    expected = real_townships("370705")
    assert len(streets) == 10
    assert streets["code"].tolist() == expected["code"].tolist()
    assert streets["name"].tolist() == expected["name"].tolist()
    assert streets["code"].iloc[0] == "370705001" and streets["name"].iloc[0] == "东关街道"


def test_columns_types_and_crs(kuiwen):
    assert list(kuiwen.columns) == [
        "code",
        "level",
        "parent_code",
        "name",
        "kind",
        "households",
        "population",
        "attributes",
        "geometry",
    ]
    assert kuiwen.crs.to_epsg() == 4490
    assert set(kuiwen["level"]) == set(LEVELS)
    assert set(kuiwen["kind"]) == {"comprehensive", "dedicated"}
    assert set(kuiwen.geom_type) <= {"Polygon", "MultiPolygon"}
    assert kuiwen["households"].dtype == np.int64 and kuiwen["population"].dtype == np.int64
    assert kuiwen["code"].is_unique
    # lon/lat inside Weifang, not metres
    xmin, ymin, xmax, ymax = kuiwen.total_bounds
    assert 118 < xmin < xmax < 120.5 and 35.5 < ymin < ymax < 37.5


def test_every_code_fits_the_scheme_and_nests_by_prefix(kuiwen):
    codes = set(kuiwen["code"])
    rows = zip(kuiwen["code"], kuiwen["level"], kuiwen["parent_code"], strict=True)
    for code, name, parent in rows:
        SCHEME.validate(code, name)
        assert parent == SCHEME.parent_of(code)
        assert parent is None or parent in codes
    # 3 more digits for communities and grids, 2 for micro-grids
    lengths = kuiwen.groupby("level")["code"].agg(lambda c: set(c.str.len()))
    assert lengths.to_dict() == {
        "county": {6},
        "township": {9},
        "community": {12},
        "grid": {15},
        "microgrid": {17},
    }


def test_kuiwen_has_a_few_hundred_grids_of_about_300_households(kuiwen):
    grids = level(kuiwen, "grid")
    comprehensive = grids[grids["kind"] == "comprehensive"]
    assert 500 <= len(grids) <= 1500
    assert 250 <= comprehensive["households"].mean() <= 330
    assert comprehensive["households"].quantile(0.05) >= 100
    assert comprehensive["households"].max() <= 600
    people_per_household = comprehensive["population"].sum() / comprehensive["households"].sum()
    assert 2.5 <= people_per_household <= 3.1


def test_households_and_population_add_up_level_by_level(kuiwen):
    for column in ("households", "population"):
        children = kuiwen.dropna(subset=["parent_code"]).groupby(["parent_code", "level"])[column]
        sums = children.sum().reset_index(level="level", drop=True)
        parents = kuiwen.set_index("code")[column]
        assert (parents.loc[sums.index] == sums).all(), column


def test_some_dedicated_grids_small_and_without_households(kuiwen):
    grids = level(kuiwen, "grid").to_crs(WEIFANG_EPSG)
    dedicated = grids[grids["kind"] == "dedicated"]
    comprehensive = grids[grids["kind"] == "comprehensive"]
    assert 5 <= len(dedicated) <= 0.15 * len(grids)
    assert dedicated["name"].str.endswith("专属网格").all()
    assert dedicated["name"].str.contains("学|医院|院|园").all()
    assert (dedicated["households"] == 0).all()
    facilities = {a["facility"] for a in dedicated["attributes"]}
    assert facilities <= {"school", "hospital", "industrial_park"} and "school" in facilities
    assert dedicated.area.max() < comprehensive.area.median()


def test_every_grid_has_two_to_six_microgrids(kuiwen):
    micro = level(kuiwen, "microgrid")
    per_grid = micro.groupby("parent_code").size()
    grids = level(kuiwen, "grid").set_index("code")
    assert set(per_grid.index) == set(grids.index)
    assert per_grid.between(2, 6).all()
    assert (micro["kind"].to_numpy() == grids.loc[micro["parent_code"], "kind"].to_numpy()).all()
    assert micro["name"].str.endswith("微网格").all()


def test_plausible_names(kuiwen):
    names = kuiwen.set_index("code")["name"]
    assert names["370705"] == "奎文区"
    communities = level(kuiwen, "community")
    urban = communities[communities["code"].str[-3:] < "200"]
    assert urban["name"].str.fullmatch(r"\w+第\d+社区").all()
    assert urban[urban["parent_code"] == "370705001"]["name"].str.startswith("东关第").all()
    villages = communities[communities["code"].str[-3:] > "200"]
    assert villages["name"].str.endswith("村").all()
    assert all(a["setting"] == "urban" for a in urban["attributes"])
    assert all(a["setting"] == "rural" for a in villages["attributes"])
    grids = level(kuiwen, "grid")
    comprehensive = grids[grids["kind"] == "comprehensive"]
    parent_names = names.loc[comprehensive["parent_code"]].to_numpy()
    for parent_name, name in zip(parent_names, comprehensive["name"], strict=True):
        assert name.startswith(parent_name) and name.endswith("网格")
    assert "东关第1社区第1网格" in set(grids["name"])


def test_passes_validation_with_shared_vertices(kuiwen):
    report = validate_areas(kuiwen, SCHEME, ValidationRules(), metric_epsg=WEIFANG_EPSG)
    assert report.ok, report.summary_lines()
    assert report.issues == []  # not even an edge_mismatch warning


def test_coverage_exact_at_every_level(kuiwen):
    metric = kuiwen.to_crs(WEIFANG_EPSG)
    assert shapely.is_valid(metric.geometry.values).all()
    for name in LEVELS:
        areas = level(metric, name)
        assert shapely.coverage_is_valid(areas.geometry.values), name
        assert shapely.area(areas.geometry.values).min() > 200, name  # no slivers
    parents = metric.set_index("code").geometry
    for parent_code, siblings in metric.dropna(subset=["parent_code"]).groupby("parent_code"):
        parent = parents[parent_code]
        # no overlaps, neighbours share vertices (gaps: the union equals the parent)
        assert shapely.coverage_is_valid(siblings.geometry.values), parent_code
        union = shapely.coverage_union_all(siblings.geometry.values)
        assert shapely.area(shapely.symmetric_difference(union, parent)) < 1e-6, parent_code
        assert shapely.covers(parent, siblings.geometry.values).all(), parent_code


def test_same_seed_same_city_other_seed_other_city(kuiwen):
    again = build_demo_city(county="370705", seed=7, scheme=SCHEME)
    pd.testing.assert_frame_equal(
        pd.DataFrame(kuiwen.drop(columns="geometry")), pd.DataFrame(again.drop(columns="geometry"))
    )
    assert (
        shapely.to_wkb(kuiwen.geometry.values).tolist()
        == shapely.to_wkb(again.geometry.values).tolist()
    )
    other = build_demo_city(county="370705", seed=8, scheme=SCHEME)
    assert level(other, "township")["code"].tolist() == level(kuiwen, "township")["code"].tolist()
    mine = level(kuiwen, "grid").set_index("code").geometry
    theirs = level(other, "grid").set_index("code").geometry
    shared = mine.index.intersection(theirs.index)
    assert not shapely.equals(mine[shared].values, theirs[shared].values).all()


def test_outline_is_converted_from_gcj02(kuiwen):
    raw = gpd.read_file(DISTRICTS_FILE)
    raw = raw[raw["adcode"] == 370705].geometry.values
    built = level(kuiwen, "county").geometry.values
    converted = crs.geometry_to_storage(raw, crs.parse_coord_type("gcj02"))

    def metres(geoms):
        return crs.geometry_to_metric(geoms, WEIFANG_EPSG)

    shift = shapely.distance(shapely.centroid(metres(raw)), shapely.centroid(metres(built)))
    assert 300 < shift[0] < 700  # GCJ-02 offset near Weifang is about 530 m
    # ... and the county is the converted outline, up to the 1 cm snapping
    assert shapely.hausdorff_distance(metres(converted), metres(built))[0] < 0.05


def test_a_small_county_without_microgrids():
    scheme = CodeScheme.parse("county:6,township:9,community:12,grid:15")
    frame = build_demo_city(county="370772", seed=3, scheme=scheme, microgrids=False)
    assert set(frame["level"]) == {"county", "township", "community", "grid"}
    assert level(frame, "township")["code"].tolist() == real_townships("370772")["code"].tolist()
    assert validate_areas(frame, scheme, ValidationRules(), metric_epsg=WEIFANG_EPSG).ok


def test_refuses_unknown_places_and_schemes():
    with pytest.raises(InputError, match="370705 奎文区"):
        build_demo_city(county="110101", scheme=SCHEME)
    with pytest.raises(InputError):
        build_demo_city(county=None, city="3201", scheme=SCHEME)
    with pytest.raises(ConfigError):
        build_demo_city(scheme=CodeScheme.parse("district:2,sector:3,beat:4"))


@pytest.mark.slow
def test_whole_city_at_weifangs_scale():
    city = build_demo_city(county=None, city="3707", seed=7, scheme=SCHEME)
    counts = city.groupby("level").size()
    assert counts["county"] == 13  # the 12 outlines, with 滨海区 carved out of 寒亭区
    townships = level(city, "township").sort_values("code")
    assert townships["code"].tolist() == pd.read_csv(TOWNSHIPS_FILE, dtype=str)["code"].tolist()
    assert 13_500 <= counts["grid"] <= 16_500
    assert counts["microgrid"] >= 2 * counts["grid"]
    assert 9.0e6 <= level(city, "county")["population"].sum() <= 9.6e6
    report = validate_areas(city, SCHEME, ValidationRules(), metric_epsg=WEIFANG_EPSG)
    assert report.ok, report.summary_lines()
    assert report.issues == []
