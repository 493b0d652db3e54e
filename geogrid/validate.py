"""Validation of a boundary set: the gate shared by boundary import and activation.

A boundary set is every area of a generation (or an import with its parent areas) as a
GeoDataFrame in lon/lat (the storage CRS, EPSG:4490). :func:`validate_areas` checks it
and repairs nothing:

1. geometry: present, a Polygon or MultiPolygon, valid (GEOS says why and where);
2. codes: fit the scheme and the declared level, unique, ``parent_code`` agrees with
   the code, the parent is in the set;
3. nesting: each area lies within its parent, up to ``nesting_tolerance_m``;
4. coverage: areas of a level do not overlap; below the top level the children of a
   parent cover it with no gap deeper than the nesting tolerance, no narrow gap
   (``gap_width_m``) lies between neighbours, and neighbours share their vertices;
5. slivers: no polygon part of an area is smaller than ``sliver_area_m2``;
6. sizing: households per area within the configured range (a warning).

Lengths and areas are measured in metres, in a Gauss-Krüger zone. The work is
vectorised per level: one GEOS coverage validation (``coverage_invalid_edges``) flags
every suspicious edge, and only flagged areas are examined pair by pair; a parent is
dissolved only when its children's areas fall short of its own.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from tqdm import tqdm

from geogrid.codes import CodeScheme
from geogrid.crs import metric_crs_for
from geogrid.errors import CodeError

#: Every check, in the order a report lists them.
CHECKS = (
    "geometry_empty",
    "geometry_type",
    "geometry_invalid",
    "repaired",
    "code_format",
    "code_level",
    "code_duplicate",
    "parent_mismatch",
    "parent_missing",
    "not_nested",
    "overlap",
    "gap",
    "sliver",
    "edge_mismatch",
    "households_range",
)

#: Overlaps and uncovered parts up to this size (m²) are rounding where neighbouring
#: edges do not share vertices; they are reported as ``edge_mismatch``.
_DUST_M2 = 1e-4
#: Points closer than this (m) are the same point up to rounding.
_NOISE_M = 1e-3
_STORAGE_EPSG = 4490
_POLYGONAL = [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON]
_REASON = re.compile(r"^(?P<reason>[^\[]*)\[(?P<x>\S+)\s+(?P<y>\S+)(?:\s+\S+)?\]\s*$")


@dataclass(frozen=True)
class ValidationRules:
    """The tolerances and limits a boundary set is checked against."""

    nesting_tolerance_m: float = 1.0
    gap_width_m: float = 5.0
    sliver_area_m2: float = 10.0
    households_range: tuple[int, int] | None = None
    sizing_levels: tuple[str, ...] = ("grid",)

    @classmethod
    def from_settings(cls, settings: Any) -> ValidationRules:
        """The rules a deployment configured (its ``GEOGRID_*`` settings)."""
        return cls(
            nesting_tolerance_m=settings.nesting_tolerance_m,
            gap_width_m=settings.gap_width_m,
            sliver_area_m2=settings.sliver_area_m2,
            households_range=settings.households_range,
        )


@dataclass(frozen=True)
class Issue:
    """One problem in a boundary set: what, where, and which other area is involved."""

    severity: str  # "error" blocks activation, "warning" does not
    check: str  # one of CHECKS
    code: str | None
    message: str
    location: tuple[float, float] | None = None  # lon, lat
    related_code: str | None = None
    #: How big the problem is: m² for overlaps, gaps and slivers, m for nesting and
    #: narrow gaps, households for sizing.
    measure: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The issue as a JSON-ready mapping."""
        return {
            "severity": self.severity,
            "check": self.check,
            "code": self.code,
            "message": self.message,
            "location": list(self.location) if self.location else None,
            "related_code": self.related_code,
            "measure": self.measure,
        }


@dataclass
class ValidationReport:
    """Every issue found in a boundary set; it passes when there is no error."""

    issues: list[Issue]
    areas_checked: int

    @property
    def errors(self) -> list[Issue]:
        """The issues that block activation."""
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """The issues worth a look that do not block activation."""
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def ok(self) -> bool:
        """Whether the set has no errors."""
        return not self.errors

    def counts(self) -> dict[str, dict[str, int]]:
        """Issues per severity and check, e.g. ``{"error": {"overlap": 2}, "warning": {}}``."""
        counts: dict[str, dict[str, int]] = {"error": {}, "warning": {}}
        for issue in self.issues:
            per_check = counts.setdefault(issue.severity, {})
            per_check[issue.check] = per_check.get(issue.check, 0) + 1
        return counts

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """The report as a JSON-ready mapping, with the first ``limit`` issues (or all)."""
        return {
            "ok": self.ok,
            "areas_checked": self.areas_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts": self.counts(),
            "issues": [issue.as_dict() for issue in self.issues[:limit]],
        }

    def summary_lines(self) -> list[str]:
        """Lines for the CLI: the verdict, then the count of each kind of issue."""
        verdict = "passed" if self.ok else "FAILED"
        lines = [
            f"validation {verdict}: {self.areas_checked} areas checked, "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        ]
        for severity, per_check in self.counts().items():
            lines += [f"  {count:6d} {severity}: {check}" for check, count in per_check.items()]
        return lines


def validate_areas(
    areas: gpd.GeoDataFrame,
    scheme: CodeScheme,
    rules: ValidationRules,
    *,
    metric_epsg: int | None = None,
    progress: bool = False,
) -> ValidationReport:
    """Check a whole boundary set: geometry, codes, nesting, coverage, slivers, sizing."""
    geoms = np.asarray(areas.geometry.values, dtype=object)
    codes = np.array([_text(code) or "" for code in areas["code"]], dtype=object)
    levels = np.array([_text(level) or "" for level in areas["level"]], dtype=object)
    named = [_text(p) for p in areas["parent_code"]] if "parent_code" in areas else None
    issues, geometry_ok = _geometry_issues(geoms, codes)
    code_issues, code_ok, parent = _code_issues(codes, levels, named, scheme)
    issues += [replace(issue, location=_point_in(geoms[row])) for row, issue in code_issues]
    usable = geometry_ok & code_ok
    parent = np.where((parent >= 0) & usable & usable[np.maximum(parent, 0)], parent, -1)
    if usable.any():
        crs = areas.crs or _STORAGE_EPSG
        metric_epsg = metric_epsg or _metric_epsg_of(geoms[usable])
        s = _AreaSet(
            codes,
            levels,
            _to_metric(geoms, usable, crs, metric_epsg),
            usable,
            parent,
            Transformer.from_crs(metric_epsg, crs, always_xy=True),
        )
        issues += _sliver_issues(s, rules)
        issues += _nesting_issues(s, rules)
        with tqdm(
            total=_sibling_groups(s),
            unit="group",
            desc="validating",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar:
            for level in scheme.level_names:
                issues += _coverage_issues(s, level, level == scheme.levels[0].name, rules, bar)
    issues += _sizing_issues(areas, codes, levels, rules)
    return ValidationReport(sorted(issues, key=_issue_order), len(areas))


def repair_geometries(geoms: Any, codes: Sequence[Any]) -> tuple[np.ndarray, list[Issue]]:
    """Apply make_valid to invalid geometries, keeping polygonal parts; a warning per repair."""
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    invalid = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_valid(geoms))
    if not len(invalid):
        return out, []
    reasons = shapely.is_valid_reason(geoms[invalid])
    fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
    issues = []
    for i, reason, geom in zip(invalid, reasons, fixed, strict=True):
        what, location = _parse_reason(reason)
        polygons = _polygonal_parts(geom)
        out[i] = shapely.MultiPolygon(polygons)
        dropped = shapely.get_num_geometries(geom) - len(polygons)
        if not polygons:
            result = "left nothing polygonal, so the area is now empty"
        else:
            result = f"kept {len(polygons)} polygon part(s)"
            result += f" and dropped {dropped} line or point part(s)" if dropped else ""
        code = _text(codes[i])
        message = (
            f"Area {code} was invalid ({what}); make_valid {result}. Compare the "
            "repaired boundary with the source before activating."
        )
        issues.append(Issue("warning", "repaired", code, message, location))
    return out, issues


# -- the set under validation ---------------------------------------------------------


@dataclass
class _AreaSet:
    """The usable areas as arrays: codes, levels, metric geometries and parent rows."""

    codes: np.ndarray
    levels: np.ndarray
    metric: np.ndarray  # None where not usable
    usable: np.ndarray  # valid polygonal geometry and a code that fits its level
    parent: np.ndarray  # row of the parent, -1 at the top or when it is missing/unusable
    from_metric: Transformer
    inside_area: np.ndarray | None = None  # m² of each child within its parent

    def lonlat(self, point: shapely.Geometry) -> tuple[float, float] | None:
        """A metric point as (lon, lat)."""
        if point is None or shapely.is_empty(point):
            return None
        x, y = self.from_metric.transform(shapely.get_x(point), shapely.get_y(point))
        return round(float(x), 7), round(float(y), 7)

    def where(self, geom: shapely.Geometry) -> tuple[float, float] | None:
        """A point inside a metric geometry, as (lon, lat)."""
        return self.lonlat(shapely.point_on_surface(geom))


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a code column with a missing value turns into floats
    return str(value).strip() or None


def _metric_epsg_of(geoms: np.ndarray) -> int:
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    return metric_crs_for((xmin + xmax) / 2, (ymin + ymax) / 2)


def _to_metric(geoms: np.ndarray, usable: np.ndarray, crs: Any, epsg: int) -> np.ndarray:
    transformer = Transformer.from_crs(crs, epsg, always_xy=True)
    metric = np.full(len(geoms), None, dtype=object)
    metric[usable] = shapely.transform(geoms[usable], transformer.transform, interleaved=False)
    return metric


def _sibling_groups(s: _AreaSet) -> int:
    return len(pd.DataFrame({"l": s.levels[s.usable], "p": s.parent[s.usable]}).drop_duplicates())


def _issue_order(issue: Issue) -> tuple:
    # Errors first, by check; the biggest problem of a check first.
    rank = CHECKS.index(issue.check) if issue.check in CHECKS else len(CHECKS)
    return (issue.severity != "error", rank, -(issue.measure or 0.0), issue.code or "")


def _plural(level: str) -> str:
    return (
        level[:-1] + "ies" if level.endswith("y") and level[-2:-1] not in "aeiou" else level + "s"
    )


def _point_in(geom: shapely.Geometry) -> tuple[float, float] | None:
    if geom is None or shapely.is_empty(geom) or not shapely.is_valid(geom):
        return None
    point = shapely.point_on_surface(geom)
    return round(float(point.x), 7), round(float(point.y), 7)


# -- 1. geometry ----------------------------------------------------------------------


def _geometry_issues(geoms: np.ndarray, codes: np.ndarray) -> tuple[list[Issue], np.ndarray]:
    """Missing, non-polygonal and invalid geometries; and which geometries are usable."""
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), _POLYGONAL)
    valid = shapely.is_valid(geoms)
    issues = []
    for i in np.flatnonzero(missing):
        message = f"Area {codes[i]} has no boundary; draw one or remove the area."
        issues.append(Issue("error", "geometry_empty", codes[i] or None, message))
    for i in np.flatnonzero(~missing & ~polygonal):
        kind = shapely.GeometryType(shapely.get_type_id(geoms[i])).name.title()
        message = (
            f"Area {codes[i]} is a {kind}, not a polygon; give it a Polygon or "
            "MultiPolygon boundary."
        )
        issues.append(Issue("error", "geometry_type", codes[i] or None, message))
    invalid = np.flatnonzero(~missing & polygonal & ~valid)
    for i, reason in zip(invalid, shapely.is_valid_reason(geoms[invalid]), strict=True):
        what, location = _parse_reason(reason)
        message = (
            f"Area {codes[i]} has an invalid boundary ({what}); fix it in the source, "
            "or import it with repair to apply make_valid."
        )
        issues.append(Issue("error", "geometry_invalid", codes[i] or None, message, location))
    return issues, ~missing & polygonal & valid


def _parse_reason(reason: str) -> tuple[str, tuple[float, float] | None]:
    """Split GEOS's ``Self-intersection[119.1 36.7]`` into the reason and the place."""
    match = _REASON.match(reason or "")
    if not match:
        return reason, None
    x, y = float(match["x"]), float(match["y"])
    return match["reason"].strip(), (x, y) if math.isfinite(x) and math.isfinite(y) else None


def _polygonal_parts(geom: shapely.Geometry) -> list[shapely.Polygon]:
    polygons = []
    for part in shapely.get_parts(geom):
        if isinstance(part, shapely.Polygon) and not part.is_empty:
            polygons.append(part)
        elif isinstance(part, shapely.MultiPolygon | shapely.GeometryCollection):
            polygons += _polygonal_parts(part)
    return polygons


# -- 2. codes -------------------------------------------------------------------------


def _code_issues(
    codes: np.ndarray, levels: np.ndarray, named: list[str | None] | None, scheme: CodeScheme
) -> tuple[list[tuple[int, Issue]], np.ndarray, np.ndarray]:
    """Code problems (with their row), rows whose code fits their level, parent rows."""
    level_by_length = {level.length: level.name for level in scheme.levels}
    fits = np.array(
        [
            code.isascii() and code.isdigit() and level_by_length.get(len(code)) == level
            for code, level in zip(codes, levels, strict=True)
        ],
        dtype=bool,
    )
    issues = [(i, _code_problem(codes[i], levels[i], scheme)) for i in np.flatnonzero(~fits)]
    first_row: dict[str, int] = {}
    for i in np.flatnonzero(fits):
        first_row.setdefault(codes[i], i)
    for code, count in Counter(codes[fits]).items():
        if count > 1:
            message = f"Code {code} is used by {count} areas; give each area its own code."
            issues.append((first_row[code], Issue("error", "code_duplicate", code, message)))
    parent = np.full(len(codes), -1, dtype=np.int64)
    parent_length = {
        lv.name: getattr(scheme.parent_level(lv.name), "length", 0) for lv in scheme.levels
    }
    for i in np.flatnonzero(fits):
        code, level = codes[i], levels[i]
        expected = code[: parent_length[level]] or None
        if named is not None and named[i] is not None and named[i] != expected:
            under = expected or "no parent (it is at the top level)"
            message = (
                f"Area {code} names {named[i]} as its parent, but its code places it "
                f"under {under}; fix parent_code or the code."
            )
            issues.append((i, Issue("error", "parent_mismatch", code, message, None, named[i])))
        if expected is not None and expected in first_row:
            parent[i] = first_row[expected]
        elif expected is not None:
            above = scheme.parent_level(level).name
            message = (
                f"The parent of {level} {code}, {above} {expected}, is not in the "
                f"boundary set; add {above} {expected} or correct the code."
            )
            issues.append((i, Issue("error", "parent_missing", code, message, None, expected)))
    return issues, fits, parent


def _code_problem(code: str, level: str, scheme: CodeScheme) -> Issue:
    try:
        scheme.level(level)
    except CodeError as exc:
        return Issue("error", "code_level", code or None, f"Area {code}: {exc.message}.")
    try:
        actual = scheme.level_of(code)
    except CodeError as exc:
        return Issue("error", "code_format", code or None, f"{exc.message}; correct the code.")
    message = (
        f"Code {code} is a {actual} code but the area is declared a {level} "
        f"({scheme.level(level).length} digits); fix the code or the level."
    )
    return Issue("error", "code_level", code, message)


# -- 3. nesting and 5. slivers --------------------------------------------------------


def _nesting_issues(s: _AreaSet, rules: ValidationRules) -> list[Issue]:
    """Children sticking out of their parent by more than the tolerance."""
    s.inside_area = np.zeros(len(s.codes))
    children = np.flatnonzero(s.parent >= 0)
    parents = s.parent[children]
    shapely.prepare(s.metric[np.unique(parents)])
    covered = shapely.covers(s.metric[parents], s.metric[children])
    s.inside_area[children[covered]] = shapely.area(s.metric[children[covered]])
    loose, loose_parent = children[~covered], parents[~covered]
    if not len(loose):
        return []
    inside = shapely.intersection(s.metric[loose], s.metric[loose_parent])
    s.inside_area[loose] = shapely.area(inside)
    # Only the parents of loose children are widened by the tolerance.
    unique, back = np.unique(loose_parent, return_inverse=True)
    widened = shapely.buffer(s.metric[unique], rules.nesting_tolerance_m)[back]
    shapely.prepare(widened)
    out = ~shapely.covers(widened, s.metric[loose])
    return [
        _sticking_out(s, child, parent, wide, rules)
        for child, parent, wide in zip(loose[out], loose_parent[out], widened[out], strict=True)
    ]


def _sticking_out(
    s: _AreaSet, child: int, parent: int, widened: Any, rules: ValidationRules
) -> Issue:
    child_geom, parent_geom = s.metric[child], s.metric[parent]
    beyond = shapely.difference(child_geom, widened)
    # The farthest point from the parent is a vertex of the part beyond the tolerance,
    # or lies inside it (when the child covers a hole of its parent).
    probes = np.concatenate(
        [
            shapely.points(shapely.get_coordinates(beyond)),
            shapely.point_on_surface(shapely.get_parts(beyond)),
        ]
    )
    distance = shapely.distance(probes, parent_geom)
    far = int(np.argmax(distance))
    level, code, up = s.levels[child], s.codes[child], s.codes[parent]
    if shapely.intersects(child_geom, parent_geom):
        outside = shapely.area(shapely.difference(child_geom, parent_geom))
        what = f"sticks out of its parent {up} by up to {distance[far]:.1f} m ({outside:.0f} m²)"
    else:
        gap = shapely.distance(child_geom, parent_geom)
        what = f"lies entirely outside its parent {up}, {gap:.1f} to {distance[far]:.1f} m away"
    message = (
        f"The {level} {code} {what}, beyond the {rules.nesting_tolerance_m:g} m "
        f"tolerance; redraw it inside {up} or correct its code."
    )
    where, size = s.lonlat(probes[far]), round(float(distance[far]), 3)
    return Issue("error", "not_nested", code, message, where, up, size)


def _sliver_issues(s: _AreaSet, rules: ValidationRules) -> list[Issue]:
    """Polygon parts smaller than the sliver limit, one issue per area."""
    rows = np.flatnonzero(s.usable)
    parts, index = shapely.get_parts(s.metric[rows], return_index=True)
    area = shapely.area(parts)
    part_count = np.bincount(index, minlength=len(rows))
    small = np.flatnonzero(area < rules.sliver_area_m2)  # grouped by area, as get_parts keeps order
    issues = []
    for mine in np.split(small, np.flatnonzero(np.diff(index[small])) + 1) if len(small) else []:
        i = rows[index[mine[0]]]
        if part_count[index[mine[0]]] == 1:
            what = f"is only {area[mine[0]]:.1f} m² in all"
        else:
            what = (
                f"has {len(mine)} polygon part(s) smaller than {rules.sliver_area_m2:g} m² "
                f"(the largest {area[mine].max():.1f} m²)"
            )
        message = (
            f"The {s.levels[i]} {s.codes[i]} {what}; delete such slivers or merge them "
            "into a neighbour."
        )
        where, size = s.where(parts[mine[0]]), round(float(area[mine].sum()), 3)
        issues.append(Issue("error", "sliver", s.codes[i], message, where, None, size))
    return issues


# -- 4. coverage ----------------------------------------------------------------------


def _coverage_issues(
    s: _AreaSet, level: str, is_top: bool, rules: ValidationRules, bar: tqdm
) -> list[Issue]:
    """Overlaps, gaps and unmatched edges among the areas of one level."""
    rows = np.flatnonzero(s.usable & (s.levels == level))
    if not len(rows):
        return []
    gap_width = 0.0 if is_top else rules.gap_width_m  # gaps between top areas are allowed
    edges = np.full(len(s.codes), None, dtype=object)
    edges[rows] = shapely.coverage_invalid_edges(s.metric[rows], gap_width=gap_width)
    flagged = rows[~shapely.is_empty(edges[rows])]
    tree = shapely.STRtree(s.metric[rows])
    issues, regions = _overlaps(s, rows, tree, flagged)
    if is_top:
        bar.update(1)
    else:
        gap_issues, gap_regions = _parent_gaps(s, rows, flagged, rules, bar)
        issues, regions = issues + gap_issues, regions + gap_regions
    return issues + _edge_issues(s, rows, tree, edges[flagged], flagged, regions, gap_width)


def _overlaps(
    s: _AreaSet, rows: np.ndarray, tree: shapely.STRtree, flagged: np.ndarray
) -> tuple[list[Issue], list[tuple[int, Any]]]:
    """Pairs of areas whose intersection has an area (only flagged areas can overlap).

    Also returns each overlap with the areas it belongs to, which explain flagged edges.
    """
    left, right = tree.query(s.metric[flagged], predicate="intersects")
    pairs = {
        (min(a, b), max(a, b)) for a, b in zip(flagged[left], rows[right], strict=True) if a != b
    }
    issues, regions = [], []
    if not pairs:
        return issues, regions
    first, second = np.array(sorted(pairs)).T
    overlaps = shapely.intersection(s.metric[first], s.metric[second])
    for a, b, overlap, size in zip(first, second, overlaps, shapely.area(overlaps), strict=True):
        if size <= _DUST_M2:
            continue
        regions += [(a, overlap), (b, overlap)]
        message = (
            f"The {_plural(s.levels[a])} {s.codes[a]} and {s.codes[b]} overlap by "
            f"{size:.1f} m²; redraw their shared boundary so that every place is in one "
            f"{s.levels[a]} only."
        )
        where, measure = s.where(overlap), round(float(size), 3)
        issues.append(Issue("error", "overlap", s.codes[a], message, where, s.codes[b], measure))
    return issues, regions


def _parent_gaps(
    s: _AreaSet, rows: np.ndarray, flagged: np.ndarray, rules: ValidationRules, bar: tqdm
) -> tuple[list[Issue], list[tuple[int, Any]]]:
    """Parts of each parent that none of its children cover, deeper than the tolerance.

    A parent whose children (a valid coverage) add up to its area has no gap and is not
    dissolved; only the others are.
    """
    children = rows[s.parent[rows] >= 0]
    sums = pd.Series(s.inside_area[children]).groupby(s.parent[children]).sum()
    parents = sums.index.to_numpy()
    dirty_set = set(s.parent[flagged])
    dirty = np.isin(parents, list(dirty_set))
    suspect = parents[(shapely.area(s.metric[parents]) - sums.to_numpy() > _DUST_M2) | dirty]
    bar.update(len(parents) - len(suspect) + int((s.parent[rows] < 0).any()))
    if not len(suspect):
        return [], []
    members = pd.Series(children).groupby(s.parent[children]).apply(list)
    unions = np.empty(len(suspect), dtype=object)
    for k, p in enumerate(suspect):
        cover = s.metric[members[p]]
        # coverage_union is exact and fast, but only on a valid coverage.
        unions[k] = (
            shapely.union_all(cover) if p in dirty_set else shapely.coverage_union_all(cover)
        )
        bar.update(1)
    parts, index = shapely.get_parts(
        shapely.difference(s.metric[suspect], unions), return_index=True
    )
    # Children may fall short of the parent's boundary by the nesting tolerance.
    deep = parts
    if rules.nesting_tolerance_m > 0:
        inner = shapely.buffer(s.metric[suspect], -rules.nesting_tolerance_m)
        deep = shapely.intersection(parts, inner[index])
    significant = shapely.area(deep) > _DUST_M2
    issues, regions = [], []
    for part, core, k in zip(
        parts[significant], deep[significant], index[significant], strict=True
    ):
        p = suspect[k]
        regions.append((p, part))
        issues.append(_gap_in_parent(s, p, s.levels[members[p][0]], part, core, rules))
    return issues, regions


def _gap_in_parent(
    s: _AreaSet, parent: int, child_level: str, part: Any, core: Any, rules: ValidationRules
) -> Issue:
    size = float(shapely.area(part))
    level, code, children = s.levels[parent], s.codes[parent], _plural(child_level)
    if size > rules.sliver_area_m2:
        message = (
            f"{size:.0f} m² inside the {level} {code} is in none of its {children}; "
            f"extend a neighbouring {child_level} over it, or add one."
        )
        return Issue("error", "gap", code, message, s.where(core), None, round(size, 3))
    message = (
        f"A sliver of {size:.2f} m² inside the {level} {code} is in none of its "
        f"{children}; snap the neighbouring boundaries to close it."
    )
    return Issue("warning", "sliver", code, message, s.where(core), None, round(size, 3))


def _edge_issues(
    s: _AreaSet,
    rows: np.ndarray,
    tree: shapely.STRtree,
    edges: np.ndarray,
    flagged: np.ndarray,
    regions: list[tuple[int, Any]],
    gap_width: float,
) -> list[Issue]:
    """Invalid coverage edges that no reported overlap or gap accounts for.

    An edge is accounted for when its middle touches an overlap of its area or a gap in
    its parent. What is left is a narrow gap between neighbours (an error), or a boundary
    two neighbours draw with different vertices (a warning: lookups are unaffected, but
    coverage union and simplification need shared vertices).
    """
    parts, index = shapely.get_parts(shapely.line_merge(edges), return_index=True)
    owner, probes = flagged[index], shapely.line_interpolate_point(parts, 0.5, normalized=True)
    left = shapely.length(parts) > _NOISE_M
    if regions:
        keys, geoms = zip(*regions, strict=True)
        hit, region = shapely.STRtree(geoms).query(probes, "dwithin", distance=_NOISE_M)
        keys, area = np.asarray(keys)[region], owner[hit]
        left[hit[(keys == area) | (keys == s.parent[area])]] = False
    # One look per area, at its longest edge left unexplained.
    order = np.lexsort((-shapely.length(parts), owner))
    order = order[left[order]]
    first = order[np.unique(owner[order], return_index=True)[1]]
    issues, seen = [], set()
    for i, probe in zip(owner[first], probes[first], strict=True):
        issue = _edge_issue(s, rows, tree, i, probe, gap_width)
        pair = (issue.check, frozenset((issue.code, issue.related_code))) if issue else None
        if issue and pair not in seen:
            seen.add(pair)
            issues.append(issue)
    return issues


def _edge_issue(
    s: _AreaSet, rows: np.ndarray, tree: shapely.STRtree, i: int, probe: Any, gap_width: float
) -> Issue | None:
    """What an unexplained invalid edge of area ``i``, at ``probe``, means, if anything."""
    near = rows[tree.query(probe, predicate="dwithin", distance=gap_width + _NOISE_M)]
    near = near[near != i]
    if not len(near):
        return None
    distance = shapely.distance(probe, s.metric[near])
    j, width = near[np.argmin(distance)], float(distance.min())
    if width <= _NOISE_M:
        message = (
            f"{s.codes[i]} and {s.codes[j]} draw their shared boundary with different "
            "vertices; snap it (e.g. shapely.coverage_clean) so both use the same."
        )
        return Issue("warning", "edge_mismatch", s.codes[i], message, s.lonlat(probe), s.codes[j])
    middle = shapely.line_interpolate_point(
        shapely.shortest_line(probe, s.metric[j]), 0.5, normalized=True
    )
    if len(tree.query(middle, predicate="intersects")):
        return None  # GEOS flags a narrow spike of an area like a gap; there is none
    if s.parent[i] >= 0 and not shapely.covers(s.metric[s.parent[i]], middle):
        return None  # a narrow inlet in the parent's own boundary, not a gap
    message = (
        f"A gap about {width:.2f} m wide lies between the {_plural(s.levels[i])} "
        f"{s.codes[i]} and {s.codes[j]}; make them share their boundary."
    )
    where, measure = s.lonlat(middle), round(width, 3)
    return Issue("error", "gap", s.codes[i], message, where, s.codes[j], measure)


# -- 6. sizing ------------------------------------------------------------------------


def _sizing_issues(
    areas: gpd.GeoDataFrame, codes: np.ndarray, levels: np.ndarray, rules: ValidationRules
) -> list[Issue]:
    """Areas at the sizing levels whose known households fall outside the rule."""
    if rules.households_range is None or "households" not in areas:
        return []
    low, high = rules.households_range
    households = pd.to_numeric(areas["households"], errors="coerce").to_numpy(dtype=float)
    sized = np.isin(levels, list(rules.sizing_levels)) & ~np.isnan(households)
    geoms = areas.geometry.values
    issues = []
    for i in np.flatnonzero(sized & ((households < low) | (households > high))):
        count = int(households[i])
        advice = "splitting it" if count > high else "merging it with a neighbour"
        message = (
            f"The {levels[i]} {codes[i]} has {count} households, outside the sizing "
            f"rule of {low}-{high}; consider {advice}."
        )
        issues.append(
            Issue(
                "warning",
                "households_range",
                codes[i] or None,
                message,
                _point_in(geoms[i]),
                None,
                float(count),
            )
        )
    return issues
