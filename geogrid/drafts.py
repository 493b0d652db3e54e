"""Writing areas into a draft generation: replace, keep unchanged rows, end what is gone.

An import replaces a level's areas in the draft. An area whose code, attributes and
shape are unchanged keeps its row, so one row spans both generations; a replaced or
removed area's row ends where it was last current (or is deleted, if the draft itself
made it); an area removed takes the areas below it along; and a code that named an
area retired before the current generation is never given to a new one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import shapely
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from geogrid.codes import CodeScheme
from geogrid.errors import CodeError
from geogrid.generations import current_generation
from geogrid.models import Area, Generation
from geogrid.shapes import geometry_param, to_wkb

#: Vertices this close (about 0.1 mm) are the same: a GCJ-02 export and re-import drifts
#: by micrometres, which must not turn every area into a replaced one.
SAME_SHAPE_DEGREES = 1e-9


@dataclass
class Changes:
    """What an import did to the draft, by code."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def load_into_draft(
    session: Session,
    areas: gpd.GeoDataFrame,
    *,
    level: str,
    generation: Generation,
    scheme: CodeScheme,
    replace_level: bool = False,
) -> Changes:
    """Replace a level's areas in the draft with these, keeping rows that did not change.

    The areas replaced are those of ``level`` under the parents present in ``areas``
    (all of the level with ``replace_level``, or at the top level). An area whose code,
    attributes and geometry are unchanged keeps its row, so it spans both generations.
    """
    _refuse_reused_codes(session, areas, generation)
    in_scope = select(
        Area.id,
        Area.code,
        Area.generation_low,
        Area.name,
        Area.kind,
        Area.households,
        Area.population,
        Area.attributes,
        func.ST_AsBinary(Area.geom).label("wkb"),
    ).where(
        Area.level == level,
        Area.valid_in(generation.id),
    )
    if not replace_level and scheme.parent_level(level) is not None:
        parents = sorted({p for p in areas["parent_code"] if p})
        in_scope = in_scope.where(Area.parent_code.in_(parents))
    elif not replace_level:
        # Top-level areas have no parent to scope by: replace only the codes given.
        in_scope = in_scope.where(Area.code.in_(list(areas["code"])))
    existing = {row.code: row for row in session.execute(in_scope)}
    changes = Changes()
    new_rows, ended = [], []
    for area in areas.itertuples(index=False):
        old = existing.pop(area.code, None)
        if old is not None and _same_area(old, area):
            changes.unchanged.append(area.code)
            continue
        (changes.replaced if old is not None else changes.added).append(area.code)
        if old is not None:
            ended.append(old)
        new_rows.append(area)
    ended += existing.values()
    changes.removed = [old.code for old in existing.values()]
    end = _last_current(session, generation)
    _end_in_draft(session, ended, generation, end)
    for code in changes.removed:
        _end_descendants(session, code, generation, end)
    _insert_areas(session, new_rows, level, generation.id)
    session.flush()
    return changes


def load_frame(
    session: Session,
    areas: gpd.GeoDataFrame,
    *,
    scheme: CodeScheme,
    generation: Generation,
) -> Changes:
    """Load already-prepared areas of several levels (coarsest first) into a draft."""
    changes = Changes()
    for level in scheme.level_names:
        subset = areas[areas["level"] == level]
        if subset.empty:
            continue
        step = load_into_draft(
            session, subset, level=level, generation=generation, scheme=scheme, replace_level=True
        )
        for name in ("added", "replaced", "unchanged", "removed"):
            getattr(changes, name).extend(getattr(step, name))
    return changes


def _refuse_reused_codes(session: Session, areas: gpd.GeoDataFrame, generation: Generation) -> None:
    """A code that named an area in an earlier generation but not in this one is not reused."""
    codes = list(areas["code"])
    if not codes:
        return
    history = (
        select(Area.code, func.max(Area.generation_high).label("last"))
        .where(Area.code.in_(codes))
        .group_by(Area.code)
    )
    live = select(Area.code).where(
        Area.code.in_(codes),
        Area.valid_in(generation.id),
    )
    live_codes = set(session.scalars(live))
    current = current_generation(session)
    # A code alive in the current generation and only removed within this draft may
    # come back: that undoes a planner's mistake rather than reusing a code.
    still_current = current.id if current is not None else 0
    reused = [
        (row.code, row.last)
        for row in session.execute(history)
        if row.code not in live_codes and row.last < still_current
    ]
    if reused:
        code, last = reused[0]
        raise CodeError(
            f"code {code} named an area that was retired after generation {last}; codes are "
            f"never reused — give the new area a new code (`geogrid codes next PARENT`)"
            + (f" ({len(reused) - 1} more codes likewise)" if len(reused) > 1 else ""),
            field="code",
            codes=[c for c, _ in reused],
        )


def _same_area(old: Any, area: Any) -> bool:
    if (old.name, old.kind, old.households, old.population, old.attributes) != (
        area.name,
        area.kind,
        _none(area.households),
        _none(area.population),
        area.attributes,
    ):
        return False
    stored = shapely.from_wkb(bytes(old.wkb))
    return bool(
        shapely.equals_exact(
            shapely.normalize(stored), shapely.normalize(area.geometry), SAME_SHAPE_DEGREES
        )
    )


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _last_current(session: Session, generation: Generation) -> int:
    """Where an inherited row that leaves the draft ends: the generation last current."""
    previous = current_generation(session)
    return previous.id if previous is not None else generation.id - 1


def _end_descendants(session: Session, code: str, generation: Generation, end: int) -> None:
    """An area removed from the draft takes the areas below it along (no orphans)."""
    below = and_(
        Area.code.startswith(code, autoescape=True),
        func.length(Area.code) > len(code),
        Area.valid_in(generation.id),
    )
    session.execute(delete(Area).where(below, Area.generation_low == generation.id))
    session.execute(update(Area).where(below).values(generation_high=end))


def _end_in_draft(session: Session, rows: list[Any], generation: Generation, end: int) -> None:
    """Rows the draft made are deleted; inherited rows end outside the draft."""
    own = [row.id for row in rows if row.generation_low == generation.id]
    inherited = [row.id for row in rows if row.generation_low != generation.id]
    if own:
        session.execute(delete(Area).where(Area.id.in_(own)))
    if inherited:
        session.execute(update(Area).where(Area.id.in_(inherited)).values(generation_high=end))


def _insert_areas(session: Session, areas: list[Any], level: str, generation_id: int) -> None:
    if not areas:
        return
    statement = insert(Area).values(geom=func.ST_Multi(geometry_param()))
    wkbs = to_wkb([a.geometry for a in areas])
    session.execute(
        statement,
        [
            {
                "code": a.code,
                "level": level,
                "parent_code": a.parent_code,
                "name": a.name,
                "kind": a.kind,
                "households": _none(a.households),
                "population": _none(a.population),
                "attributes": a.attributes if isinstance(a.attributes, dict) else {},
                "generation_low": generation_id,
                "generation_high": generation_id,
                "wkb": wkb,
            }
            for a, wkb in zip(areas, wkbs, strict=True)
        ],
    )
