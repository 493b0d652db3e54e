"""The incidents JSON API: public filing, idempotency, field-named errors, scopes, the workflow."""

from __future__ import annotations

import json

import pytest
from factories import add_incident
from sqlalchemy import func, select

from geogrid.crs import wgs84_to_gcj02
from geogrid.models import Incident, IncidentContact
from geogrid.workdays import SHANGHAI

G1, G2, G3 = "370705001001001", "370705001001002", "370705002001001"
COUNTY = "370705"
LAT = 36.71


def report(**changes):
    """A valid resident's report in grid G1 (WGS84), some fields changed (None drops one)."""
    body = {
        "category": "environment",
        "description": "垃圾堆放 rubbish piled up by the gate",
        "lon": 119.005,
        "lat": LAT,
        "coord_type": "wgs84",
        "contact_name": "张三",
        "contact_phone": "138 0000 0000",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.is_json
    return response.get_json()["error"]


def count(db, model=Incident):
    return db.scalar(select(func.count()).select_from(model))


@pytest.fixture
def staff(auth_headers):
    """Headers for an official over the county, grid workers of G1 and G3, a department."""
    return {
        "official": auth_headers("zhao", "official", COUNTY),
        "worker": auth_headers("wang", "grid_worker", G1),
        "other_worker": auth_headers("li", "grid_worker", G3),
        "department": auth_headers("chen", "department", COUNTY, department="城市管理局"),
        "admin": auth_headers("root", "administrator"),
    }


def filed(client, headers=None, **changes):
    response = client.post("/api/incidents", json=report(**changes), headers=headers or {})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["incident"]


# -- filing ----------------------------------------------------------------------------------


def test_the_public_files_a_gcj02_point_into_its_grid(client, city, db):
    gcj_lon, gcj_lat = wgs84_to_gcj02(119.015, LAT)
    response = client.post(
        "/api/incidents", json=report(lon=gcj_lon, lat=gcj_lat, coord_type="gcj02")
    )
    assert response.status_code == 201
    body = response.get_json()
    incident = body["incident"]
    assert response.headers["Location"] == f"/api/incidents/{incident['id']}"
    # The GCJ-02 offset (hundreds of metres) is removed before geocoding: G2, not G1 or G3.
    assert (incident["grid_code"], incident["placement"]) == (G2, "inside")
    assert (incident["coord_type"], incident["channel"], incident["state"]) == (
        "gcj02",
        "whistle",
        "reported",
    )
    assert body["created"] is True and body["warnings"] == []
    # The public is one shared actor: it never sees a reporter back, not even its own.
    assert "contact" not in incident and "reported_by" not in incident
    stored = db.get(IncidentContact, incident["id"])
    assert (stored.name, stored.phone) == ("张三", "138 0000 0000")


def test_a_retry_with_the_same_key_returns_the_first_incident(client, city, db):
    headers = {"Idempotency-Key": "phone-7f3a-0001"}
    first = client.post("/api/incidents", json=report(), headers=headers)
    again = client.post("/api/incidents", json=report(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["incident"]["id"] == first.get_json()["incident"]["id"]
    assert again.get_json()["created"] is False
    assert again.headers["Location"] == first.headers["Location"]
    assert count(db) == 1


def test_a_key_reused_for_a_different_report_is_a_conflict(client, city, db):
    headers = {"Idempotency-Key": "phone-7f3a-0002"}
    client.post("/api/incidents", json=report(), headers=headers)
    response = client.post("/api/incidents", json=report(description="另一件事"), headers=headers)
    error = error_of(response, 409)
    assert (error["code"], error["field"]) == ("conflict", "Idempotency-Key")
    assert count(db) == 1


def test_filing_reports_possible_duplicates(client, city):
    first = filed(client)
    body = client.post("/api/incidents", json=report(lon=119.0051)).get_json()
    assert [d["incident_id"] for d in body["duplicates"]] == [first["id"]]
    assert any("possible duplicates" in warning for warning in body["warnings"])


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"coord_type": None}, "invalid_coordinate", "coord_type"),
        ({"coord_type": "mars"}, "invalid_coordinate", "coord_type"),
        ({"lon": "NaN"}, "invalid_coordinate", "lon"),
        ({"lat": 95}, "invalid_coordinate", "lat"),
        ({"category": "potholes"}, "invalid_input", "category"),
        ({"description": " "}, "invalid_input", "description"),
        # lat and lon exchanged: outside every grid, but the swapped pair is in G1.
        ({"lon": LAT, "lat": 119.005}, "invalid_coordinate", "lat"),
        ({"crs": "wgs84"}, "invalid_input", "crs"),
        ({"contact_phone": "call me"}, "invalid_input", "contact_phone"),
    ],
)
def test_bad_reports_are_400_naming_the_field(client, city, db, changes, code, field):
    error = error_of(client.post("/api/incidents", json=report(**changes)), 400)
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"] and "Traceback" not in error["message"]
    assert count(db) == 0


def test_a_nan_literal_in_the_body_is_named_too(client, city):
    text = json.dumps(report(), allow_nan=True).replace("119.005", "NaN")
    response = client.post("/api/incidents", data=text, content_type="application/json")
    assert error_of(response, 400)["field"] == "lon"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "field"),
    [
        ('{"category": "environment",', "application/json", 400, "body"),
        ("", "application/json", 400, "body"),
        ("[1, 2]", "application/json", 400, "body"),
        ("\xff\xfe", "application/json", 400, "body"),
        ("category=environment", "application/x-www-form-urlencoded", 415, None),
    ],
)
def test_broken_bodies_are_named_never_a_stack_trace(
    client, city, data, content_type, status, field
):
    response = client.post("/api/incidents", data=data.encode("latin-1"), content_type=content_type)
    error = error_of(response, status)
    assert error["field"] == field
    if status == 415:
        assert error["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("name", "value"), [("reported_at", "2026-01-05T09:00:00+08:00"), ("complex", True)]
)
def test_the_public_may_not_backdate_a_report_or_call_it_complex(client, city, db, name, value):
    error = error_of(client.post("/api/incidents", json=report(**{name: value})), 400)
    assert (error["code"], error["field"]) == ("invalid_input", name)
    assert count(db) == 0


def test_staff_may_file_a_report_with_its_time(client, staff):
    body = report(reported_at="2026-11-02T09:00:00+08:00", complex=True)
    incident = client.post("/api/incidents", json=body, headers=staff["official"]).get_json()
    assert incident["incident"]["reported_at"] == "2026-11-02T09:00:00+08:00"
    assert incident["incident"]["complex"] is True


def test_the_public_may_not_file_by_grid_code(client, city):
    body = report(lon=None, lat=None, coord_type=None, grid_code=G1)
    error = error_of(client.post("/api/incidents", json=body), 403)
    assert (error["code"], error["field"]) == ("forbidden", "grid_code")


def test_a_grid_worker_files_by_grid_code_in_their_own_grid(client, staff):
    body = report(lon=None, lat=None, coord_type=None, grid_code=G1)
    response = client.post("/api/incidents", json=body, headers=staff["worker"])
    incident = response.get_json()["incident"]
    assert response.status_code == 201
    assert (incident["placement"], incident["channel"], incident["reported_by"]) == (
        "by_code",
        "grid_worker",
        "wang",
    )


# -- who may read ----------------------------------------------------------------------------


def test_reading_needs_a_token(client, city):
    response = client.get("/api/incidents")
    error = error_of(response, 401)
    assert error["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="geogrid"'
    bad = client.get("/api/incidents", headers={"Authorization": "Bearer gg_not-a-token"})
    assert error_of(bad, 401)["field"] == "token"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    basic = client.get("/api/incidents", headers={"Authorization": "Basic d2FuZzpwdw=="})
    assert error_of(basic, 401)["field"] == "Authorization"


def test_a_grid_worker_sees_and_acts_only_in_their_scope(client, staff):
    mine = filed(client)
    theirs = filed(client, lon=119.025)
    assert theirs["grid_code"] == G3
    listed = client.get("/api/incidents", headers=staff["worker"]).get_json()
    assert [i["id"] for i in listed["incidents"]] == [mine["id"]] and listed["total"] == 1
    assert error_of(client.get(f"/api/incidents/{theirs['id']}", headers=staff["worker"]), 403)
    response = client.post(
        f"/api/incidents/{theirs['id']}/actions/accept", json={}, headers=staff["worker"]
    )
    error = error_of(response, 403)
    assert error["code"] == "forbidden"
    other = client.get("/api/incidents", headers=staff["other_worker"]).get_json()
    assert [i["id"] for i in other["incidents"]] == [theirs["id"]]


def test_contacts_show_only_to_roles_that_may_see_them_and_never_in_lists(client, staff):
    incident = filed(client)
    official = client.get(f"/api/incidents/{incident['id']}", headers=staff["official"])
    assert official.get_json()["contact"] == {"name": "张三", "phone": "138 0000 0000"}
    assert official.get_json()["reported_by"] == "public"
    department = client.get(f"/api/incidents/{incident['id']}", headers=staff["department"])
    assert department.status_code == 200
    assert "contact" not in department.get_json() and "reported_by" not in department.get_json()
    assert "138" not in department.get_data(as_text=True)
    listed = client.get("/api/incidents", headers=staff["official"])
    assert listed.get_json()["total"] == 1
    assert "138 0000 0000" not in listed.get_data(as_text=True)
    assert "contact" not in listed.get_json()["incidents"][0]


def test_list_filters(client, staff, db):
    reported = filed(client)
    accepted = filed(client, lon=119.015)
    client.post(f"/api/incidents/{accepted['id']}/actions/accept", headers=staff["official"])
    add_incident(db, grid_code=G3, reported_at=_at("2026-01-05T09:00"), category="noise")

    def ids(query):
        response = client.get(f"/api/incidents?{query}", headers=staff["official"])
        assert response.status_code == 200, response.get_data(as_text=True)
        return [incident["id"] for incident in response.get_json()["incidents"]]

    assert ids("state=reported,accepted&grid=370705001") == [accepted["id"], reported["id"]]
    assert ids("state=accepted") == [accepted["id"]]
    assert ids("grid=370705001001002") == [accepted["id"]]
    assert len(ids("category=noise")) == 1
    # An unencoded "+08:00" arrives as " 08:00" and still means +08:00.
    assert len(ids("until=2026-02-01T00:00:00+08:00")) == 1
    assert len(ids("since=2026-02-01")) == 2
    assert ids("limit=1&offset=1") == [reported["id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=done", "state"),
        ("grid=37x", "grid"),
        ("since=yesterday", "since"),
        ("until=2026-01-01T00:00:00", "until"),
        ("overdue=maybe", "overdue"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_bad_filters_name_the_parameter(client, staff, query, field):
    response = client.get(f"/api/incidents?{query}", headers=staff["official"])
    assert error_of(response, 400)["field"] == field


def test_an_unknown_incident_is_404(client, staff):
    assert error_of(client.get("/api/incidents/999999", headers=staff["official"]), 404)
    huge = client.get(f"/api/incidents/{2**64}", headers=staff["official"])
    assert error_of(huge, 404)["code"] == "not_found"


# -- the workflow ----------------------------------------------------------------------------


def test_a_whole_life_through_the_api(client, staff):
    incident_id = filed(client)["id"]

    def act(action, who, **params):
        response = client.post(
            f"/api/incidents/{incident_id}/actions/{action}", json=params, headers=staff[who]
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    shown = client.get(f"/api/incidents/{incident_id}", headers=staff["worker"]).get_json()
    assert {"accept", "reject", "escalate"} <= set(shown["allowed_actions"])
    assert act("accept", "worker")["state"] == "accepted"
    dispatched = act("dispatch", "official", assignee="wang", note="请王丽处理")
    assert (dispatched["state"], dispatched["assignee"]) == ("dispatched", "wang")
    assert act("start", "worker")["state"] == "in_progress"
    resolved = act("resolve", "worker", note="已清运")
    assert resolved["state"] == "resolved" and resolved["resolved_at"]
    # The official records the resident's feedback from the return call.
    reopened = act("evaluate", "official", satisfied=False, note="还有残留")
    assert (reopened["state"], reopened["reopened_count"]) == ("in_progress", 1)
    act("resolve", "worker", note="已彻底清理")
    final = act("evaluate", "worker", satisfied=True)
    assert (final["state"], final["satisfaction"]) == ("evaluated", "satisfied")
    assert final["allowed_actions"] == []

    events = client.get(f"/api/incidents/{incident_id}/events", headers=staff["official"])
    steps = [(e["action"], e["to_state"]) for e in events.get_json()["events"]]
    assert steps == [
        ("report", "reported"),
        ("accept", "accepted"),
        ("dispatch", "dispatched"),
        ("start", "in_progress"),
        ("resolve", "resolved"),
        ("evaluate", "in_progress"),
        ("resolve", "resolved"),
        ("evaluate", "evaluated"),
    ]
    shown = client.get(f"/api/incidents/{incident_id}", headers=staff["official"]).get_json()
    assert [e["action"] for e in shown["events"]] == [step for step, _ in steps]


def test_an_illegal_transition_is_409_with_the_allowed_actions(client, staff):
    incident_id = filed(client)["id"]
    response = client.post(
        f"/api/incidents/{incident_id}/actions/resolve",
        json={"note": "done"},
        headers=staff["official"],
    )
    error = error_of(response, 409)
    assert (error["code"], error["field"]) == ("illegal_transition", "action")
    assert "accept" in error["details"]["allowed"]


@pytest.mark.parametrize(
    ("action", "params", "field"),
    [
        ("reject", {}, "note"),
        ("accept", {"days": 3}, "days"),
        ("accept", {"complex": "yes"}, "complex"),
        ("accept", {"now": "2020-01-01T00:00:00+08:00"}, "now"),
        ("accept", {"actor": "root"}, "actor"),
        ("fly", {}, "action"),
    ],
)
def test_bad_action_parameters_are_400_naming_them(client, staff, action, params, field):
    incident_id = filed(client)["id"]
    response = client.post(
        f"/api/incidents/{incident_id}/actions/{action}", json=params, headers=staff["official"]
    )
    assert error_of(response, 400)["field"] == field


def test_the_public_may_not_act_even_on_anonymous_reports(client, staff):
    incident_id = filed(client)["id"]
    response = client.post(
        f"/api/incidents/{incident_id}/actions/evaluate", json={"satisfied": True}
    )
    assert error_of(response, 401)["code"] == "unauthenticated"


def test_merge_and_place_through_the_api(client, staff):
    first = filed(client)
    second = filed(client, lon=119.0051)
    merged = client.post(
        f"/api/incidents/{second['id']}/merge",
        json={"into": first["id"], "note": "同一堆垃圾"},
        headers=staff["worker"],
    )
    assert merged.status_code == 200, merged.get_data(as_text=True)
    assert (merged.get_json()["state"], merged.get_json()["duplicate_of"]) == (
        "merged",
        first["id"],
    )
    kept = client.get(f"/api/incidents/{first['id']}", headers=staff["official"]).get_json()
    assert kept["merged_from"] == [second["id"]]
    bad = client.post(
        f"/api/incidents/{first['id']}/merge", json={"into": "x"}, headers=staff["worker"]
    )
    assert error_of(bad, 400)["field"] == "into"

    outside = filed(client, lon=119.045)
    assert (outside["grid_code"], outside["placement"]) == (None, "outside")
    placed = client.post(
        f"/api/incidents/{outside['id']}/place",
        json={"grid_code": "370705002001002", "note": "路东侧"},
        headers=staff["official"],
    )
    assert placed.status_code == 200, placed.get_data(as_text=True)
    assert (placed.get_json()["grid_code"], placed.get_json()["placement"]) == (
        "370705002001002",
        "placed",
    )
    unknown = client.post(
        f"/api/incidents/{first['id']}/place", json={"grid": G2}, headers=staff["official"]
    )
    assert error_of(unknown, 400)["field"] == "grid"


def test_categories_are_public_in_the_chosen_language(client, city):
    chinese = client.get("/api/categories").get_json()["categories"]
    environment = next(c for c in chinese if c["code"] == "environment")
    assert environment["name"] == environment["name_zh"]
    assert environment["resolve_days"] == 3
    english = client.get("/api/categories?lang=en").get_json()["categories"]
    assert next(c for c in english if c["code"] == "environment")["name"] == environment["name_en"]


def test_using_a_token_records_when_it_was_last_used(client, staff, db):
    from geogrid.models import ApiToken

    client.get("/api/incidents", headers=staff["official"])
    used = db.scalars(select(ApiToken.last_used_at).execution_options(populate_existing=True))
    assert any(moment is not None for moment in used)


def _at(text):
    from datetime import datetime

    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)
