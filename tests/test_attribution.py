"""Re-attribution through lineage: incidents recorded in old grids, counted in today's."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
import shapely
from factories import add_incident, level_file, load_tiny_city, tiny_city

from geogrid import attribution, boundaries, generations
from geogrid.crs import parse_coord_type
from geogrid.errors import InputError
from geogrid.reports import build_report
from geogrid.validate import ValidationRules
from geogrid.workdays import SHANGHAI

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
G5 = "370705001001003"  # split off G1 in the redraw
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
FIELDS = boundaries.FieldMap(
    code="code", name="name", parent="parent_code", households="households"
)


def redraw(db, settings, tmp_path, boxes: dict[str, tuple[float, float, float, float]]):
    """Import the tiny city's grids with these boxes (others dropped) and activate them."""
    areas = tiny_city()
    grids = areas[areas["level"] == "grid"].set_index("code")
    rows = []
    for code, box in boxes.items():
        row = (
            grids.loc[code].to_dict()
            if code in grids.index
            else {
                "level": "grid",
                "parent_code": code[:12],
                "name": f"新网格{code[-3:]}",
                "households": 100,
            }
        )
        rows.append({**row, "code": code, "geometry": shapely.box(*box)})
    frame = areas.iloc[0:0].copy()
    frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).set_geometry("geometry")
    frame = frame.set_crs("EPSG:4490", allow_override=True)
    folder = tmp_path / f"redraw{len(generations.list_generations(db))}"
    folder.mkdir()
    rules = ValidationRules.from_settings(settings)
    result = boundaries.import_boundaries(
        db,
        level_file(folder, "grid", frame),
        level="grid",
        fields=FIELDS,
        coord_type=parse_coord_type("cgcs2000"),
        scheme=settings.scheme,
        rules=rules,
        created_by="planner",
    )
    assert not result.blocked, result.prepared.problems
    return generations.activate(
        db, result.generation.id, settings.scheme, rules, activated_by="planner"
    ).generation


def reported(day: int) -> datetime:
    return datetime(2026, 10, day, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def redrawn(db, settings, tmp_path):
    """Incidents in the first generation; then G1 split 40/60 and G3 and G4 merged."""
    first = load_tiny_city(db, settings, tmp_path).generation
    for day, code in enumerate([G1, G1, G1, G3, G3, G4, G4], start=5):
        add_incident(db, grid_code=code, reported_at=reported(day))
    second = redraw(
        db,
        settings,
        tmp_path,
        {
            G1: (119.00, 36.70, 119.004, 36.72),
            G5: (119.004, 36.70, 119.01, 36.72),
            G2: (119.01, 36.70, 119.02, 36.72),
            G3: (119.02, 36.70, 119.04, 36.72),
        },
    )
    add_incident(db, grid_code=G1, reported_at=reported(20), generation=second.id)
    return first, second


def grid_counts(db, settings, mode):
    report = build_report(db, settings, "monthly", "2026-10", "grid", attribution=mode, now=NOW)
    return {row["code"]: row["received"] for row in report.rows()}, report


def test_successors_follow_the_largest_share(redrawn, db, settings):
    first, second = redrawn
    successors = attribution.successor_map(db, "grid", second.id).set_index("code")
    assert successors.loc[G1, "current_code"] == G5
    assert successors.loc[G1, "share"] == pytest.approx(0.6, abs=1e-3)
    assert successors.loc[G3, "current_code"] == G3 and successors.loc[G4, "current_code"] == G3
    assert G2 not in successors.index  # unchanged, its row is still valid
    assert (successors["generation_high"] == first.id).all()


def test_recorded_counts_stay_where_they_were_recorded(redrawn, db, settings):
    counts, report = grid_counts(db, settings, "recorded")
    assert counts == {G1: 4, G5: 0, G2: 0, G3: 2, G4: 2}
    gone = report.row(G4)
    assert gone["in_generation"] is False and gone["name"] == "大虞第2网格"
    assert report.attribution == "recorded" and report.generation == redrawn[1].id


def test_current_counts_follow_the_lineage(redrawn, db, settings):
    counts, report = grid_counts(db, settings, "current")
    assert counts == {G1: 1, G5: 3, G2: 0, G3: 4}
    assert not [alert for alert in report.alerts if alert.kind == "unmapped_grid"]
    communities = build_report(
        db, settings, "monthly", "2026-10", "community", attribution="current", now=NOW
    )
    assert communities.row("370705001001")["received"] == 4
    assert communities.row("370705002001")["received"] == 4


def test_chains_of_redraws_compose_the_shares(redrawn, db, settings, tmp_path):
    first, second = redrawn
    add_incident(db, grid_code=G5, reported_at=reported(21), generation=second.id)
    # Move the edge between G1 and G5 to 119.007: old G1 now lies 0.4 + 0.6 × 0.5 = 0.7
    # in G1; the second generation's G5 is split half and half and keeps its own code.
    third = redraw(
        db,
        settings,
        tmp_path,
        {
            G1: (119.00, 36.70, 119.007, 36.72),
            G5: (119.007, 36.70, 119.01, 36.72),
            G2: (119.01, 36.70, 119.02, 36.72),
            G3: (119.02, 36.70, 119.04, 36.72),
        },
    )
    successors = attribution.successor_map(db, "grid", third.id)
    old_g1 = successors[(successors["code"] == G1) & (successors["generation_low"] == first.id)]
    assert old_g1["current_code"].item() == G1
    assert old_g1["share"].item() == pytest.approx(0.7, abs=1e-3)
    counts, _ = grid_counts(db, settings, "current")
    assert counts == {G1: 4, G5: 1, G2: 0, G3: 4}


def test_unmapped_pairs_keep_their_code():
    successors = pd.DataFrame(
        {
            "code": [G1, G4],
            "generation_low": [1, 1],
            "generation_high": [1, 1],
            "current_code": [G5, None],
            "share": [0.6, None],
        }
    )
    generations_ = pd.Series([1, 2, 1, 1])
    codes = pd.Series([G1, G1, G4, G2])
    current, unmapped = attribution.attribute(generations_, codes, successors)
    # G1 recorded in generation 2 is a later row, still valid: it keeps its code.
    assert list(current) == [G5, G1, G4, G2]
    assert list(unmapped) == [False, False, True, False]


def test_unknown_attribution_names_the_field():
    with pytest.raises(InputError) as info:
        attribution.check_attribution("latest")
    assert info.value.field == "attribution"
