"""A station officer's map: assignments by team, measured coverage, gaps and a proposal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from geogrid.maplayers import MISSING_COLOUR
from geogrid.maps import NO_TILES
from geogrid.patrol_maps._common import (
    add_legend,
    finish_map,
    format_minutes,
    grid_frame,
    grid_layer,
    palette_colour,
    start_map,
    swatch,
    team_colours,
    text,
    tooltip_fields,
)

CHANGE_COLOURS = {"added": "#ef8a17", "kept": "#57606a", "locked": "#6a3d9a"}
_CHANGE_STROKES = {
    change: {"color": colour, "weight": 1 if change == "kept" else 4}
    for change, colour in CHANGE_COLOURS.items()
}
#: Light to dark green: more patrol is darker.
_GREENS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
_REDS = ("#fcae91", "#fb6a4a", "#cb181d")
#: Bins of minutes inside a grid in a day, and of the share of its area reached.
MINUTE_BINS = (0.0, 10.0, 30.0, 60.0, 120.0)
SHARE_BINS = (0.0, 0.25, 0.5, 0.75, 0.9)


def assignment_map(
    grids: gpd.GeoDataFrame,
    assignments: pd.DataFrame,
    *,
    colour_by: str = "team_mark",
    colours: Mapping[str, str] | None = None,
    name: str | None = None,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """Grids coloured by their team (``colour_by="team_mark"``) or shift (``"shift"``).

    ``assignments``: grid_code, team_mark, shift (as people read it, ``daily 08:00-20:00``).
    A grid worked by several teams or shifts gets a colour of its own; grids with none
    are grey. ``colours`` maps a team (or shift) to its colour; by default one each.
    ``name`` names the layer and its legend (by default, assigned grids by team or shift).
    """
    if colour_by not in ("team_mark", "shift"):
        raise ValueError(f"colour_by is team_mark or shift, not {colour_by!r}")
    grids = grid_frame(grids)
    per_grid = {
        code: {
            "teams": ", ".join(sorted(set(rows["team_mark"]))),
            "shifts": "; ".join(sorted(set(rows["shift"]))),
            "category": " + ".join(sorted(set(rows[colour_by]))),
        }
        for code, rows in assignments.groupby("grid_code")
    }
    categories = sorted({values["category"] for values in per_grid.values()})
    palette = dict(colours or {})
    palette.update({c: palette_colour(i) for i, c in enumerate(categories) if c not in palette})
    name = name or text("assignments" if colour_by == "team_mark" else "by_shift", language)
    m = start_map(m, tiles, attribution, language)
    tooltip = tooltip_fields(language, "teams", "shifts")
    layer = grid_layer(grids, name, per_grid, "category", palette, tooltip, show).add_to(m)
    counts = pd.Series([per_grid.get(code, {}).get("category") for code in grids["code"]])
    entries = [(c, swatch(palette[c]), int((counts == c).sum())) for c in categories]
    if counts.isna().any():
        entries.append(
            (text("not_assigned", language), swatch(MISSING_COLOUR), int(counts.isna().sum()))
        )
    add_legend(m, layer, name, entries)
    return finish_map(m, grids, fit)


def coverage_map(
    grids: gpd.GeoDataFrame,
    shifts: pd.DataFrame,
    *,
    measure: str = "minutes_inside",
    bins: Sequence[float] | None = None,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """A choropleth of measured coverage per grid: minutes inside, or share of area reached.

    ``shifts`` is :attr:`geogrid.coverage.CoverageResult.shifts` (grid_code, visits,
    minutes_inside, reach_share): a grid's minutes and visits are summed over its
    shifts, its share averaged. Grids without a shift that day are grey.
    """
    if measure not in ("minutes_inside", "reach_share"):
        raise ValueError(f"measure is minutes_inside or reach_share, not {measure!r}")
    grids = grid_frame(grids)
    per_grid = _coverage_per_grid(shifts)
    lower = list(bins or (MINUTE_BINS if measure == "minutes_inside" else SHARE_BINS))
    colours = [(at_least, _GREENS[min(i, len(_GREENS) - 1)]) for i, at_least in enumerate(lower)]
    name = text("coverage_minutes" if measure == "minutes_inside" else "coverage_share", language)
    m = start_map(m, tiles, attribution, language)
    tooltip = tooltip_fields(language, "minutes", "visits", "share")
    layer = grid_layer(grids, name, per_grid, measure, colours, tooltip, show).add_to(m)
    measured = [per_grid.get(code, {}).get(measure) for code in grids["code"]]
    measured = np.asarray([v for v in measured if v is not None], dtype=float)
    entries = _bin_entries(measured, colours, lambda at: _bin_label(at, measure, language))
    missing = len(grids) - len(measured)
    if missing:
        entries.append((text("no_shift", language), swatch(MISSING_COLOUR), missing))
    add_legend(m, layer, name, entries)
    return finish_map(m, grids, fit)


def gap_layer(
    grids: gpd.GeoDataFrame,
    gaps: pd.DataFrame,
    *,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """The coverage gaps (:attr:`geogrid.gaps.GapsResult.gaps`) outlined in red by score.

    Only the gaps are drawn: hot grids short of the dose, darker for a higher score
    (risk times the unprotected share), in thirds of the highest score.
    """
    grids = grid_frame(grids)
    gaps = gaps[gaps["grid_code"].isin(set(grids["code"]))]
    per_grid = {
        row.grid_code: {
            "rank": str(int(row.rank)),
            "risk": f"{row.risk:.1f}",
            "shortfall": f"{row.shortfall:.0%}",
            "score": f"{row.score:.2f}",
            "_score": float(row.score),
        }
        for row in gaps.itertuples(index=False)
    }
    top = max((values["_score"] for values in per_grid.values()), default=0.0)
    colours = [(0.0, _REDS[0]), (top / 3, _REDS[1]), (2 * top / 3, _REDS[2])] if top else []
    colours = colours or [(0.0, _REDS[1])]
    name = text("gaps", language)
    style = {"color": "#67000d", "weight": 3, "dashArray": "6 4", "fillOpacity": 0.55}
    tooltip = tooltip_fields(language, "rank", "risk", "shortfall", "score")
    drawn = grids[grids["code"].isin(set(per_grid))]
    layer = grid_layer(drawn, name, per_grid, "_score", colours, tooltip, show, style)
    m = start_map(m, tiles, attribution, language)
    layer.add_to(m)
    scores = np.asarray([values["_score"] for values in per_grid.values()], dtype=float)
    score = text("score", language)
    entries = _bin_entries(scores, colours, lambda at: f"{score} ≥ {at:.2f}") if per_grid else []
    add_legend(m, layer, name, entries)
    return finish_map(m, drawn, fit)


def proposal_map(
    grids: gpd.GeoDataFrame,
    proposal: pd.DataFrame,
    removed: pd.DataFrame | None = None,
    *,
    colours: Mapping[str, str] | None = None,
    show: bool = True,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    tiles: str = NO_TILES,
    attribution: str = "",
    fit: bool = True,
) -> folium.Map:
    """A proposal: grids coloured by proposed team, and a layer of what changes per grid.

    ``proposal``: team_mark, grid_code, change (added, kept, locked); ``removed``:
    team_mark, grid_code of the assignments it would end. A grid is ``added`` when it
    gets a team it does not have, else ``locked`` or ``kept``.
    """
    grids = grid_frame(grids)
    proposed = proposal.assign(shift="")
    m = assignment_map(
        grids,
        proposed,
        colours=colours or team_colours(proposal["team_mark"]),
        name=text("proposal", language),
        show=show,
        m=m,
        language=language,
        tiles=tiles,
        attribution=attribution,
        fit=fit,
    )
    removed = removed if removed is not None else pd.DataFrame(columns=["team_mark", "grid_code"])
    per_grid = {}
    for code, rows in proposal.groupby("grid_code"):
        changes = set(rows["change"])
        change = "added" if "added" in changes else "locked" if "locked" in changes else "kept"
        now = set(rows.loc[rows["change"] != "added", "team_mark"])
        now |= set(removed.loc[removed["grid_code"] == code, "team_mark"])
        per_grid[code] = {
            "change": change,
            "status": text(change, language),
            "now": ", ".join(sorted(now)) or "-",
            "proposed": ", ".join(sorted(set(rows["team_mark"]))),
        }
    name = text("changes", language)
    tooltip = tooltip_fields(language, "status", "now", "proposed")
    # Outlines, so the proposed teams' colours show through.
    layer = _outline_layer(grids, per_grid, name, tooltip, show).add_to(m)
    changes = [values["change"] for values in per_grid.values()]
    entries = [
        (text(change, language), {**stroke, "fill": False}, changes.count(change))
        for change, stroke in _CHANGE_STROKES.items()
        if change in changes
    ]
    add_legend(m, layer, name, entries, position="bottomleft")
    return finish_map(m, grids, False)


def _outline_layer(
    grids: gpd.GeoDataFrame,
    per_grid: Mapping[str, Mapping[str, Any]],
    name: str,
    tooltip: Mapping[str, str],
    show: bool,
) -> folium.FeatureGroup:
    """Grids outlined by their change; transparent inside, yet hoverable for the tooltip."""
    frame = grids[grids["code"].isin(set(per_grid))].copy()
    for key in tooltip:
        if key not in ("code", "name"):
            frame[key] = [per_grid[code][key] for code in frame["code"]]
    for key in tooltip:  # tooltips are HTML; names come from uploaded boundary files
        frame[key] = frame[key].fillna("").astype(str).map(escape)
    frame["_change"] = [per_grid[code]["change"] for code in frame["code"]]
    group = folium.FeatureGroup(name=name, show=show)
    if len(frame):
        folium.GeoJson(
            frame,
            style_function=lambda feature: {
                **_CHANGE_STROKES[feature["properties"]["_change"]],
                "opacity": 0.95,
                "fill": True,
                "fillOpacity": 0.0,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=list(tooltip), aliases=list(tooltip.values()), sticky=True
            ),
        ).add_to(group)
    return group


def _coverage_per_grid(shifts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    per_grid = {}
    for code, rows in shifts.groupby("grid_code"):
        minutes = rows["minutes_inside"].dropna()
        share = rows["reach_share"].dropna() if "reach_share" in rows else pd.Series([], float)
        per_grid[code] = {
            "minutes_inside": float(minutes.sum()) if len(minutes) else None,
            "reach_share": float(share.mean()) if len(share) else None,
            "minutes": format_minutes(minutes.sum() if len(minutes) else None),
            "visits": str(int(rows["visits"].sum())),
            "share": f"{share.mean():.0%}" if len(share) else "-",
        }
    return per_grid


def _bin_entries(
    values: np.ndarray, bins: Sequence[tuple[float, str]], label_of: Any
) -> list[tuple[str, dict[str, Any], int]]:
    """Legend rows of ascending ``(at_least, colour)`` bins, each with its count."""
    uppers = [at_least for at_least, _ in bins[1:]] + [np.inf]
    return [
        (label_of(at_least), swatch(colour), int(((values >= at_least) & (values < upper)).sum()))
        for (at_least, colour), upper in zip(bins, uppers, strict=True)
    ]


def _bin_label(at_least: float, measure: str, language: str) -> str:
    if measure == "reach_share":
        return f"≥ {at_least:.0%}"
    return f"≥ {at_least:g} {text('min', language)}"
