"""boundaries: generations, areas, lineage

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:20:10.190269
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `geogrid db upgrade` creates these first; repeated here so a bare `alembic upgrade` works.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_by", sa.String(length=128), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=128), nullable=True),
        sa.Column("retired_reason", sa.Text(), nullable=True),
        sa.Column("metric_srid", sa.Integer(), nullable=True),
        sa.Column("validation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'retired')", name="generation_status_known"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_generation_one_active",
        "generation",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "uq_generation_one_draft",
        "generation",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'draft'"),
    )
    op.create_table(
        "geogrid_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_geospatial_table(
        "area",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="comprehensive", nullable=False),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("generation_low", sa.Integer(), nullable=False),
        sa.Column("generation_high", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        postgresql.ExcludeConstraint(
            (sa.text("code"), "="),
            (sa.text("int4range(generation_low, generation_high, '[]')"), "&&"),
            using="gist",
            name="area_code_once_per_generation",
        ),
        sa.CheckConstraint("kind IN ('comprehensive', 'dedicated')", name="area_kind_known"),
        sa.CheckConstraint("ST_IsValid(geom)", name="area_geom_valid"),
        sa.CheckConstraint("generation_low <= generation_high", name="area_generations_ordered"),
        sa.CheckConstraint(
            "households IS NULL OR households >= 0", name="area_households_positive"
        ),
        sa.CheckConstraint(
            "population IS NULL OR population >= 0", name="area_population_positive"
        ),
        sa.ForeignKeyConstraint(
            ["generation_high"],
            ["generation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["generation_low"],
            ["generation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "idx_area_geom", "area", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_area_code", "area", ["code"], unique=False)
    op.create_index(
        "ix_area_level_generations",
        "area",
        ["level", "generation_low", "generation_high"],
        unique=False,
    )
    op.create_index("ix_area_parent_code", "area", ["parent_code"], unique=False)
    op.create_table(
        "lineage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("old_area_id", sa.Integer(), nullable=False),
        sa.Column("new_area_id", sa.Integer(), nullable=False),
        sa.Column("old_code", sa.String(length=32), nullable=False),
        sa.Column("new_code", sa.String(length=32), nullable=False),
        sa.Column("overlap_m2", sa.Float(), nullable=False),
        sa.Column("share_of_old", sa.Float(), nullable=False),
        sa.Column("share_of_new", sa.Float(), nullable=False),
        sa.Column("households_moved", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "share_of_new > 0 AND share_of_new <= 1.000001", name="lineage_share_new"
        ),
        sa.CheckConstraint(
            "share_of_old > 0 AND share_of_old <= 1.000001", name="lineage_share_old"
        ),
        sa.ForeignKeyConstraint(
            ["generation"],
            ["generation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["new_area_id"],
            ["area.id"],
        ),
        sa.ForeignKeyConstraint(
            ["old_area_id"],
            ["area.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lineage_new_area", "lineage", ["new_area_id"], unique=False)
    op.create_index("ix_lineage_old_area", "lineage", ["old_area_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_lineage_old_area", table_name="lineage")
    op.drop_index("ix_lineage_new_area", table_name="lineage")
    op.drop_table("lineage")
    op.drop_index("ix_area_parent_code", table_name="area")
    op.drop_index("ix_area_level_generations", table_name="area")
    op.drop_index("ix_area_code", table_name="area")
    op.drop_geospatial_index(
        "idx_area_geom", table_name="area", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("area")
    op.drop_table("geogrid_meta")
    op.drop_index("uq_generation_one_draft", table_name="generation")
    op.drop_index("uq_generation_one_active", table_name="generation")
    op.drop_table("generation")
