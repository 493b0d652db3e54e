"""Generations in a real PostGIS: import into a draft, activate, lineage, retire, export."""

from __future__ import annotations

import pytest
import shapely
from factories import level_file, load_tiny_city, tiny_city
from sqlalchemy import func, select

from geogrid import boundaries, generations
from geogrid.codes import CodeScheme
from geogrid.crs import parse_coord_type
from geogrid.db import ensure_code_scheme
from geogrid.errors import CodeError, Conflict, NotFound, ValidationFailed
from geogrid.models import Area, Generation
from geogrid.validate import ValidationRules

WGS84 = parse_coord_type("wgs84")
LEVELS = ["county", "township", "community", "grid"]
FIELDS = boundaries.FieldMap(
    code="code", name="name", parent="parent_code", households="households"
)


def import_level(db, settings, path, level, **options):
    return boundaries.import_boundaries(
        db,
        path,
        level=level,
        fields=FIELDS,
        coord_type=WGS84,
        scheme=settings.scheme,
        rules=ValidationRules.from_settings(settings),
        created_by="tester",
        **options,
    )


def test_import_builds_a_draft_that_activates(db, settings, tmp_path):
    activation = load_tiny_city(db, settings, tmp_path)
    current = generations.current_generation(db)
    assert current.id == activation.generation.id and current.status == "active"
    assert current.activated_by == "tester" and current.metric_srid == 4549
    summary = generations.summary(db, current)
    assert summary["areas"] == {"county": 1, "township": 2, "community": 2, "grid": 4}
    assert activation.report.ok


def test_import_reports_the_draft_validation(db, settings, tmp_path):
    result = import_level(db, settings, level_file(tmp_path, "grid"), "grid")
    assert not result.blocked
    assert sorted(result.changes.added) == sorted(tiny_city().query("level == 'grid'")["code"])
    # Without their communities the grids have no parents: reported, activation refused.
    assert any(issue.check == "parent_missing" for issue in result.report.errors)
    with pytest.raises(ValidationFailed) as info:
        generations.activate(
            db,
            result.generation.id,
            settings.scheme,
            ValidationRules.from_settings(settings),
            activated_by="tester",
        )
    assert info.value.details["issues"]
    assert generations.current_generation(db) is None


def test_bad_records_block_the_whole_import(db, settings, tmp_path):
    areas = tiny_city().query("level == 'grid'").copy()
    areas.loc[areas.index[1], "code"] = "37070500100100"  # 14 digits
    areas.loc[areas.index[2], "geometry"] = shapely.Polygon(
        [(119.02, 36.70), (119.03, 36.72), (119.03, 36.70), (119.02, 36.72)]
    )
    path = level_file(tmp_path, "grid", areas)
    result = import_level(db, settings, path, "grid")
    assert result.blocked
    messages = {(p.record, p.field): p.message for p in result.prepared.problems}
    assert "14 digits" in messages[(2, "code")]
    assert "Self-intersection" in messages[(3, "geometry")]
    assert db.scalar(select(func.count()).select_from(Area)) == 0
    assert generations.draft_generation(db) is None


def test_repair_fixes_a_bowtie_and_says_so(db, settings, tmp_path):
    areas = tiny_city().query("level == 'county'").copy()
    areas["geometry"] = [
        shapely.Polygon([(119.0, 36.7), (119.04, 36.72), (119.04, 36.7), (119.0, 36.72)])
    ]
    result = import_level(
        db, settings, level_file(tmp_path, "county", areas), "county", repair=True
    )
    assert not result.blocked
    assert len(result.prepared.repairs) == 1
    stored = db.scalar(select(func.ST_IsValid(Area.geom)))
    assert stored is True


def test_redraw_records_lineage_with_households(db, settings, tmp_path):
    first = load_tiny_city(db, settings, tmp_path)
    redrawn = tiny_city()
    grids = redrawn["level"] == "grid"
    # Move the edge between the two 东关 grids from 119.01 to 119.015.
    redrawn.loc[redrawn["code"] == "370705001001001", "geometry"] = shapely.box(
        119.00, 36.70, 119.015, 36.72
    )
    redrawn.loc[redrawn["code"] == "370705001001002", "geometry"] = shapely.box(
        119.015, 36.70, 119.02, 36.72
    )
    result = import_level(db, settings, level_file(tmp_path, "grid", redrawn[grids]), "grid")
    assert sorted(result.changes.replaced) == ["370705001001001", "370705001001002"]
    assert sorted(result.changes.unchanged) == ["370705002001001", "370705002001002"]
    second = generations.activate(
        db,
        result.generation.id,
        settings.scheme,
        ValidationRules.from_settings(settings),
        activated_by="planner",
    )
    assert second.superseded.id == first.generation.id
    assert db.get(Generation, first.generation.id).status == "retired"
    rows = {(r.old_code, r.new_code): r for r in generations.lineage_of(db, second.generation.id)}
    assert set(rows) == {
        ("370705001001001", "370705001001001"),
        ("370705001001002", "370705001001001"),
        ("370705001001002", "370705001001002"),
    }
    # Half of old grid 002 (0.005 of 0.01 degree) went to new grid 001, with half its households.
    moved = rows[("370705001001002", "370705001001001")]
    assert moved.share_of_old == pytest.approx(0.5, abs=1e-3)
    assert moved.households_moved == pytest.approx(140, abs=0.5)
    assert rows[("370705001001001", "370705001001001")].share_of_new == pytest.approx(
        2 / 3, abs=1e-3
    )
    # The unchanged grids kept their rows: one row spans both generations.
    kept = db.scalars(select(Area).where(Area.code == "370705002001001")).all()
    assert len(kept) == 1 and kept[0].generation_low == first.generation.id
    assert kept[0].generation_high == second.generation.id
    # History is still there: the old generation's grid 001 is the old shape.
    old_areas = generations.generation_areas(db, first.generation.id, level="grid")
    old_001 = old_areas.set_index("code").loc["370705001001001", "geometry"]
    assert old_001.equals(shapely.MultiPolygon([shapely.box(119.00, 36.70, 119.01, 36.72)]))


def test_retired_codes_are_never_reused(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    areas = tiny_city()
    merged = areas[areas["level"] == "grid"].copy()
    # Merge the two 大虞 grids into one; 370705002001002 is retired with generation 1.
    merged = merged[merged["code"] != "370705002001002"]
    merged.loc[merged["code"] == "370705002001001", "geometry"] = shapely.box(
        119.02, 36.70, 119.04, 36.72
    )
    result = import_level(db, settings, level_file(tmp_path, "grid", merged), "grid")
    assert result.changes.removed == ["370705002001002"]
    generations.activate(
        db,
        result.generation.id,
        settings.scheme,
        ValidationRules.from_settings(settings),
        activated_by="planner",
    )
    with pytest.raises(CodeError, match="never reused"):
        import_level(db, settings, level_file(tmp_path, "grid"), "grid")
    assert (
        settings.scheme.next_free_child(
            "370705002001", generations.codes_ever_used(db, "370705002001")
        )
        == "370705002001003"
    )


def test_one_draft_at_a_time_and_discarding_restores_the_current(db, settings, tmp_path):
    first = load_tiny_city(db, settings, tmp_path)
    draft = generations.create_draft(db, created_by="planner", description="redraw")
    with pytest.raises(Conflict, match="already a draft"):
        generations.create_draft(db, created_by="planner")
    # The draft starts as a copy of the current generation.
    assert len(generations.generation_areas(db, draft.id)) == 9
    generations.retire(db, draft.id, retired_by="planner", reason="abandoned")
    assert db.scalar(select(func.max(Area.generation_high))) == first.generation.id
    with pytest.raises(Conflict, match="current one"):
        generations.retire(db, first.generation.id, retired_by="planner", reason="")


def test_export_then_import_gives_back_the_same_areas(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    for fmt in ("geojson", "gpkg", "csv"):
        out = tmp_path / f"grids.{fmt}"
        count = boundaries.export_areas(db, out, level="grid", fmt=fmt, coord_type=WGS84)
        assert count == 4
        result = import_level(db, settings, out, "grid")
        assert not result.blocked, result.prepared.problems
        assert sorted(result.changes.unchanged) == sorted(
            tiny_city().query("level == 'grid'")["code"]
        ), fmt
        assert not result.changes.added and not result.changes.replaced
        generations.retire(db, result.generation.id, retired_by="tester", reason="round trip")


def test_a_database_refuses_another_code_scheme(db):
    with pytest.raises(Conflict, match="created with the code scheme"):
        ensure_code_scheme(db, CodeScheme.parse("district:2,sector:3,beat:4"))


def test_swapped_axes_in_a_boundary_file_are_a_record_problem(db, settings, tmp_path):
    areas = tiny_city().query("level == 'county'").copy()
    areas["geometry"] = [shapely.box(36.70, 119.00, 36.72, 119.04)]  # lat, lon
    result = import_level(db, settings, level_file(tmp_path, "county", areas), "county")
    assert result.blocked
    (problem,) = result.prepared.problems
    assert problem.field == "geometry" and "look swapped" in problem.message


def test_a_code_removed_in_the_draft_can_come_back(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    grids = tiny_city().query("level == 'grid'")
    without = grids[grids["code"] != "370705002001002"]
    first = import_level(db, settings, level_file(tmp_path, "grid", without), "grid")
    assert first.changes.removed == ["370705002001002"]
    again = import_level(db, settings, level_file(tmp_path, "grid", grids), "grid")
    assert again.changes.added == ["370705002001002"]
    assert again.report.ok


def test_removing_an_area_removes_the_areas_below_it(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    communities = tiny_city().query("level == 'community'")
    merged = communities[communities["code"] == "370705001001"].copy()
    result = import_level(
        db, settings, level_file(tmp_path, "community", merged), "community", replace_level=True
    )
    assert result.changes.removed == ["370705002001"]
    left = generations.generation_areas(db, result.generation.id, level="grid")
    assert sorted(left["code"]) == ["370705001001001", "370705001001002"]


def test_activation_counts_its_lineage_and_discarded_drafts_are_not_generations(
    db, settings, tmp_path
):
    load_tiny_city(db, settings, tmp_path)
    redrawn = tiny_city().query("level == 'grid'").copy()
    redrawn.loc[redrawn["code"] == "370705001001001", "geometry"] = shapely.box(
        119.00, 36.70, 119.015, 36.72
    )
    redrawn.loc[redrawn["code"] == "370705001001002", "geometry"] = shapely.box(
        119.015, 36.70, 119.02, 36.72
    )
    result = import_level(db, settings, level_file(tmp_path, "grid", redrawn), "grid")
    activation = generations.activate(
        db,
        result.generation.id,
        settings.scheme,
        ValidationRules.from_settings(settings),
        activated_by="planner",
    )
    assert activation.lineage_rows == 3
    draft = generations.create_draft(db, created_by="planner")
    generations.retire(db, draft.id, retired_by="planner", reason="not needed")
    with pytest.raises(NotFound, match="discarded"):
        generations.resolve_generation(db, draft.id)
