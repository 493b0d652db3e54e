"""``geogrid serve``: gunicorn configured from the settings (not started here)."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from gunicorn.workers.gthread import ThreadWorker

from geogrid.errors import ConfigError
from web import create_app
from web.server import THREADS, GeogridServer, bind_address, gunicorn_options


def test_gunicorn_takes_address_and_workers_from_the_settings(settings):
    chosen = settings.with_(host="0.0.0.0", port=8123, workers=3, secret_key="k")
    server = GeogridServer(chosen, gunicorn_options(chosen))
    assert server.cfg.bind == ["0.0.0.0:8123"]
    assert server.cfg.workers == 3 and server.cfg.threads == THREADS
    assert server.cfg.worker_class_str == "web.workers.FairThreadWorker"
    assert issubclass(server.cfg.worker_class, ThreadWorker)
    # Each worker builds its own app (and database pool) from the same settings.
    app = server.load()
    assert isinstance(app, Flask) and app.config["SECRET_KEY"] == "k"


def test_ipv6_addresses_are_bracketed():
    assert bind_address("::1", 8000) == "[::1]:8000"
    assert bind_address("127.0.0.1", 8000) == "127.0.0.1:8000"


def test_an_unreachable_database_is_503_for_health_checks(settings, caplog):
    nowhere = settings.with_(database_url="postgresql://nobody@/nodb?host=/nonexistent-socket-dir")
    client = create_app(nowhere).test_client()
    with caplog.at_level(logging.ERROR, logger="web.errors"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_not_ready"
    assert "nonexistent-socket-dir" not in response.get_data(as_text=True)
    assert "nonexistent-socket-dir" in caplog.text


def test_a_tiles_setting_that_cannot_work_stops_the_app_at_start(settings):
    with pytest.raises(ConfigError) as info:
        create_app(settings.with_(tiles="https://tiles.example.org/{z}/{x}/{y}.png"))
    assert info.value.field == "GEOGRID_TILES_ATTRIBUTION"


def test_without_a_secret_key_each_process_makes_one_and_warns(settings, session_factory, caplog):
    with caplog.at_level(logging.WARNING, logger="web"):
        app = create_app(settings.with_(secret_key=""), session_factory=session_factory)
    assert len(app.config["SECRET_KEY"]) == 64
    assert "GEOGRID_SECRET_KEY is not set" in caplog.text
