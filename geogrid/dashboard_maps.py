"""The officials' dashboard map: pure Folium builders over frames of incidents and grids.

Four layers, each from its own builder taking ``m=None`` (a new map) or a map to add to,
so a page composes them: the incident heat map (a picture of density, not a test),
incident counts and rates per unit as classed choropleth, Getis-Ord Gi* hotspots and
coldspots by confidence bin, and emerging hotspot categories over time slices. Every
layer has a legend shown only while the layer is on, tooltips with code and name, and
the map keeps one layer control, last, as Leaflet needs it.

Areas come as a GeoDataFrame (drawn inline, simplified for display) or as the URL of
the layers endpoint (fetched by the page, for a city's thousands of grids); values are
joined to them by code (:func:`geogrid.maplayers.area_layer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.plugins import HeatMap

from geogrid.dashboard_legend import LayerLegend
from geogrid.maplayers import MISSING_COLOUR, area_layer
from geogrid.maps import NO_TILES, base_map, display_tolerance, label

AreasSource = gpd.GeoDataFrame | str

#: The heat map's colour ramp (Leaflet.heat's default, written out so the legend matches).
HEAT_GRADIENT = {0.4: "#0000ff", 0.6: "#00ffff", 0.7: "#00ff00", 0.8: "#ffff00", 1.0: "#ff0000"}
#: Sequential ramp for rate classes, lightest first (ColorBrewer YlOrRd).
RATE_COLOURS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
ZERO_COLOUR = "#f0f0f0"
#: Gi* confidence bins, hot 99% to cold 99% (ColorBrewer RdBu, diverging).
HOTSPOT_BINS: dict[int, tuple[str, str]] = {
    3: ("hot_99", "#b2182b"),
    2: ("hot_95", "#ef8a62"),
    1: ("hot_90", "#fddbc7"),
    0: ("not_significant", "#f7f7f7"),
    -1: ("cold_90", "#d1e5f0"),
    -2: ("cold_95", "#67a9cf"),
    -3: ("cold_99", "#2166ac"),
}
#: Emerging hotspot categories, in the legend's order, with their colours.
EMERGING_CATEGORIES: dict[str, str] = {
    "new": "#67001f",
    "consecutive": "#b2182b",
    "intensifying": "#d6604d",
    "persistent": "#f4a582",
    "diminishing": "#fddbc7",
    "sporadic": "#8073ac",
    "oscillating": "#b2abd2",
    "historical": "#bababa",
    "no pattern": "#f7f7f7",
}

_WORDS = {
    "heat": ("事件热力图", "Incident heat map"),
    "heat_note": ("事件分布密度示意，不是统计检验", "Density of incidents: a picture, not a test"),
    "incidents": ("件事件", "incidents"),
    "few": ("少", "few"),
    "many": ("多", "many"),
    "rates": ("事件数与发生率", "Incident counts and rates"),
    "households": ("每千户事件数", "Incidents per 1,000 households"),
    "area": ("每平方公里事件数", "Incidents per km²"),
    "households_note": ("按住户数计算", "rate per 1,000 households (households known)"),
    "area_note": ("住户数不全，按面积计算", "rate per km² (households not known everywhere)"),
    "count": ("事件数", "Incidents"),
    "rate": ("发生率", "Rate"),
    "no_data": ("无数据", "no data"),
    "hotspots": ("热点与冷点 (Gi*)", "Hotspots and coldspots (Gi*)"),
    "hotspots_note": (
        "Getis-Ord Gi*，置换检验，FDR 多重检验校正",
        "Getis-Ord Gi*, permutation test, FDR-corrected",
    ),
    "hot_99": ("热点 99% 置信", "Hotspot, 99% confidence"),
    "hot_95": ("热点 95% 置信", "Hotspot, 95% confidence"),
    "hot_90": ("热点 90% 置信", "Hotspot, 90% confidence"),
    "not_significant": ("不显著", "Not significant"),
    "cold_90": ("冷点 90% 置信", "Coldspot, 90% confidence"),
    "cold_95": ("冷点 95% 置信", "Coldspot, 95% confidence"),
    "cold_99": ("冷点 99% 置信", "Coldspot, 99% confidence"),
    "z": ("Z 值", "z-score"),
    "p": ("p 值 (FDR 校正)", "p (FDR-corrected)"),
    "confidence": ("置信度", "Confidence"),
    "emerging": ("时空热点趋势", "Emerging hotspots"),
    "week": ("按周分段", "weekly slices"),
    "month": ("按月分段", "monthly slices"),
    "category": ("类别", "Category"),
    "trend": ("趋势 (Mann-Kendall τ)", "Trend (Mann-Kendall τ)"),
    "trend_p": ("趋势 p 值", "Trend p"),
    "slices_hot": ("热点时段数", "Hot slices"),
    "new": ("新增热点", "New hotspot"),
    "consecutive": ("连续热点", "Consecutive hotspot"),
    "intensifying": ("加强热点", "Intensifying hotspot"),
    "persistent": ("持续热点", "Persistent hotspot"),
    "diminishing": ("减弱热点", "Diminishing hotspot"),
    "sporadic": ("零星热点", "Sporadic hotspot"),
    "oscillating": ("振荡热点", "Oscillating hotspot"),
    "historical": ("历史热点", "Historical hotspot"),
    "no pattern": ("无明显模式", "No pattern"),
}


def word(key: str, language: str) -> str:
    """A dashboard map word (a layer name, a bin, a category) in the language, else the key."""
    pair = _WORDS.get(key)
    if pair is None:
        return key
    return pair[1] if language == "en" else pair[0]


def heat_map(
    points: pd.DataFrame,
    *,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    show: bool = True,
    radius: int = 14,
    tiles: str = NO_TILES,
    attribution: str = "",
) -> folium.Map:
    """Add the incident heat map: ``points`` has ``lon``, ``lat`` and optionally ``weight``."""
    m = _map(m, tiles, attribution, language)
    weights = points["weight"] if "weight" in points else pd.Series(1, index=points.index)
    # Leaflet wants lat, lon.
    data = np.column_stack([points["lat"], points["lon"], weights]).astype(float).tolist()
    layer = HeatMap(
        data,
        name=word("heat", language),
        radius=radius,
        blur=radius,
        min_opacity=0.3,
        gradient=HEAT_GRADIENT,
        show=show,
    )
    layer.add_to(m)
    total = int(weights.sum())
    entries = [(word("few", language), HEAT_GRADIENT[0.4], None)]
    entries.append((word("many", language), HEAT_GRADIENT[1.0], None))
    note = f"{word('heat_note', language)} · {total} {word('incidents', language)}"
    LayerLegend(word("heat", language), entries, layer, note=note).add_to(m)
    return _with_layer_control(m)


def rate_map(
    areas: AreasSource,
    rates: pd.DataFrame,
    *,
    basis: str,
    m: folium.Map | None = None,
    language: str = "zh_CN",
    show: bool = False,
    classes: int = 5,
    tiles: str = NO_TILES,
    attribution: str = "",
) -> folium.Map:
    """Add counts and rates per unit as classed choropleth.

    ``rates`` is indexed by code with columns ``count`` and ``rate``; ``basis`` is
    ``households`` (per 1,000) or ``area`` (per km²), named in the legend.
    """
    m = _map(m, tiles, attribution, language)
    rate = rates["rate"].astype(float).round(2)
    breaks = class_breaks(rate.to_numpy(), classes)
    colours = _ramp(len(breaks))
    bins = [(0.0, ZERO_COLOUR), *zip(breaks, colours, strict=True)]
    values = {
        str(code): {"count": _plain(count), "rate": _plain(rate_value)}
        for code, count, rate_value in zip(rates.index, rates["count"], rate, strict=True)
    }
    rate_name = word(basis, language)
    layer = area_layer(
        _display(areas),
        name=word("rates", language),
        style={"weight": 0.6, "color": "#555555", "fillOpacity": 0.7},
        tooltip=_tooltip(language, count=word("count", language), rate=rate_name),
        values=values,
        style_property="rate",
        colours=bins,
        show=show,
        language=language,
    )
    layer.add_to(m)
    entries = [
        (label_text, colour, count) for label_text, colour, count in _rate_classes(rate, bins)
    ]
    missing = int(rate.isna().sum())
    if missing:
        entries.append((word("no_data", language), MISSING_COLOUR, missing))
    note = word(f"{basis}_note", language)
    LayerLegend(rate_name, entries, layer, note=note).add_to(m)
    return _with_layer_control(m)


def hotspot_map(
    areas: AreasSource,
    hotspots: pd.DataFrame,
    *,
    note: str = "",
    m: folium.Map | None = None,
    language: str = "zh_CN",
    show: bool = True,
    tiles: str = NO_TILES,
    attribution: str = "",
) -> folium.Map:
    """Add Gi* hotspots and coldspots coloured by confidence bin (``bin`` -3..3 per code).

    ``hotspots`` is :class:`geogrid.hotspots.HotspotResult`'s frame: indexed by code with
    ``count``, ``z``, ``p_fdr`` (the p-value corrected for multiple testing) and ``bin``.
    The legend counts the units in each bin and adds ``note`` (why nothing could be
    tested, say) to its own.
    """
    m = _map(m, tiles, attribution, language)
    bins = hotspots["bin"].fillna(0).astype(int).clip(-3, 3)
    p_values = hotspots["p_fdr"]
    values = {}
    columns = zip(hotspots.index, hotspots["count"], hotspots["z"], p_values, bins, strict=True)
    for code, count, z, p, confidence in columns:
        values[str(code)] = {
            "count": _plain(count),
            "z": _rounded(z, 2),
            "p": _rounded(p, 3),
            "confidence": word(HOTSPOT_BINS[confidence][0], language),
            "bin": confidence,
        }
    layer = area_layer(
        _display(areas),
        name=word("hotspots", language),
        style={"weight": 0.6, "color": "#555555", "fillOpacity": 0.6},
        tooltip=_tooltip(
            language,
            count=word("count", language),
            z=word("z", language),
            p=word("p", language),
            confidence=word("confidence", language),
        ),
        values=values,
        style_property="bin",
        colours={value: colour for value, (_, colour) in HOTSPOT_BINS.items()},
        show=show,
        language=language,
    )
    layer.add_to(m)
    counts = bins.value_counts()
    entries = [
        (word(key, language), colour, int(counts.get(value, 0)))
        for value, (key, colour) in HOTSPOT_BINS.items()
    ]
    legend_note = " · ".join(part for part in (word("hotspots_note", language), note) if part)
    LayerLegend(word("hotspots", language), entries, layer, note=legend_note).add_to(m)
    return _with_layer_control(m)


def emerging_map(
    areas: AreasSource,
    emerging: pd.DataFrame | str,
    *,
    slice: str = "month",
    window: str = "",
    m: folium.Map | None = None,
    language: str = "zh_CN",
    show: bool = False,
    tiles: str = NO_TILES,
    attribution: str = "",
) -> folium.Map:
    """Add emerging hotspot categories (``category`` per code) over weekly or monthly slices.

    ``emerging`` is the analysis indexed by code, or the URL of its
    :func:`emerging_values` as JSON (with areas from a URL too): the page then draws
    the layer when the answer comes, and the legend lists the categories without counts.
    ``window`` (e.g. ``2025-12 – 2026-11``) is named in the legend with the slicing.
    """
    m = _map(m, tiles, attribution, language)
    values = emerging if isinstance(emerging, str) else emerging_values(emerging, language)
    layer = area_layer(
        _display(areas),
        name=word("emerging", language),
        style={"weight": 0.6, "color": "#555555", "fillOpacity": 0.6},
        tooltip=_tooltip(
            language,
            category=word("category", language),
            trend=word("trend", language),
            trend_p=word("trend_p", language),
            slices_hot=word("slices_hot", language),
        ),
        values=values,
        style_property="category_code",
        colours=EMERGING_CATEGORIES,
        show=show,
        language=language,
    )
    layer.add_to(m)
    counts = None
    if not isinstance(emerging, str):
        counts = emerging["category"].fillna("no pattern").astype(str).value_counts()
    names = list(EMERGING_CATEGORIES)
    if counts is not None:
        names += sorted(set(counts.index) - set(names))
    entries = [
        (
            word(name, language),
            EMERGING_CATEGORIES.get(name, MISSING_COLOUR),
            None if counts is None else int(counts.get(name, 0)),
        )
        for name in names
    ]
    note = " · ".join(part for part in (word(slice, language), window) if part)
    LayerLegend(word("emerging", language), entries, layer, note=note).add_to(m)
    return _with_layer_control(m)


def emerging_values(emerging: pd.DataFrame, language: str = "zh_CN") -> dict[str, dict[str, Any]]:
    """What the emerging layer shows of each area, by code: JSON-ready, category in words."""
    categories = emerging["category"].fillna("no pattern").astype(str)
    missing = pd.Series(None, index=emerging.index, dtype=object)
    tau, trend_p, hot = (
        emerging.get(name, missing) for name in ("trend_tau", "trend_p", "slices_hot")
    )
    values = {}
    columns = zip(emerging.index, categories, tau, trend_p, hot, strict=True)
    for code, category, tau_value, p_value, hot_slices in columns:
        values[str(code)] = {
            "category": word(category, language),
            "category_code": category,
            "trend": _rounded(tau_value, 2),
            "trend_p": _rounded(p_value, 3),
            "slices_hot": _plain(hot_slices),
        }
    return values


def fit_to(m: folium.Map, bounds: Sequence[float] | None) -> folium.Map:
    """Fit the map to (west, south, east, north) bounds in lon/lat; nothing for None."""
    if bounds is not None:
        west, south, east, north = bounds
        m.fit_bounds([[south, west], [north, east]])  # Leaflet's order: lat, lon
    return m


def class_breaks(values: np.ndarray, classes: int = 5) -> list[float]:
    """Lower bounds of up to ``classes`` quantile classes of the positive values.

    Zero is a class of its own (most grids have no incident in a week), so the
    quantiles are taken over the rest; equal bounds are merged.
    """
    positive = np.sort(values[np.isfinite(values) & (values > 0)])
    if positive.size == 0:
        return []
    # No more classes than distinct values, or interpolated bounds make empty classes.
    classes = min(classes, len(np.unique(positive)))
    bounds = np.quantile(positive, np.linspace(0, 1, classes + 1)[:-1])
    return sorted({round(float(bound), 2) for bound in bounds})


# -- helpers --------------------------------------------------------------------------------


def _map(m: folium.Map | None, tiles: str, attribution: str, language: str) -> folium.Map:
    return m if m is not None else base_map(tiles, attribution=attribution, language=language)


def _with_layer_control(m: folium.Map) -> folium.Map:
    """One layer control, moved to the end: it lists only the layers added before it."""
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _display(areas: AreasSource) -> AreasSource:
    """Areas light enough to inline: simplified to half a pixel a few zooms past the fit."""
    if isinstance(areas, str):
        return areas
    if areas.crs is not None and not areas.crs.is_geographic:
        areas = areas.to_crs("EPSG:4490")
    tolerance = display_tolerance(tuple(areas.total_bounds)) if len(areas) else 0.0
    if tolerance <= 0:
        return areas
    simplified = areas.copy()
    simplified["geometry"] = areas.geometry.simplify(tolerance, preserve_topology=True)
    return simplified


def _tooltip(language: str, **fields: str) -> dict[str, str]:
    return {"code": label("code", language), "name": label("name", language), **fields}


def _ramp(count: int) -> list[str]:
    if count == 0:
        return []
    positions = np.linspace(0, len(RATE_COLOURS) - 1, count).round().astype(int)
    return [RATE_COLOURS[position] for position in positions]


def _rate_classes(rate: pd.Series, bins: list[tuple[float, str]]) -> list[tuple[str, str, int]]:
    """Legend rows for the rate bins: the range of each class and how many units fall in it."""
    known = rate.dropna()
    rows = [("0", bins[0][1], int((known == 0).sum()))]
    for position, (low, colour) in enumerate(bins[1:], start=1):
        high = bins[position + 1][0] if position + 1 < len(bins) else None
        inside = known >= low if high is None else (known >= low) & (known < high)
        text = f"≥ {_number(low)}" if high is None else f"{_number(low)} – {_number(high)}"
        rows.append((text, colour, int(inside.sum())))
    return rows


def _number(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy numbers as Python ones, NaN and NA as None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _rounded(value: Any, digits: int) -> float | None:
    plain = _plain(value)
    return None if plain is None else round(float(plain), digits)
