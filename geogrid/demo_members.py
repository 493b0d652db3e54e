"""Who is in the demo alliance: organisations with made-up names, team sizes, members.

Organisation names are generic words put together (奎文恒信物业服务有限公司, 奎文和顺苑小区
门卫); any likeness to a real firm is chance. An organisation runs a number of teams that
depends on its type (:data:`TEAMS_PER_ORGANISATION`: a sanitation company many, a
company's security one). Every team has at least one member, its leader; a county's
other members are spread over its teams, more to sanitation and volunteer teams, fewer to
compound guards and shops. Members have common surnames and given names, unique within
their team, and phones that are masked from the start (138****1234). Pure functions
drawing from the generator they are given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: How many teams an organisation of each type runs.
TEAMS_PER_ORGANISATION = {
    "property_management": 2.5, "compound_guard": 1.5, "shop": 1.5, "sanitation": 6.0,
    "taxi": 5.0, "company_security": 1.2, "parks": 3.0, "volunteer": 3.0, "police": 2.0,
}  # fmt: skip
_NAMES = {
    "property_management": ("{c}{w}物业服务有限公司", "{c}{w}物业管理有限公司"),
    "compound_guard": ("{c}{w}苑小区门卫", "{c}{w}花园小区门卫", "{c}{w}家园小区门卫"),
    "shop": ("{c}{w}路沿街商户联防队", "{c}{w}街商户联防队"),
    "sanitation": ("{c}{w}环境卫生服务有限公司", "{c}{w}环卫保洁有限公司"),
    "taxi": ("{c}{w}出租汽车有限公司",),
    "company_security": ("{c}{w}保安服务有限公司",),
    "parks": ("{c}{w}园林绿化有限公司", "{c}{w}公园管理处"),
    "volunteer": ("{c}{w}平安志愿服务队",),
    "police": ("{c}公安分局{w}辅警中队",),
}
#: The word for each type in a team's name (东关第3社区门卫巡防队).
TEAM_WORDS = {
    "property_management": "物业", "compound_guard": "门卫", "shop": "商户", "sanitation": "环卫",
    "taxi": "的哥", "company_security": "保安", "parks": "园林", "volunteer": "志愿",
    "police": "辅警",
}  # fmt: skip
_WORD_FIRST, _WORD_SECOND = (
    "安恒嘉和鸿金瑞盛泰万祥鑫宜永裕兆正众德福",
    "居信禾顺鼎丰华隆源阳诚润泽康宁昌达兴旺庆",
)
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马胡朱郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾于董袁潘"
_GIVEN = "建国秀英桂兰志强丽伟芳敏静磊军洋勇艳杰娟涛明超霞平刚华玉红飞鹏琳辉斌宇浩凯健晨波宁"
_PHONE_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152",
                   "155", "156", "158", "159", "176", "177", "180", "182", "185", "186", "187",
                   "188", "189", "199")  # fmt: skip
#: How much more than one person a team of each type tends to have.
_MEMBER_WEIGHT = {"sanitation": 1.5, "volunteer": 1.5, "taxi": 1.2, "compound_guard": 0.8,
                  "shop": 0.8}  # fmt: skip


def short_name(name: str, suffixes: tuple[str, ...]) -> str:
    """A place name without 潍坊 and its first matching suffix: 东关街道 -> 东关."""
    name = name.removeprefix("潍坊")
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name.removesuffix(suffix)
    return name


def organisations(
    teams: Sequence[tuple[str, str]], county_names: Mapping[str, str], rng: np.random.Generator
) -> tuple[list[dict[str, str]], list[int]]:
    """Organisation rows for teams given as (county, type); the row of each team's."""
    by_county_kind: dict[tuple[str, str], list[int]] = {}
    for k, county_kind in enumerate(teams):
        by_county_kind.setdefault(county_kind, []).append(k)
    rows: list[dict] = []
    organisation_of = [0] * len(teams)
    for (county, kind), members in sorted(by_county_kind.items()):
        place = short_name(county_names.get(county, county), ("经济技术开发区", "区", "县", "市"))
        count = math.ceil(len(members) / TEAMS_PER_ORGANISATION[kind])
        first = len(rows)
        rows += [
            {"name": name, "kind": kind, "county_code": county}
            for name in _organisation_names(kind, place, count, rng)
        ]
        # Shuffled round robin: every organisation runs at least one team.
        for k, team in enumerate(rng.permutation(members)):
            organisation_of[int(team)] = first + k % count
    return rows, organisation_of


def _organisation_names(kind: str, place: str, count: int, rng: np.random.Generator) -> list[str]:
    words = [a + b for a in _WORD_FIRST for b in _WORD_SECOND if a != b]
    names = [t.format(c=place, w=w) for w in words for t in _NAMES[kind]]
    picked = [names[i] for i in rng.permutation(len(names))[:count]]
    # More organisations than names (not at Weifang's scale): number the rest.
    return picked + [
        f"{names[i % len(names)]}{i // len(names) + 1}" for i in range(len(picked), count)
    ]


def team_sizes(
    teams: Sequence[tuple[str, str]], members: Mapping[str, int], rng: np.random.Generator
) -> list[int]:
    """People in each team given as (county, type): one each, the county's others by type."""
    sizes = [1] * len(teams)
    for county, total in sorted(members.items()):
        mine = [k for k, (team_county, _) in enumerate(teams) if team_county == county]
        weights = np.array([_MEMBER_WEIGHT.get(teams[k][1], 1.0) for k in mine])
        if not mine:
            continue
        extra = rng.multinomial(max(0, total - len(mine)), weights / weights.sum())
        for k, more in zip(mine, extra, strict=True):
            sizes[k] += int(more)
    return sizes


def members(team_id: int, size: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """A team's members, the leader first: names unique within the team, phones masked."""
    names: list[str] = []
    while len(names) < size:  # members are told apart by name within their team
        picks = rng.integers(0, len(_GIVEN), int(rng.integers(1, 3)))
        name = _SURNAMES[rng.integers(0, len(_SURNAMES))] + "".join(_GIVEN[i] for i in picks)
        names += [] if name in names else [name]
    return [
        {
            "name": name,
            "team_id": team_id,
            "phone_masked": f"{_PHONE_PREFIXES[rng.integers(0, len(_PHONE_PREFIXES))]}****"
            f"{int(rng.integers(0, 10_000)):04d}",
            "is_leader": k == 0,
        }
        for k, name in enumerate(names)
    ]
