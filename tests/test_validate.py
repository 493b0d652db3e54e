"""Boundary-set validation: known answers on tiny shapes drawn in metres, and real beats.

Pure tests (no database). Shapes come from ``tests/geometries.py``: a 200 m square county
``370705`` near Weifang and its townships; 1 m is about 1.1e-5 degrees there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geometries import (
    BOWTIE,
    BOWTIE_CROSSING,
    EAST_HALF,
    QUADRANTS,
    SQUARE,
    WEST_HALF,
    boundary_set,
    local_point,
    local_xy,
    lonlat,
    voronoi_city,
)
from shapely import MultiPolygon, Polygon, box
from shapely.affinity import translate

from geogrid.codes import DEFAULT_SCHEME, CodeScheme
from geogrid.settings import Settings
from geogrid.validate import Issue, ValidationRules, repair_geometries, validate_areas

SCHEME = CodeScheme.parse(DEFAULT_SCHEME)
RULES = ValidationRules()
CHICAGO_BEATS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago" / "beats.geojson"
)
ONE_METRE_DEG = 1.2e-5  # a little more than a metre in degrees, either way, at lat 36.7


def county_with(*townships, county=SQUARE):
    """The square county 370705 and townships 370705001, 002, ... drawn as given."""
    rows = [("370705", "county", county)]
    rows += [(f"370705{n:03d}", "township", geom) for n, geom in enumerate(townships, 1)]
    return boundary_set(rows)


def checks(report, severity=None):
    return sorted(i.check for i in report.issues if severity in (None, i.severity))


def only(report, check) -> Issue:
    found = [issue for issue in report.issues if issue.check == check]
    assert len(found) == 1, found
    return found[0]


def near(location, x, y, tolerance=ONE_METRE_DEG):
    lon, lat = local_point(x, y)
    return abs(location[0] - lon) < tolerance and abs(location[1] - lat) < tolerance


# -- a clean set ----------------------------------------------------------------------


def test_a_square_tiled_by_its_quadrants_passes():
    report = validate_areas(county_with(*QUADRANTS), SCHEME, RULES)
    assert report.ok and report.issues == []
    assert report.areas_checked == 5
    assert report.as_dict()["errors"] == 0


def test_rules_come_from_settings():
    settings = Settings(nesting_tolerance_m=2.5, households_per_grid="100-600")
    rules = ValidationRules.from_settings(settings)
    assert rules.nesting_tolerance_m == 2.5 and rules.gap_width_m == 5.0
    assert rules.households_range == (100, 600) and rules.sizing_levels == ("grid",)


# -- 1. geometry ----------------------------------------------------------------------


def test_a_bowtie_is_invalid_at_its_crossing():
    areas = county_with(county=BOWTIE)
    report = validate_areas(areas, SCHEME, RULES)
    issue = only(report, "geometry_invalid")
    assert issue.severity == "error" and issue.code == "370705"
    assert "Self-intersection" in issue.message
    assert near(issue.location, *BOWTIE_CROSSING, tolerance=1e-6)
    assert areas.geometry.iloc[0].equals(lonlat(BOWTIE))  # reported, never repaired


def test_missing_and_non_polygon_geometries():
    areas = county_with(*QUADRANTS[:2])
    areas.loc[1, "geometry"] = None
    areas.loc[2, "geometry"] = lonlat(shapely.LineString([(0, 0), (100, 100)]))
    report = validate_areas(areas, SCHEME, RULES)
    assert {"geometry_empty", "geometry_type"} <= set(checks(report))
    assert "Linestring" in only(report, "geometry_type").message


# -- 2. codes -------------------------------------------------------------------------


def test_duplicate_codes():
    areas = county_with(*QUADRANTS)
    areas.loc[4, "code"] = "370705001"
    issue = only(validate_areas(areas, SCHEME, RULES), "code_duplicate")
    assert issue.code == "370705001" and "2 areas" in issue.message


def test_a_code_of_the_wrong_length():
    areas = county_with(*QUADRANTS)
    areas.loc[1, "code"] = "37070500"
    issue = only(validate_areas(areas, SCHEME, RULES), "code_format")
    assert issue.code == "37070500" and "8 digits" in issue.message
    assert issue.location is not None


def test_a_code_of_another_level():
    areas = county_with(*QUADRANTS)
    areas.loc[1, "level"] = "community"
    issue = only(validate_areas(areas, SCHEME, RULES), "code_level")
    assert "township code" in issue.message


def test_a_missing_parent():
    areas = county_with(*QUADRANTS)
    areas.loc[1, "code"] = "370706001"
    issue = only(validate_areas(areas, SCHEME, RULES), "parent_missing")
    assert issue.code == "370706001" and issue.related_code == "370706"


def test_a_parent_code_that_contradicts_the_code():
    areas = county_with(*QUADRANTS)
    areas.loc[1, "parent_code"] = "370799"
    areas.loc[2, "parent_code"] = "370705"  # agrees: fine
    issue = only(validate_areas(areas, SCHEME, RULES), "parent_mismatch")
    assert issue.code == "370705001" and issue.related_code == "370799"


# -- 3. nesting -----------------------------------------------------------------------


def test_a_child_half_a_metre_out_nests_within_a_metre():
    areas = county_with(WEST_HALF, box(100, 0, 200.5, 200))
    assert validate_areas(areas, SCHEME, ValidationRules(nesting_tolerance_m=1.0)).ok
    strict = validate_areas(areas, SCHEME, ValidationRules(nesting_tolerance_m=0.25))
    assert checks(strict) == ["not_nested"]


def test_a_child_two_metres_out_does_not_nest():
    report = validate_areas(county_with(WEST_HALF, box(100, 0, 202, 200)), SCHEME, RULES)
    issue = only(report, "not_nested")
    assert issue.code == "370705002" and issue.related_code == "370705"
    assert issue.measure == pytest.approx(2.0, abs=0.01)
    assert local_xy(*issue.location)[0] == pytest.approx(202, abs=0.01)  # on the outer edge
    assert "2.0 m" in issue.message and "400 m²" in issue.message


def test_a_child_outside_its_parent():
    report = validate_areas(county_with(*QUADRANTS, box(300, 0, 400, 100)), SCHEME, RULES)
    issue = only(report, "not_nested")
    assert issue.code == "370705005" and "entirely outside" in issue.message
    assert "100.0 to 200.0 m away" in issue.message
    assert issue.measure == pytest.approx(200, abs=0.01)


# -- 4. coverage ----------------------------------------------------------------------


def test_overlapping_siblings():
    report = validate_areas(county_with(box(0, 0, 110, 200), EAST_HALF), SCHEME, RULES)
    issue = only(report, "overlap")
    assert (issue.code, issue.related_code) == ("370705001", "370705002")
    assert issue.measure == pytest.approx(10 * 200, rel=1e-6)
    assert "2000.0 m²" in issue.message
    lon, _ = issue.location
    assert local_point(100, 0)[0] < lon < local_point(110, 0)[0]
    assert checks(report) == ["overlap"]


def test_a_gap_between_siblings():
    report = validate_areas(county_with(box(0, 0, 90, 200), EAST_HALF), SCHEME, RULES)
    issue = only(report, "gap")
    assert issue.code == "370705" and issue.severity == "error"
    assert issue.measure == pytest.approx(10 * 200, rel=1e-6)
    lon, _ = issue.location
    assert local_point(90, 0)[0] < lon < local_point(100, 0)[0]
    assert checks(report) == ["gap"]


def test_a_narrow_gap_is_reported_once():
    report = validate_areas(county_with(box(0, 0, 98, 200), EAST_HALF), SCHEME, RULES)
    assert checks(report) == ["gap"]
    assert only(report, "gap").measure == pytest.approx(2 * 200, rel=1e-6)


def test_a_gap_narrower_than_the_tolerance_along_the_parent_boundary_is_allowed():
    report = validate_areas(
        county_with(box(0, 0, 100, 199.5), box(100, 0, 200, 199.5)), SCHEME, RULES
    )
    assert report.ok
    exact = ValidationRules(nesting_tolerance_m=0)
    strict = validate_areas(
        county_with(box(0, 0, 100, 199.5), box(100, 0, 200, 199.5)), SCHEME, exact
    )
    assert only(strict, "gap").measure == pytest.approx(100, rel=1e-6)


def test_a_narrow_gap_between_children_of_different_parents():
    # Each community stops 0.5 m short of its township (allowed), leaving 1 m between them.
    areas = county_with(WEST_HALF, EAST_HALF)
    communities = [
        ("370705001001", "community", box(0, 0, 99.5, 200)),
        ("370705002001", "community", box(100.5, 0, 200, 200)),
    ]
    areas = gpd.GeoDataFrame(pd.concat([areas, boundary_set(communities)], ignore_index=True))
    issue = only(validate_areas(areas, SCHEME, RULES), "gap")
    assert {issue.code, issue.related_code} == {"370705001001", "370705002001"}
    assert issue.measure == pytest.approx(1.0, abs=1e-6)
    assert local_xy(*issue.location)[0] == pytest.approx(100, abs=0.01)


def test_a_small_hole_in_the_coverage_is_a_sliver_warning():
    # A 2 m x 2 m notch in the west township, on the edge both townships share.
    west = Polygon(
        [(0, 0), (100, 0), (100, 50), (98, 50), (98, 52), (100, 52), (100, 200), (0, 200)]
    )
    east = Polygon([(100, 0), (200, 0), (200, 200), (100, 200), (100, 52), (100, 50)])
    report = validate_areas(county_with(west, east), SCHEME, RULES)
    assert report.ok
    issue = only(report, "sliver")
    assert issue.severity == "warning" and issue.code == "370705"
    assert issue.measure == pytest.approx(4, rel=1e-6)


def test_neighbours_that_do_not_share_vertices_are_a_warning():
    # The west township has a vertex half way along the shared edge; the east one has not.
    west = Polygon([(0, 0), (100, 0), (100, 100), (100, 200), (0, 200)])
    report = validate_areas(county_with(west, box(100, 0, 200, 200)), SCHEME, RULES)
    assert report.ok
    issue = only(report, "edge_mismatch")
    assert {issue.code, issue.related_code} == {"370705001", "370705002"}


def test_top_level_areas_may_leave_gaps_but_not_overlap():
    apart = boundary_set(
        [("370705", "county", box(0, 0, 100, 100)), ("370706", "county", box(150, 0, 250, 100))]
    )
    assert validate_areas(apart, SCHEME, RULES).ok
    overlapping = boundary_set(
        [("370705", "county", box(0, 0, 100, 100)), ("370706", "county", box(90, 0, 190, 100))]
    )
    issue = only(validate_areas(overlapping, SCHEME, RULES), "overlap")
    assert issue.measure == pytest.approx(1000, rel=1e-6)


# -- 5. slivers and 6. sizing ---------------------------------------------------------


def test_a_sliver_part():
    county = MultiPolygon([SQUARE, box(300, 0, 302, 3)])
    issue = only(validate_areas(county_with(county=county), SCHEME, RULES), "sliver")
    assert issue.severity == "error" and issue.code == "370705"
    assert issue.measure == pytest.approx(6, rel=1e-6)
    assert near(issue.location, 301, 1.5, tolerance=3e-5)


def test_households_out_of_range_are_warnings():
    areas = county_with(*QUADRANTS)
    areas["households"] = [None, 50, 300, 700, None]
    rules = ValidationRules(households_range=(100, 600), sizing_levels=("township",))
    report = validate_areas(areas, SCHEME, rules)
    assert report.ok
    found = {issue.code: issue for issue in report.warnings}
    assert set(found) == {"370705001", "370705003"}
    assert "merging" in found["370705001"].message and "splitting" in found["370705003"].message
    assert validate_areas(areas, SCHEME, RULES).issues == []  # no rule configured


# -- the report -----------------------------------------------------------------------


def test_the_report_is_json_ready_and_lists_errors_first():
    areas = county_with(box(0, 0, 110, 200), box(100, 0, 202, 200))
    areas["households"] = [None, 5, 5]
    report = validate_areas(
        areas, SCHEME, ValidationRules(households_range=(100, 600), sizing_levels=("township",))
    )
    body = json.loads(json.dumps(report.as_dict()))
    assert body["ok"] is False and body["errors"] == 2 and body["warnings"] == 2
    assert body["counts"]["error"] == {"not_nested": 1, "overlap": 1}
    assert [i["severity"] for i in body["issues"]] == ["error", "error", "warning", "warning"]
    assert report.summary_lines()[0].startswith("validation FAILED: 3 areas checked, 2 errors")


# -- repair ---------------------------------------------------------------------------


def test_repair_turns_a_bowtie_into_two_triangles_and_says_so():
    square = lonlat(SQUARE)
    repaired, issues = repair_geometries(
        np.array([lonlat(BOWTIE), square], dtype=object), ["370705", "370706"]
    )
    assert repaired[1] is square
    assert repaired[0].geom_type == "MultiPolygon" and len(repaired[0].geoms) == 2
    assert repaired[0].is_valid
    [issue] = issues
    assert (issue.severity, issue.check, issue.code) == ("warning", "repaired", "370705")
    assert "Self-intersection" in issue.message and "2 polygon part(s)" in issue.message
    assert near(issue.location, *BOWTIE_CROSSING, tolerance=1e-6)


# -- scale and real data --------------------------------------------------------------


def test_a_synthetic_city_of_15000_grids_validates_quickly():
    city = voronoi_city(grids=15_000)
    started = time.perf_counter()
    report = validate_areas(city, SCHEME, RULES)
    elapsed = time.perf_counter() - started
    assert report.ok and report.issues == [], report.summary_lines()
    assert report.areas_checked == len(city) > 16_000
    assert elapsed < 10, f"validation took {elapsed:.1f} s"


def test_a_synthetic_city_with_a_moved_grid_fails():
    city = voronoi_city(grids=2_000)
    moved = city.index[city["level"] == "grid"][0]
    code = city.loc[moved, "code"]
    city.loc[moved, "geometry"] = translate(city.loc[moved, "geometry"], 0.001)  # ~90 m east
    report = validate_areas(city, SCHEME, RULES)
    overlaps = [i for i in report.errors if i.check == "overlap"]
    assert overlaps and all(code in (i.code, i.related_code) for i in overlaps)
    assert only(report, "gap").code == code[:12]  # the place it left, in its community


@pytest.mark.slow
def test_a_synthetic_city_with_micro_grids():
    city = voronoi_city(grids=15_000, microgrids_per_grid=4)
    started = time.perf_counter()
    report = validate_areas(city, SCHEME, RULES)
    assert report.ok, report.summary_lines()
    assert time.perf_counter() - started < 20


def chicago_beats() -> gpd.GeoDataFrame:
    """Chicago police beats as beats, with sectors and districts dissolved from them."""
    beats = gpd.read_file(CHICAGO_BEATS)
    rows = [
        {"code": code, "level": "beat", "geometry": geom}
        for code, geom in zip(beats["beat_num"], beats.geometry, strict=True)
    ]
    for level, length in (("district", 2), ("sector", 3)):
        prefixes = beats["beat_num"].str[:length]
        for prefix, group in beats.geometry.groupby(prefixes):
            rows.append(
                {
                    "code": prefix,
                    "level": level,
                    "geometry": shapely.coverage_union_all(group.values),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=beats.crs)


@pytest.mark.skipif(not CHICAGO_BEATS.exists(), reason="shared Chicago data not present")
def test_chicago_beats_form_a_clean_hierarchy():
    areas = chicago_beats()
    report = validate_areas(areas, CodeScheme.parse("district:2,sector:3,beat:4"), RULES)
    assert report.areas_checked == len(areas) > 274
    # The beats are a published coverage: no overlaps, and the dissolved parents nest.
    assert not [i for i in report.issues if i.check in ("overlap", "not_nested", "gap")]
    assert len(report.issues) < 10, report.summary_lines()
