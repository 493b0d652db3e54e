"""Demo patrol beats: each team's contiguous handful of grids and the shifts it patrols them in.

Teams are placed per township (a team belongs to its township's station family): the
township's grids are cut into as many groups as it has teams, grown over shared
boundaries (or corners) from well-spread seeds, the smallest group growing first, so a
team's grids are contiguous and about equal in number (about 2.5 at the field's 0.40
teams a grid). Each team gets an organisation type (:data:`KIND_MIX`) and a shift
programme that suits the type (:data:`PROGRAMMES`, :data:`PROGRAMME_WEIGHTS`).

Then a few grids are left to nobody (the grid a territory grew last, on its edge) and a
few are also given to a neighbouring team whose programme has no shift at the same time
of the week as the first team's: the same grid, two teams, different shifts. Pure
functions over a GeoDataFrame of grids; nothing here touches the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from geogrid.shifts import parse_weekdays

UNASSIGNED_SHARE, SHARED_SHARE = 0.03, 0.02
#: Share of teams of each organisation type.
KIND_MIX = {
    "property_management": 0.24, "compound_guard": 0.22, "shop": 0.14, "sanitation": 0.10,
    "taxi": 0.08, "company_security": 0.07, "parks": 0.06, "volunteer": 0.05, "police": 0.04,
}  # fmt: skip
#: Shift programmes: (days, starts, ends) windows a team patrols all its grids in.
PROGRAMMES = {
    "day": (("mon-fri", "08:00", "12:00"), ("mon-fri", "14:00", "18:00")),
    "morning": (("daily", "08:00", "12:00"),),
    "afternoon": (("daily", "14:00", "18:00"),),
    "evening": (("daily", "19:00", "22:00"),),
    "weekend": (("sat,sun", "08:00", "12:00"), ("sat,sun", "14:00", "18:00")),
    "evening_weekend": (("mon-fri", "19:00", "22:00"), ("sat,sun", "08:00", "12:00")),
    "night": (("fri,sat", "22:00", "02:00"),),
}
#: Weights of the programmes above (in order) for each organisation type.
PROGRAMME_WEIGHTS = {
    "property_management": (3, 2, 2, 2, 1, 1, 0), "compound_guard": (2, 2, 2, 3, 1, 1, 1),
    "shop": (1, 2, 2, 3, 1, 1, 0), "sanitation": (2, 3, 2, 0, 1, 0, 0),
    "taxi": (0, 0, 1, 3, 0, 1, 3), "company_security": (2, 1, 1, 2, 0, 1, 2),
    "parks": (2, 2, 2, 1, 2, 0, 0), "volunteer": (0, 1, 1, 2, 3, 3, 0),
    "police": (0, 0, 1, 3, 0, 1, 3),
}  # fmt: skip
_WEEK_MINUTES = 7 * 1440


@dataclass(eq=False)  # teams are told apart by identity, not by value
class PlannedTeam:
    """A team as planned: its township, grids, type and programme; then its stored identity."""

    township: str
    grids: list[str]  # its own territory, in the order it grew
    kind: str = ""
    programme: str = ""
    extra: list[str] = field(default_factory=list)  # a neighbour's grid, on other shifts
    station: str = ""
    mark: str = ""
    id: int = 0
    member_ids: list[int] = field(default_factory=list)


@dataclass
class Beats:
    """The planned teams, the grids left to nobody and those shared by two teams."""

    teams: list[PlannedTeam]
    unassigned: list[str]
    shared: list[str]


def plan_beats(
    grids: gpd.GeoDataFrame, teams_per_county: Mapping[str, int], rng: np.random.Generator
) -> Beats:
    """Teams per township in proportion to its grids, each a territory, a type, a programme.

    ``grids`` has columns code, township, county and geometry, sorted by code.
    """
    neighbours = _neighbours(grids)
    xy = _local_xy(grids)
    codes, townships = grids["code"].to_numpy(), grids["township"].to_numpy()
    teams = []
    for county, in_county in grids.groupby("county", sort=True):
        per_township = in_county.groupby("township", sort=True).size()
        counts = _apportion(teams_per_county[county], per_township.to_numpy())
        for township, n in zip(per_township.index, counts, strict=True):
            cells = np.flatnonzero(townships == township)
            for territory in _territories(cells, min(int(n), len(cells)), neighbours, xy, rng):
                teams.append(PlannedTeam(township, [str(codes[c]) for c in territory]))
    kinds, mix = list(KIND_MIX), np.array(list(KIND_MIX.values()))
    for team in teams:
        team.kind = str(rng.choice(kinds, p=mix / mix.sum()))
        weights = np.array(PROGRAMME_WEIGHTS[team.kind], dtype=float)
        team.programme = str(rng.choice(list(PROGRAMMES), p=weights / weights.sum()))
    unassigned = _leave(teams, len(grids), rng)
    return Beats(teams, unassigned, _share(teams, codes, neighbours, rng))


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` by largest remainders, at least 1 each."""
    share = total * weights / weights.sum()
    counts = np.maximum(1, np.floor(share)).astype(int)
    left = total - int(counts.sum())
    if left > 0:
        counts[np.argsort(-(share - np.floor(share)), kind="stable")[:left]] += 1
    return counts


def _neighbours(grids: gpd.GeoDataFrame) -> list[set[int]]:
    """For each grid, the grids of its township it shares a boundary (or a corner) with."""
    geoms = np.asarray(grids.geometry.values, dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    township = grids["township"].to_numpy()
    keep = (left != right) & (township[left] == township[right])
    neighbours: list[set[int]] = [set() for _ in range(len(grids))]
    for a, b in zip(left[keep], right[keep], strict=True):
        neighbours[a].add(int(b))
    return neighbours


def _local_xy(grids: gpd.GeoDataFrame) -> np.ndarray:
    """Representative points in metres (equirectangular), for distances within a city."""
    points = shapely.point_on_surface(np.asarray(grids.geometry.values, dtype=object))
    lon, lat = shapely.get_x(points), shapely.get_y(points)
    scale = 111_320.0 * math.cos(math.radians(float(np.mean(lat))))
    return np.column_stack([lon * scale, lat * 110_574.0])


def _territories(
    cells: np.ndarray, n: int, neighbours: list[set[int]], xy: np.ndarray, rng: np.random.Generator
) -> list[list[int]]:
    """``cells`` cut into ``n`` contiguous groups grown over shared boundaries, smallest first."""
    seeds = [int(rng.choice(cells))]
    nearest = np.linalg.norm(xy[cells] - xy[seeds[0]], axis=1)
    while len(seeds) < n:  # farthest-point seeds spread the teams over the township
        seeds.append(int(cells[np.argmax(nearest)]))
        nearest = np.minimum(nearest, np.linalg.norm(xy[cells] - xy[seeds[-1]], axis=1))
    groups = [[seed] for seed in seeds]
    free = set(map(int, cells)) - set(seeds)
    frontier = [neighbours[seed] & free for seed in seeds]
    while free:
        open_groups = [k for k in range(n) if frontier[k] & free]
        if not open_groups:
            break
        k = min(open_groups, key=lambda g: (len(groups[g]), g))
        distance = {c: float(np.linalg.norm(xy[c] - xy[seeds[k]])) for c in frontier[k] & free}
        chosen = min(distance, key=lambda c: (distance[c], c))
        groups[k].append(chosen)
        free.discard(chosen)
        frontier[k] |= neighbours[chosen] & free
    for cell in sorted(free):  # islands the growth could not reach join the nearest seed
        k = int(np.argmin(np.linalg.norm(xy[seeds] - xy[cell], axis=1)))
        groups[k].append(cell)
    return groups


def _leave(teams: list[PlannedTeam], grids: int, rng: np.random.Generator) -> list[str]:
    """Take a grid from a few teams of two or more: the grid grown last, on the edge."""
    spare = [team for team in teams if len(team.grids) >= 2]
    chosen = rng.permutation(len(spare))[: max(1, round(UNASSIGNED_SHARE * grids))]
    return sorted(spare[k].grids.pop() for k in chosen)


def _share(
    teams: list[PlannedTeam],
    codes: np.ndarray,
    neighbours: list[set[int]],
    rng: np.random.Generator,
) -> list[str]:
    """Give a few grids also to a neighbouring team whose shifts never meet the owner's."""
    owner = {grid: team for team in teams for grid in team.grids}
    shared: list[str] = []
    wanted = max(1, round(SHARED_SHARE * len(codes)))
    for i in rng.permutation(len(codes)):
        first = owner.get(str(codes[i]))
        if len(shared) >= wanted or first is None:
            continue
        others = {owner.get(str(codes[j])) for j in neighbours[i]} - {None, first}
        for second in sorted(others, key=lambda team: team.grids):  # type: ignore[union-attr]
            if not second.extra and not _overlap(first.programme, second.programme):
                second.extra.append(str(codes[i]))
                shared.append(str(codes[i]))
                break
    return sorted(shared)


def _overlap(a: str, b: str) -> bool:
    """Whether two programmes have shifts at the same time of the week."""
    spans_a, spans_b = _week_spans(a), _week_spans(b)
    return any(s1 < e2 and s2 < e1 for s1, e1 in spans_a for s2, e2 in spans_b)


def _week_spans(programme: str) -> list[tuple[int, int]]:
    spans = []
    for days, starts, ends in PROGRAMMES[programme]:
        start, end = (int(h) * 60 + int(m) for h, m in (starts.split(":"), ends.split(":")))
        length = (end - start) % 1440
        for day in range(7):
            if parse_weekdays(days) & (1 << day):
                begin = day * 1440 + start
                spans.append((begin, begin + length))
                spans.append((begin - _WEEK_MINUTES, begin + length - _WEEK_MINUTES))
    return spans
