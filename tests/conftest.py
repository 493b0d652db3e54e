"""Fixtures: a real PostGIS database built by the migrations, one transaction per test.

Each test session creates throw-away databases on the configured server (geogrid's
private cluster, or the server ``GEOGRID_DATABASE_URL`` names), migrates them with
``geogrid.db.upgrade`` and drops them at the end. Every test runs inside a transaction
that is rolled back; code under test that commits only releases a savepoint
(SQLAlchemy's ``join_transaction_mode="create_savepoint"``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from geogrid.codes import CodeScheme
from geogrid.db import make_engine, upgrade
from geogrid.settings import Settings


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings from the environment, as the CLI would read them."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def make_database(base_settings: Settings) -> Iterator[Callable[[str], Engine]]:
    """A factory of migrated, empty databases for a given code scheme."""
    admin_url = make_url(base_settings.sqlalchemy_url).set(database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    made: list[tuple[str, Engine]] = []

    def make(scheme: str) -> Engine:
        name = f"geogrid_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(base_settings.sqlalchemy_url).set(database=name)
        engine = make_engine(base_settings.with_(database_url=url.render_as_string(False)))
        upgrade(engine, CodeScheme.parse(scheme))
        made.append((name, engine))
        return engine

    yield make
    for name, engine in made:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def make_cli(make_database, base_settings):
    """A factory of ``geogrid`` invokers, each on a fresh database (the CLI commits for real)."""
    from click.testing import CliRunner

    from geogrid.cli import main

    def make(scheme: str | None = None):
        engine = make_database(scheme or base_settings.code_scheme)
        env = {"GEOGRID_DATABASE_URL": engine.url.render_as_string(False)}

        def invoke(*args: str, ok: bool = True):
            result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
            if ok:
                assert result.exit_code == 0, result.output
            return result

        return invoke

    return make


@pytest.fixture(scope="session")
def engine(make_database: Callable[[str], Engine], base_settings: Settings) -> Engine:
    """The test database with the default code scheme."""
    return make_database(base_settings.code_scheme)


@pytest.fixture
def settings(base_settings: Settings, engine: Engine) -> Settings:
    """Settings pointing at the test database."""
    return base_settings.with_(database_url=engine.url.render_as_string(False))


@pytest.fixture
def connection(engine: Engine) -> Iterator:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def session_factory(connection) -> sessionmaker[Session]:
    """Sessions joined to the test's transaction; their commits become savepoints."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for the test; everything it does is rolled back afterwards."""
    session = session_factory()
    yield session
    session.close()
