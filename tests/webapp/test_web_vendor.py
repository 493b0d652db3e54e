"""``/vendor``: the npm packages served by the app, and nothing else."""

from __future__ import annotations

import json

import pytest

from geogrid.maps import FOLIUM_ASSETS
from web import VENDOR_ROOT
from web.vendor import (
    GLYPHICONS,
    OWN_PACKAGE,
    OWN_ROOT,
    PACKAGES,
    YEAR,
    asset_url,
    split_package,
)


def get(client, url: str):
    response = client.get(url)
    response.get_data()
    response.close()
    return response


@pytest.mark.parametrize("name", sorted(FOLIUM_ASSETS))
def test_every_folium_asset_has_a_file_we_serve(name):
    _, path = FOLIUM_ASSETS[name]
    package, rest = split_package(path)
    if package == OWN_PACKAGE:
        assert (OWN_ROOT / rest).is_file()
    elif path == GLYPHICONS:
        assert (VENDOR_ROOT / "bootstrap3/dist/css/bootstrap.css").is_file()
    else:
        assert package in PACKAGES
        assert (VENDOR_ROOT / path).is_file(), f"{path}: run scripts/setup (npm ci)"


def test_a_current_version_is_cached_for_a_year(app):
    version = json.loads((VENDOR_ROOT / "leaflet/package.json").read_text())["version"]
    with app.test_request_context():
        url = asset_url("leaflet/dist/leaflet.js")
    assert url == f"/vendor/leaflet/dist/leaflet.js?v={version}"
    response = get(app.test_client(), url)
    assert response.status_code == 200
    assert response.cache_control.max_age == YEAR and response.cache_control.immutable
    stale = get(app.test_client(), "/vendor/leaflet/dist/leaflet.js?v=1.0.0")
    assert stale.status_code == 200 and stale.cache_control.max_age < YEAR
    assert not stale.cache_control.immutable


@pytest.mark.parametrize(
    "url",
    [
        "/vendor/left-pad/index.js",  # not a package we serve
        "/vendor/leaflet/package.json",  # not something a browser needs
        "/vendor/leaflet/README.md",
        "/vendor/leaflet/../../../pyproject.toml",
        "/vendor/leaflet/%2e%2e/%2e%2e/package.json",
        "/vendor/leaflet/dist/nothing.js",
    ],
)
def test_only_browser_files_of_listed_packages_are_served(client, url):
    assert get(client, url).status_code == 404


def test_glyphicons_are_bootstrap3s_icon_rules_only(client):
    response = get(client, f"/vendor/{GLYPHICONS}")
    assert response.status_code == 200 and response.mimetype == "text/css"
    css = response.get_data(as_text=True)
    assert "@font-face" in css and "../fonts/glyphicons-halflings-regular.woff2" in css
    assert ".glyphicon-info-sign:before" in css
    # Nothing that would restyle the Bootstrap 5 page around the map.
    assert ".btn" not in css and "body" not in css and ".container" not in css
    assert (
        get(client, "/vendor/bootstrap3/dist/fonts/glyphicons-halflings-regular.woff2").status_code
        == 200
    )


def test_our_rotation_stylesheet_covers_every_angle(client):
    css = get(client, "/vendor/geogrid/leaflet.awesome.rotate.css").get_data(as_text=True)
    for angle in (0, 45, 90, 359):
        assert f".fa-rotate-{angle}{{transform:rotate({angle}deg)}}" in css
