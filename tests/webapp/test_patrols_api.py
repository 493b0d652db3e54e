"""The patrols JSON API: uploads, scopes of members and officers, leads, coverage, the optimiser."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from geogrid.models import PatrolAssignment, PatrolTrack
from tests.patrol_factories import (
    add_assignment,
    add_member,
    add_station,
    add_team,
    add_track_row,
)

G1, G2 = "370705001001001", "370705001001002"
G3, G4 = "370705002001001", "370705002001002"
COUNTY = "370705"
STATION = "370705-PS01"
T1, T2 = "PA-370705-0001", "PA-370705-0002"
DAY = "2026-03-02"  # a Monday
#: 09:00 Shanghai time on DAY.
NINE = datetime(2026, 3, 2, 1, tzinfo=UTC)


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()["error"]


def ok(response, status=200):
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    return response.get_json()


@pytest.fixture
def patrol(db, city, auth_headers):
    """A station over the four grids; T1 (member 队员一) works G1, T2 (队员二) works G3."""
    add_station(db, STATION, lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    t1 = add_team(db, T1, STATION, base=(119.005, 36.71), capacity=4)
    t2 = add_team(db, T2, STATION, base=(119.035, 36.71), capacity=4)
    m1 = add_member(db, "队员一", team=t1, user_name="duiyuan1")
    add_member(db, "队员二", team=t2, user_name="duiyuan2")
    add_assignment(db, t1, G1, starts=time(8), ends=time(20))
    add_assignment(db, t2, G3, starts=time(8), ends=time(20))
    return {
        "t1": t1,
        "t2": t2,
        "m1": m1,
        "member1": auth_headers("duiyuan1", "patrol_member", COUNTY),
        "member2": auth_headers("duiyuan2", "patrol_member", COUNTY),
        "officer": auth_headers("jingguan", "station_officer", COUNTY),
        "worker": auth_headers("wang", "grid_worker", G1),
        "admin": auth_headers("root", "administrator"),
    }


def write_gpx(path, *, points=20, start=NINE):
    """A walk east through G1 along lat 36.705, one fix every 30 s (~0.9 m/s)."""
    rows = []
    for i in range(points):
        moment = (start + timedelta(seconds=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f'<trkpt lat="36.705" lon="{119.002 + 0.0003 * i:.6f}"><time>{moment}</time>')
        rows[-1] += "</trkpt>"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="tests" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>morning</name><trkseg>{''.join(rows)}</trkseg></trk></gpx>",
        encoding="utf-8",
    )
    return path


def upload(client, headers, path, **form):
    data = {"team": T1, "coord_type": "wgs84", **form}
    with path.open("rb") as stream:
        data["file"] = (stream, path.name)
        return client.post(
            "/api/patrols/tracks", data=data, headers=headers, content_type="multipart/form-data"
        )


# -- authentication and the organisation ---------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/patrols/stations", "/api/patrols/teams", f"/api/patrols/coverage?date={DAY}"]
)
def test_every_endpoint_needs_a_token(client, patrol, path):
    error = error_of(client.get(path), 401)
    assert error["code"] == "unauthenticated"
    assert client.post("/api/patrols/leads", json={}).status_code == 401


def test_other_roles_are_forbidden(client, patrol):
    error = error_of(client.get("/api/patrols/stations", headers=patrol["worker"]), 403)
    assert error["field"] == "role"


def test_stations_and_teams_in_scope(client, patrol):
    stations = ok(client.get("/api/patrols/stations", headers=patrol["officer"]))["stations"]
    assert [(s["code"], s["grid_codes"]) for s in stations] == [(STATION, [G1, G2, G3, G4])]
    teams = ok(client.get("/api/patrols/teams", headers=patrol["officer"]))["teams"]
    assert [t["mark"] for t in teams] == [T1, T2]
    own = ok(client.get("/api/patrols/teams", headers=patrol["member1"]))["teams"]
    assert [t["mark"] for t in own] == [T1]


# -- assignments and what a member may see --------------------------------------------------


def test_a_member_sees_their_own_assignments_only(client, patrol):
    headers = patrol["member1"]
    listed = ok(client.get("/api/patrols/assignments", headers=headers))["assignments"]
    assert [(a["team_mark"], a["grid_code"]) for a in listed] == [(T1, G1)]
    mine = ok(client.get(f"/api/patrols/assignments?team={T1}&date={DAY}", headers=headers))
    assert [a["grid_code"] for a in mine["assignments"]] == [G1]
    error = error_of(client.get(f"/api/patrols/assignments?team={T2}", headers=headers), 403)
    assert (error["code"], error["field"]) == ("forbidden", "team")
    error = error_of(client.get(f"/api/patrols/assignments?grid={G3}", headers=headers), 403)
    assert error["field"] == "grid"
    everything = ok(client.get("/api/patrols/assignments", headers=patrol["officer"]))
    assert [a["grid_code"] for a in everything["assignments"]] == [G1, G3]


def test_conflicts_and_unassigned_grids(client, patrol, db):
    add_assignment(db, patrol["t1"], G2, starts=time(12), ends=time(14))
    query = f"?station={STATION}&date={DAY}"
    conflicts = ok(client.get(f"/api/patrols/conflicts{query}", headers=patrol["officer"]))
    assert [(c["team_mark"], c["kind"]) for c in conflicts["conflicts"]] == [(T1, "two_places")]
    unassigned = ok(client.get(f"/api/patrols/unassigned{query}", headers=patrol["officer"]))
    assert [g["grid_code"] for g in unassigned["unassigned"]] == [G4]
    # A scoped officer names the station; a member does not analyse.
    error = error_of(client.get("/api/patrols/conflicts", headers=patrol["officer"]), 400)
    assert error["field"] == "station"
    error_of(client.get(f"/api/patrols/unassigned{query}", headers=patrol["member1"]), 403)


# -- tracks --------------------------------------------------------------------------------


def test_uploading_a_gpx_twice_stores_it_once(client, patrol, tmp_path, db):
    path = write_gpx(tmp_path / "早班巡逻.GPX")
    first = ok(upload(client, patrol["member1"], path), 201)
    [track] = first["tracks"]
    assert (track["team_id"], track["member_id"]) == (patrol["t1"].id, patrol["m1"].id)
    assert (track["point_count"], track["source_format"], track["coord_type"]) == (
        20,
        "gpx",
        "wgs84",
    )
    assert first["created"] is True
    assert first["uploads"][0]["quality"]["received"] == 20
    again = ok(upload(client, patrol["member1"], path), 200)
    assert again["created"] is False
    assert [t["id"] for t in again["tracks"]] == [track["id"]]
    assert db.scalar(select(func.count()).select_from(PatrolTrack)) == 1


@pytest.mark.parametrize(
    ("form", "status", "field"),
    [
        ({"coord_type": ""}, 400, "coord_type"),
        ({"coord_type": "mars"}, 400, "coord_type"),
        ({"team": "PA-370705-9999"}, 400, "team"),
        ({"team": ""}, 400, "team"),
        ({"member": "abc"}, 400, "member"),
        ({"member": "999999"}, 400, "member_id"),
    ],
)
def test_bad_upload_fields_are_named(client, patrol, tmp_path, form, status, field):
    response = upload(client, patrol["admin"], write_gpx(tmp_path / "walk.gpx"), **form)
    assert error_of(response, status)["field"] == field


def test_a_broken_or_unknown_file_is_refused(client, patrol, tmp_path):
    broken = tmp_path / "broken.gpx"
    broken.write_text("<gpx><trk><trkseg><trkpt lat=", encoding="utf-8")
    assert error_of(upload(client, patrol["admin"], broken), 422)["code"] == "invalid_file"
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    assert error_of(upload(client, patrol["admin"], text), 400)["field"] == "file"
    response = client.post(
        "/api/patrols/tracks", data={"team": T1, "coord_type": "wgs84"}, headers=patrol["admin"]
    )
    assert error_of(response, 400)["field"] == "file"


def test_a_csv_upload_and_the_size_limit(client, app, patrol, tmp_path):
    path = tmp_path / "walk.csv"
    rows = [f"{119.002 + 0.0003 * i:.6f},36.705,2026-03-02 09:{i:02d}:00" for i in range(15)]
    path.write_text("经度,纬度,时间\n" + "\n".join(rows) + "\n", encoding="utf-8")
    body = ok(upload(client, patrol["officer"], path, coord_type="cgcs2000"), 201)
    [track] = body["tracks"]
    assert (track["source_format"], track["member_id"]) == ("csv", None)
    assert track["started_at"] == "2026-03-02T09:00:00+08:00"
    app.config["MAX_CONTENT_LENGTH"] = 200
    assert error_of(upload(client, patrol["officer"], path), 413)["code"] == "too_large"


def test_a_member_uploads_and_reads_only_their_own_teams_tracks(client, patrol, tmp_path):
    path = write_gpx(tmp_path / "walk.gpx")
    error = error_of(upload(client, patrol["member2"], path), 403)
    assert error["field"] == "team"
    ok(upload(client, patrol["member1"], path), 201)
    mine = ok(client.get(f"/api/patrols/tracks?date={DAY}", headers=patrol["member1"]))
    assert [t["team_id"] for t in mine["tracks"]] == [patrol["t1"].id]
    theirs = ok(client.get(f"/api/patrols/tracks?date={DAY}", headers=patrol["member2"]))
    assert theirs["tracks"] == []
    response = client.get(f"/api/patrols/tracks?date={DAY}&team={T1}", headers=patrol["member2"])
    assert error_of(response, 403)["field"] == "team"
    assert error_of(client.get("/api/patrols/tracks", headers=patrol["admin"]), 400)["field"] == (
        "date"
    )
    response = client.get("/api/patrols/tracks?date=02/03/2026", headers=patrol["admin"])
    assert error_of(response, 400)["field"] == "date"


# -- check-ins and leads -------------------------------------------------------------------


def lead(**changes):
    body = {
        "team": T1,
        "lon": 119.005,
        "lat": 36.705,
        "coord_type": "cgcs2000",
        "at": "2026-03-02T09:30:00+08:00",
        "category": "environment",
        "note": "可疑车辆 a suspicious van by the gate",
    }
    return {**body, **changes}


def test_a_checkin_is_placed_and_a_retry_returns_it(client, patrol):
    body = {key: lead()[key] for key in ("team", "lon", "lat", "coord_type", "at")}
    first = ok(client.post("/api/patrols/checkins", json=body, headers=patrol["member1"]), 201)
    assert (first["checkin"]["grid_code"], first["checkin"]["member_id"]) == (
        G1,
        patrol["m1"].id,
    )
    again = ok(client.post("/api/patrols/checkins", json=body, headers=patrol["member1"]))
    assert again["checkin"]["id"] == first["checkin"]["id"]


def test_leads_round_trip_with_idempotency(client, patrol):
    headers = {**patrol["member1"], "Idempotency-Key": "phone-1-0001"}
    first = ok(client.post("/api/patrols/leads", json=lead(), headers=headers), 201)
    filed = first["lead"]
    assert (filed["grid_code"], filed["status"], filed["reward"]) == (G1, "new", "pending")
    again = ok(client.post("/api/patrols/leads", json=lead(), headers=headers))
    assert (again["lead"]["id"], again["created"]) == (filed["id"], False)
    reused = client.post("/api/patrols/leads", json=lead(note="另一件事"), headers=headers)
    assert error_of(reused, 409)["code"] == "conflict"

    mine = ok(client.get("/api/patrols/leads", headers=patrol["member1"]))["leads"]
    assert [item["id"] for item in mine] == [filed["id"]]
    assert ok(client.get("/api/patrols/leads", headers=patrol["member2"]))["leads"] == []

    url = f"/api/patrols/leads/{filed['id']}/decision"
    refused = client.post(url, json={"status": "verified"}, headers=patrol["member1"])
    assert error_of(refused, 403)["field"] == "role"
    decided = ok(
        client.post(
            url,
            json={"status": "verified", "reward": "granted", "amount": 50},
            headers=patrol["officer"],
        )
    )["lead"]
    assert (decided["status"], decided["reward"], decided["reward_amount"]) == (
        "verified",
        "granted",
        50.0,
    )
    assert decided["decided_by"] == "jingguan"
    bad = client.post(url, json={"status": "closed", "amount": "lots"}, headers=patrol["officer"])
    assert error_of(bad, 400)["field"] == "amount"


def test_a_lead_with_an_unknown_field_or_no_body_is_refused(client, patrol):
    response = client.post("/api/patrols/leads", json=lead(colour="red"), headers=patrol["admin"])
    assert error_of(response, 400)["field"] == "colour"
    response = client.post("/api/patrols/leads", json=lead(at="yesterday"), headers=patrol["admin"])
    assert error_of(response, 400)["field"] == "at"


# -- coverage, gaps and the optimiser --------------------------------------------------------


def test_coverage_has_rows_for_a_track(client, patrol, db):
    lon = np.linspace(119.002, 119.008, 40)
    t = NINE.timestamp() + np.arange(40) * 30.0
    add_track_row(db, patrol["t1"], list(zip(lon, np.full(40, 36.705), t, strict=True)))
    body = ok(
        client.get(f"/api/patrols/coverage?date={DAY}&station={STATION}", headers=patrol["officer"])
    )
    rows = {row["grid_code"]: row for row in body["shifts"]}
    assert sorted(rows) == [G1, G3]
    assert rows[G1]["minutes_inside"] > 0 and rows[G1]["tracks"] == 1
    assert rows[G3]["tracks"] == 0
    assert body["parameters"]["station_code"] == STATION
    # The whole city is for administrators; members do not analyse.
    assert ok(client.get(f"/api/patrols/coverage?date={DAY}", headers=patrol["admin"]))["shifts"]
    error_of(client.get(f"/api/patrols/coverage?date={DAY}", headers=patrol["member1"]), 403)
    response = client.get(
        f"/api/patrols/coverage?date=x&station={STATION}", headers=patrol["admin"]
    )
    assert error_of(response, 400)["field"] == "date"


def test_gaps_list_unassigned_and_never_visited_grids(client, patrol):
    query = f"?date={DAY}&station={STATION}&days=14"
    body = ok(client.get(f"/api/patrols/gaps{query}", headers=patrol["officer"]))
    assert sorted(g["grid_code"] for g in body["unassigned"]) == [G2, G4]
    assert sorted(g["grid_code"] for g in body["never_visited"]) == [G1, G3]
    assert body["parameters"]["days"] == 14
    response = client.get(f"/api/patrols/gaps?date={DAY}&days=0", headers=patrol["admin"])
    assert error_of(response, 400)["field"] == "days"


def test_the_optimiser_dry_run_changes_nothing_and_commit_applies(client, patrol, db):
    def count():
        return db.scalar(select(func.count()).select_from(PatrolAssignment))

    before = count()
    dry = ok(
        client.post(
            "/api/patrols/assign",
            json={"station": STATION, "time_limit": 5},
            headers=patrol["officer"],
        )
    )
    assert dry["committed"] is False and dry["applied"] is None
    assert sorted(a["grid_code"] for a in dry["proposal"]["assignments"]) == [G1, G2, G3, G4]
    assert count() == before
    done = ok(
        client.post(
            "/api/patrols/assign",
            json={"station": STATION, "time_limit": 5, "commit": True},
            headers=patrol["admin"],
        )
    )
    assert done["committed"] is True and done["applied"]["added"]
    made = db.scalars(
        select(PatrolAssignment).where(PatrolAssignment.id.in_(done["applied"]["added"]))
    ).all()
    assert {(a.source, a.created_by) for a in made} == {("optimiser", "root")}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"station": STATION, "time_limit": 31}, "time_limit"),
        ({"station": STATION, "commit": "yes"}, "commit"),
        ({"time_limit": 5}, "station"),
    ],
)
def test_bad_optimiser_requests_name_the_field(client, patrol, body, field):
    response = client.post("/api/patrols/assign", json=body, headers=patrol["admin"])
    assert error_of(response, 400)["field"] == field


def test_the_optimiser_is_not_for_members_or_other_stations(client, patrol, db, auth_headers):
    body = {"station": STATION}
    response = client.post("/api/patrols/assign", json=body, headers=patrol["member1"])
    assert error_of(response, 403)["field"] == "role"
    elsewhere = auth_headers("qita", "station_officer", "370705002")
    response = client.post("/api/patrols/assign", json=body, headers=elsewhere)
    assert error_of(response, 403)["field"] == "station"
