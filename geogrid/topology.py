"""Topology checks of a boundary set: how its areas sit against each other.

It holds the metric form of a boundary set (:class:`AreaSet`) and the checks that
compare areas with one another, in metres in a Gauss-Krüger zone: nesting (each area
within its parent, up to the tolerance), slivers (polygon parts too small to be real),
and sibling coverage per level (overlaps, gaps in a parent its children leave
uncovered, narrow gaps between neighbours, and edges neighbours draw with different
vertices). The work is vectorised per level: one GEOS coverage validation
(``coverage_invalid_edges``) flags every suspicious edge, and only flagged areas are
examined pair by pair; a parent is dissolved only when its children's areas fall short
of its own. :func:`geogrid.validate.validate_areas` runs these checks; :class:`Issue`
lives here so both modules can build issues without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from tqdm import tqdm

if TYPE_CHECKING:
    from geogrid.validate import ValidationRules

#: Overlaps and uncovered parts up to this size (m²) are rounding where neighbouring
#: edges do not share vertices; they are reported as ``edge_mismatch``.
_DUST_M2 = 1e-4
#: Points closer than this (m) are the same point up to rounding.
_NOISE_M = 1e-3


@dataclass(frozen=True)
class Issue:
    """One problem in a boundary set: what, where, and which other area is involved."""

    severity: str  # "error" blocks activation, "warning" does not
    check: str  # one of geogrid.validate.CHECKS
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
class AreaSet:
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


def sibling_groups(s: AreaSet) -> int:
    """How many groups of siblings (areas of one level under one parent) the set has."""
    return len(pd.DataFrame({"l": s.levels[s.usable], "p": s.parent[s.usable]}).drop_duplicates())


def _plural(level: str) -> str:
    return (
        level[:-1] + "ies" if level.endswith("y") and level[-2:-1] not in "aeiou" else level + "s"
    )


# -- 3. nesting and 5. slivers --------------------------------------------------------


def nesting_issues(s: AreaSet, rules: ValidationRules) -> list[Issue]:
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
    s: AreaSet, child: int, parent: int, widened: Any, rules: ValidationRules
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


def sliver_issues(s: AreaSet, rules: ValidationRules) -> list[Issue]:
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


def coverage_issues(
    s: AreaSet, level: str, is_top: bool, rules: ValidationRules, bar: tqdm
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
    s: AreaSet, rows: np.ndarray, tree: shapely.STRtree, flagged: np.ndarray
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
    s: AreaSet, rows: np.ndarray, flagged: np.ndarray, rules: ValidationRules, bar: tqdm
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
    s: AreaSet, parent: int, child_level: str, part: Any, core: Any, rules: ValidationRules
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
    s: AreaSet,
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
    s: AreaSet, rows: np.ndarray, tree: shapely.STRtree, i: int, probe: Any, gap_width: float
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
