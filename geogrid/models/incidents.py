"""Incidents (小红哨): categories, incidents, contacts kept apart, the event log, breaches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geogrid.models.base import STORAGE_SRID, Base, sql_list

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
        CheckConstraint(f"channel IN ({sql_list(CHANNELS)})", name="incident_channel_known"),
        CheckConstraint(f"state IN ({sql_list(INCIDENT_STATES)})", name="incident_state_known"),
        CheckConstraint(f"level IN ({sql_list(ESCALATION_LEVELS)})", name="incident_level_known"),
        CheckConstraint(f"placement IN ({sql_list(PLACEMENTS)})", name="incident_placement_known"),
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
    #: After an escalation: when the receiving level must report in (报到) by accepting.
    #: Kept apart from ``accept_due_at`` so the first acceptance is judged on its own clock.
    report_in_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
        CheckConstraint(
            "deadline IN ('accept', 'report_in', 'resolve')", name="incident_breach_deadline"
        ),
    )

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True)
    deadline: Mapped[str] = mapped_column(String(16), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    escalated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    #: The level it was escalated to.
    level: Mapped[str] = mapped_column(String(16))
