"""The demo city: streets, communities, grids and micro-grids inside Weifang's real outlines.

No public polygons exist below the county for 潍坊, so the demo city is generated, with
the real county outlines and the real township codes and names (``boundaries/README.md``):

1. County outlines come from the district file, whose coordinates are GCJ-02; they are
   converted to CGCS2000 first, then worked in metres in their Gauss-Krüger zone.
2. Households are scattered as weighted points: an urban cloud around each county seat
   and villages over the countryside, sized by an approximate table of residents.
3. Each level cuts every area of the level above into children of about equal weight
   (``geogrid.partition``): recursive weighted-median cuts of the area's households give
   one seed per child, and the area is split along the Voronoi edges of those seeds; a
   detached piece of a child joins the neighbour it shares most boundary with, and so
   does a child far lighter than its siblings. Urban grids hold about
   ``households_per_grid`` households, rural ones 54 % of it (the field norm of one grid
   worker per ~1,000 urban or ~600 rural residents, at 2.7 and 3.0 persons a household).
   Some communities get a small dedicated grid (a school, hospital or industrial park),
   and every grid gets 2-6 micro-grids.
4. Those drafts are only approximate. The final shapes come from noding every boundary
   of the finest level together once, snap-rounded to 1 cm, and polygonising: each face
   goes to the draft micro-grid holding it, and every area of every level is the
   coverage union of its faces. So neighbours share every vertex, each level covers its
   parent with no gap or overlap, and every child nests exactly in its parent.

Everything is drawn from ``numpy.random.default_rng`` seeded by ``seed``: the same seed
gives the same city, coordinates included.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm import tqdm

from geogrid import crs
from geogrid.codes import CodeScheme
from geogrid.errors import ConfigError, InputError
from geogrid.partition import Households, cut, exact_coverages, points_in

BOUNDARY_DIR = Path(__file__).resolve().parents[1] / "boundaries"
DISTRICTS_FILE = BOUNDARY_DIR / "weifang_370700_districts_gcj02.geojson"
TOWNSHIPS_FILE = BOUNDARY_DIR / "weifang_townships_nbs2023.csv"
SIZING_FILE = BOUNDARY_DIR / "weifang_demo_sizing_approx.csv"
CITY_CODES = ("3707", "370700")
LEVELS = ("county", "township", "community", "grid", "microgrid")
SNAP_M = 0.01  # the grid final boundaries are snap-rounded to, in metres

_URBAN_PEAK = 12_000  # residents per km² at an urban centre
_VILLAGE_HOUSEHOLDS = 350
_HOUSEHOLDS_PER_POINT = (3, 8)  # each scattered point holds 3-7 households, 5 on average
_MEAN_HOUSEHOLDS_PER_POINT = 5.0
_PERSONS = {True: 2.7, False: 3.0}  # per household, urban and rural
# One grid worker per ~1,000 urban or ~600 rural residents: a rural grid holds this share
# of an urban grid's households.
_RURAL_GRID_SHARE = (600 / _PERSONS[False]) / (1000 / _PERSONS[True])
_GRIDS_PER_COMMUNITY = {True: 10, False: 5}
_DEDICATED_CHANCE = {True: 0.3, False: 0.15}  # per community
_FACILITIES = {
    True: (
        ("实验小学", "school"),
        ("第一中学", "school"),
        ("第二中学", "school"),
        ("实验中学", "school"),
        ("外国语学校", "school"),
        ("职业学校", "school"),
        ("人民医院", "hospital"),
        ("中医院", "hospital"),
        ("妇幼保健院", "hospital"),
    ),
    False: (
        ("工业园", "industrial_park"),
        ("食品工业园", "industrial_park"),
        ("物流园", "industrial_park"),
        ("中心小学", "school"),
        ("中学", "school"),
        ("卫生院", "hospital"),
    ),
}
_SETTING = {True: "urban", False: "rural"}
_CAMPUS_SIZE_M = {
    "school": ((160, 260), (140, 220)),
    "hospital": ((140, 220), (120, 200)),
    "industrial_park": ((500, 900), (400, 700)),
}
_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马胡朱郭高林罗郑梁谢宋唐许韩冯"
    + "邓曹彭于董袁潘蒋蔡杜程魏丁姜崔谭邱郝邵孟秦"
)
_VILLAGE_PREFIXES = ("", "", "", "东", "西", "南", "北", "前", "后", "大", "小", "上", "下", "新")
_VILLAGE_SUFFIXES = (
    "家庄",
    "家",
    "庄",
    "家营",
    "官庄",
    "家屯",
    "家埠",
    "家疃",
    "家洼",
    "家岭",
    "家河",
    "家店子",
    "家楼",
    "家沟",
    "家坡",
    "家寨",
)


@dataclass
class _County:
    code: str
    name: str
    outline: shapely.Geometry  # metres
    seat: tuple[float, float]  # metres
    residents: int
    urban_share: float
    townships: list[tuple[str, str]]  # (code, name), real


@dataclass
class _Level:
    """One level of the city as drafted: approximate shapes in metres and their identity."""

    name: str
    geometry: np.ndarray
    parent: np.ndarray  # row in the level above, -1 at the top
    code: list[str]
    label: list[str]
    kind: list[str]
    urban: np.ndarray
    attributes: list[dict[str, str]]


def build_demo_city(
    *,
    county: str | None = "370705",
    city: str | None = None,
    seed: int = 7,
    scheme: CodeScheme,
    households_per_grid: int = 300,
    microgrids: bool = True,
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """The demo city, one row per area from county to micro-grid, in EPSG:4490.

    ``city`` ("3707") builds all of Weifang and wins over ``county``. The same arguments
    always give the same frame.
    """
    levels = _check_scheme(scheme, microgrids)
    if households_per_grid < 20:
        raise InputError("households_per_grid must be at least 20", field="households_per_grid")
    places = _places(county, city)
    steps = ["outlines", "households", *levels[1:], "final shapes", "table"]
    with tqdm(
        total=len(steps), desc="demo city", unit="step", file=sys.stderr, disable=not progress
    ) as bar:

        def step_done() -> None:
            bar.update(1)
            bar.set_postfix_str(steps[min(bar.n, len(steps) - 1)])

        bar.set_postfix_str(steps[0])
        counties, epsg = _counties(places)
        step_done()
        homes = _scatter_households(counties, seed)
        step_done()
        rng = np.random.default_rng([seed, 0])
        drafts = [_county_level(counties)]
        drafts.append(_township_level(counties, drafts[0], homes, rng))
        step_done()
        drafts.append(_community_level(drafts[1], homes, households_per_grid, rng, scheme))
        step_done()
        drafts.append(_grid_level(drafts[1:3], homes, households_per_grid, rng, scheme))
        step_done()
        if microgrids:
            drafts.append(_microgrid_level(drafts[3], homes, households_per_grid, rng, scheme))
            step_done()
        shapes = exact_coverages(
            [d.geometry for d in drafts], [d.parent for d in drafts[1:]], SNAP_M
        )
        step_done()
        frame = _frame(drafts, shapes, homes, epsg, rng)
        step_done()
    return frame


# -- places and households -------------------------------------------------------------


def _check_scheme(scheme: CodeScheme, microgrids: bool) -> tuple[str, ...]:
    levels = LEVELS if microgrids else LEVELS[:-1]
    if tuple(scheme.level_names[: len(levels)]) != levels or [
        scheme.level(name).length for name in levels[:2]
    ] != [6, 9]:
        raise ConfigError(
            f"the demo city needs a scheme starting county:6,township:9 with levels "
            f"{', '.join(levels)}; got {scheme}",
            field="GEOGRID_CODE_SCHEME",
        )
    return levels


def _places(county: str | None, city: str | None) -> list[str]:
    sizing = _sizing()
    if city is not None:
        if str(city) not in CITY_CODES:
            raise InputError(f"the demo city is Weifang, 3707; not {city!r}", field="city")
        return list(sizing.index)
    if county is None or str(county) not in sizing.index:
        known = ", ".join(f"{code} {name}" for code, name in sizing["name"].items())
        raise InputError(f"no demo county {county!r}; choose one of {known}", field="county")
    return [str(county)]


def _sizing() -> pd.DataFrame:
    return pd.read_csv(
        SIZING_FILE, comment="#", dtype={"county_code": str, "carved_from": str}
    ).set_index("county_code")


def _counties(codes: list[str]) -> tuple[list[_County], int]:
    """The chosen counties in metres, and the EPSG code of the metric CRS used."""
    sizing = _sizing()
    districts = gpd.read_file(DISTRICTS_FILE)
    outline = {str(a): g for a, g in zip(districts["adcode"], districts.geometry, strict=True)}
    seat = {str(a): tuple(c) for a, c in zip(districts["adcode"], districts["center"], strict=True)}
    for code, row in sizing[sizing["carved_from"].notna()].iterrows():
        north = shapely.box(-180.0, row["north_of_lat"], 180.0, 90.0)
        outline[code] = shapely.intersection(outline[row["carved_from"]], north)
        outline[row["carved_from"]] = shapely.difference(outline[row["carved_from"]], north)
        seat[code] = (row["seat_lon"], row["seat_lat"])
    gcj02 = crs.parse_coord_type("gcj02")
    lonlat = crs.geometry_to_storage(np.array([outline[c] for c in codes]), gcj02)
    xmin, ymin, xmax, ymax = shapely.total_bounds(lonlat)
    epsg = crs.metric_crs_for((xmin + xmax) / 2, (ymin + ymax) / 2)
    metric = crs.geometry_to_metric(lonlat, epsg)
    seat_lon, seat_lat = crs.to_storage(*np.array([seat[c] for c in codes]).T, gcj02)
    seat_x, seat_y = crs.to_metric(seat_lon, seat_lat, epsg)
    townships = pd.read_csv(TOWNSHIPS_FILE, dtype=str)
    counties = []
    for i, code in enumerate(codes):
        mine = townships[townships["county_code"] == code].sort_values("code")
        counties.append(
            _County(
                code,
                sizing.loc[code, "name"],
                metric[i],
                (float(seat_x[i]), float(seat_y[i])),
                int(sizing.loc[code, "residents"]),
                float(sizing.loc[code, "urban_share"]),
                list(zip(mine["code"], mine["name"], strict=True)),
            )
        )
    return counties, epsg


def _scatter_households(counties: list[_County], seed: int) -> Households:
    """An urban cloud around each seat and villages elsewhere, in household points."""
    xs, ys, counts, urban, county = [], [], [], [], []
    for i, c in enumerate(counties):
        rng = np.random.default_rng([seed, int(c.code)])
        shapely.prepare(c.outline)
        urban_households = c.residents * c.urban_share / _PERSONS[True]
        sigma = 1000 * math.sqrt(c.residents * c.urban_share / (2 * math.pi * _URBAN_PEAK))
        n = round(urban_households / _MEAN_HOUSEHOLDS_PER_POINT)
        x, y = _urban_cloud(c, n, sigma, rng)
        rural_households = c.residents * (1 - c.urban_share) / _PERSONS[False]
        vx, vy = _villages(c, rural_households, rng)
        for px, py, is_urban in ((x, y, True), (vx, vy, False)):
            xs.append(px)
            ys.append(py)
            counts.append(rng.integers(*_HOUSEHOLDS_PER_POINT, len(px)))
            urban.append(np.full(len(px), is_urban))
            county.append(np.full(len(px), i))
    return Households(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(counts).astype(float),
        np.concatenate(urban),
        np.concatenate(county),
    )


def _urban_cloud(c: _County, n: int, sigma: float, rng: np.random.Generator) -> tuple:
    # A dense core and a wider fringe; points falling outside the county are drawn again.
    xs, ys, have = [], [], 0
    for _ in range(50):
        k = max(2 * (n - have), 64)
        spread = np.where(rng.random(k) < 0.65, sigma, 2.2 * sigma)
        x = c.seat[0] + rng.normal(0, 1, k) * spread
        y = c.seat[1] + rng.normal(0, 1, k) * spread
        inside = shapely.contains_xy(c.outline, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
        if have >= n:
            break
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _villages(c: _County, households: float, rng: np.random.Generator) -> tuple:
    # Villages of lognormal size spread over the county, each a small cloud of points;
    # a point falling outside the county is drawn again around its village.
    n = max(1, round(households / _VILLAGE_HOUSEHOLDS))
    sizes = rng.lognormal(0.0, 0.6, n)
    sizes *= households / sizes.sum()
    cx, cy = points_in(c.outline, n, rng)
    per_village = np.maximum(1, np.round(sizes / _MEAN_HOUSEHOLDS_PER_POINT)).astype(int)
    spread = np.repeat(50 + 8 * np.sqrt(sizes), per_village)
    cx, cy = np.repeat(cx, per_village), np.repeat(cy, per_village)
    x, y = np.empty(len(spread)), np.empty(len(spread))
    todo = np.arange(len(spread))
    for _ in range(5):
        x[todo] = cx[todo] + rng.normal(0, 1, len(todo)) * spread[todo]
        y[todo] = cy[todo] + rng.normal(0, 1, len(todo)) * spread[todo]
        todo = todo[~shapely.contains_xy(c.outline, x[todo], y[todo])]
    inside = np.ones(len(x), dtype=bool)
    inside[todo] = False
    return x[inside], y[inside]


# -- the levels ------------------------------------------------------------------------


def _county_level(counties: list[_County]) -> _Level:
    n = len(counties)
    return _Level(
        "county",
        np.array([c.outline for c in counties]),
        np.full(n, -1),
        [c.code for c in counties],
        [c.name for c in counties],
        ["comprehensive"] * n,
        np.ones(n, dtype=bool),
        [{} for _ in range(n)],
    )


def _township_level(
    counties: list[_County], above: _Level, homes: Households, rng: np.random.Generator
) -> _Level:
    """The real townships: streets near the seat, towns and zones farther out."""
    streets = [[t for t in c.townships if t[1].endswith("街道")] for c in counties]
    towns = [[t for t in c.townships if not t[1].endswith("街道")] for c in counties]
    weight = homes.count.copy()
    urban_total = np.bincount(homes.cell, homes.count * homes.urban, len(counties))
    rural_total = np.bincount(homes.cell, homes.count * ~homes.urban, len(counties))
    for i, (s, t) in enumerate(zip(map(len, streets), map(len, towns), strict=True)):
        # Give the urban cloud as many townships as there are streets.
        if s and t and urban_total[i] and rural_total[i]:
            mine = homes.cell == i
            share = np.where(homes.urban, s / urban_total[i], t / rural_total[i])
            weight[mine] = homes.count[mine] * share[mine]
    counts = np.array([len(c.townships) for c in counties])
    pieces, region, _ = cut(above.geometry, counts, homes, weight, rng, keep=counts)
    probe = shapely.point_on_surface(pieces)
    code, label = [""] * len(pieces), [""] * len(pieces)
    for i, c in enumerate(counties):
        rows = np.flatnonzero(region == i)
        seat = shapely.Point(c.seat)
        rows = rows[np.argsort(shapely.distance(probe[rows], seat), kind="stable")]
        order = [streets[i][k] for k in rng.permutation(len(streets[i]))]
        order += [towns[i][k] for k in rng.permutation(len(towns[i]))]
        for row, (township_code, name) in zip(rows, order, strict=True):
            code[row], label[row] = township_code, name
    n = len(pieces)
    return _Level(
        "township",
        pieces,
        region,
        code,
        label,
        ["comprehensive"] * n,
        np.ones(n, dtype=bool),
        [{} for _ in range(n)],
    )


def _grid_cost(homes: Households, households_per_grid: int) -> np.ndarray:
    """Each point's share of a grid: rural grids hold fewer households."""
    return homes.count / (households_per_grid * np.where(homes.urban, 1.0, _RURAL_GRID_SHARE))


def _community_level(
    above: _Level,
    homes: Households,
    households_per_grid: int,
    rng: np.random.Generator,
    scheme: CodeScheme,
) -> _Level:
    """Urban communities (社区, 001...) and villages (村, 201...) of about equal grid counts."""
    grid_cost = _grid_cost(homes, households_per_grid)
    weight = grid_cost / np.where(
        homes.urban, _GRIDS_PER_COMMUNITY[True], _GRIDS_PER_COMMUNITY[False]
    )
    counts = np.maximum(1, np.round(homes.sums(weight, len(above.code)))).astype(int)
    pieces, region, seq = cut(above.geometry, counts, homes, weight, rng)
    urban_cost = homes.sums(grid_cost * homes.urban, len(pieces))
    urban = (urban_cost >= homes.sums(grid_cost * ~homes.urban, len(pieces))) & (urban_cost > 0)
    code, label, used = [], [], set()
    numbers: dict[tuple[int, bool], int] = {}
    for row in range(len(pieces)):
        parent, is_urban = int(region[row]), bool(urban[row])
        number = numbers[parent, is_urban] = numbers.get((parent, is_urban), 0) + 1
        if is_urban:
            label.append(f"{_short(above.label[parent])}第{number}社区")
        else:
            label.append(_village_name(used, rng))
        code.append(scheme.child_code(above.code[parent], number + (0 if is_urban else 200)))
    n = len(pieces)
    attributes = [{"setting": _SETTING[bool(u)]} for u in urban]
    return _Level(
        "community", pieces, region, code, label, ["comprehensive"] * n, urban, attributes
    )


def _grid_level(
    upper: list[_Level],
    homes: Households,
    households_per_grid: int,
    rng: np.random.Generator,
    scheme: CodeScheme,
) -> _Level:
    """Comprehensive grids of about equal households, and a few dedicated ones."""
    townships, above = upper
    campuses = _campuses(townships, above, homes, rng)
    regions = above.geometry.copy()
    with_campus = np.array([row for row in sorted(campuses)], dtype=int)
    if len(with_campus):
        outlines = np.array([campuses[row][0] for row in with_campus])
        regions[with_campus] = shapely.difference(regions[with_campus], outlines)
    grid_cost = _grid_cost(homes, households_per_grid)
    counts = np.maximum(1, np.round(homes.sums(grid_cost, len(regions)))).astype(int)
    pieces, region, seq = cut(regions, counts, homes, grid_cost, rng)
    counts = np.bincount(region, minlength=len(regions))
    code, label, kind, attributes = [], [], [], []
    for row in range(len(pieces)):
        parent = int(region[row])
        code.append(scheme.child_code(above.code[parent], int(seq[row])))
        label.append(f"{above.label[parent]}第{seq[row]}网格")
        kind.append("comprehensive")
        attributes.append(dict(above.attributes[parent]))
    for row in with_campus:
        outline, name, facility = campuses[row]
        code.append(scheme.child_code(above.code[row], int(counts[row]) + 1))
        label.append(name)
        kind.append("dedicated")
        attributes.append({**above.attributes[row], "facility": facility})
    geometry = np.concatenate([pieces, outlines]) if len(with_campus) else pieces
    parent = np.concatenate([region, with_campus]).astype(int)
    return _Level("grid", geometry, parent, code, label, kind, above.urban[parent], attributes)


def _microgrid_level(
    above: _Level,
    homes: Households,
    households_per_grid: int,
    rng: np.random.Generator,
    scheme: CodeScheme,
) -> _Level:
    """2-6 micro-grids per grid, more where more households live."""
    households = homes.sums(homes.count, len(above.code))
    wanted = households / (households_per_grid / 5) + rng.normal(0, 0.6, len(households))
    counts = np.clip(np.round(wanted), 2, 6).astype(int)
    dedicated = np.array(above.kind) == "dedicated"
    counts[dedicated] = rng.integers(2, 4, int(dedicated.sum()))
    keep = np.minimum(counts, 2)
    pieces, region, seq = cut(above.geometry, counts, homes, homes.count, rng, keep=keep)
    code = [scheme.child_code(above.code[p], int(s)) for p, s in zip(region, seq, strict=True)]
    label = [f"{above.label[p]}第{s}微网格" for p, s in zip(region, seq, strict=True)]
    kind = [above.kind[p] for p in region]
    attributes = [dict(above.attributes[p]) for p in region]
    return _Level("microgrid", pieces, region, code, label, kind, above.urban[region], attributes)


def _campuses(
    townships: _Level, communities: _Level, homes: Households, rng: np.random.Generator
) -> dict[int, tuple[shapely.Geometry, str, str]]:
    """A dedicated grid (outline, name, facility) for some communities, displacing households."""
    campuses: dict[int, tuple[shapely.Geometry, str, str]] = {}
    used: dict[int, set[str]] = {}
    chance = np.where(communities.urban, _DEDICATED_CHANCE[True], _DEDICATED_CHANCE[False])
    for row in np.flatnonzero(rng.random(len(communities.code)) < chance):
        township = int(communities.parent[row])
        taken = used.setdefault(township, set())
        facilities = _FACILITIES[bool(communities.urban[row])]
        fresh = [f for f in facilities if _short(townships.label[township]) + f[0] not in taken]
        facility, size = (fresh or facilities)[rng.integers(len(fresh or facilities))]
        mine = np.flatnonzero(homes.cell == row)
        outline = _place_campus(communities.geometry[row], homes, mine, size, rng)
        if outline is None:
            continue
        homes.cell[mine[shapely.contains_xy(outline, homes.x[mine], homes.y[mine])]] = -1
        name, k = _short(townships.label[township]) + facility, 1
        while name in taken:
            k += 1
            name = f"{_short(townships.label[township])}{k}号{facility}"
        taken.add(name)
        campuses[int(row)] = (outline, f"{name}专属网格", size)
    return campuses


def _place_campus(
    region: shapely.Geometry,
    homes: Households,
    mine: np.ndarray,
    size: str,
    rng: np.random.Generator,
) -> shapely.Geometry | None:
    # A rotated rectangle well inside the community, where it displaces fewest households.
    (wmin, wmax), (hmin, hmax) = _CAMPUS_SIZE_M[size]
    width, height, angle = rng.uniform(wmin, wmax), rng.uniform(hmin, hmax), rng.uniform(0, np.pi)
    inner = shapely.buffer(region, -(math.hypot(width, height) / 2 + 30))
    if shapely.area(inner) < 1.0:
        return None
    cx, cy = points_in(inner, 8, rng)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [width / 2, height / 2]
    turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    candidates = [shapely.Polygon(corners @ turn + [x, y]) for x, y in zip(cx, cy, strict=True)]
    displaced = [shapely.contains_xy(c, homes.x[mine], homes.y[mine]).sum() for c in candidates]
    return candidates[int(np.argmin(displaced))]


def _short(name: str) -> str:
    """A township's name without its kind: 东关街道 -> 东关."""
    for suffix in ("街道", "管理委员会", "管委会", "镇"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _village_name(used: set[str], rng: np.random.Generator) -> str:
    while True:
        name = (
            _VILLAGE_PREFIXES[rng.integers(len(_VILLAGE_PREFIXES))]
            + _SURNAMES[rng.integers(len(_SURNAMES))]
            + _VILLAGE_SUFFIXES[rng.integers(len(_VILLAGE_SUFFIXES))]
            + "村"
        )
        if name not in used:
            used.add(name)
            return name


def _frame(
    drafts: list[_Level],
    shapes: list[np.ndarray],
    homes: Households,
    epsg: int,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """One row per area in EPSG:4490; households and population add up level by level."""
    finest = drafts[-1]
    households = homes.sums(homes.count, len(finest.code))
    persons = np.array([_PERSONS[bool(u)] for u in finest.urban])
    persons += rng.uniform(-0.15, 0.15, len(persons))
    population = np.round(households * persons)
    counts = [(households, population)]
    for level, below in zip(drafts[-2::-1], drafts[:0:-1], strict=True):
        n = len(level.code)
        counts.insert(0, tuple(np.bincount(below.parent, c, minlength=n) for c in counts[0]))
    metric = crs.parse_coord_type(f"EPSG:{epsg}")
    frames = []
    for level, geoms, (hh, pop) in zip(drafts, shapes, counts, strict=True):
        parents = None if level.name == "county" else drafts[LEVELS.index(level.name) - 1]
        frames.append(
            pd.DataFrame(
                {
                    "code": level.code,
                    "level": level.name,
                    "parent_code": [parents.code[p] for p in level.parent] if parents else None,
                    "name": level.label,
                    "kind": level.kind,
                    "households": hh.round().astype(np.int64),
                    "population": pop.round().astype(np.int64),
                    "attributes": level.attributes,
                    "geometry": crs.geometry_to_storage(geoms, metric),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True).sort_values("code", ignore_index=True)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=f"EPSG:{crs.STORAGE_EPSG}")
