"""Connections, transactions and the schema: engines, sessions and Alembic upgrades.

Library functions take a :class:`~sqlalchemy.orm.Session` and may flush, never commit;
the CLI command or the web request that opened the session owns the transaction
(:func:`session_scope`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from geogrid.codes import CodeScheme
from geogrid.errors import Conflict, DatabaseNotReady
from geogrid.models import Meta
from geogrid.settings import PROJECT_ROOT, Settings

MIGRATIONS = PROJECT_ROOT / "migrations"

#: Extensions the schema needs; btree_gist lets one exclusion constraint mix codes and ranges.
EXTENSIONS = ("postgis", "btree_gist")


#: Tables PostGIS and its extensions own; they are not part of geogrid's schema.
FOREIGN_TABLES = frozenset({"spatial_ref_sys", "topology", "layer"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate's filter: geogrid's own objects, spatial indexes as GeoAlchemy2 makes them."""
    if type_ == "table" and name in FOREIGN_TABLES:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def make_engine(settings: Settings, **options: object) -> Engine:
    """An engine for the configured database (the private cluster by default)."""
    options.setdefault("pool_pre_ping", True)
    return create_engine(settings.sqlalchemy_url, **options)


def make_sessionmaker(bind: Engine | Connection, **options: object) -> sessionmaker[Session]:
    """A session factory; tests bind it to a connection inside a rolled-back transaction."""
    options.setdefault("expire_on_commit", False)
    return sessionmaker(bind=bind, **options)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, pointing at ``migrations/`` and optionally at a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, scheme: CodeScheme, revision: str = "head") -> None:
    """Create the extensions if needed, apply the migrations and record the code scheme."""
    try:
        with engine.begin() as connection:
            for extension in EXTENSIONS:
                connection.execute(text(f'CREATE EXTENSION IF NOT EXISTS "{extension}"'))
            command.upgrade(alembic_config(connection), revision)
            with Session(bind=connection) as session:
                ensure_code_scheme(session, scheme)
                session.flush()
    except OperationalError as exc:
        raise DatabaseNotReady(connection_advice(exc)) from exc


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at, or None before the first one."""
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest migration in ``migrations/``."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_schema(session: Session, scheme: CodeScheme) -> None:
    """Refuse to work on a database that is not migrated or was made for another scheme."""
    revision = current_revision(session.connection())
    if revision != head_revision():
        raise DatabaseNotReady(
            f"the database is at migration {revision or 'none'}, not {head_revision()}; "
            "run `geogrid db upgrade`"
        )
    ensure_code_scheme(session, scheme)


def ensure_code_scheme(session: Session, scheme: CodeScheme) -> None:
    """Record the code scheme on first use; refuse a different one later."""
    stored = session.scalar(select(Meta.value).where(Meta.key == "code_scheme"))
    if stored is None:
        session.add(Meta(key="code_scheme", value=str(scheme)))
    elif stored != str(scheme):
        raise Conflict(
            f"this database was created with the code scheme {stored!r}, not {str(scheme)!r}; "
            "set GEOGRID_CODE_SCHEME to match it or use another database",
            field="GEOGRID_CODE_SCHEME",
        )


def connection_advice(exc: OperationalError) -> str:
    """What to do when the database cannot be reached, in one sentence."""
    hint = (
        "start geogrid's own cluster with `make setup` (or `scripts/pgcluster start`)"
        if "/.geogrid/run" in str(exc.orig)
        else "check GEOGRID_DATABASE_URL and that the server is running"
    )
    detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "no answer"
    return f"cannot reach the database: {detail}; {hint}"
