"""Boundary generations: draft, validate, activate (recording lineage), retire.

The life of a generation:

* ``draft`` — at most one at a time. It starts as a copy of the current generation
  (its areas' ``generation_high`` is raised to the draft, no rows are copied), and
  imports replace areas in it.
* ``active`` — the current generation, used by every lookup that names none. Exactly
  one after the first activation. Activation validates the draft, refuses it when
  validation finds errors, records lineage from replaced areas to their successors,
  and supersedes the previous generation — all in the caller's transaction.
* ``retired`` — superseded by a newer activation (its areas remain, so history can be
  shown as recorded: ``--generation N``), or a discarded draft (its own areas removed).

Generations are linear: the current generation is always the newest one that is not a
draft, which keeps every area's ``generation_low..generation_high`` a contiguous run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
from geoalchemy2 import Geography
from sqlalchemy import Float, and_, cast, delete, func, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from geogrid.codes import CodeScheme
from geogrid.crs import metric_crs_for
from geogrid.errors import Conflict, InputError, NotFound, ValidationFailed
from geogrid.models import STORAGE_SRID, Area, Generation, Lineage
from geogrid.neighbours import ensure_generation_neighbours
from geogrid.shapes import frame_from_rows, wkb_column
from geogrid.validate import ValidationReport, ValidationRules, validate_areas


def current_generation(session: Session) -> Generation | None:
    """The active generation, used by lookups that name none."""
    return session.scalar(
        select(Generation).where(Generation.status == "active").order_by(Generation.id.desc())
    )


def draft_generation(session: Session) -> Generation | None:
    """The draft being prepared, if any."""
    return session.scalar(select(Generation).where(Generation.status == "draft"))


def get_generation(session: Session, generation_id: int) -> Generation:
    """A generation by number; NotFound naming it otherwise."""
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise NotFound(f"there is no generation {generation_id}", field="generation")
    return generation


def resolve_generation(session: Session, generation_id: int | None) -> Generation:
    """The named generation, or the current one; a clear error when there is none."""
    if generation_id is not None:
        generation = get_generation(session, generation_id)
        if is_discarded(generation):
            raise NotFound(
                f"generation {generation_id} was a draft that was discarded; it has no areas",
                field="generation",
            )
        return generation
    generation = current_generation(session)
    if generation is None:
        raise NotFound(
            "no generation is active yet: import boundaries and activate them "
            "(`geogrid boundaries import ... --commit`, `geogrid generations activate N`) "
            "or build the demo (`geogrid demo build --commit`)",
            field="generation",
        )
    return generation


def is_discarded(generation: Generation) -> bool:
    """A retired generation that never was active: a discarded draft."""
    return generation.status == "retired" and generation.activated_at is None


def list_generations(session: Session) -> list[Generation]:
    """Every generation, newest first."""
    return list(session.scalars(select(Generation).order_by(Generation.id.desc())))


def create_draft(session: Session, *, created_by: str, description: str = "") -> Generation:
    """Open a draft that starts as a copy of the current generation."""
    existing = draft_generation(session)
    if existing is not None:
        raise Conflict(
            f"generation {existing.id} is already a draft; import into it, activate it "
            f"or discard it (`geogrid generations retire {existing.id}`)",
            field="generation",
        )
    draft = Generation(status="draft", description=description, created_by=created_by)
    try:
        with session.begin_nested():
            session.add(draft)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "another draft was opened at the same moment; import into it instead",
            field="generation",
        ) from None
    current = current_generation(session)
    if current is not None:
        # Current is the newest non-draft generation, so every area valid in it ends there.
        session.execute(
            update(Area).where(Area.generation_high == current.id).values(generation_high=draft.id)
        )
    return draft


def draft_for_import(
    session: Session, generation_id: int | None, *, created_by: str, description: str = ""
) -> Generation:
    """The draft an import writes into: the one named, else the open draft, else a new one."""
    if generation_id is not None:
        generation = get_generation(session, generation_id)
        if generation.status != "draft":
            raise Conflict(
                f"generation {generation_id} is {generation.status}; boundaries are imported "
                "into a draft only",
                field="generation",
            )
        return generation
    return draft_generation(session) or create_draft(
        session, created_by=created_by, description=description
    )


def generation_areas(
    session: Session,
    generation_id: int,
    *,
    level: str | None = None,
    within: str | None = None,
) -> gpd.GeoDataFrame:
    """The areas valid in a generation (optionally one level, or below one code)."""
    query = select(
        Area.id,
        Area.code,
        Area.level,
        Area.parent_code,
        Area.name,
        Area.kind,
        Area.households,
        Area.population,
        Area.attributes,
        Area.generation_low,
        Area.generation_high,
        wkb_column(Area.geom).label("geometry"),
    ).where(Area.valid_in(generation_id))
    if level is not None:
        query = query.where(Area.level == level)
    if within is not None:
        query = query.where(Area.code.startswith(within, autoescape=True))
    rows = session.execute(query.order_by(Area.level, Area.code)).all()
    columns = [
        "id",
        "code",
        "level",
        "parent_code",
        "name",
        "kind",
        "households",
        "population",
        "attributes",
        "generation_low",
        "generation_high",
        "geometry",
    ]
    return frame_from_rows(rows, columns)


def metric_srid_of(session: Session, generation: Generation) -> int:
    """The projected CRS for metres in this generation: stored on activation, else derived."""
    if generation.metric_srid is not None:
        return generation.metric_srid
    centre = session.execute(
        select(
            func.ST_X(func.ST_Centroid(func.ST_Extent(Area.geom))),
            func.ST_Y(func.ST_Centroid(func.ST_Extent(Area.geom))),
        ).where(Area.valid_in(generation.id))
    ).one()
    if centre[0] is None:
        raise InputError(f"generation {generation.id} has no areas", field="generation")
    return metric_crs_for(centre[0], centre[1])


def validate_generation(
    session: Session,
    generation: Generation,
    scheme: CodeScheme,
    rules: ValidationRules,
    *,
    progress: bool = False,
) -> ValidationReport:
    """Run the shared validation over every area of a generation and store the report."""
    areas = generation_areas(session, generation.id)
    if areas.empty:
        raise InputError(f"generation {generation.id} has no areas to validate", field="generation")
    report = validate_areas(
        areas, scheme, rules, metric_epsg=metric_srid_of(session, generation), progress=progress
    )
    generation.validation = report.as_dict()
    return report


@dataclass(frozen=True)
class Activation:
    """What an activation did."""

    generation: Generation
    superseded: Generation | None
    report: ValidationReport
    lineage_rows: int


def activate(
    session: Session,
    generation_id: int,
    scheme: CodeScheme,
    rules: ValidationRules,
    *,
    activated_by: str,
    progress: bool = False,
) -> Activation:
    """Validate a draft and make it current, recording lineage; refuse it on any error."""
    draft = get_generation(session, generation_id)
    if draft.status != "draft":
        raise Conflict(
            f"generation {generation_id} is {draft.status}; only a draft can be activated",
            field="generation",
        )
    report = validate_generation(session, draft, scheme, rules, progress=progress)
    if not report.ok:
        session.flush()
        raise ValidationFailed(
            f"generation {generation_id} has {len(report.errors)} validation errors; "
            "fix them and import again",
            field="generation",
            issues=[issue.as_dict() for issue in report.errors[:200]],
        )
    previous = current_generation(session)
    lineage_rows = 0
    now = datetime.now(UTC)
    if previous is not None:
        lineage_rows = _record_lineage(session, previous.id, draft.id)
        previous.status = "retired"
        previous.retired_at = now
        previous.retired_by = activated_by
        previous.retired_reason = f"superseded by generation {draft.id}"
        session.flush()  # one active generation at a time, checked row by row
    draft.metric_srid = metric_srid_of(session, draft)
    draft.status = "active"
    draft.activated_at = now
    draft.activated_by = activated_by
    session.flush()
    # Found now, so that no hotspot request pays for finding neighbours.
    ensure_generation_neighbours(session, draft.id, scheme)
    # After a bulk change the planner's row estimates are stale until autovacuum gets
    # round to it; with them a code lookup scans every area of the generation (3 ms, not 0.3).
    session.execute(text("ANALYZE area"))
    return Activation(draft, previous, report, lineage_rows)


def retire(session: Session, generation_id: int, *, retired_by: str, reason: str) -> Generation:
    """Discard a draft (removing its own areas); the current generation is never retired alone."""
    generation = get_generation(session, generation_id)
    if generation.status == "retired":
        raise Conflict(f"generation {generation_id} is already retired", field="generation")
    if generation.status == "active":
        raise Conflict(
            f"generation {generation_id} is the current one; it is retired by activating "
            "its successor, so that lookups always have a generation",
            field="generation",
        )
    current = current_generation(session)
    session.execute(delete(Area).where(Area.generation_low == generation.id))
    if current is not None:
        session.execute(
            update(Area)
            .where(Area.generation_high == generation.id)
            .values(generation_high=current.id)
        )
    generation.status = "retired"
    generation.retired_at = datetime.now(UTC)
    generation.retired_by = retired_by
    generation.retired_reason = reason or "draft discarded"
    session.flush()
    return generation


def _record_lineage(session: Session, old_generation: int, new_generation: int) -> int:
    """Record how the land of each replaced area was shared among the areas that replaced it.

    Replaced areas end in the old generation; their successors start in the new one.
    Shares are of area on the ellipsoid; households follow the land.
    """
    old, new = aliased(Area), aliased(Area)
    overlap = func.ST_Area(cast(func.ST_Intersection(old.geom, new.geom), _geography()), True)
    overlaps = (
        select(
            old.id.label("old_id"),
            new.id.label("new_id"),
            old.code.label("old_code"),
            new.code.label("new_code"),
            old.level.label("level"),
            old.households.label("old_households"),
            overlap.label("overlap"),
            func.ST_Area(cast(old.geom, _geography()), True).label("old_area"),
            func.ST_Area(cast(new.geom, _geography()), True).label("new_area"),
        )
        .join(new, and_(new.level == old.level, func.ST_Intersects(old.geom, new.geom)))
        .where(old.generation_high == old_generation, new.generation_low == new_generation)
        .subquery()
    )
    # Areas that only touch along an edge overlap by (nearly) nothing; a square metre is noise.
    rows = select(
        literal(new_generation),
        overlaps.c.level,
        overlaps.c.old_id,
        overlaps.c.new_id,
        overlaps.c.old_code,
        overlaps.c.new_code,
        overlaps.c.overlap,
        func.least(overlaps.c.overlap / overlaps.c.old_area, 1.0),
        func.least(overlaps.c.overlap / overlaps.c.new_area, 1.0),
        cast(overlaps.c.old_households, Float)
        * func.least(overlaps.c.overlap / overlaps.c.old_area, 1.0),
    ).where(overlaps.c.overlap > 1.0)
    inserted = session.execute(
        insert(Lineage)
        .from_select(
            [
                "generation",
                "level",
                "old_area_id",
                "new_area_id",
                "old_code",
                "new_code",
                "overlap_m2",
                "share_of_old",
                "share_of_new",
                "households_moved",
            ],
            rows,
        )
        .returning(Lineage.id)
    )
    return len(inserted.all())


def _geography() -> Geography:
    return Geography(srid=STORAGE_SRID)


def lineage_of(session: Session, generation_id: int) -> list[Lineage]:
    """The lineage rows an activation recorded."""
    return list(
        session.scalars(
            select(Lineage)
            .where(Lineage.generation == generation_id)
            .order_by(Lineage.old_code, Lineage.new_code)
        )
    )


def codes_ever_used(session: Session, parent: str) -> list[str]:
    """Every code below ``parent`` in any generation (codes are never reused)."""
    return list(
        session.scalars(
            select(Area.code).where(Area.code.startswith(parent, autoescape=True)).distinct()
        )
    )


def summary(session: Session, generation: Generation) -> dict[str, Any]:
    """A generation as printable facts: status, who/when/why, area counts per level."""
    counts = session.execute(
        select(Area.level, func.count())
        .where(Area.valid_in(generation.id))
        .group_by(Area.level)
        .order_by(func.min(func.length(Area.code)))  # coarsest level first
    ).all()
    return {
        "id": generation.id,
        "status": generation.status,
        "description": generation.description,
        "created_at": generation.created_at,
        "created_by": generation.created_by,
        "activated_at": generation.activated_at,
        "activated_by": generation.activated_by,
        "retired_at": generation.retired_at,
        "retired_by": generation.retired_by,
        "retired_reason": generation.retired_reason,
        "metric_srid": generation.metric_srid,
        "areas": dict(counts),
        "validation": generation.validation,
    }
