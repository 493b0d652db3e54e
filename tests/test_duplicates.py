"""Possible duplicates at intake, and merging one incident into another."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from factories import add_incident, load_tiny_city
from sqlalchemy import select

from geogrid.actors import Actor
from geogrid.duplicates import find_possible_duplicates, merge
from geogrid.errors import Forbidden, IllegalTransition, InputError, NotFound
from geogrid.incidents import events_of
from geogrid.intake import file_incident
from geogrid.models import Incident
from geogrid.shapes import point
from geogrid.workdays import SHANGHAI

G1, G2 = "370705001001001", "370705001001002"
LAT = 36.71
M_PER_DEG_LAT = 111_000.0
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)
ADMIN = Actor("admin", "administrator")
WORKER_G1 = Actor("wang", "grid_worker", (G1,))
OFFICIAL_T1 = Actor("li", "official", ("370705001",))


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    return db


def at(session, metres_north: float, hours: float = 0.0, **fields):
    """An incident metres north of (119.005, LAT) in G1, reported hours after 09:00."""
    fields.setdefault("reported_at", NOW - timedelta(hours=1) + timedelta(hours=hours))
    geom = session.scalar(select(point(119.005, LAT + metres_north / M_PER_DEG_LAT)))
    return add_incident(session, grid_code=G1, geom=geom, **fields)


def ids(candidates):
    return [candidate.incident_id for candidate in candidates]


def test_same_category_near_in_space_and_time_nearest_first(city, settings):
    here = at(city, 0)
    far_ish, near = at(city, 90, hours=-5), at(city, 40, hours=2)
    at(city, 150)  # beyond 100 m
    at(city, 10, hours=-73)  # beyond 72 h before
    at(city, 10, hours=73)  # and after
    at(city, 10, category="noise")
    at(city, 10, state="merged")
    at(city, 10, state="rejected")
    found = find_possible_duplicates(city, settings, here)
    assert ids(found) == [near.id, far_ish.id]
    assert found[0].distance_m == pytest.approx(40, abs=1) and found[0].hours_apart == 2.0
    assert found[1].state == "reported"


def test_only_the_nearest_come_back_however_busy_the_place(city, settings):
    here = at(city, 0)
    for metres in range(30, 90, 5):
        at(city, metres)
    nearest = [at(city, 20, hours=3), at(city, 20, hours=-1), at(city, 10)]
    found = find_possible_duplicates(city, settings, here, limit=3)
    assert ids(found) == [nearest[2].id, nearest[1].id, nearest[0].id]
    by_code = by_grid(city, settings, G1)
    assert len(find_possible_duplicates(city, settings, by_code, limit=4)) == 4


def test_distance_and_window_are_settings(city, settings):
    here, other = at(city, 0), at(city, 150, hours=80)
    assert find_possible_duplicates(city, settings, here) == []
    wider = settings.with_(duplicate_distance_m=200.0, duplicate_window_h=96.0)
    assert ids(find_possible_duplicates(city, wider, here)) == [other.id]


def test_by_code_incidents_match_their_grid_without_a_distance(city, settings):
    here = at(city, 0)
    by_code = by_grid(city, settings, G1)
    by_grid(city, settings, G2)
    (found,) = find_possible_duplicates(city, settings, here)
    assert (found.incident_id, found.distance_m) == (by_code.id, None)
    assert ids(find_possible_duplicates(city, settings, by_code)) == [here.id]


def by_grid(session, settings, grid_code):
    body = {"category": "environment", "description": "rubbish", "grid_code": grid_code}
    return file_incident(session, settings, body, ADMIN, now=NOW).incident


def test_intake_points_them_out(city, settings):
    earlier = at(city, 20, hours=-3)
    body = {
        "category": "environment",
        "description": "rubbish again",
        "lon": 119.005,
        "lat": LAT,
        "coord_type": "wgs84",
    }
    result = file_incident(city, settings, body, Actor("zhang", "resident"), now=NOW)
    assert ids(result.duplicates) == [earlier.id]
    assert result.warnings == [
        f"possible duplicates of #{earlier.id}: check and merge if they are the same"
    ]


# -- merging -------------------------------------------------------------------------------


def filed(session, settings, metres_north, **changes):
    body = {
        "category": "environment",
        "description": "rubbish",
        "lon": 119.005,
        "lat": LAT + metres_north / M_PER_DEG_LAT,
        "coord_type": "wgs84",
        **changes,
    }
    return file_incident(session, settings, body, Actor("zhang", "resident"), now=NOW).incident


def test_merge_keeps_both_histories(city, settings):
    target, source = filed(city, settings, 0), filed(city, settings, 30)
    merged = merge(city, source.id, target.id, WORKER_G1, note="same pile")
    assert merged is source
    assert (source.state, source.duplicate_of, target.state) == ("merged", target.id, "reported")
    source_log = [(e.action, e.from_state, e.to_state, e.data) for e in events_of(city, source.id)]
    assert [entry[0] for entry in source_log] == ["report", "merged_into"]
    assert source_log[1][1:3] == ("reported", "merged")
    assert source_log[1][3]["into"] == target.id
    target_log = events_of(city, target.id)
    assert [e.action for e in target_log] == ["report", "merged_from"]
    assert (target_log[1].data["from"], target_log[1].note, target_log[1].actor) == (
        source.id,
        "same pile",
        "wang",
    )
    assert target_log[1].from_state == target_log[1].to_state == "reported"


def test_different_categories_may_be_merged_and_are_recorded(city, settings):
    target, source = filed(city, settings, 0), filed(city, settings, 10, category="noise")
    merge(city, source.id, target.id, ADMIN)
    event = events_of(city, source.id)[-1]
    assert event.data == {"into": target.id, "category": "noise", "into_category": "environment"}
    assert target.category == "environment"


def test_merge_refusals(city, settings):
    a, b, c = (filed(city, settings, n) for n in (0, 10, 20))
    with pytest.raises(InputError, match="into itself") as info:
        merge(city, a.id, a.id, ADMIN)
    assert info.value.field == "into"
    merge(city, b.id, a.id, ADMIN)
    with pytest.raises(IllegalTransition, match=f"is merged \\(into {a.id}\\)") as info:
        merge(city, c.id, b.id, ADMIN)
    assert info.value.field == "into"
    with pytest.raises(IllegalTransition, match="only an open incident") as info:
        merge(city, b.id, c.id, ADMIN)
    assert info.value.field == "id"
    c.state = "evaluated"
    with pytest.raises(IllegalTransition):
        merge(city, c.id, a.id, ADMIN)
    with pytest.raises(NotFound) as info:
        merge(city, a.id, 999_999, ADMIN)
    assert info.value.field == "into"
    assert a.state == "reported" and [e.action for e in events_of(city, a.id)][-1] == "merged_from"


@pytest.mark.parametrize(
    "actor",
    [
        Actor("zhang", "resident"),
        Actor("dept", "department", department="城市管理局"),
        Actor("wu", "grid_worker", (G2,)),
        Actor("zhao", "official", ("370705002",)),
    ],
)
def test_merge_needs_the_role_and_the_scope(city, settings, actor):
    a, b = filed(city, settings, 0), filed(city, settings, 10)
    with pytest.raises(Forbidden):
        merge(city, b.id, a.id, actor)
    assert b.state == "reported" and len(events_of(city, b.id)) == 1


def test_an_official_of_the_township_may_merge(city, settings):
    a, b = filed(city, settings, 0), filed(city, settings, 10)
    assert merge(city, b.id, a.id, OFFICIAL_T1).state == "merged"


def test_merged_incidents_are_not_offered_again(city, settings):
    a, b = filed(city, settings, 0), filed(city, settings, 10)
    merge(city, b.id, a.id, ADMIN)
    assert find_possible_duplicates(city, settings, a) == []
    assert city.get(Incident, b.id).duplicate_of == a.id
    assert math.isclose(a.given_lat, LAT)
