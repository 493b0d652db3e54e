"""report-in deadline: escalation no longer overwrites the acceptance deadline

An escalated incident waits for the receiving level to report in (报到). Keeping that
deadline in its own column leaves ``accept_due_at`` as first set, so "accepted on time"
in the reports judges the first acceptance on its own clock; a missed report-in is a
breach of its own kind.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 20:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "incident", sa.Column("report_in_due_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_constraint("incident_breach_deadline", "incident_breach", type_="check")
    op.create_check_constraint(
        "incident_breach_deadline",
        "incident_breach",
        "deadline IN ('accept', 'report_in', 'resolve')",
    )


def downgrade() -> None:
    op.drop_constraint("incident_breach_deadline", "incident_breach", type_="check")
    op.create_check_constraint(
        "incident_breach_deadline", "incident_breach", "deadline IN ('accept', 'resolve')"
    )
    op.drop_column("incident", "report_in_due_at")
