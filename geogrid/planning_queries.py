"""What the planner pages show of a generation, limited to what an actor may see.

Counts, maps, comparisons and lineage keep to the areas inside the actor's scope, or
under an area they asked for (checked by :func:`geogrid.planning.require_area_in_scope`).
The rules themselves, and why they are so, are in :mod:`geogrid.planning`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from geogrid import generations
from geogrid.actors import Actor
from geogrid.codes import CodeScheme
from geogrid.errors import CodeError
from geogrid.maps import levels_to_draw
from geogrid.models import Area, Generation, Lineage
from geogrid.planner_maps import change_frame
from geogrid.planning import area_rows, codes_within, is_scoped, scope_prefixes

#: The columns of a frame of areas with none in it (a discarded generation's).
AREA_COLUMNS = ["id", "code", "level", "parent_code", "name", "geometry"]


def level_counts(session: Session, actor: Actor, generation_id: int) -> dict[str, int]:
    """How many areas of each level a generation has inside the scope, coarsest level first."""
    query = select(Area.level, func.count()).where(
        Area.valid_in(generation_id), codes_within(Area.code, scope_prefixes(actor))
    )
    query = query.group_by(Area.level).order_by(func.min(func.length(Area.code)))
    return {level: count for level, count in session.execute(query)}


def map_levels(scheme: CodeScheme, actor: Actor, area_level: str | None) -> list[str]:
    """The levels a generation's map draws: below the area asked for, else the scope's."""
    if area_level is None and is_scoped(actor) and actor.scope:
        area_level = min((scheme.level_of(c) for c in actor.scope), key=scheme.depth)
    return levels_to_draw(scheme.level_names, area_level)


def areas_in_scope(
    session: Session,
    actor: Actor,
    generation_id: int,
    levels: Sequence[str],
    *,
    area: str | None = None,
) -> gpd.GeoDataFrame:
    """A generation's areas of ``levels`` with their shapes, inside the scope or ``area``."""
    frames = [
        generations.generation_areas(session, generation_id, level=level, within=prefix)
        for level in levels
        for prefix in scope_prefixes(actor, area)
    ]
    if not frames:
        return empty_areas()
    # Scope codes may nest (a county and one of its townships): keep each area once.
    areas = pd.concat(frames, ignore_index=True).drop_duplicates("code")
    return gpd.GeoDataFrame(areas, geometry="geometry", crs=frames[0].crs)


def empty_areas() -> gpd.GeoDataFrame:
    """A frame of areas with none in it, in the storage CRS."""
    return gpd.GeoDataFrame(columns=AREA_COLUMNS, geometry="geometry", crs="EPSG:4490")


def issue_areas(
    session: Session,
    actor: Actor,
    scheme: CodeScheme,
    generation_id: int,
    issues: Sequence[dict[str, Any]],
    *,
    area: str | None = None,
) -> gpd.GeoDataFrame:
    """The areas the validation issues name, inside the scope, fetched a level at a time."""
    codes = {c for i in issues for c in (i.get("code"), i.get("related_code")) if c}
    levels = sorted({lv for c in codes if (lv := issue_level(scheme, c))}, key=scheme.depth)
    areas = areas_in_scope(session, actor, generation_id, levels, area=area)
    return areas[areas["code"].isin(codes)]


def issue_level(scheme: CodeScheme, code: str | None) -> str:
    """The level of a code an issue names; "" for none, or one the scheme cannot place.

    Validation reports malformed codes too, so an issue's code may fit no level.
    """
    try:
        return scheme.level_of(code) if code else ""
    except CodeError:
        return ""


def level_extent(
    session: Session,
    actor: Actor,
    generation: Generation,
    level: str,
    *,
    area: str | None = None,
) -> tuple[float, ...] | None:
    """West, south, east, north of a generation's areas of one level in scope; None if none."""
    query = select(
        func.min(func.ST_XMin(Area.geom)),
        func.min(func.ST_YMin(Area.geom)),
        func.max(func.ST_XMax(Area.geom)),
        func.max(func.ST_YMax(Area.geom)),
    ).where(
        Area.valid_in(generation.id),
        Area.level == level,
        codes_within(Area.code, scope_prefixes(actor, area)),
    )
    bounds = session.execute(query).one()
    return None if bounds[0] is None else tuple(float(b) for b in bounds)


def compared_ids(
    choices: Sequence[Generation], a: int | None, b: int | None
) -> tuple[int | None, int | None]:
    """The two generations to compare, older first; by default the newest and its predecessor.

    The newest is the draft, else the current generation; its predecessor is the last one
    activated before it. ``choices`` are the generations that can be compared, newest first.
    """
    if b is None:
        newest = next((g for g in choices if g.status in ("draft", "active")), None)
        b = newest.id if newest else None
    if a is None and b is not None:
        before = [g.id for g in choices if g.id < b and g.activated_at is not None]
        a = before[0] if before else b
    if a is not None and b is not None and a > b:
        a, b = b, a
    return a, b


@dataclass(frozen=True)
class Comparison:
    """Two generations' areas of one level in scope, how each changed, and the lineage between."""

    #: Code, row id and name of the older generation's areas; likewise of the newer one's.
    old_rows: pd.DataFrame
    new_rows: pd.DataFrame
    #: Each code of either side and its change (:func:`geogrid.planner_maps.change_frame`).
    changes: pd.DataFrame
    #: Lineage recorded by the activations after the older up to the newer, in scope.
    lineage: list[Lineage]

    @property
    def change_counts(self) -> dict[str, int]:
        """How many areas were added, redrawn, removed and left unchanged."""
        return self.changes["change"].value_counts().to_dict()

    @property
    def households_moved(self) -> float:
        """Households whose land went to an area of another code."""
        return sum(
            row.households_moved or 0 for row in self.lineage if row.old_code != row.new_code
        )

    @property
    def names(self) -> dict[str, str]:
        """The name of each code on either side; the newer name where both have it."""
        names: dict[str, str] = {}
        for rows in (self.old_rows, self.new_rows):
            names.update(zip(rows["code"], rows["name"].fillna(""), strict=True))
        return names


def compare_generations(
    session: Session,
    actor: Actor,
    old: Generation,
    new: Generation,
    level: str,
    *,
    area: str | None = None,
) -> Comparison:
    """How the areas of one level inside the scope (or ``area``) changed from ``old`` to ``new``."""
    prefixes = scope_prefixes(actor, area)
    old_rows = area_rows(session, old, level=level, prefixes=prefixes)
    new_rows = area_rows(session, new, level=level, prefixes=prefixes)
    lineage = lineage_in_scope(session, actor, old.id, new.id, level, area=area)
    return Comparison(old_rows, new_rows, change_frame(old_rows, new_rows), lineage)


def lineage_in_scope(
    session: Session,
    actor: Actor,
    old_id: int,
    new_id: int,
    level: str,
    *,
    area: str | None = None,
) -> list[Lineage]:
    """Lineage of one level recorded by the activations after ``old_id`` up to ``new_id``.

    A row is kept when its old or its new code is in the scope: land that moved across
    the scope's edge concerns the planners on both sides.
    """
    prefixes = scope_prefixes(actor, area)
    query = (
        select(Lineage)
        .where(
            Lineage.generation > old_id,
            Lineage.generation <= new_id,
            Lineage.level == level,
            or_(codes_within(Lineage.old_code, prefixes), codes_within(Lineage.new_code, prefixes)),
        )
        .order_by(Lineage.generation, Lineage.old_code, Lineage.new_code)
    )
    return list(session.scalars(query))
