"""users: people who log in and the API tokens of clients, each with a role and a scope

Login names are stored in lower case so that uniqueness is case-insensitive. Passwords
are stored only as werkzeug hashes; tokens only as the SHA-256 of their secret. Users
are disabled, never deleted, so the names in incident histories keep meaning someone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 19:51:50.205370
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.Text(), server_default="", nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column(
            "scope",
            postgresql.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("department", sa.Text(), server_default="", nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'administrator') = (cardinality(scope) = 0)",
            name="app_user_scope_unless_administrator",
        ),
        sa.CheckConstraint(
            "role IN ('administrator', 'official', 'grid_worker', 'patrol_member',"
            " 'station_officer', 'planner', 'department', 'resident')",
            name="app_user_role_known",
        ),
        sa.CheckConstraint("failed_logins >= 0", name="app_user_failed_logins_positive"),
        sa.CheckConstraint("name = lower(name) AND length(name) > 0", name="app_user_name_lower"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_token_prefix", "api_token", ["prefix"], unique=False)
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_token_user_id", table_name="api_token")
    op.drop_index("ix_api_token_prefix", table_name="api_token")
    op.drop_table("api_token")
    op.drop_table("app_user")
