"""The schema is made by the migrations, and they match the models exactly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from geogrid.db import current_revision, head_revision, include_object
from geogrid.models import Base


def test_database_is_at_the_newest_migration(engine):
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_autogenerate_finds_no_difference(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_geometry_column_has_gist_index_and_validity_check(engine):
    with engine.connect() as connection:
        indexes = {ix["name"] for ix in inspect(connection).get_indexes("area")}
        assert "idx_area_geom" in indexes
        checks = connection.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'area_geom_valid'"
            )
        ).scalar_one()
        assert "st_isvalid" in checks.lower()
        geometry_type = connection.execute(
            text("SELECT type, srid FROM geometry_columns WHERE f_table_name = 'area'")
        ).one()
        assert tuple(geometry_type) == ("MULTIPOLYGON", 4490)
