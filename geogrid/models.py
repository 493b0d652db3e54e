"""The storage model: generations of boundaries, areas at every level, and lineage.

The schema itself is made only by the Alembic migrations in ``migrations/``; a test
checks that autogenerate finds no difference between these models and them.

Boundaries follow the MapIt model: an area row is valid for the generations
``generation_low..generation_high``. An area that does not change from one generation
to the next keeps its row and gets its ``generation_high`` raised, so a lookup "as of
generation G" is ``generation_low <= G <= generation_high``. The unified code is the
public identifier; row ids are not.
"""

from __future__ import annotations

from datetime import date, datetime
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
    String,
    Text,
    and_,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

#: CGCS2000, the national datum; every stored geometry uses it (lon, lat).
STORAGE_SRID = 4490

GENERATION_STATUSES = ("draft", "active", "retired")
AREA_KINDS = ("comprehensive", "dedicated")


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Facts about the database itself, such as the code scheme it was created with."""

    __tablename__ = "geogrid_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Generation(Base):
    """A version of the whole boundary set: drafted, validated, activated, retired."""

    __tablename__ = "generation"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'retired')", name="generation_status_known"),
        # At most one draft and one current generation, even under concurrent commands.
        Index(
            "uq_generation_one_draft",
            "status",
            unique=True,
            postgresql_where=text("status = 'draft'"),
        ),
        Index(
            "uq_generation_one_active",
            "status",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    description: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(String(128))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_by: Mapped[str | None] = mapped_column(String(128))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_by: Mapped[str | None] = mapped_column(String(128))
    #: Why it was retired (or discarded, for a draft).
    retired_reason: Mapped[str | None] = mapped_column(Text)
    #: EPSG code of the projected CRS used for distances in metres (set on activation).
    metric_srid: Mapped[int | None] = mapped_column(Integer)
    #: The last validation report: counts and issues, as JSON.
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Area(Base):
    """One area (county, township, community, grid, micro-grid) over a run of generations."""

    __tablename__ = "area"
    __table_args__ = (
        CheckConstraint("generation_low <= generation_high", name="area_generations_ordered"),
        CheckConstraint("ST_IsValid(geom)", name="area_geom_valid"),
        CheckConstraint("kind IN ('comprehensive', 'dedicated')", name="area_kind_known"),
        CheckConstraint("households IS NULL OR households >= 0", name="area_households_positive"),
        CheckConstraint("population IS NULL OR population >= 0", name="area_population_positive"),
        # A code names at most one area in any generation.
        ExcludeConstraint(
            (text("code"), "="),
            (text("int4range(generation_low, generation_high, '[]')"), "&&"),
            name="area_code_once_per_generation",
            using="gist",
        ),
        Index("ix_area_level_generations", "level", "generation_low", "generation_high"),
        Index("ix_area_code", "code"),
        Index("ix_area_parent_code", "parent_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(32))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text, server_default="")
    kind: Mapped[str] = mapped_column(String(16), server_default="comprehensive")
    households: Mapped[int | None] = mapped_column(Integer)
    population: Mapped[int | None] = mapped_column(Integer)
    #: Free attributes carried from the source file.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    generation_low: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    generation_high: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True), nullable=False
    )

    @classmethod
    def valid_in(cls, generation_id: int) -> ColumnElement[bool]:
        """The rows of areas valid in a generation: ``generation_low <= G <= generation_high``."""
        return and_(cls.generation_low <= generation_id, cls.generation_high >= generation_id)


class Lineage(Base):
    """Where an old area's land (and households) went when a generation was activated."""

    __tablename__ = "lineage"
    __table_args__ = (
        CheckConstraint("share_of_old > 0 AND share_of_old <= 1.000001", name="lineage_share_old"),
        CheckConstraint("share_of_new > 0 AND share_of_new <= 1.000001", name="lineage_share_new"),
        Index("ix_lineage_old_area", "old_area_id"),
        Index("ix_lineage_new_area", "new_area_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The generation whose activation recorded this row.
    generation: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    level: Mapped[str] = mapped_column(String(32))
    old_area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    new_area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    old_code: Mapped[str] = mapped_column(String(32))
    new_code: Mapped[str] = mapped_column(String(32))
    #: Overlap in square metres (on the ellipsoid).
    overlap_m2: Mapped[float] = mapped_column(Float)
    #: Share of the old area's land that went to the new area.
    share_of_old: Mapped[float] = mapped_column(Float)
    #: Share of the new area's land that came from the old area.
    share_of_new: Mapped[float] = mapped_column(Float)
    #: The old area's households times ``share_of_old``, when households were known.
    households_moved: Mapped[float | None] = mapped_column(Float)


class CalendarOverride(Base):
    """An administrator's word on one day: a working day or a holiday, winning over the package."""

    __tablename__ = "calendar_override"
    __table_args__ = (
        CheckConstraint("kind IN ('workday', 'holiday')", name="calendar_override_kind_known"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    #: The holiday or swapped working day it belongs to, e.g. 春节.
    name: Mapped[str] = mapped_column(Text, server_default="")
    note: Mapped[str] = mapped_column(Text, server_default="")
    set_by: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# -- incidents (小红哨) ---------------------------------------------------------------------

#: How an incident reached geogrid.
CHANNELS = ("whistle", "grid_worker", "hotline", "alliance", "import")
#: Workflow states; see :mod:`geogrid.workflow` for the transitions between them.
INCIDENT_STATES = (
    "reported",
    "accepted",
    "dispatched",
    "in_progress",
    "escalated",
    "suspended",
    "resolved",
    "evaluated",
    "rejected",
    "merged",
)
#: States in which nothing more is expected of anyone.
CLOSED_STATES = ("evaluated", "rejected", "merged")
#: Escalation levels, lowest first (吹哨报到: grid → community → street → county).
ESCALATION_LEVELS = ("grid", "community", "township", "county")
#: How the grid was found: the geocoding statuses, ``by_code`` (a grid worker filed it in
#: their own grid) and ``placed`` (a person placed an incident that fell outside).
PLACEMENTS = ("inside", "near_edge", "edge", "outside", "by_code", "placed")


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class IncidentCategory(Base):
    """A kind of incident, with its own deadlines and the department responsible for it."""

    __tablename__ = "incident_category"
    __table_args__ = (
        CheckConstraint(
            "accept_days >= 0 AND resolve_days >= 0 AND complex_days >= resolve_days",
            name="incident_category_deadlines",
        ),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    #: The department that handles it when it leaves the grid, e.g. 城管局.
    department: Mapped[str] = mapped_column(Text, server_default="")
    #: Working days to accept, to resolve, and to resolve when marked complex.
    accept_days: Mapped[int] = mapped_column(Integer, server_default="1")
    resolve_days: Mapped[int] = mapped_column(Integer, server_default="3")
    complex_days: Mapped[int] = mapped_column(Integer, server_default="5")
    #: Weight of one incident of this category in risk scores (patrol coverage gaps).
    risk_weight: Mapped[float] = mapped_column(Float, server_default="1")
    #: Retired categories stay for history but take no new incidents.
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class Incident(Base):
    """One incident: what, where (grid and generation, as recorded), and where it stands."""

    __tablename__ = "incident"
    __table_args__ = (
        CheckConstraint(f"channel IN ({_sql_list(CHANNELS)})", name="incident_channel_known"),
        CheckConstraint(f"state IN ({_sql_list(INCIDENT_STATES)})", name="incident_state_known"),
        CheckConstraint(f"level IN ({_sql_list(ESCALATION_LEVELS)})", name="incident_level_known"),
        CheckConstraint(f"placement IN ({_sql_list(PLACEMENTS)})", name="incident_placement_known"),
        CheckConstraint("length(btrim(description)) > 0", name="incident_description_given"),
        CheckConstraint(
            "satisfaction IS NULL OR satisfaction IN ('satisfied', 'unsatisfied')",
            name="incident_satisfaction_known",
        ),
        # Outside every grid is the only way to have no grid.
        CheckConstraint(
            "(grid_code IS NULL) = (placement = 'outside')", name="incident_grid_unless_outside"
        ),
        CheckConstraint(
            "(geom IS NULL) = (placement = 'by_code')", name="incident_point_unless_by_code"
        ),
        Index("ix_incident_grid_code_reported_at", "grid_code", "reported_at"),
        Index("ix_incident_reported_at", "reported_at"),
        Index("ix_incident_category_reported_at", "category", "reported_at"),
        Index(
            "ix_incident_open_state",
            "state",
            postgresql_where=text("state NOT IN ('evaluated', 'rejected', 'merged')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    category: Mapped[str] = mapped_column(ForeignKey("incident_category.code"))
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    #: Complex incidents get the category's longer resolution deadline.
    complex: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    state: Mapped[str] = mapped_column(String(16), server_default="reported")
    #: When the resident reported it (in the past for imported history).
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the row entered geogrid.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Who filed it: a user name, or the channel's name for the public.
    reported_by: Mapped[str] = mapped_column(Text, server_default="")

    # Where, as given and as stored.
    given_lon: Mapped[float | None] = mapped_column(Float)
    given_lat: Mapped[float | None] = mapped_column(Float)
    #: The declared coordinate type of the given point (wgs84, gcj02, bd09, EPSG:n …).
    coord_type: Mapped[str | None] = mapped_column(String(16))
    #: The point in storage coordinates; none only when filed by grid code.
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=STORAGE_SRID, spatial_index=True), nullable=True
    )
    address: Mapped[str] = mapped_column(Text, server_default="")

    # The grid, as recorded at intake in the then active generation; kept forever.
    grid_code: Mapped[str | None] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(ForeignKey("generation.id"))
    placement: Mapped[str] = mapped_column(String(16))
    #: Candidates, nearest grid and distance, swapped-axes code: what a person needs to place it.
    placement_detail: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )

    # Handling.
    level: Mapped[str] = mapped_column(String(16), server_default="grid")
    #: Who holds it now: a grid worker's user name or a department.
    assignee: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str] = mapped_column(Text, server_default="")
    accept_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Why a deadline is missing, e.g. the calendar does not cover its year.
    deadline_alert: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: While suspended: since when, and the state to return to.
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_from: Mapped[str | None] = mapped_column(String(16))
    #: Working seconds spent suspended, not counted against the deadlines.
    paused_working_s: Mapped[float] = mapped_column(Float, server_default="0")
    #: Working days asked for and not yet decided.
    extension_requested_days: Mapped[int | None] = mapped_column(Integer)
    extension_days: Mapped[int] = mapped_column(Integer, server_default="0")
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    reopened_count: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_count: Mapped[int] = mapped_column(Integer, server_default="0")
    reject_reason: Mapped[str | None] = mapped_column(Text)
    #: The incident this one was merged into.
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("incident.id"), index=True)

    # Intake bookkeeping.
    #: A retried submission with the same key returns the first incident (unique).
    idempotency_key: Mapped[str | None] = mapped_column(Text, unique=True)
    #: Digest of the submission, so the same key with a different body is refused.
    request_digest: Mapped[str | None] = mapped_column(String(64))
    #: References to photos stored elsewhere (URLs or object keys).
    photos: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))


class IncidentContact(Base):
    """The reporter's contact, kept apart so lists and exports never carry it by accident."""

    __tablename__ = "incident_contact"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True)
    name: Mapped[str] = mapped_column(Text, server_default="")
    phone: Mapped[str] = mapped_column(Text, server_default="")
    note: Mapped[str] = mapped_column(Text, server_default="")


class IncidentEvent(Base):
    """One step in an incident's life; rows are only ever inserted (a trigger refuses the rest)."""

    __tablename__ = "incident_event"
    __table_args__ = (Index("ix_incident_event_incident_id", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    #: Escalation level after the step.
    level: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, server_default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class IncidentBreach(Base):
    """A missed deadline that was escalated; the key makes escalating it twice impossible."""

    __tablename__ = "incident_breach"
    __table_args__ = (
        CheckConstraint("deadline IN ('accept', 'resolve')", name="incident_breach_deadline"),
    )

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True)
    deadline: Mapped[str] = mapped_column(String(16), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    escalated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    #: The level it was escalated to.
    level: Mapped[str] = mapped_column(String(16))


# -- users --------------------------------------------------------------------------------

#: Roles a person can log in with; ``system`` is geogrid itself and never a login.
USER_ROLES = (
    "administrator",
    "official",
    "grid_worker",
    "patrol_member",
    "station_officer",
    "planner",
    "department",
    "resident",
)


class AppUser(Base):
    """A person who logs in (password) or a client that calls the API (token), with a scope."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(f"role IN ({_sql_list(USER_ROLES)})", name="app_user_role_known"),
        # Names are compared case-insensitively by storing them in lower case.
        CheckConstraint("name = lower(name) AND length(name) > 0", name="app_user_name_lower"),
        # Administrators act everywhere; everyone else answers for some codes.
        CheckConstraint(
            "(role = 'administrator') = (cardinality(scope) = 0)",
            name="app_user_scope_unless_administrator",
        ),
        CheckConstraint("failed_logins >= 0", name="app_user_failed_logins_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The login name, lower case, unique.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: How the person is shown, e.g. 王丽 (东关第1网格).
    display_name: Mapped[str] = mapped_column(Text, server_default="")
    role: Mapped[str] = mapped_column(String(32))
    #: Unified codes the user answers for; a code covers every area below it.
    scope: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'::varchar[]")
    )
    #: For department staff: the department they act for, e.g. 城市管理局.
    department: Mapped[str] = mapped_column(Text, server_default="")
    #: A werkzeug password hash (``scrypt:...``); none for token-only users.
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    #: Failed password checks since the last success or lock.
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(Text)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A bearer token for the API: only its SHA-256 is stored, the secret is shown once."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_prefix", "prefix"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    #: SHA-256 of the whole secret, hex.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The secret's first characters, so people can tell tokens apart and revoke one.
    prefix: Mapped[str] = mapped_column(String(16))
    #: What the token is for, e.g. "12345 hotline bridge".
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
