"""Web fixtures: the app bound to the test's rolled-back transaction, and a loaded tiny city."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from factories import load_tiny_city
from flask import Flask
from flask.testing import FlaskClient
from geoalchemy2.shape import from_shape
from sqlalchemy.orm import Session, sessionmaker

from geogrid import area_stats, quicklocate
from geogrid.models import STORAGE_SRID, Area, Generation
from geogrid.settings import Settings
from geogrid.users import add_user, issue_token
from web import create_app


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[Flask]:
    """The app, its sessions joined to the test's transaction.

    What a process trusts for a second (the current generation, the data version) is
    forgotten afterwards: the test's rows are rolled back, the next test's are new.
    """
    app = create_app(settings.with_(secret_key="test-secret"), session_factory=session_factory)
    app.config.update(TESTING=True)
    yield app
    quicklocate.forget()
    area_stats.forget()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client with no Accept-Language, so the default language applies.

    Not used as a context manager: that would keep its last request's context (and the
    user cached on ``g``) open, and another client of the same app would see it.
    """
    return app.test_client()


@pytest.fixture
def city(db: Session, settings: Settings, tmp_path: Path) -> Generation:
    """The tiny city (tests/factories.py) imported and activated through the library."""
    return load_tiny_city(db, settings, tmp_path, user="tests").generation


@pytest.fixture
def auth_headers(db: Session, city: Generation) -> Callable[..., dict[str, str]]:
    """Authorization headers of a new user (role, scope codes) with an API token."""

    def make(name: str, role: str, *scope: str, department: str = "") -> dict[str, str]:
        add_user(db, name, role, scope=scope, department=department, created_by="tests")
        secret, _ = issue_token(db, name, purpose="tests")
        return {"Authorization": f"Bearer {secret}"}

    return make


#: The password of every user made by ``login_as``.
TEST_PASSWORD = "correct horse battery"


@pytest.fixture
def login_as(app: Flask, db: Session, city: Generation) -> Callable[..., FlaskClient]:
    """A new test client signed in through the real login form as a new user.

    ``login_as(role, *scope, name=None, department="")``; the client's ``csrf_token``
    is the token its forms and scripted writes must send.
    """
    made: list[FlaskClient] = []

    def make(role: str, *scope: str, name: str | None = None, department: str = "") -> FlaskClient:
        name = name or f"{role.replace('_', '-')}-{len(made) + 1}"
        add_user(
            db,
            name,
            role,
            scope=scope,
            department=department,
            password=TEST_PASSWORD,
            created_by="tests",
        )
        client = app.test_client()
        token = csrf_token_of(client, "/login")
        response = client.post(
            "/login", data={"name": name, "password": TEST_PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        client.csrf_token = csrf_token_of(client, "/login")  # type: ignore[attr-defined]
        made.append(client)
        return client

    return make


def csrf_token_of(client: FlaskClient, path: str) -> str:
    """The CSRF token a page gives this client (from ``<meta name="csrf-token">``)."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, f"{path} has no csrf-token meta tag"
    return found.group(1)


@pytest.fixture
def make_generation(db: Session) -> Callable[..., Generation]:
    """Insert areas as one active generation, even a set activation would refuse."""

    def make(areas: gpd.GeoDataFrame, *, description: str = "") -> Generation:
        return _insert_active(db, areas, description)

    return make


def _insert_active(db: Session, areas: gpd.GeoDataFrame, description: str) -> Generation:
    # Straight into the tables (4549 is the tiny city's Gauss-Krüger zone).
    generation = Generation(
        status="active", description=description, created_by="tests", metric_srid=4549
    )
    db.add(generation)
    db.flush()
    for row in areas.itertuples(index=False):
        db.add(
            Area(
                code=row.code,
                level=row.level,
                parent_code=row.parent_code,
                name=row.name,
                households=None if pd.isna(row.households) else int(row.households),
                generation_low=generation.id,
                generation_high=generation.id,
                geom=from_shape(shapely.MultiPolygon([row.geometry]), srid=STORAGE_SRID),
            )
        )
    db.flush()
    return generation
