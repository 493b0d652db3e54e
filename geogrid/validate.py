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

Geometry, codes and sizing are checked here; nesting, coverage and slivers, in metres,
in :mod:`geogrid.topology`.
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
from geogrid.topology import (
    AreaSet,
    Issue,
    coverage_issues,
    nesting_issues,
    sibling_groups,
    sliver_issues,
)

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
        s = AreaSet(
            codes,
            levels,
            _to_metric(geoms, usable, crs, metric_epsg),
            usable,
            parent,
            Transformer.from_crs(metric_epsg, crs, always_xy=True),
        )
        issues += sliver_issues(s, rules)
        issues += nesting_issues(s, rules)
        with tqdm(
            total=sibling_groups(s),
            unit="group",
            desc="validating",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar:
            for level in scheme.level_names:
                issues += coverage_issues(s, level, level == scheme.levels[0].name, rules, bar)
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


# -- helpers --------------------------------------------------------------------------


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


def _issue_order(issue: Issue) -> tuple:
    # Errors first, by check; the biggest problem of a check first.
    rank = CHECKS.index(issue.check) if issue.check in CHECKS else len(CHECKS)
    return (issue.severity != "error", rank, -(issue.measure or 0.0), issue.code or "")


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
