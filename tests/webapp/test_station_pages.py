"""The station officer's page: the map's layers, dosage and gaps, the optimiser run and accepted.

One station answers for the tiny city's four grids on Monday 2 March 2026. Team T1 works
G1 08:00-12:00 and stays in it 12 minutes from 08:30 (the target met until 10:30, not
after); team T2 works G3 and never goes; nobody works G2 or G4. G3 has the incidents.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select

from geogrid.models import PatrolAssignment
from geogrid.workdays import SHANGHAI
from tests.factories import add_incident
from tests.patrol_factories import add_assignment, add_station, add_team, add_track_row

G1, G2 = "370705001001001", "370705001001002"
G3, G4 = "370705002001001", "370705002001002"
COUNTY, STATION = "370705", "370705-PS01"
T1, T2 = "PA-370705-0001", "PA-370705-0002"
DAY = "2026-03-02"


def at(hour: float) -> datetime:
    return datetime(2026, 3, 2, tzinfo=SHANGHAI) + timedelta(hours=hour)


@pytest.fixture
def station(db, city):
    add_station(db, STATION, lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    t1 = add_team(db, T1, STATION, base=(119.005, 36.71), capacity=4)
    t2 = add_team(db, T2, STATION, base=(119.035, 36.71), capacity=4)
    a1 = add_assignment(db, t1, G1, starts=time(8), ends=time(12))
    a3 = add_assignment(db, t2, G3, starts=time(8), ends=time(12))
    fixes = [(119.005 + 1e-5 * (i % 2), 36.71, at(8.5).timestamp() + 60 * i) for i in range(13)]
    add_track_row(db, t1, fixes)
    for k in range(5):
        add_incident(db, grid_code=G3, reported_at=at(-24 * (k + 1)), category="public_order")
    return {"t1": t1, "t2": t2, "a1": a1, "a3": a3}


@pytest.fixture
def officer(login_as, station):
    return login_as("station_officer", COUNTY, name="jingguan")


def map_script(html: str) -> str:
    """The map's script, its non-ASCII text as written (JSON there escapes it)."""
    return html[html.index("L.map(") :].encode("ascii").decode("unicode_escape")


def table(html: str, name: str) -> str:
    found = re.search(rf'<table class="gg-pt-table gg-pt-{name}">(.*?)</table>', html, re.S)
    assert found, name
    return found.group(1)


def run_optimiser(client, **form):
    data = {"csrf_token": client.csrf_token, "station": STATION, "time_limit": "5", **form}
    return client.post("/station/optimiser", data=data)


def token_of(html: str) -> str:
    return re.search(r'name="proposal" value="([^"]+)"', html).group(1)


def current(db) -> set[tuple[int, str]]:
    """(team id, grid) of the assignments not ended before 2 March 2026."""
    rows = db.scalars(select(PatrolAssignment)).all()
    return {(a.team_id, a.grid_code) for a in rows if a.valid_to is None}


# -- the page -------------------------------------------------------------------------------


def test_the_station_page_shows_assignments_coverage_gaps_and_dosage(officer):
    response = officer.get(f"/station?date={DAY}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    script = map_script(html)
    for layer in ("责任网格（按巡防队）", "实测覆盖：网格内分钟数", "防范盲区（高风险、巡查不足）"):
        assert layer in script, layer
    assert "L.control.layers" in script
    # The legend of teams, and each team's colour for its grid.
    assert T1 in script and T2 in script and "#1f77b4" in script and "#ff7f0e" in script
    # Dosage: G1 had a 12-minute visit but 3 h 18 min without one after; G3 none at all.
    dosage = table(html, "dosage")
    assert dosage.index(G3) < dosage.index(G1)  # unmet with the longer gap first
    assert re.search(rf"{G1}</code>.*?<td>1/1</td>\s*<td>12</td>\s*<td>198</td>", dosage, re.S)
    assert "✓" not in dosage
    # G3 is the hot grid no one visited: the first gap.
    gaps = table(html, "gaps")
    assert re.search(rf"<td>1</td><td><code>{G3}</code>", gaps)
    assert "目标：每次停留至少 10 分钟" in html


def test_the_share_of_area_reached_on_request(officer):
    html = officer.get(f"/station?date={DAY}&measure=share&lang=en").get_data(as_text=True)
    assert "Measured coverage: share of area" in map_script(html)
    assert '<option value="share" selected>' in html


def test_english_on_request(officer):
    html = officer.get(f"/station?date={DAY}&lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Assignment optimiser" in html and "Coverage gaps" in html and "Dosage" in html
    assert "Assigned grids (by team)" in map_script(html)


def test_a_station_outside_the_scope_is_forbidden(login_as, station):
    elsewhere = login_as("station_officer", "370705002")
    html = elsewhere.get("/station").get_data(as_text=True)
    assert "您的管辖范围内没有派出所。" in html
    assert elsewhere.get(f"/station?station={STATION}").status_code == 403
    assert run_optimiser(elsewhere).status_code == 403


@pytest.mark.parametrize("role", ["patrol_member", "grid_worker", "official", "planner"])
def test_other_roles_may_not_open_the_station_page(login_as, station, role):
    other = login_as(role, COUNTY)
    assert other.get("/station").status_code == 403
    assert run_optimiser(other).status_code == 403


def test_an_administrator_sees_every_station(login_as, station):
    admin = login_as("administrator")
    response = admin.get(f"/station?station={STATION}&date={DAY}")
    assert response.status_code == 200
    assert f'<option value="{STATION}" selected>' in response.get_data(as_text=True)


# -- the optimiser --------------------------------------------------------------------------


def test_the_optimiser_proposes_and_accepting_writes_the_assignments(officer, station, db):
    response = run_optimiser(officer, date=DAY)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "采纳此方案" in html and "与下界的差距" in html and "均衡（需调整的工作量比例）" in html
    script = map_script(html)
    assert "优化方案（按巡防队）" in script and "方案变化" in script
    diff = table(html, "diff")
    for grid in (G2, G4):  # every grid gets a team
        assert grid in diff
    assert current(db) == {(station["t1"].id, G1), (station["t2"].id, G3)}  # nothing yet

    accepted = officer.post(
        "/station/optimiser/accept",
        data={"csrf_token": officer.csrf_token, "proposal": token_of(html)},
    )
    assert accepted.status_code == 302 and accepted.location.endswith(f"station={STATION}")
    assert {grid for _, grid in current(db)} == {G1, G2, G3, G4}
    made = db.scalars(select(PatrolAssignment).where(PatrolAssignment.source == "optimiser"))
    assert {a.created_by for a in made} == {"jingguan"}
    assert "方案已采纳" in officer.get(accepted.location).get_data(as_text=True)


def test_the_optimisers_remarks_are_shown_in_the_pages_language(officer, station, db):
    for team in (station["t1"], station["t2"]):
        team.capacity = 0.01  # far below the grids' workload: a shortfall whatever the answer
    db.flush()
    chinese = run_optimiser(officer).get_data(as_text=True)
    assert "运力不足：这些网格每周需要" in chinese
    assert "not enough capacity" not in chinese
    data = {"csrf_token": officer.csrf_token, "station": STATION, "time_limit": "5"}
    english = officer.post("/station/optimiser?lang=en", data=data).get_data(as_text=True)
    assert "not enough capacity: the grids need" in english


def test_every_remark_of_the_optimiser_has_chinese_with_the_same_values():
    from geogrid.optimiser_proposal import NOTE_TEMPLATES
    from web.i18n import CATALOGUES

    for template in NOTE_TEMPLATES:
        chinese = CATALOGUES["zh_CN"][template]
        assert sorted(re.findall(r"%\((\w+)\)s", chinese)) == sorted(
            re.findall(r"%\((\w+)\)s", template)
        )


def test_a_locked_assignment_is_kept(officer, station, db):
    station["a1"].locked = True
    db.flush()
    html = run_optimiser(officer).get_data(as_text=True)
    assert "锁定保留" in table(html, "diff")
    officer.post(
        "/station/optimiser/accept",
        data={"csrf_token": officer.csrf_token, "proposal": token_of(html)},
    )
    db.refresh(station["a1"])
    assert station["a1"].valid_to is None


def test_accepting_needs_the_csrf_token_and_a_proposal_of_ones_own(officer, login_as, station, db):
    html = run_optimiser(officer).get_data(as_text=True)
    token = token_of(html)
    url = "/station/optimiser/accept"
    assert officer.post(url, data={"proposal": token}).status_code == 403
    assert run_optimiser(officer, csrf_token="").status_code == 403
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = officer.post(url, data={"csrf_token": officer.csrf_token, "proposal": forged})
    assert refused.status_code == 400
    colleague = login_as("station_officer", COUNTY)
    refused = colleague.post(url, data={"csrf_token": colleague.csrf_token, "proposal": token})
    assert refused.status_code == 403
    assert current(db) == {(station["t1"].id, G1), (station["t2"].id, G3)}


def test_a_proposal_locked_since_is_refused(officer, station, db):
    # Two teams on G3: the proposal gives each grid one team, so it ends one of them.
    both = add_assignment(db, station["t1"], G3, starts=time(8), ends=time(12))
    html = run_optimiser(officer).get_data(as_text=True)
    assert '<tr class="gg-pt-change-removed">' in html
    for assignment in (both, station["a3"]):
        assignment.locked = True
    db.flush()
    response = officer.post(
        "/station/optimiser/accept",
        data={"csrf_token": officer.csrf_token, "proposal": token_of(html)},
    )
    assert response.status_code == 409 and "was locked since" in response.get_data(as_text=True)
    assert both.valid_to is None and station["a3"].valid_to is None


def test_a_bad_date_is_named(officer):
    response = officer.get("/station?date=2026-02-30")
    assert response.status_code == 400 and "date" in response.get_data(as_text=True)


@pytest.mark.parametrize("limit", ["0", "31", "soon"])
def test_a_bad_time_limit_is_named(officer, limit):
    response = run_optimiser(officer, time_limit=limit)
    assert response.status_code == 400 and "time_limit" in response.get_data(as_text=True)
