"""Patrol tracks: cleaning reported, stored once by digest, refused outside, loaded in bulk."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select

from geogrid.crs import wgs84_to_gcj02
from geogrid.errors import Conflict, CoordinateError, InputError
from geogrid.models import PatrolTrack
from geogrid.trackclean import CleaningRules, clean
from geogrid.trackfiles import TrackFixes
from geogrid.tracks import (
    load_tracks,
    store_track,
    track_digest,
    tracks_frame,
)
from tests.factories import load_tiny_city, load_tiny_city_by_cli
from tests.patrol_factories import add_member, add_station, add_team

#: 2026-03-02 08:00 Shanghai time.
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()
DAY = date(2026, 3, 2)
#: About 1.1 m of latitude per 1e-5 degree; a walk of ~1.4 m/s at one fix per 5 s.
STEP_DEG = 6e-5


def walk(n: int = 120, *, lon0: float = 119.005, lat0: float = 36.705, dt: float = 5.0, t0=START):
    """A straight walk north-east inside grid 370705001001001 (WGS84 = storage here)."""
    steps = np.arange(n)
    lon = lon0 + steps * STEP_DEG * 0.3
    lat = lat0 + steps * STEP_DEG
    return lon, lat, t0 + steps * dt


def fixes(lon, lat, t, coord_type="wgs84", name="walk"):
    return TrackFixes(lon, lat, t, coord_type, source_format="gpx", name=name)


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    station = add_station(db, "370705-PS01", lon=119.01, lat=36.71, grids=["370705001001001"])
    office = add_station(
        db,
        "370705-PS01-1",
        lon=119.03,
        lat=36.71,
        kind="community_office",
        parent_code=station.code,
    )
    team = add_team(db, "PA-370705-0001", station.code)
    other = add_team(db, "PA-370705-0002", office.code)
    member = add_member(db, "张三", team=team)
    return {"team": team, "other": other, "member": member}


def count_tracks(db) -> int:
    return db.scalar(select(func.count()).select_from(PatrolTrack))


def stored_coordinates(db, track_id: int) -> np.ndarray:
    wkb = db.scalar(select(func.ST_AsBinary(PatrolTrack.geom)).where(PatrolTrack.id == track_id))
    return shapely.get_coordinates(shapely.from_wkb(bytes(wkb)), include_m=True)


# -- cleaning, no database ---------------------------------------------------------------


def test_a_clean_walk_is_kept_whole():
    cleaned = clean(fixes(*walk()))
    assert [len(piece) for piece in cleaned.pieces] == [120]
    quality = cleaned.quality
    assert (quality.kept, quality.parts, quality.spike_fixes, quality.jumps) == (120, 1, 0, [])


def test_a_spike_that_returns_is_dropped_and_reported():
    lon, lat, t = walk()
    lon[40] += 0.01  # ~890 m out and back within 10 s
    lon[70:72] -= 0.02  # two fixes together far off: one excursion
    cleaned = clean(fixes(lon, lat, t))
    assert cleaned.quality.spike_fixes == 3
    assert [spike["fixes"] for spike in cleaned.quality.spikes] == [1, 2]
    assert cleaned.quality.parts == 1
    kept_t = cleaned.pieces[0].t
    assert t[40] not in kept_t and t[70] not in kept_t and t[69] in kept_t


def test_a_cold_start_at_the_beginning_is_dropped():
    lon, lat, t = walk()
    lat[:2] -= 0.03  # the first two fixes 3 km south, then the real walk
    cleaned = clean(fixes(lon, lat, t))
    assert cleaned.quality.spike_fixes == 2
    assert cleaned.pieces[0].t[0] == t[2]


def test_a_jump_that_does_not_return_splits_the_track():
    lon, lat, t = walk()
    lat[60:] += 0.005  # 555 m in 5 s, and the walk goes on from there
    cleaned = clean(fixes(lon, lat, t))
    assert [len(piece) for piece in cleaned.pieces] == [60, 60]
    (jump,) = cleaned.quality.jumps
    assert jump["distance_m"] == pytest.approx(563, abs=2)  # the jump and one step
    assert jump["speed_mps"] > 100
    assert cleaned.quality.spike_fixes == 0  # nothing dropped, only split


def test_a_higher_speed_limit_keeps_a_car_patrol_whole():
    lon, lat, t = walk(dt=1.0)
    lat = 36.705 + np.arange(120) * 2.2e-4  # ~24 m/s
    with pytest.raises(InputError) as caught:
        clean(fixes(lon, lat, t))
    assert "119 of 119 steps are faster than 15 m/s" in caught.value.message
    assert "higher speed limit" in caught.value.message
    fast = clean(fixes(lon, lat, t), CleaningRules(max_speed_mps=35))
    assert fast.quality.parts == 1 and not fast.quality.jumps


def test_duplicate_and_out_of_order_times_are_reported():
    lon, lat, t = walk()
    t[10] = t[9]  # a repeated time: the first of the file is kept
    t[20], t[21] = t[21], t[20]
    cleaned = clean(fixes(lon, lat, t))
    assert cleaned.quality.duplicate_times == 1
    assert cleaned.quality.reordered == 1
    piece = cleaned.pieces[0]
    assert len(piece) == 119 and np.all(np.diff(piece.t) > 0)
    assert piece.lon[9] == lon[9]


def test_a_phone_left_in_a_drawer_is_trimmed_and_reported():
    rng = np.random.default_rng(4)
    lon, lat, t = walk(n=60)
    # Two hours at one spot, a fix every 30 s jittering a few metres.
    still = 240
    drawer_t = t[-1] + 30.0 * np.arange(1, still + 1)
    drawer_lon = lon[-1] + rng.normal(0, 3e-5, still)
    drawer_lat = lat[-1] + rng.normal(0, 3e-5, still)
    after_lon, after_lat, after_t = walk(n=60, lon0=lon[-1], lat0=lat[-1], t0=drawer_t[-1] + 5)
    cleaned = clean(
        fixes(
            np.r_[lon, drawer_lon, after_lon],
            np.r_[lat, drawer_lat, after_lat],
            np.r_[t, drawer_t, after_t],
        )
    )
    (spell,) = cleaned.quality.idle
    assert spell["minutes"] >= 119
    assert cleaned.quality.idle_fixes_dropped == spell["dropped"] > 150
    first, second = cleaned.pieces
    # The first 30 minutes of the spell are kept as presence, then the track splits.
    assert first.t[-1] - t[-1] == pytest.approx(30 * 60, abs=60)
    assert second.t[0] >= drawer_t[-1] - 30 * 60


def test_a_fixed_post_shorter_than_the_idle_limit_is_kept():
    lon, lat, t = walk(n=20)
    post_t = t[-1] + 30.0 * np.arange(1, 41)  # 20 minutes at a school gate
    cleaned = clean(
        fixes(np.r_[lon, np.full(40, lon[-1])], np.r_[lat, np.full(40, lat[-1])], np.r_[t, post_t])
    )
    assert cleaned.quality.idle == [] and cleaned.quality.kept == 60


def test_a_long_gap_splits_the_track():
    lon, lat, t = walk()
    t[50:] += 3600
    cleaned = clean(fixes(lon, lat, t))
    assert [len(piece) for piece in cleaned.pieces] == [50, 70]
    (gap,) = cleaned.quality.gaps
    assert gap["minutes"] == pytest.approx(60.1, abs=0.1)


def test_unusable_fixes_are_counted_and_swapped_tracks_refused():
    lon, lat, t = walk()
    lon[5], lat[5] = 0.0, 0.0  # a phone without a fix
    lat[6] = np.nan
    assert clean(fixes(lon, lat, t)).quality.unusable == 2
    lon, lat, t = walk()
    with pytest.raises(CoordinateError) as caught:
        clean(fixes(lat, lon, t))
    assert caught.value.field == "lat"
    assert caught.value.details["swapped"] is True


def test_cleaning_rules_are_checked():
    with pytest.raises(InputError) as caught:
        CleaningRules(max_speed_mps=0)
    assert caught.value.field == "max_speed_mps"


# -- storing -------------------------------------------------------------------------------


def test_store_writes_a_linestring_m_with_every_time(db, settings, city):
    lon, lat, t = walk()
    result = store_track(
        db,
        settings,
        fixes(lon, lat, t),
        team_mark="PA-370705-0001",
        member_id=city["member"].id,
        uploaded_by="tester",
    )
    assert result.created and result.tracks == [result.track]
    track = result.track
    assert track.point_count == 120 and track.member_id == city["member"].id
    assert track.started_at == datetime.fromtimestamp(t[0], UTC)
    assert track.quality["kept"] == 120 and track.quality["part"] == 1
    assert track.quality["outside_fixes"] == 0
    coordinates = stored_coordinates(db, track.id)
    np.testing.assert_array_equal(coordinates, np.column_stack((lon, lat, t)))
    assert db.scalar(select(func.ST_SRID(PatrolTrack.geom))) == 4490


def test_a_gcj02_track_is_stored_in_cgcs2000(db, settings, city):
    lon, lat, t = walk()
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert np.abs(gcj_lon - lon).max() > 1e-3  # hundreds of metres apart
    result = store_track(
        db,
        settings,
        fixes(gcj_lon, gcj_lat, t, "gcj02"),
        team_mark="PA-370705-0001",
        uploaded_by="tester",
    )
    coordinates = stored_coordinates(db, result.track.id)
    np.testing.assert_allclose(coordinates[:, 0], lon, atol=1e-8)
    np.testing.assert_allclose(coordinates[:, 1], lat, atol=1e-8)
    assert result.track.coord_type == "gcj02"


def test_uploading_the_same_track_again_returns_the_first(db, settings, city):
    first = store_track(
        db, settings, fixes(*walk()), team_mark="PA-370705-0001", uploaded_by="tester"
    )
    again = store_track(
        db, settings, fixes(*walk(), name="again"), team_mark="PA-370705-0001", uploaded_by="x"
    )
    assert not again.created
    assert again.track.id == first.track.id
    assert count_tracks(db) == 1
    with pytest.raises(Conflict) as caught:
        store_track(db, settings, fixes(*walk()), team_mark="PA-370705-0002", uploaded_by="x")
    assert caught.value.field == "team"


def test_a_split_upload_stores_every_piece_once(db, settings, city):
    lon, lat, t = walk()
    t[50:] += 3600
    result = store_track(
        db, settings, fixes(lon, lat, t), team_mark="PA-370705-0001", uploaded_by="tester"
    )
    assert [track.point_count for track in result.tracks] == [50, 70]
    assert [track.quality["part"] for track in result.tracks] == [1, 2]
    assert result.tracks[0].quality["gaps_count"] == 1
    again = store_track(
        db, settings, fixes(lon, lat, t), team_mark="PA-370705-0001", uploaded_by="tester"
    )
    assert [track.id for track in again.tracks] == [track.id for track in result.tracks]
    assert count_tracks(db) == 2


def test_a_track_entirely_outside_is_refused_and_nothing_written(db, settings, city):
    lon, lat, t = walk(lon0=119.2)  # ~14 km east of the tiny city
    with pytest.raises(CoordinateError) as caught:
        store_track(
            db, settings, fixes(lon, lat, t), team_mark="PA-370705-0001", uploaded_by="tester"
        )
    assert "entirely outside" in caught.value.message
    assert caught.value.details["nearest"] == "370705002001002"
    assert count_tracks(db) == 0


def test_fixes_partly_outside_are_kept_and_counted(db, settings, city):
    lon, lat, t = walk(lon0=119.038)  # walks out of the east edge at 119.04
    result = store_track(
        db, settings, fixes(lon, lat, t), team_mark="PA-370705-0001", uploaded_by="tester"
    )
    outside = int((lon > 119.04).sum())
    assert outside > 0
    assert result.quality.outside_fixes == outside == result.track.quality["outside_fixes"]
    assert result.track.point_count == 120


def test_unknown_team_and_foreign_member_are_input_errors(db, settings, city):
    with pytest.raises(InputError) as caught:
        store_track(db, settings, fixes(*walk()), team_mark="PA-NOPE", uploaded_by="tester")
    assert caught.value.field == "team"
    with pytest.raises(InputError) as caught:
        store_track(
            db,
            settings,
            fixes(*walk()),
            team_mark="PA-370705-0002",
            member_id=city["member"].id,
            uploaded_by="tester",
        )
    assert caught.value.field == "member_id"
    assert count_tracks(db) == 0


def test_tracks_frame_reads_the_day_with_times_as_m(db, settings, city):
    store_track(db, settings, fixes(*walk()), team_mark="PA-370705-0001", uploaded_by="tester")
    lon, lat, t = walk(lon0=119.035)
    store_track(db, settings, fixes(lon, lat, t), team_mark="PA-370705-0002", uploaded_by="t")
    frame = tracks_frame(db, day=DAY)
    assert list(frame["team_mark"]) == ["PA-370705-0001", "PA-370705-0002"]
    m = shapely.get_coordinates(frame.geometry.values[1], include_m=True)[:, 2]
    np.testing.assert_array_equal(m, t)
    # The station's own teams and those of its community offices.
    assert len(tracks_frame(db, day=DAY, station_code="370705-PS01")) == 2
    assert list(tracks_frame(db, day=DAY, station_code="370705-PS01-1")["team_mark"]) == [
        "PA-370705-0002"
    ]
    assert len(tracks_frame(db, day=DAY, team_ids=[city["team"].id])) == 1
    assert tracks_frame(db, day=date(2026, 3, 3)).empty


# -- many at a time ------------------------------------------------------------------------


def test_bulk_load_round_trips_hundreds_of_tracks(db, settings, city):
    rng = np.random.default_rng(7)
    uploads, expected = [], {}
    for k in range(300):
        n = int(rng.integers(20, 80))
        lon0, lat0 = rng.uniform(119.001, 119.035), rng.uniform(36.701, 36.712)
        lon, lat, t = walk(n, lon0=lon0, lat0=lat0, t0=START + 60.0 * k)
        mark = "PA-370705-0001" if k % 2 else "PA-370705-0002"
        piece = fixes(lon, lat, t, name=f"t{k}")
        uploads.append((mark, piece))
        expected[track_digest(piece)] = np.column_stack((lon, lat, t))
    uploads.append(("PA-NOPE", fixes(*walk())))
    uploads.append(("PA-370705-0001", fixes(*walk(lon0=119.3))))
    summary = load_tracks(db, settings, uploads, uploaded_by="bulk")
    assert (summary.uploads, summary.stored, summary.existing) == (302, 300, 0)
    assert [(at, mark) for at, mark, _ in summary.rejected] == [
        (300, "PA-NOPE"),
        (301, "PA-370705-0001"),
    ]
    assert "entirely outside" in summary.rejected[1][2]
    rows = db.execute(
        select(PatrolTrack.digest, func.ST_AsBinary(PatrolTrack.geom), PatrolTrack.quality)
    ).all()
    assert len(rows) == 300
    for digest, wkb, quality in rows:
        coordinates = shapely.get_coordinates(shapely.from_wkb(bytes(wkb)), include_m=True)
        np.testing.assert_array_equal(coordinates, expected[digest])
        assert quality["kept"] == len(coordinates)
    again = load_tracks(db, settings, uploads[:10], uploaded_by="bulk")
    assert (again.stored, again.existing, again.other_team) == (0, 10, 0)
    mark, piece = uploads[0]
    swapped = "PA-370705-0001" if mark == "PA-370705-0002" else "PA-370705-0002"
    theirs = load_tracks(db, settings, [(swapped, piece)], uploaded_by="bulk")
    assert (theirs.stored, theirs.existing, theirs.other_team) == (0, 1, 1)
    assert count_tracks(db) == 300


# -- the command line ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_city(make_cli, tmp_path_factory):
    """A fresh database with the tiny city active, a station and a team, through the CLI."""
    run = make_cli()
    folder = tmp_path_factory.mktemp("city")
    load_tiny_city_by_cli(run, folder)
    run(
        "patrols",
        "add-station",
        "370705-PS01",
        "--name",
        "东关派出所",
        "--at",
        "119.01",
        "36.71",
        "--crs",
        "wgs84",
        "--grids",
        "370705001001001",
        "--commit",
    )
    run(
        "patrols",
        "add-team",
        "PA-370705-0001",
        "--name",
        "东关一队",
        "--station",
        "370705-PS01",
        "--commit",
    )
    return run


def test_upload_track_from_the_command_line(cli_city, tmp_path):
    lon, lat, t = walk()
    t[60:] += 3600  # an hour without signal: two tracks
    lines = ["lon,lat,time"] + [
        f"{x:.7f},{y:.7f},{datetime.fromtimestamp(s, UTC).isoformat()}"
        for x, y, s in zip(lon, lat, t, strict=True)
    ]
    path = tmp_path / "walk.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    upload = ("patrols", "upload-track", str(path), "--team", "PA-370705-0001", "--crs", "wgs84")
    dry = cli_city(*upload).output
    assert "would store 'walk' as 2 track(s)" in dry and "dry run" in dry
    assert "1 gaps without fixes, track split there" in dry
    assert "0 tracks" in cli_city("patrols", "tracks", "--date", "2026-03-02").output
    stored = cli_city(*upload, "--commit").output
    assert "stored 'walk' as track(s)" in stored
    assert "already stored" in cli_city(*upload, "--commit").output
    listed = json.loads(cli_city("patrols", "tracks", "--date", "2026-03-02", "--json").output)
    assert [track["point_count"] for track in listed] == [60, 60]
    assert listed[0]["quality"]["gaps_count"] == 1
    far = cli_city(*upload, "--crs", "EPSG:4549", ok=False)  # degrees read as metres
    assert far.exit_code == 1 and "error [" in far.output and "Nothing was stored" in far.output


def test_checkin_lead_and_decision_from_the_command_line(cli_city):
    point = (
        "--team",
        "PA-370705-0001",
        "--lon",
        "119.005",
        "--lat",
        "36.71",
        "--crs",
        "wgs84",
        "--at",
        "2026-03-02T09:30:00",
    )
    checked = cli_city("patrols", "checkin", *point, "--commit").output
    assert "recorded check-in" in checked and "370705001001001 [inside]" in checked
    filed = json.loads(
        cli_city(
            "patrols",
            "lead",
            *point,
            "--category",
            "public_order",
            "--note",
            "可疑车辆",
            "--key",
            "k1",
            "--json",
            "--commit",
        ).output
    )
    assert (filed["grid_code"], filed["status"], filed["created"]) == (
        "370705001001001",
        "new",
        True,
    )
    unknown = cli_city("patrols", "lead", *point, "--category", "ufo", "--note", "x", ok=False)
    assert unknown.exit_code == 1 and "error [category]" in unknown.output
    lead_id = str(filed["id"])
    refused = cli_city(
        "patrols",
        "decide-lead",
        lead_id,
        "--status",
        "verified",
        "--role",
        "patrol_member",
        "--scope",
        "370705",
        "--commit",
        ok=False,
    )
    assert refused.exit_code == 1 and "error [actor]" in refused.output
    officer = ("--role", "station_officer", "--scope", "370705", "--user", "王警官")
    decided = cli_city(
        "patrols",
        "decide-lead",
        lead_id,
        "--status",
        "verified",
        "--reward",
        "granted",
        "--amount",
        "200",
        *officer,
        "--commit",
    ).output
    assert f"lead {lead_id}: verified, reward granted 200 (by 王警官)" in decided
    listed = json.loads(
        cli_city("patrols", "leads", "--status", "verified", *officer, "--json").output
    )
    assert [lead["id"] for lead in listed] == [filed["id"]]
