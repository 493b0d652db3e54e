"""The patrol member's "my area": the map's layers, this shift's visits, uploads, leads, scope.

Team T1 (member 队员一, user duiyuan1) works G1 and G2, team T2 (队员二) works G3 and G4,
both 08:00-20:00 daily, all for one station over the tiny city. The page's clock is set
to Monday 2 March 2026, 09:30 Shanghai time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from geogrid.models import PatrolLead, PatrolTrack
from geogrid.workdays import SHANGHAI
from tests.patrol_factories import add_assignment, add_member, add_station, add_team, add_track_row
from web import patrol_pages

G1, G2 = "370705001001001", "370705001001002"
G3, G4 = "370705002001001", "370705002001002"
COUNTY, STATION = "370705", "370705-PS01"
T1, T2 = "PA-370705-0001", "PA-370705-0002"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)
NINE = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def area(db, city, monkeypatch):
    """The station, two teams with two grids each, and the page's clock at 09:30."""
    add_station(db, STATION, lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    t1 = add_team(db, T1, STATION, base=(119.005, 36.71))
    t2 = add_team(db, T2, STATION, base=(119.035, 36.71))
    m1 = add_member(db, "队员一", team=t1, user_name="duiyuan1")
    add_member(db, "队员二", team=t2, user_name="duiyuan2")
    for team, grid in ((t1, G1), (t1, G2), (t2, G3), (t2, G4)):
        add_assignment(db, team, grid)
    monkeypatch.setattr(patrol_pages, "shanghai_now", lambda: NOW)
    return {"t1": t1, "t2": t2, "m1": m1}


@pytest.fixture
def member(login_as, area):
    return login_as("patrol_member", COUNTY, name="duiyuan1")


def write_gpx(path, *, points=20, start=NINE, lat=36.705):
    """A walk east through G1, one fix every 30 s (~0.9 m/s)."""
    rows = []
    for i in range(points):
        moment = (start + timedelta(seconds=30 * i)).astimezone(UTC)
        rows.append(
            f'<trkpt lat="{lat}" lon="{119.002 + 0.0003 * i:.6f}">'
            f"<time>{moment:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>"
        )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="tests" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>早班</name><trkseg>{''.join(rows)}</trkseg></trk></gpx>",
        encoding="utf-8",
    )
    return path


def upload(client, path, **form):
    data = {"team": T1, "coord_type": "wgs84", "csrf_token": client.csrf_token, **form}
    with path.open("rb") as stream:
        data["file"] = (stream, path.name)
        return client.post("/patrol/tracks", data=data, content_type="multipart/form-data")


def not_visited(html: str) -> list[str]:
    """The grid codes listed as not visited this shift."""
    found = re.search(r'<ul class="gg-pt-list gg-pt-not-visited">(.*?)</ul>', html, re.S)
    return re.findall(r"<code>(\d+)</code>", found.group(1)) if found else []


def map_script(html: str) -> str:
    """The map's script, its non-ASCII text as written: JSON there escapes it as \\uXXXX."""
    script = html[html.index("L.map(") :]
    return script.encode("ascii").decode("unicode_escape")


# -- the page -------------------------------------------------------------------------------


def test_my_area_shows_the_team_grids_on_a_map_with_its_layers(member):
    response = member.get("/patrol")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "我的责任区" in html
    script = map_script(html)
    # Only the team's own grids are on the map, with code and name on hover.
    assert G1 in script and G2 in script and G3 not in script and G4 not in script
    assert "东关第1网格" in script
    for layer in ("责任网格（按班次）", "本班次巡查情况", "巡逻轨迹", "线索"):
        assert layer in script, layer
    assert "L.control.layers" in script
    assert 'id="gg-pt-lead-form"' in html and 'enctype="multipart/form-data"' in html
    # The shift 08:00-20:00 is running at 09:30 and no track has reached either grid yet.
    assert "每天 08:00–20:00" in html
    assert not_visited(html) == [G1, G2]


def test_a_track_in_the_shift_marks_its_grid_visited(member, area, db):
    fixes = [(119.005 + 1e-5 * (i % 2), 36.71, NINE.timestamp() + 60 * i) for i in range(11)]
    track = add_track_row(db, area["t1"], fixes)
    html = member.get("/patrol").get_data(as_text=True)
    assert not_visited(html) == [G2]
    # The track is listed and drawn, with its times in Shanghai.
    assert f"track={track.id}" in html and "2026-03-02 09:00" in html
    assert '"track": "' + str(track.id) + '"' in map_script(html)


def test_english_on_request(member):
    html = member.get("/patrol?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Not visited yet this shift" in html and "Upload a track" in html
    assert "Visited this shift" in map_script(html)
    assert "我的责任区" not in html


def test_no_shift_running_is_said(member, monkeypatch):
    monkeypatch.setattr(patrol_pages, "shanghai_now", lambda: NOW.replace(hour=21))
    html = member.get("/patrol").get_data(as_text=True)
    assert "现在（21:30）本队没有在岗班次。" in html
    assert not_visited(html) == []


def test_a_user_in_no_team_is_told_so(login_as, area):
    stranger = login_as("patrol_member", COUNTY, name="nobody")
    response = stranger.get("/patrol")
    assert response.status_code == 200
    assert "您还不是在岗巡防队的队员" in response.get_data(as_text=True)


# -- what a member may open -----------------------------------------------------------------


def test_another_team_is_forbidden_by_url(member, area, db):
    assert member.get(f"/patrol?team={T1}").status_code == 200
    response = member.get(f"/patrol?team={T2}")
    assert response.status_code == 403 and "无权进行此操作" in response.get_data(as_text=True)
    assert member.get(f"/patrol/grids/{G1}").status_code == 200
    for grid in (G3, G4, "370705009009009"):
        assert member.get(f"/patrol/grids/{grid}").status_code == 403, grid
    theirs = add_track_row(
        db,
        area["t2"],
        [(119.025, 36.71, NINE.timestamp()), (119.026, 36.71, NINE.timestamp() + 60)],
    )
    assert member.get(f"/patrol?track={theirs.id}").status_code == 403
    assert member.get("/patrol?track=999999").status_code == 403


def test_the_grid_page_shows_its_shift_and_status(member):
    html = member.get(f"/patrol/grids/{G2}").get_data(as_text=True)
    assert "东关第2网格" in html and "未巡查" in html
    assert f'<option value="{G2}" selected>' in html
    script = map_script(html)
    assert G2 in script and G1 not in script


@pytest.mark.parametrize("role", ["grid_worker", "station_officer", "official", "planner"])
def test_other_roles_may_not_open_my_area(login_as, area, role):
    other = login_as(role, COUNTY)
    assert other.get("/patrol").status_code == 403
    assert other.get(f"/patrol/grids/{G1}").status_code == 403


def test_a_visitor_is_sent_to_sign_in(client, area):
    response = client.get("/patrol")
    assert response.status_code == 302 and "/login?next=/patrol" in response.location


# -- uploading a track ----------------------------------------------------------------------


def test_a_gpx_upload_stores_the_track_and_shows_its_quality(member, area, db, tmp_path):
    path = write_gpx(tmp_path / "早班.gpx")
    response = upload(member, path)
    assert response.status_code == 302
    stored = db.scalars(select(PatrolTrack)).all()
    assert len(stored) == 1
    track = stored[0]
    assert (track.team_id, track.member_id, track.uploaded_by) == (
        area["t1"].id,
        area["m1"].id,
        "duiyuan1",
    )
    assert response.location.endswith(f"/patrol?team={T1}&track={track.id}")
    html = member.get(response.location).get_data(as_text=True)
    assert f"轨迹 {track.id} 已保存。" in html
    assert f"轨迹 {track.id}：质量报告" in html
    assert re.search(r"<dt>收到的定位点</dt><dd>20</dd>", html)
    # The walk through G1 is a visit of this shift.
    assert not_visited(html) == [G2]

    again = upload(member, path)
    assert again.status_code == 302 and again.location.endswith(f"track={track.id}")
    assert db.scalar(select(func.count()).select_from(PatrolTrack)) == 1
    assert f"该轨迹此前已上传，为轨迹 {track.id}。" in member.get(again.location).get_data(
        as_text=True
    )


def test_an_upload_needs_the_csrf_token(member, db, tmp_path):
    response = upload(member, write_gpx(tmp_path / "a.gpx"), csrf_token="")
    assert response.status_code == 403
    assert "csrf_token" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(PatrolTrack)) == 0


def test_an_upload_for_another_team_or_of_a_bad_file_is_refused(member, db, tmp_path):
    assert upload(member, write_gpx(tmp_path / "a.gpx"), team=T2).status_code == 403
    bad = tmp_path / "notes.txt"
    bad.write_text("not a track", encoding="utf-8")
    assert upload(member, bad).status_code == 400
    broken = tmp_path / "broken.gpx"
    broken.write_text("<gpx><trk>", encoding="utf-8")
    assert upload(member, broken).status_code == 422
    nul = write_gpx(tmp_path / "a.gpx")
    with nul.open("rb") as stream:
        data = {"team": T1, "coord_type": "wgs84", "csrf_token": member.csrf_token}
        data["file"] = (stream, "a\x00b.gpx")
        response = member.post("/patrol/tracks", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    far = write_gpx(tmp_path / "far.gpx", lat=30.0)
    assert upload(member, far).status_code == 400  # outside every grid: nothing stored
    assert db.scalar(select(func.count()).select_from(PatrolTrack)) == 0


# -- filing a lead --------------------------------------------------------------------------


def lead_form(client, **changes):
    form = {
        "csrf_token": client.csrf_token,
        "team": T1,
        "lead_key": "key-1",
        "lon": "119.005",
        "lat": "36.715",
        "grid": "",
        "category": "public_order",
        "note": "夜间有人在小区门口聚集",
    }
    form.update(changes)
    return form


def test_a_lead_filed_by_clicking_the_map(member, area, db):
    response = member.post("/patrol/leads", data=lead_form(member))
    assert response.status_code == 302 and response.location.endswith(f"/patrol?team={T1}")
    lead = db.scalars(select(PatrolLead)).one()
    assert (lead.grid_code, lead.coord_type, lead.member_id) == (G1, "cgcs2000", area["m1"].id)
    assert lead.at == NOW
    html = member.get(response.location).get_data(as_text=True)
    assert f"线索 {lead.id} 已报送（{G1}）。" in html
    assert "夜间有人在小区门口聚集" in html and "新线索" in html
    # Pressing again sends the same key: the first lead, not a second one.
    again = member.post("/patrol/leads", data=lead_form(member))
    assert again.status_code == 302
    assert db.scalar(select(func.count()).select_from(PatrolLead)) == 1


def test_a_lead_filed_by_choosing_a_grid(member, db):
    form = lead_form(member, lon="", lat="", grid=G2, at="2026-03-02T01:15:00.000Z")
    assert member.post("/patrol/leads", data=form).status_code == 302
    lead = db.scalars(select(PatrolLead)).one()
    assert lead.grid_code == G2
    assert lead.at == datetime(2026, 3, 2, 9, 15, tzinfo=SHANGHAI)


def test_a_lead_needs_a_place_of_the_team_and_the_csrf_token(member, db):
    assert member.post("/patrol/leads", data=lead_form(member, lon="", lat="")).status_code == 400
    other = lead_form(member, lon="", lat="", grid=G3)
    assert member.post("/patrol/leads", data=other).status_code == 403
    assert member.post("/patrol/leads", data=lead_form(member, team=T2)).status_code == 403
    assert member.post("/patrol/leads", data=lead_form(member, lon="east")).status_code == 400
    assert member.post("/patrol/leads", data=lead_form(member, category="")).status_code == 400
    assert member.post("/patrol/leads", data=lead_form(member, csrf_token="")).status_code == 403
    assert member.post("/patrol/leads", data=lead_form(member, note="a\x00b")).status_code == 400
    assert db.scalar(select(func.count()).select_from(PatrolLead)) == 0
