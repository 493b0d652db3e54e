"""neighbours and session epoch

- area_neighbour: binary contiguity of each level's areas per generation, built once so
  hotspot statistics never find neighbours during a request;
- app_user.session_epoch: raised to end all of a user's web sessions at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 22:39:32.430153
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "area_neighbour",
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("neighbour_code", sa.String(length=32), nullable=False),
        sa.Column("shares_edge", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["generation_id"], ["generation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("generation_id", "level", "code", "neighbour_code"),
    )
    op.add_column(
        "app_user", sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("app_user", "session_epoch")
    op.drop_table("area_neighbour")
