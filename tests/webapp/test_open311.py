"""Open311 GeoReport v2: services, requests filed and read back, GeoReport's error shape."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from geogrid.crs import wgs84_to_gcj02
from geogrid.models import Incident, IncidentContact

G1, G2, G3 = "370705001001001", "370705001001002", "370705002001001"
COUNTY = "370705"
LAT = 36.71


def form(**changes):
    """A GeoReport POST for grid G1, some parameters changed (None drops one)."""
    data = {
        "jurisdiction_id": COUNTY,
        "service_code": "environment",
        "lat": str(LAT),
        "long": "119.005",
        "address_string": "东关街 12 号",
        "description": "垃圾堆放 rubbish piled up",
        "first_name": "三",
        "last_name": "张",
        "phone": "138 0000 0000",
        "email": "zhang@example.org",
        "device_id": "phone-1",
        "account_id": "acct-42",
        "media_url": "https://photos.example.org/1.jpg",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def post(client, headers=None, **changes):
    return client.post("/open311/v2/requests.json", data=form(**changes), headers=headers or {})


def open311_error(response, status):
    """GeoReport's error shape: a list of {code, description}; returns the description."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    (error,) = response.get_json()
    assert set(error) == {"code", "description"} and error["code"] == status
    return error["description"]


def test_services_are_the_categories_in_chinese_or_english(client, city):
    services = client.get("/open311/v2/services.json").get_json()
    environment = next(s for s in services if s["service_code"] == "environment")
    assert environment["service_name"] == "环境卫生"
    assert environment["group"] == "城市管理局"
    assert (environment["metadata"], environment["type"]) == (False, "realtime")
    assert "1 个工作日内受理" in environment["description"]
    assert "environment" in environment["keywords"].split(",")
    english = client.get("/open311/v2/services.json?locale=en").get_json()
    assert next(s for s in english if s["service_code"] == "environment")["service_name"] == (
        "Environment and sanitation"
    )
    by_header = client.get("/open311/v2/services.json", headers={"Accept-Language": "en-GB"})
    assert by_header.get_json()[0]["service_name"].isascii()


def test_a_request_round_trip_with_grid_code_and_detailed_status(client, city, db, auth_headers):
    response = post(client)
    assert response.status_code == 201, response.get_data(as_text=True)
    (answer,) = response.get_json()
    request_id = answer["service_request_id"]
    assert isinstance(request_id, str) and answer["account_id"] == "acct-42"
    assert G1 in answer["service_notice"] and "受理时限" in answer["service_notice"]
    incident = db.get(Incident, int(request_id))
    # Open311's lat/long are WGS84 by the specification, so that is the default here.
    assert (incident.grid_code, incident.coord_type, incident.channel) == (G1, "wgs84", "whistle")
    assert incident.photos == ["https://photos.example.org/1.jpg"]
    contact = db.get(IncidentContact, incident.id)
    assert (contact.name, contact.phone) == ("张三", "138 0000 0000")

    (public,) = client.get(f"/open311/v2/requests/{request_id}.json").get_json()
    assert public["service_request_id"] == request_id
    assert (public["status"], public["detailed_status"], public["grid_code"]) == (
        "open",
        "reported",
        G1,
    )
    assert public["service_code"] == "environment" and public["agency_responsible"] == "城市管理局"
    assert public["requested_datetime"].endswith("+08:00")
    # The public sees the status, not what was reported or where exactly.
    assert not {"description", "address", "lat", "long", "media_url"} & set(public)

    official = auth_headers("zhao", "official", COUNTY)
    (full,) = client.get(f"/open311/v2/requests/{request_id}.json", headers=official).get_json()
    assert full["description"] == "垃圾堆放 rubbish piled up"
    assert (full["lat"], full["long"]) == pytest.approx((LAT, 119.005))
    assert full["address"] == "东关街 12 号"
    assert "138" not in str(full) and "张" not in str(full)

    client.post(
        f"/api/incidents/{request_id}/actions/reject",
        json={"note": "不属于受理范围"},
        headers=official,
    )
    (closed,) = client.get(f"/open311/v2/requests/{request_id}.json").get_json()
    assert (closed["status"], closed["detailed_status"]) == ("closed", "rejected")
    assert closed["updated_datetime"] > closed["requested_datetime"]


def test_gcj02_points_say_so_with_the_coord_type_extension(client, city, db):
    lon, lat = wgs84_to_gcj02(119.015, LAT)
    response = post(client, long=str(lon), lat=str(lat), coord_type="gcj02")
    (answer,) = response.get_json()
    assert answer["grid_code"] == G2
    assert db.get(Incident, int(answer["service_request_id"])).coord_type == "gcj02"


def test_an_idempotency_key_makes_a_retry_return_the_first_request(client, city, db):
    headers = {"Idempotency-Key": "open311-client-0001"}
    first, again = post(client, headers), post(client, headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()[0]["service_request_id"] == again.get_json()[0]["service_request_id"]
    assert db.scalar(select(func.count()).select_from(Incident)) == 1


def test_listing_requests_by_status_service_and_id(client, city, auth_headers):
    official = auth_headers("zhao", "official", COUNTY)
    ids = [
        post(client).get_json()[0]["service_request_id"],
        post(client, long="119.025").get_json()[0]["service_request_id"],
        post(client, service_code="noise", description="广场舞噪音").get_json()[0][
            "service_request_id"
        ],
    ]
    client.post(f"/api/incidents/{ids[0]}/actions/reject", json={"note": "重复"}, headers=official)

    def listed(query="", headers=None):
        response = client.get(f"/open311/v2/requests.json?{query}", headers=headers or {})
        assert response.status_code == 200, response.get_data(as_text=True)
        return [r["service_request_id"] for r in response.get_json()]

    assert listed() == ids[::-1]
    assert listed("status=open") == [ids[2], ids[1]]
    assert listed("status=closed") == [ids[0]]
    assert listed("service_code=noise") == [ids[2]]
    assert listed("service_code=noise,environment&status=open") == [ids[2], ids[1]]
    assert listed(f"service_request_id={ids[1]},{ids[0]},999999") == [ids[1], ids[0]]
    assert listed(f"grid_code={G3}") == [ids[1]]
    assert listed("start_date=2000-01-01T00:00:00Z&end_date=2001-01-01T00:00:00Z") == []
    # A grid worker with a token sees their own grid only, with the details.
    worker = auth_headers("wang", "grid_worker", G1)
    response = client.get("/open311/v2/requests.json", headers=worker).get_json()
    assert [r["service_request_id"] for r in response] == [ids[2], ids[0]]
    assert response[0]["description"] == "广场舞噪音"


@pytest.mark.parametrize(
    ("changes", "status", "starts"),
    [
        ({"jurisdiction_id": "370999"}, 404, "jurisdiction_id: jurisdiction '370999'"),
        ({"service_code": None}, 400, "service_code: service_code is required"),
        ({"service_code": "potholes"}, 400, "service_code: unknown category"),
        ({"description": None}, 400, "description:"),
        ({"lat": None}, 400, "lat: lat and long are required"),
        ({"long": "east"}, 400, "long:"),
        ({"coord_type": "mars"}, 400, "coord_type:"),
        ({"phone": "call me"}, 400, "phone:"),
    ],
)
def test_bad_requests_answer_in_georeports_error_shape(client, city, db, changes, status, starts):
    description = open311_error(post(client, **changes), status)
    assert description.startswith(starts), description
    assert db.scalar(select(func.count()).select_from(Incident)) == 0


def test_other_errors_keep_the_shape(client, city):
    json_body = client.post("/open311/v2/requests.json", json=form())
    assert "form-encoded" in open311_error(json_body, 415)
    assert open311_error(client.get("/open311/v2/requests/999999.json"), 404)
    assert open311_error(client.get("/open311/v2/nothing-here.json"), 404)
    assert "JSON only" in open311_error(client.get("/open311/v2/services.xml"), 400)
    in_url = client.get("/open311/v2/requests.json?api_key=gg_secret")
    assert open311_error(in_url, 400).startswith("api_key:")
    assert open311_error(client.get("/open311/v2/requests.json?status=pending"), 400)
    bad_token = client.post(
        "/open311/v2/requests.json", data=form(), headers={"Authorization": "Bearer gg_x"}
    )
    assert open311_error(bad_token, 401) and bad_token.headers["WWW-Authenticate"]


def test_a_token_as_api_key_files_as_its_user(client, city, db, auth_headers):
    headers = auth_headers("hotline", "official", COUNTY)
    secret = headers["Authorization"].removeprefix("Bearer ")
    response = post(client, api_key=secret, channel="hotline")
    assert response.status_code == 201, response.get_data(as_text=True)
    incident = db.get(Incident, int(response.get_json()[0]["service_request_id"]))
    assert (incident.reported_by, incident.channel) == ("hotline", "hotline")
