"""Coverage gaps: risk from weighted incidents, hot grids short of the dose, ranked by hand.

The tiny city's four grids answer to one station on Monday 2 March 2026. Team A works
G1 and G2 08:00-12:00 and meets the target in G1 only; team B works G4 and never goes;
nobody works G3. Risk (last 28 days): G1 4 x public order (3.0) = 12, G2 3 x dispute
(1.5) = 4.5, G3 2 x safety hazard (2.0) = 4, G4 1 x environment (0.5) = 0.5.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest

from geogrid.errors import InputError
from geogrid.gaps import coverage_gaps, grid_risk
from geogrid.workdays import SHANGHAI
from tests.factories import add_incident, load_tiny_city
from tests.patrol_factories import add_assignment, add_station, add_team, add_track_row

DAY = date(2026, 3, 2)
G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
#: A point well inside each grid (lon, lat).
INSIDE = {G1: (119.005, 36.71), G2: (119.015, 36.71), G3: (119.025, 36.71), G4: (119.035, 36.71)}


def at(hour: float) -> datetime:
    return datetime(2026, 3, 2, tzinfo=SHANGHAI) + timedelta(hours=hour)


def stay(db, team, grid: str, start: datetime, minutes: int) -> None:
    """A member about a point of ``grid`` from ``start``: a fix a minute."""
    lon, lat = INSIDE[grid]
    fixes = [(lon + 1e-5 * (i % 2), lat, start.timestamp() + 60 * i) for i in range(minutes + 1)]
    add_track_row(db, team, fixes)


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    add_station(db, "370705-PS01", lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    a = add_team(db, "PA-370705-0001", "370705-PS01")
    b = add_team(db, "PA-370705-0002", "370705-PS01")
    for grid in (G1, G2):
        add_assignment(db, a, grid, starts=time(8), ends=time(12))
    add_assignment(db, b, G4, starts=time(8), ends=time(12))
    for hour in (8.5, 10, 11.5):  # G1: gaps of 30, 78, 78 and 18 minutes
        stay(db, a, G1, at(hour), 12)
    stay(db, a, G2, at(9), 12)  # G2: then nothing from 09:12 to 12:00
    counted = [(G1, "public_order", 4), (G2, "dispute", 3), (G3, "safety_hazard", 2)]
    for grid, category, n in [*counted, (G4, "environment", 1)]:
        for k in range(n):
            add_incident(db, grid_code=grid, reported_at=at(-24 * (k + 1)), category=category)
    # Not risk: rejected, older than 28 days, after the day.
    add_incident(db, grid_code=G4, reported_at=at(-30), category="public_order", state="rejected")
    add_incident(db, grid_code=G3, reported_at=at(-24 * 29), category="public_order")
    add_incident(db, grid_code=G2, reported_at=at(25), category="public_order")
    return db


def test_risk_is_incidents_weighted_by_category(city):
    risk = grid_risk(city, until=at(24), days=28).set_index("grid_code")
    assert risk["risk"].to_dict() == {G1: 12.0, G2: 4.5, G3: 4.0, G4: 0.5}
    assert risk["incidents"].to_dict() == {G1: 4, G2: 3, G3: 2, G4: 1}
    # The window includes its first instant and leaves out its last (G4's one incident).
    assert set(grid_risk(city, until=at(-24), days=1)["grid_code"]) == {G1, G2, G3}
    assert set(grid_risk(city, until=at(-72), days=1)["grid_code"]) == {G1}
    assert grid_risk(city, until=at(24), days=28, grid_codes=[G3])["grid_code"].tolist() == [G3]
    with pytest.raises(InputError):
        grid_risk(city, until=at(24), days=0)


def test_gaps_are_hot_grids_short_of_the_dose_ranked_by_score(city, settings):
    result = coverage_gaps(city, settings, day=DAY, min_risk=4)
    gaps = result.gaps
    assert gaps["grid_code"].tolist() == [G3, G2]  # G1 is hot but its dose was met
    g3, g2 = gaps.to_dict("records")
    # G3: nobody works it, so all of its (no) shift time is unprotected: 4 x 1.
    assert (g3["rank"], g3["shifts"], g3["shortfall"], g3["score"]) == (1, 0, 1.0, 4.0)
    # G2: one 12-minute visit at 09:00 protects 08:00-10:12 of 08:00-12:00.
    assert g2["shortfall"] == pytest.approx(1 - 132 / 240)
    assert g2["score"] == pytest.approx(4.5 * (1 - 132 / 240))
    assert (g2["shifts"], g2["shifts_met"], g2["qualifying_visits"]) == (1, 0, 1)
    assert g2["teams"] == "PA-370705-0001"
    assert result.unassigned["grid_code"].tolist() == [G3]
    assert result.never_visited["grid_code"].tolist() == [G4]
    assert result.never_visited["teams"].tolist() == ["PA-370705-0002"]
    assert result.parameters["hot_grids"] == 3


def test_hot_is_the_top_quantile_of_grids_with_risk(city, settings):
    result = coverage_gaps(city, settings, day=DAY)
    # Risks 0.5, 4, 4.5, 12: the 0.9 quantile is 4.5 + 0.7 * 7.5 = 9.75; G1 alone is hot.
    assert result.parameters["hot_threshold"] == pytest.approx(9.75)
    assert result.gaps.empty
    wider = coverage_gaps(city, settings, day=DAY, hot_quantile=0.5)
    assert wider.gaps["grid_code"].tolist() == [G2]  # threshold 4.25: G1 met, G3 below


def test_a_hotspot_is_hot_whatever_its_incidents(city, settings):
    result = coverage_gaps(city, settings, day=DAY, min_risk=100, hotspot_grids=[G4])
    [row] = result.gaps.to_dict("records")
    assert (row["grid_code"], row["hot_because"], row["visits"]) == (G4, "hotspot", 0)
    assert row["score"] == pytest.approx(0.5)


def test_a_station_scopes_risk_and_gaps(city, settings):
    add_station(city, "370705-PS02", lon=119.03, lat=36.71, grids=[G3])
    result = coverage_gaps(city, settings, day=DAY, station_code="370705-PS02", min_risk=1)
    assert result.risk["grid_code"].tolist() == [G3]
    assert result.gaps["grid_code"].tolist() == [G3]


def test_bad_quantile_is_refused(city, settings):
    with pytest.raises(InputError) as caught:
        coverage_gaps(city, settings, day=DAY, hot_quantile=1.0)
    assert caught.value.field == "hot_quantile"


def test_the_result_is_json_ready_and_printable(city, settings):
    result = coverage_gaps(city, settings, day=DAY, min_risk=4)
    body = json.loads(json.dumps(result.as_dict(), ensure_ascii=False))
    assert [gap["grid_code"] for gap in body["gaps"]] == [G3, G2]
    assert body["unassigned"][0]["station_codes"] == ["370705-PS01"]
    lines = result.lines()
    assert lines[0].startswith("2 coverage gaps among 3 hot grids")
    assert G3 in lines[1] and "score 4.00" in lines[1]
    assert np.isfinite(body["gaps"][1]["shortfall"])


def test_gaps_from_the_command_line(make_cli, tmp_path):
    from tests.factories import load_tiny_city_by_cli

    run = make_cli()
    load_tiny_city_by_cli(run, tmp_path)
    grids = ",".join([G1, G2])
    station = ("--at", "119.01", "36.71", "--crs", "cgcs2000", "--grids", grids, "--commit")
    run("patrols", "add-station", "S1", "--name", "东关派出所", *station)
    run("patrols", "add-team", "PA-370705-0001", "--name", "一队", "--station", "S1", "--commit")
    shift = ("--days", "daily", "--from", "08:00", "--to", "12:00", "--valid-from", "2026-01-01")
    run("patrols", "assign-team", "PA-370705-0001", G1, *shift, "--commit")
    body = json.loads(run("patrols", "gaps", "--date", "2026-03-02", "--json").output)
    assert body["gaps"] == []
    assert [grid["grid_code"] for grid in body["unassigned"]] == [G2]
    assert [grid["grid_code"] for grid in body["never_visited"]] == [G1]
    printed = run("patrols", "gaps", "--date", "2026-03-02", "--days", "7").output
    assert "0 coverage gaps" in printed and f"no team: {G2}" in printed
    assert f"assigned, never visited: {G1}" in printed
    out = tmp_path / "gaps.csv"
    assert (
        "wrote 0 gaps" in run("patrols", "gaps", "--date", "2026-03-02", "--csv", str(out)).output
    )
    assert out.read_text(encoding="utf-8-sig").startswith("rank,grid_code,risk")
    refused = run("patrols", "gaps", "--date", "2026-03-02", "--quantile", "2", ok=False)
    assert refused.exit_code == 1 and "hot_quantile" in refused.output
