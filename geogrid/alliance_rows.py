"""What the alliance import files look like, and how a row's cells become values.

:data:`TEMPLATES` names each file's columns and the Chinese aliases accepted; column
names are matched without case. Each ``*_values`` function reads one row's cells (text,
or None when empty) into the values stored, or raises :class:`RowProblems` listing every
field at fault, not only the first. Phones are masked here, so the full number never
travels further than this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from geogrid.alliance_values import (
    check_capacity,
    clean_text,
    mask_phone,
    normalise_mark,
    normalise_station_code,
    organisation_kind,
    required_text,
    station_kind,
    storage_point,
)
from geogrid.codes import normalise_code
from geogrid.crs import CoordType
from geogrid.errors import FileFormatError, GeogridError, InputError


@dataclass(frozen=True)
class Column:
    """A column of an import file: its name, the other names accepted, whether required."""

    name: str
    aliases: tuple[str, ...]
    required: bool
    help: str


#: The columns of each import file, with the Chinese names accepted for them.
TEMPLATES: dict[str, tuple[Column, ...]] = {
    "organisations": (
        Column("name", ("名称", "单位名称", "组织名称"), True, "the organisation's name"),
        Column("kind", ("类型", "单位类型"), True, "property_management or 物业服务企业, ..."),
        Column("county_code", ("区县", "区县代码", "county"), False, "e.g. 370705"),
    ),
    "stations": (
        Column("code", ("编码", "代码", "派出所编码"), True, "e.g. 370705-PS03"),
        Column("name", ("名称", "派出所名称"), True, "e.g. 东关派出所"),
        Column("kind", ("类型",), False, "station/派出所 or community_office/警务室"),
        Column("parent_code", ("parent", "上级", "所属派出所"), False, "an office's station"),
        Column("lon", ("经度", "longitude"), True, "in the declared coordinate type"),
        Column("lat", ("纬度", "latitude"), True, "in the declared coordinate type"),
        Column("grids", ("网格", "负责网格", "网格编码"), False, "codes separated by ; 、 or ,"),
    ),
    "teams": (
        Column("mark", ("统一标识编号", "标识编号", "编号"), True, "PA-370705-0042"),
        Column("name", ("名称", "队名", "队伍名称"), True, "e.g. 东关物业巡防队"),
        Column("station_code", ("station", "派出所", "所属派出所"), True, "a station's code"),
        Column("organisation", ("单位", "所属单位", "组织"), False, "an organisation's name"),
        Column("base_lon", ("驻点经度",), False, "where the team starts from"),
        Column("base_lat", ("驻点纬度",), False, "where the team starts from"),
        Column("capacity", ("能力", "承载量"), False, "weekly workload units, default 1"),
        Column("active", ("在用", "启用"), False, "是/否, yes/no, 1/0"),
    ),
    "members": (
        Column("name", ("姓名",), True, "the member's name"),
        Column("team", ("队伍", "队伍编号", "统一标识编号", "team_mark"), False, "a team's mark"),
        Column("organisation", ("单位", "所属单位", "组织"), False, "an organisation's name"),
        Column("phone", ("电话", "手机", "手机号", "联系电话"), False, "masked on import"),
        Column("leader", ("队长", "是否队长", "负责人"), False, "是/否, yes/no, 1/0"),
        Column("user_name", ("账号", "登录名"), False, "the member's login, if any"),
        Column("active", ("在用", "在岗"), False, "是/否, yes/no, 1/0"),
    ),
}

_TRUE = {"1", "y", "yes", "true", "是", "√", "✓", "在岗", "启用"}
_FALSE = {"0", "n", "no", "false", "否", "×", "✗", "停用", "离职"}
_GRID_SEPARATORS = re.compile(r"[;；、,，\s]+")


def column_names(header: list[str], columns: Iterable[Column], file: str) -> dict[str, str]:
    """The file's column for each template column, found by name or alias, without case."""
    found: dict[str, str] = {}
    for column in columns:
        accepted = {column.name.lower(), *(alias.lower() for alias in column.aliases)}
        matches = [name for name in header if name.strip().lower() in accepted]
        if len(matches) > 1:
            raise FileFormatError(
                f"{file}: columns {', '.join(matches)} all mean {column.name}; keep one",
                field=column.name,
            )
        if matches:
            found[column.name] = matches[0]
        elif column.required:
            names = " / ".join((column.name, *column.aliases))
            raise FileFormatError(
                f"{file} has no column {names}; it has {', '.join(header)}", field=column.name
            )
    return found


def cell(value: Any) -> str | None:
    """A cell as collapsed text, None when empty."""
    text = clean_text(value) if value is not None and value == value else ""
    return text or None


class RowProblems(Exception):
    """Every problem of one row, as (field, message) pairs."""

    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


class _Parse:
    """Parses a row's fields one by one, collecting every problem rather than the first."""

    def __init__(self, given: dict[str, Any]) -> None:
        self.given = given
        self.values: dict[str, Any] = {}
        self.problems: list[tuple[str | None, str]] = []

    def __call__(self, name: str, parse: Callable[[Any], Any], *, into: str | None = None) -> None:
        try:
            value = parse(self.given.get(name))
        except GeogridError as exc:
            self.problems.append((exc.field or name, exc.message))
            return
        if value is not None:
            self.values[into or name] = value

    def done(self) -> dict[str, Any]:
        if self.problems:
            raise RowProblems(self.problems)
        return self.values


def _optional(parse: Callable[..., Any], **options: Any) -> Callable[[Any], Any]:
    return lambda value: parse(value, **options) if value is not None else None


def _flag(value: Any, *, field: str) -> bool:
    text = clean_text(value).lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InputError(f"{field} {value!r} is not yes or no (是/否, 1/0)", field=field)


def organisation_values(given: dict[str, Any]) -> dict[str, Any]:
    """The values of an organisations file row; RowProblems listing each bad field."""
    parse = _Parse(given)
    parse("name", lambda v: required_text(v, field="name"))
    parse("kind", lambda v: organisation_kind(v))
    parse("county_code", _optional(normalise_code, field="county_code"))
    return parse.done()


def station_values(given: dict[str, Any], coord_type: CoordType) -> dict[str, Any]:
    """The values of a stations file row; RowProblems listing each bad field."""
    parse = _Parse(given)
    parse("code", lambda v: normalise_station_code(v))
    parse("name", lambda v: required_text(v, field="name"))
    parse("parent_code", _optional(normalise_station_code, field="parent_code"))
    # An office names its station, so a row with a parent and no kind is an office.
    default_kind = "community_office" if given.get("parent_code") else "station"
    parse("kind", lambda v: station_kind(v or default_kind))
    parse(
        "lon", lambda _: storage_point(given.get("lon"), given.get("lat"), coord_type), into="geom"
    )
    parse("grids", _grid_list)
    values = parse.done()
    values.setdefault("parent_code", None)
    values.setdefault("grids", None)
    return values


def _grid_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [normalise_code(code, field="grids") for code in _GRID_SEPARATORS.split(value) if code]


def team_values(given: dict[str, Any], coord_type: CoordType | None) -> dict[str, Any]:
    """The values of a teams file row; RowProblems listing each bad field."""
    parse = _Parse(given)
    parse("mark", lambda v: normalise_mark(v))
    parse("name", lambda v: required_text(v, field="name"))
    parse("station_code", lambda v: normalise_station_code(v, field="station_code"))
    parse("organisation", _optional(required_text, field="organisation"))
    parse("capacity", _optional(check_capacity))
    parse("active", _optional(_flag, field="active"))
    if given.get("base_lon") is not None or given.get("base_lat") is not None:
        parse("base_lon", lambda _: _base(given, coord_type), into="base")
    return parse.done()


def _base(given: dict[str, Any], coord_type: CoordType | None) -> tuple[float, float]:
    if coord_type is None:
        raise InputError("a base point needs the file's coordinate type (--crs)", field="crs")
    return storage_point(
        given.get("base_lon"),
        given.get("base_lat"),
        coord_type,
        lon_field="base_lon",
        lat_field="base_lat",
    )


def member_values(given: dict[str, Any]) -> dict[str, Any]:
    """The values of a members file row; RowProblems listing each bad field."""
    parse = _Parse(given)
    parse("name", lambda v: required_text(v, field="name"))
    parse("team", _optional(normalise_mark, field="team"))
    parse("organisation", _optional(required_text, field="organisation"))
    parse("phone", _optional(mask_phone), into="phone_masked")
    parse("leader", _optional(_flag, field="leader"), into="is_leader")
    parse("user_name", _optional(required_text, field="user_name"))
    parse("active", _optional(_flag, field="active"))
    if given.get("team") is None and given.get("organisation") is None:
        parse.problems.append(("team", "a member needs a team, an organisation or both"))
    return parse.done()
