"""Unified codes (统一编码): a code scheme, and the rules every area code obeys.

A scheme is an ordered list of levels, each with the length of its codes. Codes nest
by prefix: the parent of a code is its prefix at the level above, so the hierarchy can
be read from a code alone. The default scheme extends the national statistical
division code (统计用区划代码) with a 3-digit grid and a 2-digit micro-grid segment::

    county:6, township:9, community:12, grid:15, microgrid:17

A deployment may configure another (Chicago's police beats are ``district:2,sector:3,
beat:4``). The database remembers the scheme it was created with (see
:func:`geogrid.store.ensure_code_scheme`).

>>> scheme = CodeScheme.parse("county:6,township:9,community:12,grid:15,microgrid:17")
>>> scheme.level_of("370705007001003")
'grid'
>>> scheme.parent_of("370705007001003")
'370705007001'
>>> scheme.child_code("370705007001", 4)
'370705007001004'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from geogrid.errors import CodeError, ConfigError

DEFAULT_SCHEME = "county:6,township:9,community:12,grid:15,microgrid:17"

_LEVEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Level:
    """One level of a code scheme: its name and the length of its codes."""

    name: str
    length: int


@dataclass(frozen=True)
class CodeScheme:
    """An ordered, prefix-nested list of levels, coarsest first."""

    levels: tuple[Level, ...]

    @classmethod
    def parse(cls, text: str) -> CodeScheme:
        """Parse ``name:length,name:length,...`` (coarsest level first)."""
        levels = []
        for part in (p.strip() for p in text.split(",")):
            name, sep, length = part.partition(":")
            name = name.strip()
            if not sep or not length.strip().isdigit():
                raise ConfigError(
                    f"code scheme part {part!r} is not written as name:length",
                    field="GEOGRID_CODE_SCHEME",
                )
            if not _LEVEL_NAME.match(name):
                raise ConfigError(
                    f"level name {name!r} must be lower-case letters, digits or _",
                    field="GEOGRID_CODE_SCHEME",
                )
            levels.append(Level(name, int(length)))
        scheme = cls(tuple(levels))
        scheme._check()
        return scheme

    def _check(self) -> None:
        names = [level.name for level in self.levels]
        if not self.levels:
            raise ConfigError("a code scheme needs at least one level", field="GEOGRID_CODE_SCHEME")
        if len(set(names)) != len(names):
            raise ConfigError(f"level names repeat in {self}", field="GEOGRID_CODE_SCHEME")
        lengths = [level.length for level in self.levels]
        if lengths[0] < 1 or any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)):
            raise ConfigError(
                f"code lengths must grow from level to level, got {self}",
                field="GEOGRID_CODE_SCHEME",
            )

    def __str__(self) -> str:
        return ",".join(f"{level.name}:{level.length}" for level in self.levels)

    @property
    def level_names(self) -> list[str]:
        """The level names, coarsest first."""
        return [level.name for level in self.levels]

    def level(self, name: str) -> Level:
        """The level called ``name``; CodeError naming the known levels otherwise."""
        for level in self.levels:
            if level.name == name:
                return level
        raise CodeError(
            f"unknown level {name!r}; this scheme has {', '.join(self.level_names)}",
            field="level",
        )

    def depth(self, name: str) -> int:
        """Position of a level, 0 for the coarsest."""
        return self.levels.index(self.level(name))

    def parent_level(self, name: str) -> Level | None:
        """The level above ``name``, or None at the top."""
        depth = self.depth(name)
        return self.levels[depth - 1] if depth else None

    def child_level(self, name: str) -> Level | None:
        """The level below ``name``, or None at the bottom."""
        depth = self.depth(name)
        return self.levels[depth + 1] if depth + 1 < len(self.levels) else None

    @property
    def default_geocode_level(self) -> str:
        """The level points are placed into: ``grid`` where the scheme has it, else the finest."""
        return "grid" if "grid" in self.level_names else self.levels[-1].name

    def level_of(self, code: str, *, field: str = "code") -> str:
        """The level a code belongs to, from its length."""
        _check_digits(code, field)
        for level in self.levels:
            if len(code) == level.length:
                return level.name
        lengths = ", ".join(f"{lv.length} ({lv.name})" for lv in self.levels)
        raise CodeError(
            f"code {code!r} has {len(code)} digits; codes have {lengths}",
            field=field,
        )

    def validate(self, code: str, level: str | None = None, *, field: str = "code") -> str:
        """Check a code fits the scheme (and ``level`` when given); return its level."""
        actual = self.level_of(code, field=field)
        if level is not None and actual != level:
            expected = self.level(level).length
            raise CodeError(
                f"code {code!r} has {len(code)} digits but a {level} code has {expected}",
                field=field,
            )
        return actual

    def parent_of(self, code: str) -> str | None:
        """The parent code (the prefix one level up), None for a top-level code."""
        parent = self.parent_level(self.level_of(code))
        return code[: parent.length] if parent else None

    def ancestors_of(self, code: str) -> list[str]:
        """Every ancestor code, coarsest first."""
        depth = self.depth(self.level_of(code))
        return [code[: level.length] for level in self.levels[:depth]]

    def is_descendant(self, code: str, ancestor: str) -> bool:
        """Whether ``code`` lies below ``ancestor`` in the hierarchy."""
        return len(code) > len(ancestor) and code.startswith(ancestor)

    def child_code(self, parent: str, number: int) -> str:
        """The child code with sequence ``number`` under ``parent``."""
        child = self.child_level(self.level_of(parent, field="parent_code"))
        if child is None:
            raise CodeError(
                f"{parent!r} is at the finest level; it has no children", field="parent_code"
            )
        width = child.length - len(parent)
        if not 1 <= number < 10**width:
            raise CodeError(
                f"{parent!r} can have children numbered 1 to {10**width - 1}, not {number}",
                field="parent_code",
            )
        return f"{parent}{number:0{width}d}"

    def next_free_child(self, parent: str, used_codes: Iterable[str]) -> str:
        """The next child code under ``parent`` after every code ever used there.

        ``used_codes`` is the hierarchy's whole history (every generation), because a
        code is never reused for a different area, even after its area was retired.
        """
        child = self.child_level(self.level_of(parent, field="parent_code"))
        if child is None:
            raise CodeError(
                f"{parent!r} is at the finest level; it has no children", field="parent_code"
            )
        width = child.length - len(parent)
        highest = 0
        for code in used_codes:
            if len(code) == child.length and code.startswith(parent):
                highest = max(highest, int(code[len(parent) :]))
        if highest + 1 >= 10**width:
            raise CodeError(
                f"{parent!r} has used all {10**width - 1} child codes", field="parent_code"
            )
        return self.child_code(parent, highest + 1)


def _check_digits(code: str, field: str) -> None:
    if not isinstance(code, str) or not code:
        raise CodeError(f"{field} is empty", field=field)
    if not code.isascii() or not code.isdigit():
        raise CodeError(f"code {code!r} must contain only the digits 0-9", field=field)


_FLOAT_CODE = re.compile(r"^(\d+)\.0*$")


def normalise_code(value: object, *, field: str = "code") -> str:
    """Turn a code as files give it (``310101``, ``310101.0``, `` 0111 ``) into a digit string.

    Spreadsheets and GeoJSON often carry codes as numbers; a number with a fractional
    part, or a value that is not a whole number, is refused rather than rounded.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise CodeError(f"{field} is missing", field=field)
    if isinstance(value, bool):
        raise CodeError(f"{field} {value!r} is not a code", field=field)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise CodeError(f"{field} {value!r} is not a whole number", field=field)
        text = str(int(value))
    else:
        text = str(value).strip()
        match = _FLOAT_CODE.match(text)
        if match:
            text = match.group(1)
    _check_digits(text, field)
    return text
