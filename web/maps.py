"""The grid map page: the active generation's areas under an area (or all), levels as layers.

The page itself carries no geometry: each level is a layer fetched from the layers
endpoint (``web/layers.py``), simplified for the map's zoom. Levels with few areas in
view come whole; the finer ones (a city's grids and micro-grids) wait until the map is
zoomed in far enough to tell them apart, and then come in chunks of the view. So the
whole of a 15,000-grid city opens as fast as one county.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from flask import Blueprint, render_template, request

from geogrid.actors import UNSCOPED_ROLES, Actor
from geogrid.area_index import (
    CHEAP_AREAS,
    area_bounds,
    area_names,
    level_counts,
    level_names,
    level_summaries,
)
from geogrid.errors import Forbidden, NotFound
from geogrid.generations import resolve_generation
from geogrid.maplayers import LevelSource, levels_map
from geogrid.maps import label, map_parts, offline
from geogrid.models import Generation
from web.auth import page_actor
from web.db import get_session, get_settings
from web.i18n import current_language
from web.layers import layer_url
from web.vendor import asset_url

bp = Blueprint("maps", __name__)

#: The most areas of one level the area picker lists.
PICKER_LIMIT = 300


@dataclass(frozen=True)
class AreaLink:
    """An area as the page lists it: in the picker, the breadcrumb or the child list."""

    code: str
    name: str
    level: str


@bp.get("/grids")
def grids() -> str:
    """The active generation's areas under ``?area=<code>`` on a map, with an area picker."""
    actor = page_actor()
    settings = get_settings()
    scheme = settings.scheme
    area_code = request.args.get("area", "").strip() or None
    area_level = scheme.validate(area_code, field="area") if area_code else None
    session = get_session()
    generation = resolve_generation(session, None)
    summaries = level_summaries(session, generation)
    if area_code is None:
        coarsest = summaries.get(scheme.level_names[0])
        bounds = coarsest.bounds if coarsest else None
    else:
        if not _visible(actor, area_code):
            raise Forbidden(f"area {area_code} is outside your scope", field="area")
        bounds = area_bounds(session, generation.id, area_code)
        if bounds is None:
            raise NotFound(
                f"there is no area {area_code} in generation {generation.id}", field="area"
            )
    levels = scheme.level_names[scheme.depth(area_level) if area_level else 0 :]
    counts = level_counts(session, generation.id, within=area_code)
    sources = [
        LevelSource(
            level,
            layer_url(generation.id, level, within=area_code),
            counts.get(level, 0),
            # Many areas wait for a zoom at which a typical one is worth drawing.
            min_zoom=summaries[level].min_zoom if counts.get(level, 0) > CHEAP_AREAS else None,
        )
        for level in levels
    ]
    language = current_language()
    m = levels_map(
        sources,
        bounds=bounds,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
        language=language,
    )
    top = area_code[: scheme.level(scheme.level_names[0]).length] if area_code else None
    picker = _picker(
        session, actor, scheme.level_names, scheme.default_geocode_level, generation, top
    )
    known = [link for links in picker.values() for link in links]
    children = _children(session, actor, scheme.level_names, area_level, area_code, generation.id)
    return render_template(
        "grids.html",
        map=map_parts(offline(m, asset_url)),
        generation=generation,
        area=next((link for link in known if link.code == area_code), None)
        or _area_link(session, generation.id, area_code, area_level),
        ancestors=[a for a in known if area_code and scheme.is_descendant(area_code, a.code)],
        children=children,
        picker=picker,
        level_label=lambda level: label(level, language),
        drawn_levels=[source.level for source in sources if source.areas],
        zoom_levels={s.level: s.min_zoom for s in sources if s.areas and s.min_zoom is not None},
    )


def _visible(actor: Actor, code: str) -> bool:
    """Whether the actor may see an area: in its scope, or holding part of it."""
    if actor.role in UNSCOPED_ROLES:
        return True
    return any(code.startswith(prefix) or prefix.startswith(code) for prefix in actor.scope)


def _picker(
    session,
    actor: Actor,
    levels: list[str],
    geocode_level: str,
    generation: Generation,
    top: str | None,
) -> dict[str, list[AreaLink]]:
    # Areas above the level points are placed into: the ones a person navigates by. A
    # level too long to pick from (a city's 2,000 communities) lists those under the
    # current area's top-level area (``top``) only, and none on the overview.
    above = levels[: levels.index(geocode_level)] or levels[:1]
    picker = {}
    for level in above:
        names = level_names(session, generation, level)
        if len(names) > PICKER_LIMIT:
            names = tuple(n for n in names if top is not None and n[0].startswith(top))
        picker[level] = [
            AreaLink(code, name, level) for code, name in names if _visible(actor, code)
        ]
    return picker


def _children(
    session,
    actor: Actor,
    levels: list[str],
    area_level: str | None,
    area_code: str | None,
    generation: int,
) -> list[AreaLink]:
    # The areas one level below the one shown (the top level of an overview).
    depth = levels.index(area_level) + 1 if area_level else 0
    if depth >= len(levels):
        return []
    return _links(area_names(session, generation, levels=[levels[depth]], within=area_code), actor)


def _area_link(session, generation: int, code: str | None, level: str | None) -> AreaLink | None:
    if code is None or level is None:
        return None
    names = area_names(session, generation, levels=[level], within=code)
    row = names[names["code"] == code].iloc[0]
    return AreaLink(row["code"], row["name"], row["level"])


def _links(names: pd.DataFrame, actor: Actor) -> list[AreaLink]:
    return [
        AreaLink(row.code, row.name, row.level)
        for row in names.sort_values("code").itertuples(index=False)
        if _visible(actor, row.code)
    ]
