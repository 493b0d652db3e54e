"""Unified codes: scheme parsing, levels, parents, next free child codes."""

import pytest

from geogrid.codes import DEFAULT_SCHEME, CodeScheme, normalise_code
from geogrid.errors import CodeError, ConfigError

SCHEME = CodeScheme.parse(DEFAULT_SCHEME)
CHICAGO = CodeScheme.parse("district:2,sector:3,beat:4")


def test_default_scheme_levels_and_lengths():
    assert SCHEME.level_names == ["county", "township", "community", "grid", "microgrid"]
    assert [lv.length for lv in SCHEME.levels] == [6, 9, 12, 15, 17]
    assert str(SCHEME) == DEFAULT_SCHEME


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("370705", "county", None),
        ("370705007", "township", "370705"),
        ("370705007001", "community", "370705007"),
        ("370705007001003", "grid", "370705007001"),
        ("37070500700100302", "microgrid", "370705007001003"),
    ],
)
def test_level_and_parent_of(code, level, parent):
    assert SCHEME.level_of(code) == level
    assert SCHEME.parent_of(code) == parent


def test_ancestors_follow_the_prefixes():
    assert SCHEME.ancestors_of("37070500700100302") == [
        "370705",
        "370705007",
        "370705007001",
        "370705007001003",
    ]
    assert CHICAGO.ancestors_of("0111") == ["01", "011"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("3707050", "has 7 digits"),
        ("37070A", "only the digits"),
        ("", "empty"),
        ("３７０７０５", "only the digits"),
    ],
)
def test_bad_codes_name_the_problem(code, message):
    with pytest.raises(CodeError, match=message) as info:
        SCHEME.level_of(code)
    assert info.value.field == "code"


def test_validate_checks_the_declared_level():
    assert SCHEME.validate("370705007", "township") == "township"
    with pytest.raises(CodeError, match="a grid code has 15"):
        SCHEME.validate("370705007", "grid")
    with pytest.raises(CodeError, match="unknown level 'beat'"):
        SCHEME.validate("370705007", "beat")


def test_next_free_child_skips_every_code_ever_used():
    used = ["370705007001001", "370705007001002", "370705007001007", "370705007002001"]
    assert SCHEME.next_free_child("370705007001", used) == "370705007001008"
    assert SCHEME.next_free_child("370705007003", used) == "370705007003001"
    assert CHICAGO.next_free_child("011", ["0111", "0114"]) == "0115"


def test_next_free_child_refuses_when_full_or_at_the_bottom():
    full = [f"01{n}" for n in range(1, 10)]
    with pytest.raises(CodeError, match="used all 9"):
        CHICAGO.next_free_child("01", full)
    with pytest.raises(CodeError, match="finest level"):
        SCHEME.next_free_child("37070500700100302", [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("county:6,township:6", "must grow"),
        ("county", "name:length"),
        ("County:6", "lower-case"),
        ("a:2,a:4", "repeat"),
        ("", "name:length"),
    ],
)
def test_bad_schemes_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        CodeScheme.parse(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("310101", "310101"),
        ("310101.0", "310101"),
        (310101, "310101"),
        (310101.0, "310101"),
        (" 0111 ", "0111"),
        ("0111", "0111"),
    ],
)
def test_normalise_code_accepts_numbers_from_spreadsheets(value, expected):
    assert normalise_code(value) == expected


@pytest.mark.parametrize("value", [None, float("nan"), 3.5, "31a", True, "3.5"])
def test_normalise_code_refuses_non_codes(value):
    with pytest.raises(CodeError):
        normalise_code(value, field="grid_code")
