"""patrols: 平安联盟 organisations, police stations and their grids, teams, members,
assignments, GPS tracks (LineStringM, time as M), check-ins and leads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:08:27.540201
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("county_code", sa.String(length=32), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('property_management', 'compound_guard', 'company_security', 'sanitation',"
            " 'parks', 'taxi', 'shop', 'volunteer', 'police')",
            name="patrol_organisation_kind_known",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_patrol_organisation_name"),
    )
    op.create_geospatial_table(
        "police_station",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), server_default="station", nullable=False),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('station', 'community_office')", name="police_station_kind_known"
        ),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["police_station.code"],
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_geospatial_index(
        "idx_police_station_geom",
        "police_station",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "patrol_team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mark", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("station_code", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column(
            "base",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("capacity", sa.Float(), server_default="1", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint("capacity > 0", name="patrol_team_capacity_positive"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["patrol_organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["station_code"],
            ["police_station.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mark"),
    )
    op.create_geospatial_index(
        "idx_patrol_team_base",
        "patrol_team",
        ["base"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_patrol_team_station_code"), "patrol_team", ["station_code"], unique=False
    )
    op.create_table(
        "station_grid",
        sa.Column("station_code", sa.String(length=32), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_code"],
            ["police_station.code"],
        ),
        sa.PrimaryKeyConstraint("station_code", "grid_code"),
    )
    op.create_index(op.f("ix_station_grid_grid_code"), "station_grid", ["grid_code"], unique=False)
    op.create_table(
        "patrol_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=False),
        sa.Column("weekdays", sa.SmallInteger(), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("locked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("source", sa.String(length=16), server_default="manual", nullable=False),
        sa.Column("created_by", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("starts <> ends", name="patrol_assignment_window_not_empty"),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name="patrol_assignment_validity"
        ),
        sa.CheckConstraint("weekdays > 0 AND weekdays < 128", name="patrol_assignment_weekdays"),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["patrol_team.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_patrol_assignment_grid_code", "patrol_assignment", ["grid_code"], unique=False
    )
    op.create_index("ix_patrol_assignment_team_id", "patrol_assignment", ["team_id"], unique=False)
    op.create_table(
        "patrol_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("phone_masked", sa.String(length=32), server_default="", nullable=False),
        sa.Column("is_leader", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["patrol_organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["patrol_team.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_patrol_member_team_id"), "patrol_member", ["team_id"], unique=False)
    op.create_geospatial_table(
        "patrol_checkin",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("placement", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(
            "placement IN ('inside', 'near_edge', 'edge', 'outside')",
            name="patrol_checkin_placement",
        ),
        sa.ForeignKeyConstraint(
            ["generation"],
            ["generation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["patrol_member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["patrol_team.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "member_id", "at", name="uq_patrol_checkin_once"),
    )
    op.create_geospatial_index(
        "idx_patrol_checkin_geom",
        "patrol_checkin",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_patrol_checkin_grid_at", "patrol_checkin", ["grid_code", "at"], unique=False
    )
    op.create_geospatial_table(
        "patrol_lead",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("given_lon", sa.Float(), nullable=False),
        sa.Column("given_lat", sa.Float(), nullable=False),
        sa.Column("coord_type", sa.String(length=16), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("placement", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="new", nullable=False),
        sa.Column("reward", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("reward_amount", sa.Float(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "placement IN ('inside', 'near_edge', 'edge', 'outside')", name="patrol_lead_placement"
        ),
        sa.CheckConstraint(
            "reward IN ('pending', 'granted', 'declined')", name="patrol_lead_reward_known"
        ),
        sa.CheckConstraint(
            "status IN ('new', 'verified', 'passed_on', 'rejected', 'closed')",
            name="patrol_lead_status",
        ),
        sa.CheckConstraint("length(btrim(note)) > 0", name="patrol_lead_note_given"),
        sa.ForeignKeyConstraint(
            ["category"],
            ["incident_category.code"],
        ),
        sa.ForeignKeyConstraint(
            ["generation"],
            ["generation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["patrol_member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["patrol_team.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_geospatial_index(
        "idx_patrol_lead_geom",
        "patrol_lead",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_patrol_lead_grid_at", "patrol_lead", ["grid_code", "at"], unique=False)
    op.create_geospatial_table(
        "patrol_track",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRINGM",
                srid=4490,
                dimension=3,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.Column("coord_type", sa.String(length=16), nullable=False),
        sa.Column("source_format", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "quality",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("uploaded_by", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "uploaded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("ended_at >= started_at", name="patrol_track_time_ordered"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["patrol_member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["patrol_team.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_geospatial_index(
        "idx_patrol_track_geom",
        "patrol_track",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_patrol_track_started_at", "patrol_track", ["started_at"], unique=False)
    op.create_index(
        "ix_patrol_track_team_started", "patrol_track", ["team_id", "started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_patrol_track_team_started", table_name="patrol_track")
    op.drop_index("ix_patrol_track_started_at", table_name="patrol_track")
    op.drop_geospatial_index(
        "idx_patrol_track_geom",
        table_name="patrol_track",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("patrol_track")
    op.drop_index("ix_patrol_lead_grid_at", table_name="patrol_lead")
    op.drop_geospatial_index(
        "idx_patrol_lead_geom",
        table_name="patrol_lead",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("patrol_lead")
    op.drop_index("ix_patrol_checkin_grid_at", table_name="patrol_checkin")
    op.drop_geospatial_index(
        "idx_patrol_checkin_geom",
        table_name="patrol_checkin",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("patrol_checkin")
    op.drop_index(op.f("ix_patrol_member_team_id"), table_name="patrol_member")
    op.drop_table("patrol_member")
    op.drop_index("ix_patrol_assignment_team_id", table_name="patrol_assignment")
    op.drop_index("ix_patrol_assignment_grid_code", table_name="patrol_assignment")
    op.drop_table("patrol_assignment")
    op.drop_index(op.f("ix_station_grid_grid_code"), table_name="station_grid")
    op.drop_table("station_grid")
    op.drop_index(op.f("ix_patrol_team_station_code"), table_name="patrol_team")
    op.drop_geospatial_index(
        "idx_patrol_team_base",
        table_name="patrol_team",
        postgresql_using="gist",
        column_name="base",
    )
    op.drop_geospatial_table("patrol_team")
    op.drop_geospatial_index(
        "idx_police_station_geom",
        table_name="police_station",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("police_station")
    op.drop_table("patrol_organisation")
