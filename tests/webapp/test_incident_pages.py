"""The incident pages: the list and its filters within scope, one incident, actions, filing."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from factories import add_incident
from sqlalchemy import func, select

from geogrid.models import Incident, IncidentContact, IncidentEvent
from geogrid.workdays import SHANGHAI

G1, G2, G3 = "370705001001001", "370705001001002", "370705002001001"
TOWNSHIP_1 = "370705001"
COUNTY = "370705"
#: A point inside G1 (119.00-119.01) and one outside the tiny city.
INSIDE_G1 = {"lon": "119.005", "lat": "36.71"}
OUTSIDE = {"lon": "119.10", "lat": "36.80"}


def now() -> datetime:
    return datetime.now(SHANGHAI)


def count(db, model=Incident):
    return db.scalar(select(func.count()).select_from(model))


def page_of(response, status=200):
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:2000]
    assert "Traceback" not in html
    return html


def listed_ids(html):
    return [int(found) for found in re.findall(r'href="/incidents/(\d+)">#', html)]


def action_forms(html):
    return re.findall(r'<form class="gg-inc-action" id="action-([a-z_]+)"', html)


@pytest.fixture
def spread(db, city):
    """One reported incident in G1, G2 and G3, and one outside every grid near G1."""
    reported = now() - timedelta(hours=2)
    return {
        code: add_incident(db, grid_code=code, reported_at=reported) for code in (G1, G2, G3)
    } | {
        "outside": add_incident(
            db,
            grid_code=None,
            reported_at=reported,
            placement_detail={"nearest": {"code": G1, "distance_m": 900.0}},
        )
    }


# -- who may open what ---------------------------------------------------------------------


def test_visitors_are_sent_to_sign_in(client, city):
    for path in ("/incidents", "/incidents/new", "/incidents/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/login?next=")


@pytest.mark.parametrize(
    ("role", "path"),
    [("planner", "/incidents"), ("patrol_member", "/incidents"), ("planner", "/incidents/new")],
)
def test_other_roles_get_a_403_page(login_as, role, path):
    html = page_of(login_as(role, COUNTY).get(path), 403)
    assert "无权进行此操作" in html and "字段：您的角色" in html


def test_the_list_is_limited_to_the_scope_on_the_server(login_as, db, spread):
    worker = login_as("grid_worker", G1)
    assert listed_ids(page_of(worker.get("/incidents"))) == [spread[G1].id]
    township = login_as("official", TOWNSHIP_1)
    ids = listed_ids(page_of(township.get("/incidents")))
    # Newest first, ties by id: the outside one belongs to the official of its nearest grid.
    assert sorted(ids) == sorted([spread[G1].id, spread[G2].id, spread["outside"].id])
    # Asking for another township's area shows nothing of it.
    assert listed_ids(page_of(township.get(f"/incidents?area={G3}"))) == []
    # Department staff see what is with their department, wherever it is.
    spread[G3].department = "城市管理局"
    db.flush()
    department = login_as("department", COUNTY, name="chen", department="城市管理局")
    assert listed_ids(page_of(department.get("/incidents"))) == [spread[G3].id]


def test_an_incident_outside_the_scope_is_refused_by_url(login_as, spread):
    worker = login_as("grid_worker", G1)
    html = page_of(worker.get(f"/incidents/{spread[G3].id}"), 403)
    assert "outside the scope" in html and "垃圾堆放" not in html  # the refusal, not the incident
    page_of(worker.get("/incidents/999999"), 404)
    page_of(worker.get(f"/incidents/{spread['outside'].id}"), 403)


# -- the list ------------------------------------------------------------------------------


def test_list_filters_and_counts(login_as, db, city):
    official = login_as("official", COUNTY)
    day = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
    late = add_incident(db, grid_code=G1, reported_at=day, accept_due_at=day + timedelta(days=1))
    noisy = add_incident(
        db,
        grid_code=G3,
        reported_at=day + timedelta(days=2),
        category="noise",
        state="accepted",
        channel="hotline",
    )
    # 23:30 on 3 March in Shanghai is 15:30 UTC: still the 3rd for the filter.
    evening = add_incident(
        db, grid_code=G2, reported_at=datetime(2026, 3, 3, 23, 30, tzinfo=SHANGHAI)
    )
    everything = page_of(official.get("/incidents"))
    assert listed_ids(everything) == [noisy.id, evening.id, late.id]
    assert "共 3 件，超时 1 件" in everything
    assert listed_ids(page_of(official.get("/incidents?state=accepted"))) == [noisy.id]
    assert listed_ids(page_of(official.get("/incidents?state=open"))) == [
        noisy.id,
        evening.id,
        late.id,
    ]
    assert listed_ids(page_of(official.get("/incidents?category=noise"))) == [noisy.id]
    assert listed_ids(page_of(official.get("/incidents?channel=hotline"))) == [noisy.id]
    assert listed_ids(page_of(official.get(f"/incidents?area={TOWNSHIP_1}"))) == [
        evening.id,
        late.id,
    ]
    assert listed_ids(page_of(official.get("/incidents?overdue=1"))) == [late.id]
    period = "/incidents?since=2026-03-03&until=2026-03-03"
    assert listed_ids(page_of(official.get(period))) == [evening.id]
    # Overdue rows are marked; dates are shown in Shanghai time.
    assert re.search(
        rf'<tr class="gg-inc-overdue">\s*<td><a href="/incidents/{late.id}"', everything
    )
    assert "2026-03-03 23:30" in everything


def test_the_list_pages_through_many(login_as, db, city):
    official = login_as("official", COUNTY)
    start = now() - timedelta(days=3)
    made = [
        add_incident(db, grid_code=G1, reported_at=start + timedelta(minutes=i)) for i in range(51)
    ]
    first = page_of(official.get("/incidents"))
    assert len(listed_ids(first)) == 50 and "第 1 / 2 页" in first
    second = page_of(official.get("/incidents?page=2"))
    assert listed_ids(second) == [made[0].id]


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=30-02-2026", "上报日期从"), ("area=37x", "区域编码"), ("page=0", "页码"),
     ("since=2026-03-05&until=2026-03-01", "上报日期至"), ("channel=pigeon", "上报渠道")],
)  # fmt: skip
def test_bad_filters_name_their_field(login_as, city, query, field):
    html = page_of(login_as("official", COUNTY).get(f"/incidents?{query}"), 400)
    assert f"字段：{field}" in html


def test_the_pages_in_english(login_as, spread):
    official = login_as("official", COUNTY)
    html = page_of(official.get("/incidents?lang=en"))
    assert '<html lang="en">' in html
    assert "4 incidents, 0 overdue" in html and ">Reported</span>" in html
    assert "事件" not in html.split("<main", 1)[1]
    html = page_of(official.get(f"/incidents/{spread[G1].id}"))  # the cookie remembers
    assert "Inside the grid" in html and "Timeline" in html and "Whistle up (escalate)" in html
    assert "Environment and sanitation" in html


# -- one incident ---------------------------------------------------------------------------


def test_the_incident_page_shows_details_map_and_timeline(login_as, db, spread):
    incident = spread[G1]
    db.add(IncidentContact(incident_id=incident.id, name="张三", phone="138 0000 0000"))
    db.flush()
    html = page_of(login_as("official", COUNTY).get(f"/incidents/{incident.id}"))
    assert f"<code>{G1}</code> 东关第1网格" in html
    assert "位于网格内" in html and "环境卫生" in html
    assert "张三 138 0000 0000" in html  # an official in scope sees the contact
    # The map: the grid with code and name tooltips, the point, a legend, a layer control.
    script = html[html.index("L.map(") :]
    assert G1 in script and "L.control.layers" in script and "geogrid-legend" in html
    assert "circleMarker" in script
    assert "上报" in html  # the timeline's first step


def test_the_contact_is_hidden_from_roles_that_may_not_see_it(login_as, db, spread):
    incident = spread[G1]
    db.add(IncidentContact(incident_id=incident.id, name="张三", phone="138 0000 0000"))
    incident.state, incident.department = "dispatched", "城市管理局"
    db.flush()
    html = page_of(
        login_as("department", COUNTY, department="城市管理局").get(f"/incidents/{incident.id}")
    )
    assert "138 0000 0000" not in html and "张三" not in html


@pytest.mark.parametrize(
    ("role", "scope", "state", "expected"),
    [
        ("grid_worker", G1, "reported", ["accept", "reject", "escalate"]),
        ("official", COUNTY, "reported", ["accept", "reject", "escalate"]),
        ("official", COUNTY, "accepted", ["reject", "dispatch", "suspend", "escalate"]),
        ("grid_worker", G1, "resolved", ["evaluate"]),
        ("department", COUNTY, "reported", []),
        ("station_officer", COUNTY, "reported", []),
    ],
)
def test_the_actions_offered_follow_role_and_state(
    login_as, db, spread, role, scope, state, expected
):
    incident = spread[G1]
    incident.state, incident.department = state, "城市管理局"
    db.flush()
    client = login_as(role, scope, department="城市管理局" if role == "department" else "")
    html = page_of(client.get(f"/incidents/{incident.id}"))
    assert action_forms(html) == expected
    if not expected:
        assert "当前状态下您没有可办理的操作。" in html


def test_a_grid_worker_dispatches_only_to_themselves(login_as, db, spread):
    spread[G1].state = "accepted"
    db.flush()
    worker = login_as("grid_worker", G1, name="wang")
    html = page_of(worker.get(f"/incidents/{spread[G1].id}"))
    form = html[html.index('id="action-dispatch"') :].split("</form>")[0]
    assert '<input type="hidden" name="assignee" value="wang">' in form
    assert 'name="department"' not in form


def test_an_action_needs_the_csrf_token(login_as, db, spread):
    worker = login_as("grid_worker", G1)
    incident = spread[G1]
    response = worker.post(f"/incidents/{incident.id}/actions/accept", data={})
    assert "字段：csrf_token" in page_of(response, 403)
    db.refresh(incident)
    assert incident.state == "reported"


def test_an_action_moves_the_state_adds_an_event_and_redirects(login_as, db, spread):
    worker = login_as("grid_worker", G1, name="wang")
    incident = spread[G1]
    events_before = count(db, IncidentEvent)
    response = worker.post(
        f"/incidents/{incident.id}/actions/accept",
        data={"csrf_token": worker.csrf_token, "complex": "true", "note": "马上处理"},
    )
    assert response.status_code == 302
    assert response.location == f"/incidents/{incident.id}"
    db.refresh(incident)
    assert (incident.state, incident.complex) == ("accepted", True)
    assert count(db, IncidentEvent) == events_before + 1
    html = page_of(worker.get(response.location))
    assert "受理：已完成。" in html  # the flash message, once
    assert "马上处理" in html and "wang" in html  # in the timeline
    assert action_forms(html) == ["reject", "dispatch", "escalate"]


def test_a_whole_life_through_the_pages(login_as, db, spread):
    official = login_as("official", COUNTY, name="zhao")
    department = login_as("department", COUNTY, name="chen", department="城市管理局")
    incident = spread[G1]
    url = f"/incidents/{incident.id}/actions"

    def post(client, action, **data):
        response = client.post(f"{url}/{action}", data={"csrf_token": client.csrf_token, **data})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]

    post(official, "accept")
    post(official, "dispatch", department="城市管理局")
    post(department, "start")
    post(department, "request_extension", days="2", note="等材料")
    post(official, "approve_extension", days="1")
    post(department, "resolve", note="已清理")
    post(official, "evaluate", satisfied="true")
    db.refresh(incident)
    assert (incident.state, incident.extension_days, incident.satisfaction) == (
        "evaluated",
        1,
        "satisfied",
    )
    html = page_of(official.get(f"/incidents/{incident.id}"))
    for step in ("派遣", "处置", "申请延期", "批准延期", "办结", "评价", "已清理", "城市管理局"):
        assert step in html
    assert action_forms(html) == []


def test_an_illegal_action_by_url_is_a_409_page(login_as, spread):
    worker = login_as("grid_worker", G1)
    incident = spread[G1]
    response = worker.post(
        f"/incidents/{incident.id}/actions/resolve",
        data={"csrf_token": worker.csrf_token, "note": "done"},
    )
    html = page_of(response, 409)
    assert "当前状态不允许此操作" in html and "reported" in html
    assert f'href="/incidents/{incident.id}"' in html


def test_an_action_of_another_role_by_url_is_a_403_page(login_as, db, spread):
    incident = spread[G1]
    incident.state, incident.department = "dispatched", "城市管理局"
    db.flush()
    worker = login_as("grid_worker", G1)
    response = worker.post(
        f"/incidents/{incident.id}/actions/approve_extension",
        data={"csrf_token": worker.csrf_token},
    )
    assert "无权进行此操作" in page_of(response, 403)
    outsider = login_as("grid_worker", G3)
    response = outsider.post(
        f"/incidents/{incident.id}/actions/start", data={"csrf_token": outsider.csrf_token}
    )
    page_of(response, 403)
    db.refresh(incident)
    assert incident.state == "dispatched"


def test_an_unknown_action_is_a_400_page(login_as, spread):
    worker = login_as("grid_worker", G1)
    response = worker.post(
        f"/incidents/{spread[G1].id}/actions/explode", data={"csrf_token": worker.csrf_token}
    )
    assert "字段：操作" in page_of(response, 400)


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("reject", {}, "note"),
        ("escalate", {"note": " "}, "note"),
        ("accept", {"complex": "maybe"}, "complex"),
    ],
)
def test_a_badly_filled_action_is_shown_again_naming_the_field(
    login_as, db, spread, action, data, field
):
    worker = login_as("grid_worker", G1)
    incident = spread[G1]
    events_before = count(db, IncidentEvent)
    response = worker.post(
        f"/incidents/{incident.id}/actions/{action}", data={"csrf_token": worker.csrf_token, **data}
    )
    html = page_of(response, 400)
    assert 'class="gg-inc-error"' in html
    form = html[html.index(f'id="action-{action}"') :].split("</form>")[0]
    assert 'aria-invalid="true"' in form and f'id="error-{field}"' in form
    db.refresh(incident)
    assert incident.state == "reported" and count(db, IncidentEvent) == events_before


# -- filing ---------------------------------------------------------------------------------


def filing_form(client):
    html = page_of(client.get("/incidents/new"))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    return html, key


def file(client, key, **fields):
    data = {"csrf_token": client.csrf_token, "idempotency_key": key, "category": "environment"}
    data |= {"description": "垃圾堆放 rubbish piled up"} | fields
    return client.post("/incidents/new", data=data)


def test_the_filing_form(login_as, city):
    html, key = filing_form(login_as("grid_worker", G1))
    assert key.startswith("web-")
    assert '<input type="hidden" id="lon" name="lon"' in html
    assert "坐标按 cgcs2000 记录" in html
    assert f'<option value="{G1}">{G1} 东关第1网格</option>' in html
    assert G3 not in html  # only the grids of the scope are offered or drawn
    script = html[html.index("L.map(") :]
    assert 'map.on("click"' in script and 'byId("lon")' in script
    assert '<option value="environment">环境卫生</option>' in html
    # A second rendering is a second form: its own key.
    assert filing_form(login_as("grid_worker", G1))[1] != key


def test_filing_needs_the_csrf_token(login_as, db, city):
    worker = login_as("grid_worker", G1)
    _, key = filing_form(worker)
    response = worker.post(
        "/incidents/new", data={"idempotency_key": key, "category": "environment", **INSIDE_G1}
    )
    assert "字段：csrf_token" in page_of(response, 403)
    assert count(db) == 0


def test_a_patrol_member_files_by_clicking_only(login_as, city):
    html, _ = filing_form(login_as("patrol_member", G1))
    assert 'id="grid_code"' not in html


def test_filing_a_clicked_point(login_as, db, city):
    worker = login_as("grid_worker", G1, name="wang")
    _, key = filing_form(worker)
    response = file(worker, key, **INSIDE_G1, contact_phone="138 0000 0000")
    assert response.status_code == 302
    incident = db.scalar(select(Incident))
    assert response.location == f"/incidents/{incident.id}"
    assert (incident.grid_code, incident.placement, incident.coord_type) == (
        G1,
        "inside",
        "cgcs2000",
    )
    assert (incident.given_lon, incident.given_lat) == (119.005, 36.71)
    assert (incident.channel, incident.reported_by) == ("grid_worker", "wang")
    html = page_of(worker.get(response.location))
    assert f"已上报，事件编号 #{incident.id}。" in html


def test_a_double_submit_files_one_incident(login_as, db, city):
    worker = login_as("grid_worker", G1)
    _, key = filing_form(worker)
    first = file(worker, key, **INSIDE_G1)
    again = file(worker, key, **INSIDE_G1)
    assert first.location == again.location
    assert count(db) == 1
    assert "该表单已提交过" in page_of(worker.get(again.location))


def test_filing_by_choosing_a_grid(login_as, db, city):
    worker = login_as("grid_worker", G1)
    _, key = filing_form(worker)
    assert file(worker, key, grid_code=G1).status_code == 302
    incident = db.scalar(select(Incident))
    assert (incident.grid_code, incident.placement, incident.geom) == (G1, "by_code", None)
    html = page_of(worker.get(f"/incidents/{incident.id}"))
    assert "按网格上报" in html and "circleMarker" in html  # the grid's representative point


def test_possible_duplicates_are_shown_after_filing(login_as, db, city):
    earlier = add_incident(db, grid_code=G1, reported_at=now() - timedelta(hours=1))
    worker = login_as("grid_worker", G1)
    _, key = filing_form(worker)
    response = file(worker, key, lon="119.0051", lat="36.71")
    html = page_of(worker.get(response.location))
    assert "附近有 1 件可能重复的事件。" in html
    duplicates = html[html.index("附近可能重复的事件") :]
    assert f'href="/incidents/{earlier.id}">#{earlier.id}</a>' in duplicates


@pytest.mark.parametrize(
    ("fields", "field", "label"),
    [
        ({}, "location", "位置"),
        (OUTSIDE, "location", "位置"),
        (INSIDE_G1 | {"category": "aliens"}, "category", "事件类型"),
        (INSIDE_G1 | {"description": "  "}, "description", "问题描述"),
        (INSIDE_G1 | {"contact_phone": "call me"}, "contact_phone", "电话"),
        (INSIDE_G1 | {"grid_code": G1}, "grid_code", "网格"),
        ({"grid_code": G3}, "grid_code", "网格"),
        (INSIDE_G1 | {"description": "a\x00b"}, "description", "问题描述"),
    ],
)
def test_bad_filing_is_shown_again_naming_the_field(login_as, db, city, fields, field, label):
    worker = login_as("grid_worker", G1)
    _, key = filing_form(worker)
    response = file(worker, key, **fields)
    assert response.status_code in (400, 403)
    html = page_of(response, response.status_code)
    assert f"字段：{label}" in html
    assert 'aria-invalid="true"' in html
    # The form comes back as it was sent, with the same key: nothing was written.
    assert f'value="{key}"' in html and count(db) == 0


def test_the_filing_form_in_english(login_as, city):
    worker = login_as("grid_worker", G1)
    html = page_of(worker.get("/incidents/new?lang=en"))
    assert "File an incident" in html and "Click the map where the incident is." in html
    assert '<option value="environment">Environment and sanitation</option>' in html
    _, key = filing_form(worker)
    html = page_of(file(worker, key), 400)
    assert "Field: location" in html


def test_many_grids_are_fetched_by_the_filing_map_not_carried_in_the_page(
    app, login_as, city, monkeypatch
):
    if "layers.areas" not in app.view_functions:
        pytest.skip("needs the layers endpoint (web/layers.py)")
    monkeypatch.setattr("web.incident_pages.INLINE_GRIDS", 2)
    html = page_of(login_as("official", COUNTY).get("/incidents/new"))
    script = html[html.index("L.map(") :]
    assert f"/api/layers/{city.id}/grid.geojson" in script
    assert "东关第1网格" not in script  # no polygons (nor their names) inline
    # The grid list still offers all four, and the legend counts them.
    assert len(re.findall(r'<option value="3707050\d+">', html)) == 4
    assert json.dumps("可选网格 (4)")[1:-1] in script  # in the legend, as the script holds it
