"""Map pages: the grids of an area in the active generation, levels as layers."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
from flask import Blueprint, Response, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from geogrid.boundaries import areas_frame
from geogrid.errors import NotFound
from geogrid.generations import resolve_generation
from geogrid.maps import grid_map, label, levels_to_draw, map_parts, offline
from web.db import get_session, get_settings
from web.i18n import current_language
from web.vendor import asset_url

bp = Blueprint("maps", __name__)


@dataclass(frozen=True)
class AreaLink:
    """An area as the page lists it: in the picker, the breadcrumb or the child list."""

    code: str
    name: str
    level: str


def index() -> Response:
    """The home page is the grid map, for now."""
    return redirect(url_for("maps.grids"))


@bp.get("/grids")
def grids() -> str:
    """The active generation's areas under ``?area=<code>`` on a map, with an area picker."""
    settings = get_settings()
    scheme = settings.scheme
    area_code = request.args.get("area", "").strip() or None
    area_level = scheme.validate(area_code, field="area") if area_code else None
    session = get_session()
    generation = resolve_generation(session, None)
    levels = levels_to_draw(scheme.level_names, area_level)
    areas = _areas(session, levels, within=area_code, generation=generation.id)
    if area_code and not (areas["code"] == area_code).any():
        raise NotFound(f"there is no area {area_code} in generation {generation.id}", field="area")
    language = current_language()
    m = grid_map(
        areas,
        levels=levels,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
        language=language,
    )
    picker = _picker(session, scheme.level_names, scheme.default_geocode_level, generation.id)
    known = [link for links in picker.values() for link in links]
    return render_template(
        "grids.html",
        map=map_parts(offline(m, asset_url)),
        generation=generation,
        area=_link(areas, area_code),
        ancestors=[a for a in known if area_code and scheme.is_descendant(area_code, a.code)],
        children=_children(areas, levels, area_level),
        picker=picker,
        level_label=lambda level: label(level, language),
        drawn_levels=[level for level in levels if (areas["level"] == level).any()],
    )


def _areas(
    session: Session, levels: list[str], *, within: str | None, generation: int
) -> gpd.GeoDataFrame:
    # One query per level keeps finer levels (a county's micro-grids) out of the page.
    frames = [
        areas_frame(session, level=level, within=within, generation=generation) for level in levels
    ]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def _picker(
    session: Session, levels: list[str], geocode_level: str, generation: int
) -> dict[str, list[AreaLink]]:
    # Areas above the level points are placed into: the ones a person navigates by.
    above = levels[: levels.index(geocode_level)] or levels[:1]
    picker = {}
    for level in above:
        picker[level] = _links(areas_frame(session, level=level, generation=generation))
    return picker


def _link(areas: gpd.GeoDataFrame, code: str | None) -> AreaLink | None:
    if code is None:
        return None
    row = areas[areas["code"] == code].iloc[0]
    return AreaLink(row["code"], row["name"], row["level"])


def _children(areas: gpd.GeoDataFrame, levels: list[str], area_level: str | None) -> list[AreaLink]:
    # The areas one level below the one shown (the second level of an overview).
    depth = levels.index(area_level) + 1 if area_level else 0
    if depth >= len(levels):
        return []
    return _links(areas[areas["level"] == levels[depth]])


def _links(areas: gpd.GeoDataFrame) -> list[AreaLink]:
    rows = areas.sort_values("code")
    return [AreaLink(row.code, row.name, row.level) for row in rows.itertuples(index=False)]
