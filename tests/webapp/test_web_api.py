"""The JSON API: locate a point, and errors as JSON with the field at fault."""

from __future__ import annotations

import logging

import pytest


def error_of(response) -> dict:
    assert response.is_json, response.data[:200]
    return response.get_json()["error"]


def test_locate_places_a_point_in_its_grid(client, city):
    response = client.get("/api/locate?lon=119.005&lat=36.71&crs=wgs84")
    assert response.status_code == 200
    location = response.get_json()
    assert location["status"] == "inside"
    assert location["grid_code"] == "370705001001001"
    assert location["generation"] == city.id
    assert location["level"] == "grid"
    assert location["codes"] == {
        "county": "370705",
        "township": "370705001",
        "community": "370705001001",
        "grid": "370705001001001",
    }
    assert location["names"]["grid"] == "东关第1网格"
    # Chinese names travel as they are, not as \u escapes.
    assert "东关第1网格".encode() in response.data


def test_locate_at_another_level_and_generation(client, city):
    response = client.get(
        f"/api/locate?lon=119.035&lat=36.71&crs=cgcs2000&level=township&generation={city.id}"
    )
    assert response.status_code == 200
    assert response.get_json()["grid_code"] == "370705002"


def test_a_point_outside_every_grid_is_kept_with_the_nearest(client, city):
    location = client.get("/api/locate?lon=119.05&lat=36.71&crs=wgs84").get_json()
    assert location["status"] == "outside" and location["grid_code"] is None
    assert location["nearest"]["code"] == "370705002001002"
    # 0.01° of longitude at 36.71°N is about 893 m.
    assert location["nearest"]["distance_m"] == pytest.approx(893, rel=0.01)


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("lat=36.71&crs=wgs84", "invalid_coordinate", "lon"),
        ("lon=east&lat=36.71&crs=wgs84", "invalid_coordinate", "lon"),
        ("lon=119.005&lat=&crs=wgs84", "invalid_coordinate", "lat"),
        ("lon=119.005&lat=95&crs=wgs84", "invalid_coordinate", "lat"),
        ("lon=119.005&lat=nan&crs=wgs84", "invalid_coordinate", "lat"),
        ("lon=119.005&lat=36.71", "invalid_coordinate", "crs"),
        ("lon=119.005&lat=36.71&crs=mars", "invalid_coordinate", "crs"),
        ("lon=119.005&lat=36.71&crs=wgs84&level=street", "invalid_code", "level"),
        ("lon=119.005&lat=36.71&crs=wgs84&generation=two", "invalid_input", "generation"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(client, city, query, code, field):
    response = client.get(f"/api/locate?{query}")
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]


def test_an_unknown_generation_is_404(client, city):
    response = client.get("/api/locate?lon=119.005&lat=36.71&crs=wgs84&generation=999")
    assert response.status_code == 404
    assert error_of(response)["field"] == "generation"


def test_no_active_generation_is_a_404_that_says_what_to_do(client):
    response = client.get("/api/locate?lon=119.005&lat=36.71&crs=wgs84")
    assert response.status_code == 404
    assert "activate" in error_of(response)["message"]


def test_unknown_api_paths_and_methods_answer_json(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404
    assert error_of(missing) == {
        "code": "not_found",
        "message": missing.get_json()["error"]["message"],
        "field": None,
    }
    assert error_of(client.post("/api/locate"))["code"] == "method_not_allowed"


def test_an_unexpected_failure_answers_without_a_stack_trace(app, caplog):
    def broken():
        raise RuntimeError("secret detail")

    app.add_url_rule("/api/broken", view_func=broken)
    app.config.update(TESTING=False)  # as in production: handled, not re-raised
    with caplog.at_level(logging.ERROR, logger="web.errors"):
        response = app.test_client().get("/api/broken")
    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"
    assert b"secret detail" not in response.data and b"Traceback" not in response.data
    assert "secret detail" in caplog.text  # logged for the operator instead


def test_healthz_reports_the_current_generation(client, city):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "generation": city.id}


def test_locate_lists_levels_coarsest_first(client, city):
    body = client.get("/api/locate?lon=119.005&lat=36.71&crs=wgs84").get_json()
    assert list(body["codes"]) == ["county", "township", "community", "grid"]
