"""The OpenAPI description stays true to the app: valid, complete, and what real calls answer.

``web/openapi.json`` is written by hand; these tests fail when a route, a method, a
parameter, a status or a field of an answer is missing from it, and when a garbage
parameter makes any documented GET answer a 5xx or an error without code, message and
field. Answers are checked strictly: an object may carry no property the document does
not name (unless the document says it may), so a field added to a view must be added to
the document too.
"""

from __future__ import annotations

import copy
import io
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import openpyxl
import pytest
from factories import add_incident
from openapi_spec_validator import OpenAPIV31SpecValidator

from geogrid.workdays import SHANGHAI
from tests.patrol_factories import add_assignment, add_member, add_station, add_team, add_track_row
from tests.webapp.openapi_contract import (
    Contract,
    examples_of,
    fill,
    named_field_failure,
    openapi_path,
    resolved,
)
from web import errors, openapi

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
COUNTY = "370705"
STATION = "370705-PS01"
T1, T2 = "PA-370705-0001", "PA-370705-0002"
DAY = "2026-03-02"  # a Monday
NINE = datetime(2026, 3, 2, 1, tzinfo=UTC)  # 09:00 in Shanghai
#: Paths whose routes the document must describe.
DOCUMENTED_PREFIXES = ("/api/", "/open311/")
DOCUMENTED_PATHS = ("/healthz",)
#: Parameter values that are wrong in every way a client gets them wrong.
GARBAGE = ("x", "\x00", "9" * 25, "2026-02-30")
#: Valid values for required parameters, so that the garbage one is what gets judged.
BASELINE = {"lon": "119.005", "lat": "36.705", "crs": "wgs84", "date": DAY}


# -- the document itself -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as written."""
    return openapi.load_document()


@pytest.fixture(scope="module")
def contract(spec: dict[str, Any]) -> Contract:
    """The document as a checker of answers."""
    return Contract(spec)


def test_the_document_is_valid_openapi_3_1(spec):
    OpenAPIV31SpecValidator(spec).validate()
    assert spec["openapi"].startswith("3.1")


def test_every_route_is_documented_with_its_methods(app, spec):
    routes = {
        (openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(DOCUMENTED_PREFIXES) or rule.rule in DOCUMENTED_PATHS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method in openapi.METHODS
    }
    assert sorted(routes - documented) == [], "routes the document does not describe"
    assert sorted(documented - routes) == [], "documented operations the app does not have"


def test_every_operation_names_its_path_parameters_and_answers(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in openapi.METHODS:
                continue
            named = {
                p["name"]
                for p in map(
                    resolved(spec), [*item.get("parameters", []), *operation.get("parameters", [])]
                )
                if p["in"] == "path"
            }
            assert named == set(re.findall(r"{([^}]+)}", path)), f"{method} {path}"
            assert operation["responses"], f"{method} {path} has no responses"
            assert operation.get("operationId") and operation.get("summary"), f"{method} {path}"


def test_every_error_code_the_app_uses_is_in_the_error_schema(spec):
    codes = set(
        spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    )
    used = set(errors.STATUS_BY_CODE) | set(errors._HTTP_CODES.values())
    assert used - codes == set()


def test_the_examples_match_their_schemas(spec, contract):
    checked = 0
    for pointer, schema_pointer, example in examples_of(spec):
        errors_found = contract.errors_at(schema_pointer, example)
        assert not errors_found, f"{pointer}: {errors_found}"
        checked += 1
    assert checked >= 10


def test_the_served_document_names_this_server_and_its_cookie(client, app, spec):
    response = client.get("/api/openapi.json", base_url="https://grid.example.cn")
    assert response.status_code == 200
    served = response.get_json()
    assert served["servers"] == [{"url": "https://grid.example.cn", "description": "This server."}]
    cookie = served["components"]["securitySchemes"].pop("cookieAuth")
    assert cookie["name"] == app.config["SESSION_COOKIE_NAME"]
    # Otherwise the document as written (and validated above).
    written = copy.deepcopy(spec)
    del written["servers"], written["components"]["securitySchemes"]["cookieAuth"]
    del served["servers"]
    assert served == written


def test_the_docs_page_lists_every_operation_and_loads_nothing_from_elsewhere(client, spec):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for path in spec["paths"]:
        assert f'<span class="gg-path">{path}</span>' in page.replace("&#39;", "'")
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


# -- real answers --------------------------------------------------------------------------


@pytest.fixture
def people(auth_headers):
    """Tokens of an administrator, a county official, a station officer and a patrol member."""
    return {
        "admin": auth_headers("root", "administrator"),
        "official": auth_headers("zhao", "official", COUNTY),
        "officer": auth_headers("jingguan", "station_officer", COUNTY),
        "member": auth_headers("duiyuan1", "patrol_member", COUNTY),
        "worker": auth_headers("wang", "grid_worker", G1),
    }


@pytest.fixture
def patrols(db, city):
    """A station over four grids; T1 (with member duiyuan1) works G1, T2 works G3, T1 walked G1."""
    add_station(db, STATION, lon=119.02, lat=36.71, grids=[G1, G2, G3, G4])
    t1 = add_team(db, T1, STATION, base=(119.005, 36.71), capacity=4)
    t2 = add_team(db, T2, STATION, base=(119.035, 36.71), capacity=4)
    add_member(db, "队员一", team=t1, user_name="duiyuan1")
    add_assignment(db, t1, G1, starts=time(8), ends=time(20))
    add_assignment(db, t1, G2, starts=time(12), ends=time(14))
    add_assignment(db, t2, G3, starts=time(8), ends=time(20))
    lon = np.linspace(119.002, 119.008, 40)
    t = NINE.timestamp() + np.arange(40) * 30.0
    add_track_row(db, t1, list(zip(lon, np.full(40, 36.705), t, strict=True)))
    # Incidents in the four weeks before DAY make G3 a hot grid its team never visited.
    for day in range(2, 20, 3):
        add_incident(db, grid_code=G3, reported_at=datetime(2026, 2, day, 9, tzinfo=SHANGHAI))
    return {"t1": t1, "t2": t2}


def test_incident_answers_match_the_document(client, contract, people, auth_headers):
    call, official = contract.caller(client), people["official"]
    point = {"category": "environment", "description": "垃圾堆放", "lon": 119.005, "lat": 36.705}
    filed = call("post", "/api/incidents", 201, json={**point, "coord_type": "wgs84"})
    assert "contact" not in filed["incident"]
    staff = {**point, "coord_type": "wgs84", "contact_name": "张三", "contact_phone": "13800000000"}
    retried = {**official, "Idempotency-Key": "openapi-1"}
    mine = call("post", "/api/incidents", 201, json=staff, headers=retried)
    assert mine["incident"]["contact"] == {"name": "张三", "phone": "13800000000"}
    call("post", "/api/incidents", 200, json=staff, headers=retried)
    error = call("post", "/api/incidents", 400, json={**staff, "note": "x"}, headers=official)
    assert error["error"]["field"] == "note"
    call("post", "/api/incidents", 415, data="category=x", headers=official)
    by_code = {"category": "noise", "description": "广场舞", "grid_code": G1}
    call("post", "/api/incidents", 201, json=by_code, headers=people["worker"])

    listed = call("get", "/api/incidents", 200, query_string={"limit": 2}, headers=official)
    assert listed["total"] == 3 and len(listed["incidents"]) == 2
    call("get", "/api/incidents", 401)
    one = "/api/incidents/{incident_id}"
    first, second = ({"incident_id": r["incident"]["id"]} for r in (filed, mine))
    shown = call("get", one, 200, ids=second, headers=official)
    assert shown["events"] and "accept" in shown["allowed_actions"]
    elsewhere = auth_headers("sun", "official", "370705002")  # another street
    call("get", one, 403, ids=second, headers=elsewhere)
    call("get", one, 404, ids={"incident_id": 999999}, headers=official)
    call("get", one + "/events", 200, ids=second, headers=official)

    act = one + "/actions/{action}"
    accepted = call(
        "post",
        act,
        200,
        ids={**second, "action": "accept"},
        json={"complex": True},
        headers=official,
    )
    assert accepted["state"] == "accepted"
    illegal = call("post", act, 409, ids={**second, "action": "accept"}, headers=official)
    assert illegal["error"]["details"]["allowed"]
    call("post", act, 400, ids={**second, "action": "fly"}, headers=official)
    into = {"into": second["incident_id"]}
    merged = call("post", one + "/merge", 200, ids=first, json=into, headers=official)
    assert merged["state"] == "merged"
    call("post", one + "/place", 409, ids=first, json={"grid_code": G2}, headers=official)


def test_map_and_grid_answers_match_the_document(client, contract, people, db, city):
    call, official = contract.caller(client), people["official"]
    point = {"lon": 119.005, "lat": 36.705, "crs": "wgs84"}
    inside = call("get", "/api/locate", 200, query_string=point)
    assert inside["status"] == "inside" and inside["codes"]["grid"] == G1
    outside = call("get", "/api/locate", 200, query_string={**point, "lon": 100, "lat": 30})
    assert outside["nearest"]["code"]
    error = call("get", "/api/locate", 400, query_string={**point, "lat": 95})
    assert error["error"]["field"] == "lat"

    outlines = "/api/layers/{generation}/{level}.geojson"
    layer = {"ids": {"generation": city.id, "level": "grid"}}
    layer["query_string"] = {"z": 14, "within": "370705001"}
    features = call("get", outlines, 200, **layer, headers=official)["features"]
    assert {feature["properties"]["code"] for feature in features} == {G1, G2}
    url = fill(outlines, layer["ids"])
    etag = client.get(url, query_string=layer["query_string"], headers=official).headers["ETag"]
    call("get", outlines, 304, **layer, headers={**official, "If-None-Match": etag})
    call("get", outlines, 401, **layer)
    add_incident(db, grid_code=G1, reported_at=datetime(2026, 10, 5, 9, tzinfo=SHANGHAI))
    month = {"level": "community", "period": "2026-10"}
    stats = call("get", "/api/maps/stats", 200, query_string=month, headers=official)
    assert stats == {G1[:12]: {"count": 1, "open": 1, "resolved": 0}}

    assert call("get", "/api/categories", 200, query_string={"lang": "en"})["categories"]
    call("get", "/healthz", 200)
    for garbage in ("abc", "9" * 25):
        body = call("get", "/api/incidents/{incident_id}", 404, ids={"incident_id": garbage})
        assert body["error"]["code"] == "not_found"
    response = client.get("/api/no/such/thing")
    assert response.status_code == 404
    assert contract.errors_at("/components/schemas/Error", response.get_json()) == []


def test_patrol_answers_match_the_document(client, contract, people, patrols, tmp_path):
    call = contract.caller(client)
    admin, officer, member = people["admin"], people["officer"], people["member"]
    for path in ("/api/patrols/stations", "/api/patrols/teams", "/api/patrols/assignments"):
        call("get", path, 200, headers=member)
    day = {"station": STATION, "date": DAY}
    assert call("get", "/api/patrols/conflicts", 200, query_string=day, headers=officer)[
        "conflicts"
    ]
    call("get", "/api/patrols/unassigned", 200, query_string=day, headers=officer)
    call("get", "/api/patrols/conflicts", 400, headers=officer)
    call("get", "/api/patrols/teams", 403, headers=people["worker"])

    tracks = "/api/patrols/tracks"
    gpx = write_gpx(tmp_path / "早班.gpx")
    uploaded = contract.check(upload(client, member, gpx), "post", tracks, 201)
    assert uploaded["uploads"][0]["quality"]["received"] == 20
    contract.check(upload(client, member, gpx), "post", tracks, 200)
    broken = tmp_path / "broken.gpx"
    broken.write_text("<gpx><trk><trkseg><trkpt lat=", encoding="utf-8")
    contract.check(upload(client, admin, broken), "post", tracks, 422)
    call("get", tracks, 200, query_string={"date": DAY}, headers=member)

    where = {"team": T1, "lon": 119.005, "lat": 36.705, "coord_type": "wgs84"}
    where["at"] = "2026-03-02T10:00:00+08:00"
    call("post", "/api/patrols/checkins", 201, json=where, headers=member)
    lead = {**where, "category": "public_order", "note": "可疑车辆"}
    filed = call("post", "/api/patrols/leads", 201, json=lead, headers=member)["lead"]
    call("get", "/api/patrols/leads", 200, headers=officer)
    decision = "/api/patrols/leads/{lead_id}/decision"
    granted = {"status": "verified", "reward": "granted", "amount": 50}
    ids = {"lead_id": filed["id"]}
    decided = call("post", decision, 200, ids=ids, json=granted, headers=officer)
    assert decided["lead"]["decided_by"] == "jingguan"
    nobody = {"lead_id": 999999}
    call("post", decision, 404, ids=nobody, json={"status": "closed"}, headers=officer)

    coverage = call("get", "/api/patrols/coverage", 200, query_string=day, headers=officer)
    assert coverage["visits"] and coverage["dosage"]
    gaps = call("get", "/api/patrols/gaps", 200, query_string=day, headers=officer)
    assert gaps["gaps"] and gaps["never_visited"] and gaps["unassigned"]
    body = {"station": STATION, "time_limit": 5, "commit": True}
    proposal = call("post", "/api/patrols/assign", 200, json=body, headers=admin)
    assert proposal["applied"]["added"]
    call("post", "/api/patrols/assign", 403, json={"station": STATION}, headers=member)


def test_report_answers_match_the_document(client, contract, people, db, city):
    call, admin = contract.caller(client), people["admin"]
    for day, grid_code in ((5, G1), (12, G1), (20, G3)):
        reported_at = datetime(2026, 10, day, 9, tzinfo=SHANGHAI)
        add_incident(db, grid_code=grid_code, reported_at=reported_at)
    path, monthly = "/api/reports/{kind}", {"kind": "monthly"}
    query = {"period": "2026-10", "level": "community"}
    report = call("get", path, 200, ids=monthly, query_string=query, headers=people["official"])
    assert [row["received"] for row in report["rows"]] == [2, 1]
    sheet = call(
        "get", path, 200, ids=monthly, query_string={**query, "format": "xlsx"}, headers=admin
    )
    assert openpyxl.load_workbook(io.BytesIO(sheet)).active is not None
    call("get", path, 200, ids=monthly, query_string={**query, "format": "csv"}, headers=admin)
    call("get", path, 400, ids={"kind": "yearly"}, headers=admin)
    call("get", path, 403, ids=monthly, headers=people["worker"])


def test_open311_answers_match_the_document(client, contract, people, city):
    call = contract.caller(client)
    assert call("get", "/open311/v2/services.json", 200)
    requests = "/open311/v2/requests.json"
    form = {"service_code": "environment", "description": "路灯不亮"}
    form |= {"lat": "36.705", "long": "119.005"}
    created = call("post", requests, 201, data=form)
    call("post", requests, 400, data={**form, "lat": ""})
    assert "description" not in call("get", requests, 200)[0]
    private = call("get", requests, 200, headers=people["official"])
    assert private[0]["description"] == "路灯不亮"
    one = "/open311/v2/requests/{incident_id}.json"
    call("get", one, 200, ids={"incident_id": created[0]["service_request_id"]})
    call("get", one, 404, ids={"incident_id": 999999})
    call("get", "/open311/v2/services.xml", 400)
    call("get", "/open311/v2/requests/{_rest}.xml", 400, ids={"_rest": "1"})


# -- garbage in, a clear error out -----------------------------------------------------------


def test_garbage_parameters_get_clear_errors_never_a_crash(client, contract, people, patrols, city):
    """Every documented GET, each parameter in turn set to garbage: a documented answer.

    A 400 must name the parameter at fault; nothing may answer 5xx or crash.
    """
    incident = add_incident_via_api(client, people["official"])
    valid = {"incident_id": str(incident), "kind": "monthly", "_rest": "1"}
    valid |= {"generation": str(city.id), "level": "grid"}
    failures = []
    for path, operation, parameters in contract.operations("get"):
        # An operation that always refuses (Open311's XML) names its own field.
        succeeds = any(status.startswith("2") for status in operation["responses"])
        required = {
            p["name"]: BASELINE[p["name"]]
            for p in parameters
            if p.get("required") and p["in"] == "query"
        }
        calls = [(fill(path, valid), {}, None)]
        for parameter in parameters:
            name = parameter["name"]
            for value in GARBAGE:
                if parameter["in"] == "query":
                    calls.append((fill(path, valid), {name: value}, name))
                elif parameter["in"] == "path" and value != "\x00":
                    calls.append((fill(path, {**valid, name: value}), {}, name))
        # The public first: an answer without credentials must be documented too.
        tried = [(url, query, name, {}) for url, query, name in calls[:1]]
        tried += [(url, query, name, people["admin"]) for url, query, name in calls]
        for url, query, name, headers in tried:
            try:
                response = client.get(url, query_string={**required, **query}, headers=headers)
            except Exception as exc:  # Flask re-raises under TESTING: a 500 in production
                failures.append(f"GET {url} {query!r}: raised {exc!r}"[:400])
                continue
            failure = contract.failure(response, "get", path)
            if failure is None and response.status_code == 400 and name and succeeds:
                failure = named_field_failure(response, name)
            if failure is not None:
                failures.append(f"GET {url} {query!r}: {failure}")
    assert failures == [], "\n".join(failures)


def test_garbage_in_bodies_gets_clear_errors_never_a_crash(
    client, contract, people, patrols, tmp_path
):
    """Every documented JSON body field in turn set to garbage: a 4xx naming it, never a 5xx."""
    official, admin = people["official"], people["admin"]
    incident = add_incident_via_api(client, official)
    other = add_incident_via_api(client, official)
    where = {"team": T1, "lon": 119.005, "lat": 36.705, "coord_type": "wgs84"}
    lead_body = {**where, "category": "other", "note": "x"}
    call = contract.caller(client)
    lead = call("post", "/api/patrols/leads", 201, json=lead_body, headers=admin)["lead"]["id"]
    valid = {
        "/api/incidents": ({}, {"category": "other", "description": "x", "grid_code": G1}),
        "/api/incidents/{incident_id}/actions/{action}": (
            {"incident_id": incident, "action": "accept"},
            {"note": "ok"},
        ),
        "/api/incidents/{incident_id}/merge": ({"incident_id": other}, {"into": incident}),
        "/api/incidents/{incident_id}/place": ({"incident_id": other}, {"grid_code": G2}),
        "/api/patrols/checkins": ({}, where),
        "/api/patrols/leads": ({}, lead_body),
        "/api/patrols/leads/{lead_id}/decision": ({"lead_id": lead}, {"status": "verified"}),
        "/api/patrols/assign": ({}, {"station": STATION, "time_limit": 1}),
    }
    failures = []
    for path, operation, _parameters in contract.operations("post"):
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if schema is None:
            continue
        values, body = valid[path]
        url = fill(path, values)
        fields = contract.properties(schema["schema"])
        assert fields, path
        for name in fields:
            for garbage in ("a\x00b", 10**22, {"x": 1}):
                response = client.post(url, json={**body, name: garbage}, headers=admin)
                failure = contract.failure(response, "post", path)
                if failure is None and response.status_code == 400:
                    failure = named_field_failure(response, name)
                if failure is not None:
                    failures.append(f"POST {url} {name}={garbage!r}: {failure}")
    gpx = write_gpx(tmp_path / "walk.gpx")
    long_name = {"filename": "x" * 300 + ".gpx"}
    for form in (long_name, {"team": "a\x00b"}, {"member": "9" * 25}, {"coord_type": "a\x00b"}):
        response = upload(client, admin, gpx, **form)
        failure = contract.failure(response, "post", "/api/patrols/tracks")
        if failure is not None:
            failures.append(f"POST tracks {form!r}: {failure}")
    assert failures == [], "\n".join(failures)


# -- helpers ---------------------------------------------------------------------------------


def add_incident_via_api(client: Any, headers: dict[str, str]) -> int:
    """A filed incident's id."""
    body = {"category": "environment", "description": "x", "grid_code": G1}
    response = client.post("/api/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["incident"]["id"]


def write_gpx(path, *, points: int = 20, start: datetime = NINE):
    """A walk east through G1 along lat 36.705, one fix every 30 s."""
    fixes = "".join(
        f'<trkpt lat="36.705" lon="{119.002 + 0.0003 * i:.6f}">'
        f"<time>{(start + timedelta(seconds=30 * i)).strftime('%Y-%m-%dT%H:%M:%SZ')}</time></trkpt>"
        for i in range(points)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="tests" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>walk</name><trkseg>{fixes}</trkseg></trk></gpx>",
        encoding="utf-8",
    )
    return path


def upload(client: Any, headers: dict[str, str], path, *, filename: str = "", **form: str):
    """POST a track file as multipart/form-data (under ``filename`` if given)."""
    with path.open("rb") as stream:
        data = {"team": T1, "coord_type": "wgs84", **form, "file": (stream, filename or path.name)}
        return client.post(
            "/api/patrols/tracks", data=data, headers=headers, content_type="multipart/form-data"
        )
