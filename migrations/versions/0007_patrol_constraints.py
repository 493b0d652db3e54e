"""patrol constraints: natural keys and kinds the imports and the optimiser rely on

- members are unique by name within their team (or organisation, when in no team);
- a check-in without a member is still deduplicated (NULLS NOT DISTINCT);
- an assignment's source is one of manual, import, optimiser;
- a community office always has a parent station, a station never;
- track lines are compressed with lz4: a day of a city's tracks is ~3 million fixes and
  the default pglz compression was most of the load time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:35:39.886277
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("uq_patrol_checkin_once", "patrol_checkin", type_="unique")
    op.create_unique_constraint(
        "uq_patrol_checkin_once",
        "patrol_checkin",
        ["team_id", "member_id", "at"],
        postgresql_nulls_not_distinct=True,
    )
    op.create_index(
        "uq_patrol_member_organisation_name",
        "patrol_member",
        ["organisation_id", "name"],
        unique=True,
        postgresql_where=sa.text("team_id IS NULL"),
    )
    op.create_index(
        "uq_patrol_member_team_name",
        "patrol_member",
        ["team_id", "name"],
        unique=True,
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.create_check_constraint(
        "patrol_assignment_source_known",
        "patrol_assignment",
        "source IN ('manual', 'import', 'optimiser')",
    )
    op.create_check_constraint(
        "police_station_office_has_parent",
        "police_station",
        "(kind = 'community_office') = (parent_code IS NOT NULL)",
    )
    op.execute("ALTER TABLE patrol_track ALTER COLUMN geom SET COMPRESSION lz4")


def downgrade() -> None:
    op.execute("ALTER TABLE patrol_track ALTER COLUMN geom SET COMPRESSION default")
    op.drop_constraint("police_station_office_has_parent", "police_station", type_="check")
    op.drop_constraint("patrol_assignment_source_known", "patrol_assignment", type_="check")
    op.drop_index("uq_patrol_member_team_name", table_name="patrol_member")
    op.drop_index("uq_patrol_member_organisation_name", table_name="patrol_member")
    op.drop_constraint("uq_patrol_checkin_once", "patrol_checkin", type_="unique")
    op.create_unique_constraint(
        "uq_patrol_checkin_once", "patrol_checkin", ["team_id", "member_id", "at"]
    )
