"""Coverage measured: known answers on hand-made squares, and PostGIS agreeing on the city.

The pure tests work in metres on a 1 km square grid ``G`` = (0, 0)-(1000, 1000), with
walks at 1 m/s, so seconds are metres. Shifts run on Monday 2 March 2026, Shanghai time.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Float, bindparam, func, select

from geogrid.coverage import coverage_for_day, measure_coverage
from geogrid.coverage_dosage import DosageTarget
from geogrid.coverage_pieces import Pieces, clip_pieces
from geogrid.coverage_time import Edges, inside_spells
from geogrid.errors import InputError
from geogrid.generations import current_generation, metric_srid_of
from geogrid.models import Area, PatrolTrack
from geogrid.workdays import SHANGHAI
from tests.factories import load_tiny_city
from tests.patrol_factories import add_assignment, add_station, add_team, add_track_row

DAY = date(2026, 3, 2)
G = shapely.box(0, 0, 1000, 1000)
H = shapely.box(1000, 0, 2000, 1000)


def at(hour: float) -> datetime:
    """Shanghai time on DAY (hours past midnight; 24+ is the next day)."""
    return datetime(2026, 3, 2, tzinfo=SHANGHAI) + timedelta(hours=hour)


def grids(**polygons) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"grid_code": list(polygons)}, geometry=list(polygons.values()))


def track(points, start: datetime, *, track_id=1, team_id=1, speed=1.0) -> pd.DataFrame:
    """Fixes at the vertices of ``points`` walked at ``speed`` m/s from ``start``."""
    xy = np.asarray(points, dtype=float)
    legs = np.hypot(*np.diff(xy, axis=0).T)
    t = start.timestamp() + np.r_[0.0, np.cumsum(legs)] / speed
    return pd.DataFrame(
        {"track_id": track_id, "team_id": team_id, "x": xy[:, 0], "y": xy[:, 1], "t": t}
    )


def stay(x, y, start: datetime, minutes: float, *, track_id, team_id=1) -> pd.DataFrame:
    """A member standing about at (x, y) for ``minutes``: a fix a minute, a metre apart."""
    n = int(minutes) + 1
    t = start.timestamp() + np.linspace(0, minutes * 60, n)
    xs = x + (np.arange(n) % 2)
    return pd.DataFrame({"track_id": track_id, "team_id": team_id, "x": xs, "y": y, "t": t})


def shifts(*rows) -> pd.DataFrame:
    """Rows (team_id, grid_code, starts_at, ends_at)."""
    frame = pd.DataFrame(rows, columns=["team_id", "grid_code", "starts_at", "ends_at"])
    frame["team_mark"] = [f"PA-{team}" for team in frame["team_id"]]
    return frame


def along_x(x0, x1, step=100.0, y=500.0):
    xs = np.arange(x0, x1 + step / 2, step)
    return np.column_stack([xs, np.full(len(xs), y)])


# -- one grid, one walk -------------------------------------------------------------------


def test_a_straight_walk_across_the_square():
    # Fixes every 100 m, two of them exactly on the boundary, 08:30 onwards at 1 m/s.
    fixes = track(along_x(-200, 1200), at(8.5))
    result = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(8), at(10))))
    [row] = result.shifts.to_dict("records")
    assert row["minutes_inside"] == pytest.approx(1000 / 60)
    assert row["visits"] == 1
    assert row["first_visit_at"] == at(8.5) + timedelta(seconds=200)
    assert row["last_visit_at"] == at(8.5) + timedelta(seconds=1200)
    # Longest gap: from the visit's end (08:50) to the shift's end (10:00).
    assert row["longest_gap_min"] == pytest.approx(70)
    # A 100 m band across the square; the caps lie outside it.
    assert row["reach_share"] == pytest.approx(0.1, abs=1e-12)
    [visit] = result.visits.to_dict("records")
    assert visit["minutes"] == pytest.approx(1000 / 60)


def test_an_l_shaped_walk_covers_two_bands_and_a_polygonal_corner():
    # East along y=300 to x=700, then north out of the square. Inside: 700 m + 700 m.
    fixes = track([(-100, 300), (700, 300), (700, 1100)], at(8))
    result = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(8), at(12))))
    [row] = result.shifts.to_dict("records")
    assert row["minutes_inside"] == pytest.approx(1400 / 60)
    # Two 100 m bands of 700 m, less their 50 x 50 overlap, plus the outer corner: a
    # quarter circle drawn as PostGIS draws it, 8 chords of pi/16 (area 4 r^2 sin(pi/16)).
    corner = 4 * 50**2 * math.sin(math.pi / 16)
    expected = (70_000 + 70_000 - 2_500 + corner) / 1_000_000
    assert row["reach_share"] == pytest.approx(expected, abs=1e-9)


def test_a_walk_along_the_boundary_is_in_both_grids():
    fixes = track([(1000, -100), (1000, 1100)], at(8))
    result = measure_coverage(
        fixes, grids(G=G, H=H), shifts((1, "G", at(8), at(9)), (1, "H", at(8), at(9)))
    )
    assert list(result.shifts["minutes_inside"]) == pytest.approx([1000 / 60, 1000 / 60])
    assert list(result.shifts["visits"]) == [1, 1]


def test_a_pass_shorter_than_the_minimum_dwell_is_no_visit():
    # Cutting the corner: 70 m east and 20 m south inside, 90 s.
    fixes = track([(-50, 20), (70, 20), (70, -50)], at(8))
    result = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(8), at(9))))
    [row] = result.shifts.to_dict("records")
    assert row["minutes_inside"] == pytest.approx(1.5)
    assert row["visits"] == 0
    assert row["longest_gap_min"] == pytest.approx(60)
    assert pd.isna(row["first_visit_at"])
    longer = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(8), at(9))), min_dwell_s=60)
    assert list(longer.shifts["visits"]) == [1]


def test_short_excursions_are_one_visit_longer_ones_two():
    inside, outside = (500, 500), (500, -20)
    out_and_back = [inside, (500, 0), outside, (500, 0), inside]  # 40 m out: 40 s
    far = [inside, (500, 0), (500, -150), (500, 0), inside]  # 300 m out: 5 min
    one = measure_coverage(track(out_and_back, at(8)), grids(G=G), shifts((1, "G", at(8), at(9))))
    two = measure_coverage(track(far, at(8)), grids(G=G), shifts((1, "G", at(8), at(9))))
    assert list(one.shifts["visits"]) == [1]
    assert list(two.shifts["visits"]) == [2]
    # Minutes inside never include the time outside.
    assert one.shifts["minutes_inside"].iloc[0] == pytest.approx(1000 / 60)
    assert two.shifts["minutes_inside"].iloc[0] == pytest.approx(1000 / 60)


def test_a_track_is_cut_to_the_shift_window():
    # The walk starts at 07:55 inside and crosses 08:00 halfway along a leg.
    fixes = track(along_x(100, 900, step=400), at(8) - timedelta(seconds=300))
    result = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(8), at(9))))
    [row] = result.shifts.to_dict("records")
    assert row["minutes_inside"] == pytest.approx(500 / 60)
    # The reach is that of the part from x = 400 on: 500 m of band and two round caps
    # (the cut is an end like any other).
    assert row["reach_share"] == pytest.approx(0.05 + _caps(2), abs=1e-9)
    assert result.teams["hours_on_patrol"].iloc[0] == pytest.approx(500 / 3600)


def test_a_night_shift_runs_past_midnight():
    fixes = stay(500, 500, at(23 + 50 / 60), 30, track_id=1)
    result = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(22), at(30))))
    [row] = result.shifts.to_dict("records")
    assert row["minutes_inside"] == pytest.approx(30)
    assert row["visits"] == 1
    assert row["longest_gap_min"] == pytest.approx(6 * 60 - 20)
    assert result.teams["hours_on_patrol"].iloc[0] == pytest.approx(0.5)


def test_two_members_at_once_count_once():
    fixes = pd.concat(
        [stay(500, 500, at(8), 20, track_id=1), stay(600, 600, at(8.1), 20, track_id=2)]
    )
    result = measure_coverage(fixes, grids(G=G), shifts((1, "G", at(8), at(9))))
    [row] = result.shifts.to_dict("records")
    assert row["tracks"] == 2
    assert row["minutes_inside"] == pytest.approx(26)
    assert row["visits"] == 1
    assert result.teams["hours_on_patrol"].iloc[0] == pytest.approx(26 / 60)


def test_teams_hours_and_grids_visited_against_assigned():
    fixes = track(along_x(100, 900, step=100), at(8))  # 800 s in G only
    result = measure_coverage(
        fixes, grids(G=G, H=H), shifts((1, "G", at(8), at(12)), (1, "H", at(8), at(12)))
    )
    [team] = result.teams.to_dict("records")
    assert team["shifts"] == 2
    assert team["grids_assigned"] == 2
    assert team["grids_visited"] == 1
    assert team["grids_not_visited"] == ["H"]
    # One walk of 800 s serving two grids of one window: counted once.
    assert team["hours_on_patrol"] == pytest.approx(800 / 3600)
    assert list(result.shifts["reach_share"]) == pytest.approx([0.08 + _caps(2), 0.0])


def _caps(ends: int) -> float:
    """The share of G under ``ends`` round caps: half circles of 16 chords, as PostGIS draws."""
    return ends * 8 * 50**2 * math.sin(math.pi / 16) / 1e6


def test_a_shift_with_no_track_and_a_grid_not_in_the_generation():
    result = measure_coverage(
        track(along_x(100, 900), at(8), team_id=2),
        grids(G=G),
        shifts((1, "G", at(8), at(9)), (2, "X", at(8), at(9))),
    )
    first, second = result.shifts.to_dict("records")
    assert (first["tracks"], first["minutes_inside"], first["visits"]) == (0, 0, 0)
    assert first["reach_share"] == 0 and first["longest_gap_min"] == pytest.approx(60)
    assert math.isnan(second["minutes_inside"]) and math.isnan(second["reach_share"])


# -- dosage -----------------------------------------------------------------------------


def test_dosage_met_and_not_met_and_why():
    fixes = pd.concat(
        [
            # Team 1: 12 min at 08:30 and 10:20; gaps 30, 98 and 88 min.
            stay(500, 500, at(8.5), 12, track_id=1, team_id=1),
            stay(500, 500, at(10 + 1 / 3), 12, track_id=2, team_id=1),
            # Team 2: one 12-minute visit at 08:30, then 3 h 18 min without.
            stay(500, 500, at(8.5), 12, track_id=3, team_id=2),
            # Team 3: five-minute visits only.
            stay(500, 500, at(9), 5, track_id=4, team_id=3),
            stay(500, 500, at(11), 5, track_id=5, team_id=3),
        ]
    )
    rows = shifts(*[(team, "G", at(8), at(12)) for team in (1, 2, 3, 4)])
    result = measure_coverage(fixes, grids(G=G), rows)
    dosage = result.dosage.set_index("team_mark")
    assert list(dosage["met"]) == [True, False, False, False]
    assert dosage.loc["PA-1", "longest_gap_min"] == pytest.approx(98)
    assert dosage.loc["PA-1", "why"].startswith("met: 2 visits of 10 min or more")
    assert dosage.loc["PA-2", "why"] == (
        "longest gap 3 h 18 min without a visit of 10 min or more, over 2 h 0 min"
    )
    assert dosage.loc["PA-3", "why"] == "no visit of 10 min or more (longest 5 min)"
    assert dosage.loc["PA-4", "why"] == "no visit"
    # A longer gap allowed meets team 2's target; long visits are counted.
    relaxed = measure_coverage(
        fixes, grids(G=G), rows, target=DosageTarget(max_gap_min=240, max_visit_min=11)
    )
    assert list(relaxed.dosage["met"]) == [True, True, False, False]
    assert list(relaxed.dosage["visits_over_max"]) == [2, 1, 0, 0]


def test_dosage_rows_only_for_hot_grids():
    fixes = stay(500, 500, at(8.5), 12, track_id=1)
    result = measure_coverage(
        fixes,
        grids(G=G, H=H),
        shifts((1, "G", at(8), at(9)), (1, "H", at(8), at(9))),
        hot_grids={"H"},
    )
    assert list(result.dosage["grid_code"]) == ["H"]


def test_bad_parameters_are_refused():
    with pytest.raises(InputError) as caught:
        measure_coverage(track(along_x(0, 100), at(8)), grids(G=G), shifts(), reach_m=0)
    assert caught.value.field == "reach_m"
    with pytest.raises(InputError):
        DosageTarget(min_visit_min=20, max_visit_min=15)


def test_the_result_is_json_ready():
    result = measure_coverage(
        track(along_x(-200, 1200), at(8.5)), grids(G=G), shifts((1, "G", at(8), at(10)))
    )
    body = json.loads(json.dumps(result.as_dict()))
    assert body["shifts"][0]["first_visit_at"] == "2026-03-02T08:33:20+08:00"
    assert "_from" not in body["shifts"][0]
    assert body["parameters"]["target"]["max_gap_min"] == 120


# -- the geometry underneath --------------------------------------------------------------


@pytest.mark.parametrize("offset", [(0, 0), (512_345.678, 4_061_234.567)])
def test_time_inside_agrees_with_shapely_on_tangled_walks_and_odd_polygons(offset):
    """Time at 1 m/s equals the length shapely finds inside, for holes and concave shapes.

    Also far from the origin, where Gauss-Kruger coordinates (millions of metres) live.
    """
    rng = np.random.default_rng(5)
    donut = shapely.box(0, 0, 600, 600).difference(shapely.box(200, 200, 400, 400))
    comb = shapely.Polygon(
        [
            (0, 0),
            (600, 0),
            (600, 600),
            (450, 600),
            (450, 150),
            (300, 150),
            (300, 600),
            (150, 600),
            (150, 150),
            (0, 150),
        ]
    )
    polygons = np.array(
        [
            donut,
            comb,
            shapely.MultiPolygon([shapely.box(0, 0, 100, 100), shapely.box(500, 500, 600, 600)]),
        ]
    )
    steps = rng.normal(0, 40, (30, 200, 2))
    xy = 300 + np.cumsum(steps, axis=1)
    xy[:, ::17] = np.round(xy[:, ::17] / 50) * 50  # some fixes exactly on edges and vertices
    xy[0, 40:60] = [[150 + 5 * k, 150] for k in range(20)]  # along an edge of the comb
    polygons = shapely.transform(polygons, lambda c: c + offset)
    xy = xy + offset
    lengths = np.hypot(*np.diff(xy, axis=1).transpose(2, 0, 1))
    t = np.concatenate([np.zeros((30, 1)), np.cumsum(lengths, axis=1)], axis=1)
    pieces = Pieces(
        xy[..., 0].ravel(),
        xy[..., 1].ravel(),
        t.ravel(),
        np.arange(30) * 200,
        np.arange(1, 31) * 200,
    )
    pair_piece, pair_polygon = np.repeat(np.arange(30), 3), np.tile(np.arange(3), 30)
    inside = inside_spells(pieces, Edges.of(polygons), pair_piece, pair_polygon)
    lines = shapely.linestrings(xy)
    expected = shapely.length(shapely.intersection(lines[pair_piece], polygons[pair_polygon]))
    assert inside.seconds == pytest.approx(expected, abs=1e-6)
    spells = inside.spells
    assert (spells["ends"] > spells["starts"]).all()
    assert np.bincount(spells["pair"], spells["ends"] - spells["starts"], 90) == pytest.approx(
        expected, abs=1e-6
    )


def test_pieces_interpolate_the_window_ends():
    x, y, t = np.array([0.0, 100, 200]), np.array([0.0, 0, 100]), np.array([0.0, 100, 200])
    pieces = clip_pieces(
        x, y, t, np.array([0]), np.array([3]), [0, 0, 0], [50, 100, -5], [150, 250, 5]
    )
    assert pieces.x.tolist() == [50, 100, 150, 100, 200, 0, 5]
    assert pieces.y.tolist() == [0, 0, 50, 0, 100, 0, 0]
    assert pieces.t.tolist() == [50, 100, 150, 100, 200, 0, 5]
    assert (pieces.start.tolist(), pieces.stop.tolist()) == ([0, 3, 5], [3, 5, 7])


# -- the day, from the database, against PostGIS ------------------------------------------

G1, G2, G3 = "370705001001001", "370705001001002", "370705002001001"


@pytest.fixture
def patrolled(db, settings, tmp_path):
    """The tiny city, a station, two teams and their tracks of Monday 2 March 2026."""
    from datetime import time

    load_tiny_city(db, settings, tmp_path)
    station = add_station(db, "370705-PS01", lon=119.01, lat=36.71, grids=[G1, G2, G3])
    day_team = add_team(db, "PA-370705-0001", station.code)
    night_team = add_team(db, "PA-370705-0002", station.code)
    add_assignment(db, day_team, G1, starts=time(8), ends=time(12))
    add_assignment(db, day_team, G2, starts=time(8), ends=time(12))
    add_assignment(db, night_team, G3, starts=time(22), ends=time(6))
    # Day team: east along lat 36.705 from inside G1 across G2, 09:00 onwards, ~1.3 m/s,
    # with a wobble so the reach is not a plain band; then a loop that leaves the window.
    lon = np.linspace(119.002, 119.025, 80)
    lat = 36.705 + 0.0004 * np.sin(np.arange(80))
    t = at(9).timestamp() + np.arange(80) * 25.0
    add_track_row(db, day_team, list(zip(lon, lat, t, strict=True)))
    lon2 = 119.012 + 0.003 * np.cos(np.linspace(0, 6, 60))
    lat2 = 36.712 + 0.003 * np.sin(np.linspace(0, 6, 60))
    t2 = at(11.8).timestamp() + np.arange(60) * 30.0  # runs past the 12:00 end
    add_track_row(db, day_team, list(zip(lon2, lat2, t2, strict=True)))
    # Night team: 23:30 to 00:40 in G3, a track stored across midnight.
    lon3 = 119.025 + 0.002 * np.cos(np.linspace(0, 12, 140))
    lat3 = 36.710 + 0.006 * np.sin(np.linspace(0, 9, 140))
    t3 = at(23.5).timestamp() + np.arange(140) * 30.0
    add_track_row(db, night_team, list(zip(lon3, lat3, t3, strict=True)))
    return db


def test_coverage_for_day_reads_shifts_and_tracks(patrolled, settings):
    result = coverage_for_day(patrolled, settings, day=DAY)
    table = result.shifts.set_index("grid_code")
    assert list(table.index) == [G1, G2, G3]
    assert list(table["tracks"]) == [2, 2, 1]
    assert (table["minutes_inside"] > 0).all()
    # The night shift's track, stored with its fixes into the next day, is all counted.
    assert table.loc[G3, "minutes_inside"] == pytest.approx(139 * 30 / 60, abs=1e-6)
    assert table.loc[G3, "ends_at"] == at(30)
    teams = result.teams.set_index("team_mark")
    assert teams.loc["PA-370705-0002", "hours_on_patrol"] == pytest.approx(139 * 30 / 3600)
    assert teams.loc["PA-370705-0001", "grids_visited"] == 2
    # By station: the same shifts.
    assert (
        len(coverage_for_day(patrolled, settings, day=DAY, station_code="370705-PS01").shifts) == 3
    )
    # The day before has the same shifts and no track in them.
    assert (
        coverage_for_day(patrolled, settings, day=DAY - timedelta(1)).shifts["tracks"] == 0
    ).all()


def test_reach_agrees_with_postgis_buffer_union_intersect(patrolled, settings):
    result = coverage_for_day(patrolled, settings, day=DAY)
    srid = metric_srid_of(patrolled, current_generation(patrolled))
    for row in result.shifts.itertuples():
        assert abs(row.reach_share - _postgis_share(patrolled, row, srid)) < 1e-6


def _postgis_share(session, row, srid: int) -> float:
    """The straightforward SQL: each track cut to the window, buffered, united, intersected."""
    grid = (
        select(func.ST_Transform(Area.geom, srid))
        .where(Area.code == row.grid_code, Area.level == "grid")
        .scalar_subquery()
    )
    piece = func.ST_LocateBetween(
        PatrolTrack.geom, bindparam("m0", type_=Float), bindparam("m1", type_=Float)
    )
    reach = func.ST_Union(func.ST_Buffer(func.ST_Transform(piece, srid), 50.0))
    query = select(func.ST_Area(func.ST_Intersection(reach, grid)) / func.ST_Area(grid)).where(
        PatrolTrack.team_id == row.team_id,
        PatrolTrack.started_at < row.ends_at,
        PatrolTrack.ended_at > row.starts_at,
    )
    value = session.scalar(query, {"m0": row.starts_at.timestamp(), "m1": row.ends_at.timestamp()})
    return float(value or 0.0)


def test_the_command_line(make_cli, tmp_path):
    from tests.factories import load_tiny_city_by_cli

    run = make_cli()
    load_tiny_city_by_cli(run, tmp_path)
    run(
        "patrols",
        "add-station",
        "S1",
        "--name",
        "东关派出所",
        "--at",
        "119.01",
        "36.71",
        "--crs",
        "cgcs2000",
        "--grids",
        f"{G1},{G2}",
        "--commit",
    )
    run("patrols", "add-team", "PA-370705-0001", "--name", "一队", "--station", "S1", "--commit")
    run(
        "patrols",
        "assign-team",
        "PA-370705-0001",
        G1,
        "--days",
        "daily",
        "--from",
        "08:00",
        "--to",
        "12:00",
        "--valid-from",
        "2026-01-01",
        "--commit",
    )
    lines = ["lon,lat,time"] + [
        f"{119.002 + i * 0.0001:.6f},36.705,{(at(9) + timedelta(seconds=10 * i)).isoformat()}"
        for i in range(60)
    ]
    path = tmp_path / "walk.csv"
    path.write_text("\n".join(lines))
    run(
        "patrols",
        "upload-track",
        str(path),
        "--team",
        "PA-370705-0001",
        "--crs",
        "cgcs2000",
        "--commit",
    )
    body = json.loads(run("patrols", "coverage", "--date", "2026-03-02", "--json").output)
    [row] = body["shifts"]
    assert (row["grid_code"], row["visits"]) == (G1, 1)
    assert row["minutes_inside"] == pytest.approx(590 / 60)
    printed = run("patrols", "coverage", "--date", "2026-03-02").output
    assert "1 grid-shifts of 1 teams: 1 visited" in printed and G1 in printed
    out = tmp_path / "coverage.csv"
    run("patrols", "coverage", "--date", "2026-03-02", "--csv", str(out))
    assert out.exists() and (tmp_path / "coverage.teams.csv").exists()
    assert G1 in out.read_text(encoding="utf-8-sig")
    bad = run("patrols", "coverage", "--date", "2026-03-02", "--reach", "-5", ok=False)
    assert bad.exit_code == 1 and "reach_m" in bad.output
