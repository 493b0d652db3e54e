"""A planner's scope over boundary generations, on the tiny city, without the web app.

The tiny city (tests/factories.py) has two townships, 东关 (370705001) and 大虞
(370705002), each with one community of two grids. Drafts here move the edge between a
community's two grids, so both grids are redrawn and half of the eastern grid's land
(and households) goes to the western one.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from factories import NORTH, SOUTH, level_file, load_tiny_city, tiny_city

from geogrid import boundaries, generations, planning
from geogrid import planning_queries as queries
from geogrid.actors import ADMINISTRATOR, PLANNER, Actor
from geogrid.crs import parse_coord_type
from geogrid.errors import CodeError, Forbidden
from geogrid.models import Generation
from geogrid.validate import ValidationRules

DONGGUAN, DAYU = "370705001", "370705002"
DONGGUAN_GRIDS = ["370705001001001", "370705001001002"]
DAYU_GRIDS = ["370705002001001", "370705002001002"]
ADMIN = Actor("admin", ADMINISTRATOR)
COUNTY_PLANNER = Actor("county-planner", PLANNER, ("370705",))
DONGGUAN_PLANNER = Actor("dongguan-planner", PLANNER, (DONGGUAN,))
DAYU_PLANNER = Actor("dayu-planner", PLANNER, (DAYU,))
FIELDS = boundaries.FieldMap(
    code="code", name="name", parent="parent_code", households="households"
)


@pytest.fixture
def city(db, settings, tmp_path) -> Generation:
    """The tiny city imported and activated."""
    return load_tiny_city(db, settings, tmp_path).generation


@pytest.fixture
def both_redrawn(db, settings, tmp_path, city) -> Generation:
    """A draft, imported by an administrator, redrawing the grids of both townships."""
    return import_grids(db, settings, tmp_path, ADMIN, edge_moved(DONGGUAN, DAYU)).generation


def edge_moved(*townships: str) -> gpd.GeoDataFrame:
    """The tiny city's grids, the edge between each township's two grids moved 0.005° east."""
    areas = tiny_city().query("level == 'grid'").copy()
    for township in townships:
        west, east = (areas["code"] == f"{township}00100{n}" for n in (1, 2))
        start, _, edge, _ = areas.loc[west, "geometry"].item().bounds
        end = areas.loc[east, "geometry"].item().bounds[2]
        areas.loc[west, "geometry"] = shapely.box(start, SOUTH, edge + 0.005, NORTH)
        areas.loc[east, "geometry"] = shapely.box(edge + 0.005, SOUTH, end, NORTH)
    return areas


def township_grids(township: str) -> gpd.GeoDataFrame:
    """Only the township's own two grids, their edge moved: a file for its planner."""
    areas = edge_moved(township)
    return areas[areas["code"].str.startswith(township)]


def import_grids(
    db, settings, tmp_path, actor, areas, *, level="grid", **options
) -> boundaries.ImportResult:
    """Areas of a level (grids by default) imported into the draft by ``actor``."""
    return planning.import_in_scope(
        db,
        actor,
        level_file(tmp_path, level, areas),
        level=level,
        fields=FIELDS,
        coord_type=parse_coord_type("cgcs2000"),
        scheme=settings.scheme,
        rules=ValidationRules.from_settings(settings),
        **options,
    )


def activate(db, settings, draft: Generation) -> generations.Activation:
    rules = ValidationRules.from_settings(settings)
    return generations.activate(db, draft.id, settings.scheme, rules, activated_by="tests")


# -- importing ----------------------------------------------------------------------------


def test_a_planner_cannot_import_areas_whose_parent_is_outside_the_scope(
    db, settings, tmp_path, city
):
    dayu = township_grids(DAYU)
    with pytest.raises(Forbidden) as refused:
        import_grids(db, settings, tmp_path, DONGGUAN_PLANNER, dayu)
    assert refused.value.field == "code"
    assert refused.value.details["codes"] == DAYU_GRIDS
    assert "370705002001001" in refused.value.message and DONGGUAN in refused.value.message


def test_a_planner_cannot_import_at_a_level_whose_parents_are_outside_the_scope(
    db, settings, tmp_path, city
):
    # Only the planner's own community changes, but an import replaces every community
    # under the township it names, and that township is not theirs.
    community = tiny_city().query("code == '370705001001'").assign(name="东关新社区")
    planner = Actor("community-planner", PLANNER, ("370705001001",))
    # As the planner pages do, the import runs in a savepoint rolled back on refusal.
    with pytest.raises(Forbidden) as refused, db.begin_nested():
        import_grids(db, settings, tmp_path, planner, community, level="community")
    assert refused.value.details["codes"] == ["370705001001"]
    assert generations.draft_generation(db) is None
    renamed = import_grids(db, settings, tmp_path, DONGGUAN_PLANNER, community, level="community")
    assert renamed.changes.replaced == ["370705001001"]


def test_a_planner_cannot_import_a_file_that_changes_areas_outside_the_scope(
    db, settings, tmp_path, city
):
    # Every grid's parent is 东关's, but parents derived from the file alone make a county
    # of 东关 only: the county is redrawn and 大虞 removed.
    grids = township_grids(DONGGUAN)
    with pytest.raises(Forbidden) as refused:
        import_grids(db, settings, tmp_path, DONGGUAN_PLANNER, grids, with_parents=True)
    assert refused.value.details["codes"] == ["370705", DAYU]


def test_a_planner_imports_inside_the_scope_and_an_administrator_anywhere(
    db, settings, tmp_path, city
):
    dongguan = township_grids(DONGGUAN)
    result = import_grids(db, settings, tmp_path, DONGGUAN_PLANNER, dongguan)
    assert sorted(result.changes.replaced) == DONGGUAN_GRIDS
    assert result.generation.created_by == "dongguan-planner"
    both = import_grids(db, settings, tmp_path, ADMIN, edge_moved(DONGGUAN, DAYU))
    assert sorted(both.changes.replaced) == DAYU_GRIDS  # 东关's were already redrawn


def test_replacing_a_whole_level_is_for_administrators(db, settings, tmp_path, city):
    areas = edge_moved(DONGGUAN)
    with pytest.raises(Forbidden) as refused:
        import_grids(db, settings, tmp_path, COUNTY_PLANNER, areas, replace_level=True)
    assert refused.value.field == "replace_level"
    assert generations.draft_generation(db) is None  # refused before anything was read
    result = import_grids(db, settings, tmp_path, ADMIN, areas, replace_level=True)
    assert sorted(result.changes.replaced) == DONGGUAN_GRIDS


def test_a_refusal_is_worded_by_the_caller(db, settings, tmp_path, city):
    def shouting(message: str, **values: object) -> str:
        return (message % values).upper()

    with pytest.raises(Forbidden) as refused:
        import_grids(db, settings, tmp_path, DAYU_PLANNER, edge_moved(DONGGUAN), wording=shouting)
    assert refused.value.message.startswith("AREA 370705001001001 (OR THE AREAS BESIDE IT")


# -- the draft ----------------------------------------------------------------------------


def test_a_planner_cannot_activate_a_draft_changing_areas_outside_the_scope(db, both_redrawn):
    with pytest.raises(Forbidden) as refused:
        planning.require_draft_in_scope(db, DONGGUAN_PLANNER, both_redrawn)
    assert refused.value.field == "generation"
    assert "2 areas outside your scope (first 370705002001001)" in refused.value.message
    planning.require_draft_in_scope(db, COUNTY_PLANNER, both_redrawn)
    planning.require_draft_in_scope(db, ADMIN, both_redrawn)


def test_a_planner_may_activate_a_draft_changing_only_their_areas(db, settings, tmp_path, city):
    dongguan = township_grids(DONGGUAN)
    draft = import_grids(db, settings, tmp_path, ADMIN, dongguan).generation
    planning.require_draft_in_scope(db, DONGGUAN_PLANNER, draft)
    with pytest.raises(Forbidden):
        planning.require_draft_in_scope(db, DAYU_PLANNER, draft)


def test_a_planner_counts_only_the_draft_changes_inside_the_scope(db, both_redrawn):
    mine = planning.draft_changes(db, DONGGUAN_PLANNER, both_redrawn)
    assert mine.counts == {"redrawn": 2, "unchanged": 2}  # the two grids; township, community
    assert mine.outside_scope == DAYU_GRIDS
    everything = planning.draft_changes(db, ADMIN, both_redrawn)
    assert everything.counts == {"unchanged": 5, "redrawn": 4}
    assert everything.outside_scope == []


# -- what a planner sees ------------------------------------------------------------------


def test_area_counts_are_of_the_scope(db, city):
    counts = queries.level_counts(db, DONGGUAN_PLANNER, city.id)
    assert list(counts.items()) == [("township", 1), ("community", 1), ("grid", 2)]
    everything = queries.level_counts(db, ADMIN, city.id)
    assert list(everything.items()) == [
        ("county", 1),
        ("township", 2),
        ("community", 2),
        ("grid", 4),
    ]


def test_areas_are_of_the_scope_once_each(db, settings, city):
    nested = Actor("nested", PLANNER, (DONGGUAN, "370705001001"))
    grids = queries.areas_in_scope(db, nested, city.id, ["grid"])
    assert sorted(grids["code"]) == DONGGUAN_GRIDS
    assert queries.map_levels(settings.scheme, nested, None) == [
        "township",
        "community",
        "grid",
        "microgrid",
    ]
    under = queries.areas_in_scope(db, ADMIN, city.id, ["grid"], area="370705002001")
    assert sorted(under["code"]) == DAYU_GRIDS


def test_a_planner_sees_only_the_validation_issues_in_the_scope(db, settings, tmp_path, city):
    # 东关's first grid widened over half of its second one, which is left as it was.
    areas = tiny_city().query("level == 'grid'").copy()
    areas.loc[areas["code"] == DONGGUAN_GRIDS[0], "geometry"] = shapely.box(
        119.00, SOUTH, 119.015, NORTH
    )
    draft = import_grids(db, settings, tmp_path, ADMIN, areas).generation
    issues = draft.validation["issues"]
    overlaps = [i for i in issues if i["check"] == "overlap"]
    assert overlaps and all(i["code"] in DONGGUAN_GRIDS for i in overlaps)
    assert planning.visible_issues(issues, DAYU_PLANNER) == []
    assert planning.visible_issues(issues, DONGGUAN_PLANNER) == issues
    assert planning.visible_issues(issues, ADMIN) == issues
    assert planning.visible_issues(issues, ADMIN, area=DAYU) == []
    named = queries.issue_areas(db, DONGGUAN_PLANNER, settings.scheme, draft.id, overlaps)
    assert sorted(named["code"]) == DONGGUAN_GRIDS
    assert queries.issue_areas(db, DAYU_PLANNER, settings.scheme, draft.id, overlaps).empty


def test_an_issue_on_the_scope_edge_is_seen_from_either_side():
    edge = {"code": "370705001001002", "related_code": "370705002001001", "check": "gap"}
    elsewhere = {"code": "370706001001001", "related_code": None, "check": "overlap"}
    for planner in (DONGGUAN_PLANNER, DAYU_PLANNER):
        assert planning.visible_issues([edge, elsewhere], planner) == [edge]
    assert planning.visible_issues([edge, elsewhere], ADMIN) == [edge, elsewhere]


def test_a_comparison_keeps_to_the_scope(db, settings, city, both_redrawn):
    activate(db, settings, both_redrawn)
    mine = queries.compare_generations(db, DONGGUAN_PLANNER, city, both_redrawn, "grid")
    assert mine.change_counts == {"redrawn": 2}
    assert sorted(mine.names) == DONGGUAN_GRIDS
    # Half of 东关 grid 002's 280 households went to grid 001.
    assert mine.households_moved == pytest.approx(140)
    assert {(r.old_code, r.new_code) for r in mine.lineage} == {
        (DONGGUAN_GRIDS[0], DONGGUAN_GRIDS[0]),
        (DONGGUAN_GRIDS[1], DONGGUAN_GRIDS[0]),
        (DONGGUAN_GRIDS[1], DONGGUAN_GRIDS[1]),
    }
    everything = queries.compare_generations(db, ADMIN, city, both_redrawn, "grid")
    assert everything.change_counts == {"redrawn": 4}
    assert everything.households_moved == pytest.approx(140 + 145)
    assert queries.compare_generations(db, ADMIN, city, both_redrawn, "county").lineage == []


def test_the_default_comparison_is_the_newest_generation_and_its_predecessor(
    db, settings, city, both_redrawn
):
    choices = generations.list_generations(db)
    assert queries.compared_ids(choices, None, None) == (city.id, both_redrawn.id)
    activate(db, settings, both_redrawn)
    choices = generations.list_generations(db)
    assert queries.compared_ids(choices, None, None) == (city.id, both_redrawn.id)
    assert queries.compared_ids(choices, both_redrawn.id, city.id) == (city.id, both_redrawn.id)


# -- the area asked for, and the unscoped ---------------------------------------------------


def test_an_area_asked_for_must_be_a_code_inside_the_scope(settings):
    scheme = settings.scheme
    assert planning.require_area_in_scope(scheme, DONGGUAN_PLANNER, "370705001001") == "community"
    with pytest.raises(Forbidden) as refused:
        planning.require_area_in_scope(scheme, DONGGUAN_PLANNER, DAYU)
    assert refused.value.field == "area"
    with pytest.raises(CodeError):
        planning.require_area_in_scope(scheme, ADMIN, "3707")
    assert planning.require_area_in_scope(scheme, ADMIN, DAYU) == "township"


def test_an_administrator_is_unscoped():
    assert not planning.is_scoped(ADMIN) and planning.is_scoped(COUNTY_PLANNER)
    assert planning.scope_prefixes(ADMIN) == [None]
    assert planning.scope_prefixes(DONGGUAN_PLANNER) == [DONGGUAN]
    assert planning.scope_prefixes(DONGGUAN_PLANNER, "370705001001") == ["370705001001"]
    assert planning.scope_prefixes(Actor("nobody", PLANNER)) == []
