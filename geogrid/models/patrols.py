"""平安联盟 patrols: organisations, police stations, teams, members, assignments, tracks,
check-ins and leads.

Police stations and community police offices are the pivot: teams belong to a station,
a station answers for a set of grids, and assignments give a team grids for a shift
pattern. Tracks keep the time of every fix as the M value of a ``LineStringM`` (epoch
seconds), so coverage (minutes inside, visits, gaps) is computed from the stored line
alone. Check-ins and leads are geocoded into grids like incidents: the grid code and
generation as recorded, kept forever.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geogrid.models.base import STORAGE_SRID, Base, sql_list

#: Kinds of member organisation of the alliance.
ORGANISATION_TYPES = (
    "property_management",
    "compound_guard",
    "company_security",
    "sanitation",
    "parks",
    "taxi",
    "shop",
    "volunteer",
    "police",
)
#: A police station (派出所) or a community police office (警务室) under one.
STATION_KINDS = ("station", "community_office")
LEAD_STATUSES = ("new", "verified", "passed_on", "rejected", "closed")
REWARD_DECISIONS = ("pending", "granted", "declined")
#: Where a check-in or lead fell (the geocoding statuses).
PATROL_PLACEMENTS = ("inside", "near_edge", "edge", "outside")


class PatrolOrganisation(Base):
    """A member organisation of the alliance: a property company, a taxi firm, a shop."""

    __tablename__ = "patrol_organisation"
    __table_args__ = (
        CheckConstraint(
            f"kind IN ({sql_list(ORGANISATION_TYPES)})", name="patrol_organisation_kind_known"
        ),
        UniqueConstraint("name", name="uq_patrol_organisation_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    #: The county it is registered in (a unified code).
    county_code: Mapped[str] = mapped_column(String(32), server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PoliceStation(Base):
    """A police station or community police office: a point and the grids it answers for."""

    __tablename__ = "police_station"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_list(STATION_KINDS)})", name="police_station_kind_known"),
        # A community office always hangs under a station; a station never does.
        CheckConstraint(
            "(kind = 'community_office') = (parent_code IS NOT NULL)",
            name="police_station_office_has_parent",
        ),
    )

    #: The station's own code, e.g. ``370705-PS03`` (stable, public).
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), server_default="station")
    #: For a community office, the station it belongs to.
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("police_station.code"))
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=STORAGE_SRID, spatial_index=True), nullable=False
    )


class StationGrid(Base):
    """One grid a station answers for (by unified code, so it survives redraws that keep it)."""

    __tablename__ = "station_grid"

    station_code: Mapped[str] = mapped_column(ForeignKey("police_station.code"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class PatrolTeam(Base):
    """A team attached to a station, known by its unified mark number (统一标识编号)."""

    __tablename__ = "patrol_team"
    __table_args__ = (CheckConstraint("capacity > 0", name="patrol_team_capacity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The unified mark number, e.g. ``PA-370705-0042``; unique and public.
    mark: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    station_code: Mapped[str] = mapped_column(ForeignKey("police_station.code"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_organisation.id"))
    #: Where the team starts from (travel in the assignment optimiser); the station if none.
    base: Mapped[Any] = mapped_column(Geometry("POINT", srid=STORAGE_SRID), nullable=True)
    #: Risk-weighted workload the team can carry per week (optimiser units).
    capacity: Mapped[float] = mapped_column(Float, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class PatrolMember(Base):
    """A member of the alliance, in an organisation and (usually) a team."""

    __tablename__ = "patrol_member"
    __table_args__ = (
        # The natural key imports match on: the name within the team, or within the
        # organisation for members not (yet) in a team.
        Index(
            "uq_patrol_member_team_name",
            "team_id",
            "name",
            unique=True,
            postgresql_where=text("team_id IS NOT NULL"),
        ),
        Index(
            "uq_patrol_member_organisation_name",
            "organisation_id",
            "name",
            unique=True,
            postgresql_where=text("team_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_organisation.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_team.id"), index=True)
    #: The phone as shown, masked at import (138****1234): the full number is not kept.
    phone_masked: Mapped[str] = mapped_column(String(32), server_default="")
    is_leader: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: The login of the member, when they use the app.
    user_name: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class PatrolAssignment(Base):
    """A team given a grid for a shift pattern: days of the week, a time window, a validity."""

    __tablename__ = "patrol_assignment"
    __table_args__ = (
        # Bit 0 is Monday … bit 6 Sunday.
        CheckConstraint("weekdays > 0 AND weekdays < 128", name="patrol_assignment_weekdays"),
        CheckConstraint("starts <> ends", name="patrol_assignment_window_not_empty"),
        CheckConstraint(
            "source IN ('manual', 'import', 'optimiser')", name="patrol_assignment_source_known"
        ),
        CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name="patrol_assignment_validity"
        ),
        Index("ix_patrol_assignment_grid_code", "grid_code"),
        Index("ix_patrol_assignment_team_id", "team_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("patrol_team.id"))
    grid_code: Mapped[str] = mapped_column(String(32))
    weekdays: Mapped[int] = mapped_column(SmallInteger)
    #: The shift's window; ``ends`` before ``starts`` means it runs past midnight.
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    #: A planner's lock: the optimiser keeps it as it is.
    locked: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: ``manual``, ``import`` or ``optimiser``.
    source: Mapped[str] = mapped_column(String(16), server_default="manual")
    created_by: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PatrolTrack(Base):
    """A GPS track of a patrol; M of each vertex is its time (seconds since the Unix epoch)."""

    __tablename__ = "patrol_track"
    __table_args__ = (
        CheckConstraint("ended_at >= started_at", name="patrol_track_time_ordered"),
        Index("ix_patrol_track_team_started", "team_id", "started_at"),
        Index("ix_patrol_track_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("patrol_team.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_member.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The cleaned track in storage coordinates, time as M.
    geom: Mapped[Any] = mapped_column(
        Geometry("LINESTRINGM", srid=STORAGE_SRID, spatial_index=True), nullable=False
    )
    point_count: Mapped[int] = mapped_column(Integer)
    #: The declared coordinate type of the upload and its format (gpx, geojson, csv).
    coord_type: Mapped[str] = mapped_column(String(16))
    source_format: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the cleaned fixes: uploading the same track again finds this row.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: What cleaning found and did: jumps, repeated times, idle spells, points dropped.
    quality: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    uploaded_by: Mapped[str] = mapped_column(Text, server_default="")
    uploaded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class PatrolCheckin(Base):
    """A member's check-in: a point and a time, placed into a grid."""

    __tablename__ = "patrol_checkin"
    __table_args__ = (
        CheckConstraint(
            f"placement IN ({sql_list(PATROL_PLACEMENTS)})", name="patrol_checkin_placement"
        ),
        Index("ix_patrol_checkin_grid_at", "grid_code", "at"),
        # A check-in without a member is still one check-in: NULLs are not distinct here.
        UniqueConstraint(
            "team_id",
            "member_id",
            "at",
            name="uq_patrol_checkin_once",
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("patrol_team.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_member.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=STORAGE_SRID, spatial_index=True), nullable=False
    )
    grid_code: Mapped[str | None] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    placement: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, server_default="")


class PatrolLead(Base):
    """A lead (线索) a member reports: where, what, and what came of it, incl. the reward."""

    __tablename__ = "patrol_lead"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(LEAD_STATUSES)})", name="patrol_lead_status"),
        CheckConstraint(
            f"reward IN ({sql_list(REWARD_DECISIONS)})", name="patrol_lead_reward_known"
        ),
        CheckConstraint(
            f"placement IN ({sql_list(PATROL_PLACEMENTS)})", name="patrol_lead_placement"
        ),
        CheckConstraint("length(btrim(note)) > 0", name="patrol_lead_note_given"),
        Index("ix_patrol_lead_grid_at", "grid_code", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("patrol_team.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_member.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=STORAGE_SRID, spatial_index=True), nullable=False
    )
    given_lon: Mapped[float] = mapped_column(Float)
    given_lat: Mapped[float] = mapped_column(Float)
    coord_type: Mapped[str] = mapped_column(String(16))
    grid_code: Mapped[str | None] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    placement: Mapped[str] = mapped_column(String(16))
    #: An incident category code (what the lead is about).
    category: Mapped[str] = mapped_column(ForeignKey("incident_category.code"))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="new")
    reward: Mapped[str] = mapped_column(String(16), server_default="pending")
    reward_amount: Mapped[float | None] = mapped_column(Float)
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A retried upload with the same key returns the first lead.
    idempotency_key: Mapped[str | None] = mapped_column(Text, unique=True)
