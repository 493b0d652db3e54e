"""incidents: categories, incidents, reporter contacts, the event log and escalated breaches

The event log is append-only: a trigger refuses UPDATE and DELETE on it, so a bug or a
hand-written statement cannot rewrite an incident's history. The default categories are
a starting list an administrator edits (deadlines in working days, per the 小红哨 rule:
accept within 1, resolve within 3, complex within 5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:47:19.366527
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION incident_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER incident_event_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON incident_event
FOR EACH STATEMENT EXECUTE FUNCTION incident_event_refuse_change()
"""

category_table = sa.table(
    "incident_category",
    sa.column("code", sa.String),
    sa.column("name_zh", sa.Text),
    sa.column("name_en", sa.Text),
    sa.column("department", sa.Text),
    sa.column("accept_days", sa.Integer),
    sa.column("resolve_days", sa.Integer),
    sa.column("complex_days", sa.Integer),
    sa.column("risk_weight", sa.Float),
)


def _category(code, name_zh, name_en, department, risk_weight, resolve_days=3, complex_days=5):
    return {
        "code": code,
        "name_zh": name_zh,
        "name_en": name_en,
        "department": department,
        "accept_days": 1,
        "resolve_days": resolve_days,
        "complex_days": complex_days,
        "risk_weight": risk_weight,
    }


DEFAULT_CATEGORIES = [
    _category("environment", "环境卫生", "Environment and sanitation", "城市管理局", 0.5),
    _category("public_facility", "公共设施", "Public facilities", "住房和城乡建设局", 0.5),
    _category("dispute", "矛盾纠纷", "Neighbourhood dispute", "司法局", 1.5),
    _category("safety_hazard", "安全隐患", "Safety hazard", "应急管理局", 2.0),
    _category("public_order", "治安问题", "Public order", "公安分局", 3.0, 1, 3),
    _category("noise", "噪音扰民", "Noise", "生态环境局", 0.5),
    _category("property", "物业管理", "Property management", "住房和城乡建设局", 0.5),
    _category("livelihood", "民生服务", "Social services", "民政局", 0.5, 5, 10),
    _category("other", "其他", "Other", "综治中心", 0.5),
]


def upgrade() -> None:
    op.create_table(
        "incident_category",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), server_default="", nullable=False),
        sa.Column("accept_days", sa.Integer(), server_default="1", nullable=False),
        sa.Column("resolve_days", sa.Integer(), server_default="3", nullable=False),
        sa.Column("complex_days", sa.Integer(), server_default="5", nullable=False),
        sa.Column("risk_weight", sa.Float(), server_default="1", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "accept_days >= 0 AND resolve_days >= 0 AND complex_days >= resolve_days",
            name="incident_category_deadlines",
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_geospatial_table(
        "incident",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("complex", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="reported", nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("reported_by", sa.Text(), server_default="", nullable=False),
        sa.Column("given_lon", sa.Float(), nullable=True),
        sa.Column("given_lat", sa.Float(), nullable=True),
        sa.Column("coord_type", sa.String(length=16), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=True,
            ),
            nullable=True,
        ),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("placement", sa.String(length=16), nullable=False),
        sa.Column(
            "placement_detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("level", sa.String(length=16), server_default="grid", nullable=False),
        sa.Column("assignee", sa.Text(), nullable=True),
        sa.Column("department", sa.Text(), server_default="", nullable=False),
        sa.Column("accept_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_alert", sa.Text(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_from", sa.String(length=16), nullable=True),
        sa.Column("paused_working_s", sa.Float(), server_default="0", nullable=False),
        sa.Column("extension_requested_days", sa.Integer(), nullable=True),
        sa.Column("extension_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column("satisfaction", sa.String(length=16), nullable=True),
        sa.Column("reopened_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalation_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=True),
        sa.Column(
            "photos",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(geom IS NULL) = (placement = 'by_code')", name="incident_point_unless_by_code"
        ),
        sa.CheckConstraint(
            "(grid_code IS NULL) = (placement = 'outside')", name="incident_grid_unless_outside"
        ),
        sa.CheckConstraint(
            "channel IN ('whistle', 'grid_worker', 'hotline', 'alliance', 'import')",
            name="incident_channel_known",
        ),
        sa.CheckConstraint(
            "level IN ('grid', 'community', 'township', 'county')", name="incident_level_known"
        ),
        sa.CheckConstraint(
            "placement IN ('inside', 'near_edge', 'edge', 'outside', 'by_code', 'placed')",
            name="incident_placement_known",
        ),
        sa.CheckConstraint(
            "satisfaction IS NULL OR satisfaction IN ('satisfied', 'unsatisfied')",
            name="incident_satisfaction_known",
        ),
        sa.CheckConstraint(
            "state IN ('reported', 'accepted', 'dispatched', 'in_progress', 'escalated',"
            " 'suspended', 'resolved', 'evaluated', 'rejected', 'merged')",
            name="incident_state_known",
        ),
        sa.CheckConstraint("length(btrim(description)) > 0", name="incident_description_given"),
        sa.ForeignKeyConstraint(
            ["category"],
            ["incident_category.code"],
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["incident.id"],
        ),
        sa.ForeignKeyConstraint(
            ["generation"],
            ["generation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_geospatial_index(
        "idx_incident_geom",
        "incident",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_incident_category_reported_at", "incident", ["category", "reported_at"], unique=False
    )
    op.create_index(
        "ix_incident_grid_code_reported_at", "incident", ["grid_code", "reported_at"], unique=False
    )
    op.create_index(
        "ix_incident_open_state",
        "incident",
        ["state"],
        unique=False,
        postgresql_where=sa.text("state NOT IN ('evaluated', 'rejected', 'merged')"),
    )
    op.create_index("ix_incident_reported_at", "incident", ["reported_at"], unique=False)
    op.create_table(
        "incident_breach",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "escalated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.CheckConstraint("deadline IN ('accept', 'resolve')", name="incident_breach_deadline"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("incident_id", "deadline", "due_at"),
    )
    op.create_table(
        "incident_contact",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("phone", sa.Text(), server_default="", nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_table(
        "incident_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_incident_event_incident_id", "incident_event", ["incident_id", "id"], unique=False
    )
    op.create_index("ix_incident_duplicate_of", "incident", ["duplicate_of"], unique=False)
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)
    op.bulk_insert(category_table, DEFAULT_CATEGORIES)


def downgrade() -> None:
    op.execute("DROP TRIGGER incident_event_append_only ON incident_event")
    op.execute("DROP FUNCTION incident_event_refuse_change()")
    op.drop_index("ix_incident_duplicate_of", table_name="incident")
    op.drop_index("ix_incident_event_incident_id", table_name="incident_event")
    op.drop_table("incident_event")
    op.drop_table("incident_contact")
    op.drop_table("incident_breach")
    op.drop_index("ix_incident_reported_at", table_name="incident")
    op.drop_index(
        "ix_incident_open_state",
        table_name="incident",
        postgresql_where=sa.text("state NOT IN ('evaluated', 'rejected', 'merged')"),
    )
    op.drop_index("ix_incident_grid_code_reported_at", table_name="incident")
    op.drop_index("ix_incident_category_reported_at", table_name="incident")
    op.drop_geospatial_index(
        "idx_incident_geom", table_name="incident", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("incident")
    op.drop_table("incident_category")
