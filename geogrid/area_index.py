"""What a map page needs beside the outlines: names, counts per level, typical sizes, bounds.

These are read without geometry, so a page about a whole city stays light; the
outlines themselves come from the layers endpoint (:mod:`geogrid.outlines`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid.models import Area, Generation

#: An area should be this many pixels across before its level is worth drawing.
MIN_AREA_PIXELS = 24
#: Levels with at most this many areas in the view are fetched whole; more wait for a
#: zoom at which they are large enough (:data:`MIN_AREA_PIXELS`) and come in chunks.
CHEAP_AREAS = 3000

_summaries: dict[tuple[str, int], dict[str, LevelSummary]] = {}
_names: dict[tuple[str, int, str], tuple[tuple[str, str], ...]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class LevelSummary:
    """One level of a generation: how many areas, how wide typically, where."""

    level: str
    areas: int
    #: Median east-west extent of an area, in degrees.
    median_width: float
    bounds: tuple[float, float, float, float]

    @property
    def min_zoom(self) -> int:
        """The zoom from which a typical area is :data:`MIN_AREA_PIXELS` wide."""
        width = max(self.median_width, 1e-7)
        return max(0, min(20, math.ceil(math.log2(360 * MIN_AREA_PIXELS / (256 * width)))))


def level_summaries(session: Session, generation: Generation) -> dict[str, LevelSummary]:
    """Every level's summary (kept per database and generation unless a draft)."""
    key = (str(session.get_bind().engine.url), generation.id)
    with _lock:
        if key in _summaries:
            return _summaries[key]
    width = func.ST_XMax(Area.geom) - func.ST_XMin(Area.geom)
    extent = func.ST_Extent(Area.geom)
    query = (
        select(
            Area.level,
            func.count(),
            func.percentile_cont(0.5).within_group(width),
            func.ST_XMin(extent),
            func.ST_YMin(extent),
            func.ST_XMax(extent),
            func.ST_YMax(extent),
        )
        .where(Area.valid_in(generation.id))
        .group_by(Area.level)
    )
    summaries = {
        level: LevelSummary(level, int(count), float(median), (west, south, east, north))
        for level, count, median, west, south, east, north in session.execute(query)
    }
    if generation.status != "draft":
        with _lock:
            _summaries[key] = summaries
    return summaries


def level_counts(session: Session, generation: int, within: str | None = None) -> dict[str, int]:
    """How many areas of each level lie under ``within`` (or in all) in a generation."""
    query = select(Area.level, func.count()).where(Area.valid_in(generation))
    if within is not None:
        query = query.where(Area.code.startswith(within, autoescape=True))
    return {level: int(count) for level, count in session.execute(query.group_by(Area.level))}


def area_names(
    session: Session,
    generation: int,
    *,
    levels: list[str],
    within: str | None = None,
) -> pd.DataFrame:
    """Code, name and level of the areas of some levels (under ``within``), by code."""
    query = select(Area.code, Area.name, Area.level).where(
        Area.valid_in(generation), Area.level.in_(levels)
    )
    if within is not None:
        query = query.where(Area.code.startswith(within, autoescape=True))
    rows = session.execute(query.order_by(Area.code)).all()
    return pd.DataFrame(rows, columns=["code", "name", "level"])


def level_names(
    session: Session, generation: Generation, level: str
) -> tuple[tuple[str, str], ...]:
    """(code, name) of every area of a level, by code (kept unless a draft): for pickers."""
    key = (str(session.get_bind().engine.url), generation.id, level)
    with _lock:
        if key in _names:
            return _names[key]
    query = select(Area.code, Area.name).where(Area.valid_in(generation.id), Area.level == level)
    names = tuple((code, name or "") for code, name in session.execute(query.order_by(Area.code)))
    if generation.status != "draft":
        with _lock:
            _names[key] = names
    return names


def area_bounds(
    session: Session, generation: int, code: str
) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of one area, or None when the generation has no such area."""
    query = select(
        func.ST_XMin(Area.geom),
        func.ST_YMin(Area.geom),
        func.ST_XMax(Area.geom),
        func.ST_YMax(Area.geom),
    ).where(Area.valid_in(generation), Area.code == code)
    row = session.execute(query).one_or_none()
    return None if row is None else tuple(float(value) for value in row)  # type: ignore[return-value]
