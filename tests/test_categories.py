"""Incident categories: the seeded list, look-ups, retiring, creating and editing."""

from __future__ import annotations

import pytest

from geogrid.actors import Actor
from geogrid.categories import get_category, list_categories, set_category
from geogrid.errors import Forbidden, InputError
from geogrid.models import IncidentCategory

SEEDED = [
    "dispute",
    "environment",
    "livelihood",
    "noise",
    "other",
    "property",
    "public_facility",
    "public_order",
    "safety_hazard",
]


def test_the_migration_seeds_the_default_list(db):
    assert [c.code for c in list_categories(db)] == SEEDED
    environment = get_category(db, "environment")
    assert (environment.name_zh, environment.department) == ("环境卫生", "城市管理局")
    assert (environment.accept_days, environment.resolve_days, environment.complex_days) == (
        1,
        3,
        5,
    )
    order = get_category(db, "public_order")
    assert (order.resolve_days, order.complex_days, order.risk_weight) == (1, 3, 3.0)


def test_an_unknown_code_lists_the_known_ones(db):
    with pytest.raises(InputError, match="unknown category 'graffiti'; known categories: dispute"):
        get_category(db, "graffiti")
    with pytest.raises(InputError) as info:
        get_category(db, None)
    assert info.value.field == "category"


def test_a_retired_category_stays_readable_but_takes_nothing_new(db):
    set_category(db, "noise", active=False)
    with pytest.raises(InputError, match="noise.*is retired") as info:
        get_category(db, "noise")
    assert info.value.field == "category" and info.value.details["retired"] is True
    assert get_category(db, "noise", allow_retired=True).code == "noise"
    assert "noise" not in [c.code for c in list_categories(db)]
    assert "noise" in [c.code for c in list_categories(db, include_retired=True)]
    with pytest.raises(
        InputError, match="known categories: dispute, environment, livelihood, other"
    ):
        get_category(db, "nois")


def test_create_and_update(db):
    created = set_category(
        db,
        "graffiti",
        name_zh=" 乱涂乱画 ",
        name_en="Graffiti",
        department="城市管理局",
        resolve_days=2,
        complex_days=4,
        risk_weight=0.25,
    )
    assert (created.name_zh, created.accept_days, created.risk_weight, created.active) == (
        "乱涂乱画",
        1,
        0.25,
        True,
    )
    updated = set_category(db, "graffiti", accept_days=0, complex_days=2)
    assert (updated.accept_days, updated.resolve_days, updated.complex_days) == (0, 2, 2)
    assert db.get(IncidentCategory, "graffiti").name_en == "Graffiti"


@pytest.mark.parametrize(
    ("code", "fields", "field", "message"),
    [
        ("Graffiti!", {"name_zh": "x", "name_en": "x"}, "code", "lower-case letters"),
        ("graffiti", {"name_en": "Graffiti"}, "name_zh", "a new category needs name_zh"),
        ("noise", {"resolve_days": 6}, "complex_days", r"at least resolve_days \(6\)"),
        ("noise", {"accept_days": -1}, "accept_days", "between 0 and 250"),
        ("noise", {"accept_days": 1.5}, "accept_days", "whole number"),
        ("noise", {"accept_days": True}, "accept_days", "whole number"),
        ("noise", {"risk_weight": float("nan")}, "risk_weight", "finite"),
        ("noise", {"risk_weight": "2"}, "risk_weight", "must be a number"),
        ("noise", {"active": "no"}, "active", "true or false"),
        ("noise", {"name_zh": "  "}, "name_zh", "must not be empty"),
        ("noise", {"colour": "red"}, "colour", "unknown category field"),
    ],
)
def test_bad_values_name_the_field_and_change_nothing(db, code, fields, field, message):
    with pytest.raises(InputError, match=message) as info:
        set_category(db, code, **fields)
    assert info.value.field == field
    noise = db.get(IncidentCategory, "noise")
    assert (noise.accept_days, noise.resolve_days, noise.risk_weight) == (1, 3, 0.5)
    assert db.get(IncidentCategory, "graffiti") is None


def test_only_an_administrator_may_edit(db):
    with pytest.raises(Forbidden):
        set_category(db, "noise", actor=Actor("li", "official", ("370705",)), resolve_days=2)
    assert set_category(db, "noise", actor=Actor("root", "administrator"), resolve_days=2)
