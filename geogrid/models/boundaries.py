"""Boundaries: generations, areas at every level, lineage; and the calendar overrides.

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
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from geogrid.models.base import STORAGE_SRID, Base

GENERATION_STATUSES = ("draft", "active", "retired")
AREA_KINDS = ("comprehensive", "dedicated")


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


class AreaNeighbour(Base):
    """Two areas of one level that share a boundary (edge or corner) in a generation.

    Binary contiguity, built once per generation and level by :mod:`geogrid.neighbours`
    and read by the hotspot statistics, so no request pays for finding neighbours.
    Each pair is stored both ways.
    """

    __tablename__ = "area_neighbour"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generation.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    neighbour_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: Whether the two share an edge (rook) rather than only a corner (queen).
    shares_edge: Mapped[bool] = mapped_column(Boolean)


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
