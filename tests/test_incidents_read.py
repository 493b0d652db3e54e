"""Reading incidents as each role may see them, placing stray ones, and the append-only log."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from factories import add_incident, load_tiny_city
from sqlalchemy import delete, event, update
from sqlalchemy.exc import DBAPIError

from geogrid.actors import Actor
from geogrid.duplicates import merge
from geogrid.errors import CodeError, Forbidden, IllegalTransition, InputError, NotFound
from geogrid.incidents import (
    count_incidents,
    events_of,
    get_incident,
    incident_as_dict,
    incidents_as_dicts,
    list_incidents,
    may_see,
    place,
)
from geogrid.intake import file_incident
from geogrid.models import IncidentEvent
from geogrid.workdays import SHANGHAI

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)
ADMIN = Actor("admin", "administrator")
WORKER_G1 = Actor("wang", "grid_worker", (G1,))
OFFICIAL_T1 = Actor("li", "official", ("370705001",))
OFFICIAL_T2 = Actor("zhao", "official", ("370705002",))
WORKER_G4 = Actor("sun", "grid_worker", (G4,))
PATROL_G1 = Actor("qian", "patrol_member", (G1,))
RESIDENT = Actor("zhang", "resident")
SANITATION = Actor("chen", "department", department="城市管理局")


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    return db


def report(session, settings, lon=119.005, actor=RESIDENT, **changes):
    body = {
        "category": "environment",
        "description": "rubbish",
        "lon": lon,
        "lat": 36.71,
        "coord_type": "wgs84",
        "reported_at": "2026-11-30T09:00:00+08:00",
        "contact_name": "张三",
        "contact_phone": "13800000000",
        **changes,
    }
    return file_incident(session, settings, body, actor, now=NOW).incident


@pytest.fixture
def spread(city, settings):
    """One incident per grid (G1..G4, by the resident), one outside east of G4."""
    incidents = {
        code: report(city, settings, lon=lon)
        for code, lon in ((G1, 119.005), (G2, 119.015), (G3, 119.025), (G4, 119.035))
    }
    incidents["outside"] = report(city, settings, lon=119.05, actor=Actor("liu", "resident"))
    return incidents


def listed(session, actor, **filters):
    return [incident.grid_code for incident in list_incidents(session, actor, now=NOW, **filters)]


# -- who sees what -------------------------------------------------------------------------


def test_lists_are_filtered_by_scope_on_the_server(city, spread):
    assert sorted(listed(city, ADMIN), key=str) == sorted([G1, G2, G3, G4, None], key=str)
    assert listed(city, WORKER_G1) == [G1]
    assert listed(city, PATROL_G1) == [G1]
    assert sorted(listed(city, OFFICIAL_T1)) == [G1, G2]
    # The stray is shown to the officials of its nearest grid (G4), not to its grid worker.
    assert sorted(listed(city, OFFICIAL_T2), key=str) == sorted([G3, G4, None], key=str)
    assert listed(city, WORKER_G4) == [G4]
    assert sorted(listed(city, RESIDENT)) == [G1, G2, G3, G4]
    assert listed(city, Actor("liu", "resident")) == [None]
    assert len(listed(city, SANITATION)) == 5
    assert listed(city, Actor("fan", "department", department="司法局")) == []
    assert listed(city, Actor("nobody", "official")) == []
    for actor in (WORKER_G1, OFFICIAL_T2, RESIDENT, SANITATION, WORKER_G4):
        visible = {i.id for i in spread.values() if may_see(actor, i)}
        assert visible == {i.id for i in list_incidents(city, actor)}, actor


def test_get_incident_refuses_outside_scope(city, spread):
    assert get_incident(city, spread[G1].id, WORKER_G1) is spread[G1]
    with pytest.raises(Forbidden) as info:
        get_incident(city, spread[G2].id, WORKER_G1)
    assert info.value.field == "id"
    with pytest.raises(NotFound):
        get_incident(city, 999_999, ADMIN)


def test_filters(city, settings, spread):
    spread[G2].state = "accepted"
    spread[G2].accepted_at = NOW
    add_incident(
        city,
        grid_code=G1,
        reported_at=NOW - timedelta(days=10),
        category="noise",
        accept_due_at=NOW - timedelta(days=9),
        channel="hotline",
    )
    city.flush()
    assert listed(city, ADMIN, state="accepted") == [G2]
    assert len(listed(city, ADMIN, state=["accepted", "reported"])) == 6
    assert listed(city, ADMIN, category="noise") == [G1]
    assert listed(city, ADMIN, channel="hotline") == [G1]
    assert count_incidents(city, ADMIN, channel="whistle", now=NOW) == 5
    assert sorted(listed(city, ADMIN, grid_prefix="370705002")) == [G3, G4]
    week_ago = NOW - timedelta(days=7)
    assert listed(city, ADMIN, until=week_ago) == [G1]
    assert len(listed(city, ADMIN, since=week_ago)) == 5
    assert count_incidents(city, ADMIN, since=week_ago, now=NOW) == 5
    assert count_incidents(city, WORKER_G1) == 2
    # Ten days old and never accepted: overdue. Today's are not due yet.
    assert listed(city, ADMIN, overdue=True) == [G1]
    assert len(listed(city, ADMIN, overdue=False)) == 5
    assert len(list_incidents(city, ADMIN, limit=2, offset=4)) == 2
    for bad, field in (
        ({"limit": 0}, "limit"),
        ({"state": "open"}, "state"),
        ({"channel": "pigeon"}, "channel"),
    ):
        with pytest.raises(InputError) as info:
            list_incidents(city, ADMIN, **bad)
        assert info.value.field == field
    with pytest.raises(InputError) as info:
        list_incidents(city, ADMIN, since=datetime(2026, 11, 1))
    assert info.value.field == "since"
    with pytest.raises(CodeError):
        list_incidents(city, ADMIN, grid_prefix="37%")


# -- as JSON -------------------------------------------------------------------------------


def test_as_dict_for_someone_who_may_see_the_contact(city, spread):
    incident = spread[G1]
    body = incident_as_dict(city, incident, WORKER_G1, with_events=True, now=NOW)
    assert body["contact"] == {"name": "张三", "phone": "13800000000"}
    assert body["reported_by"] == "zhang"
    assert (body["grid_code"], body["placement"], body["category_name"]) == (
        G1,
        "inside",
        "环境卫生",
    )
    assert (body["lon"], body["lat"], body["coord_type"]) == (119.005, 36.71, "wgs84")
    assert (body["storage_lon"], body["storage_lat"]) == pytest.approx((119.005, 36.71))
    assert body["reported_at"] == "2026-11-30T09:00:00+08:00"
    assert body["accept_due_at"] == "2026-12-01T09:00:00+08:00"
    assert (body["accept_overdue"], body["resolve_overdue"]) == (False, False)
    assert [event["action"] for event in body["events"]] == ["report"]
    assert body["events"][0]["actor"] == "zhang"
    later = incident_as_dict(city, incident, WORKER_G1, now=NOW + timedelta(days=2))
    assert (later["accept_overdue"], later["resolve_overdue"]) == (True, False)


def test_a_page_takes_one_query_and_agrees_with_one_at_a_time(city, spread):
    merge(city, spread[G2].id, spread[G1].id, ADMIN)
    merge(city, spread[G3].id, spread[G1].id, ADMIN)
    page = list_incidents(city, ADMIN, now=NOW)
    with statements_run(city) as statements:
        bodies = incidents_as_dicts(city, page, ADMIN, now=NOW)
    assert len(statements) == 1, "the extras of a whole page come in one query"
    alone = [
        incident_as_dict(city, incident, ADMIN, now=NOW, with_reporter=False) for incident in page
    ]
    assert bodies == alone
    merged_from = {body["grid_code"]: body["merged_from"] for body in bodies}
    assert merged_from[G1] == [spread[G2].id, spread[G3].id] and merged_from[G4] == []
    assert all("contact" not in body and "reported_by" not in body for body in bodies)
    assert {body["category_name"] for body in bodies} == {"环境卫生"}


@contextmanager
def statements_run(session):
    """The SQL statements the session sends inside the block."""
    statements: list[str] = []
    connection = session.connection()

    def note(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", note)


@pytest.mark.parametrize("actor", [PATROL_G1, SANITATION, Actor("liu", "resident"), OFFICIAL_T2])
def test_the_contact_is_hidden_from_roles_that_may_not_see_it(city, spread, actor):
    body = incident_as_dict(city, spread[G1], actor, with_events=True, now=NOW)
    assert "contact" not in body and "reported_by" not in body
    assert body["events"][0]["actor"] == "resident"
    assert "张三" not in str(body) and "13800000000" not in str(body)


def test_the_reporter_sees_their_own_contact(city, spread):
    assert incident_as_dict(city, spread[G1], RESIDENT)["contact"]["name"] == "张三"


def test_no_contact_given_is_null_not_empty_strings(city, settings):
    incident = report(city, settings, contact_name=None, contact_phone=None)
    assert incident_as_dict(city, incident, ADMIN)["contact"] is None


# -- placing and the log -------------------------------------------------------------------


def test_place_an_incident_from_outside(city, spread):
    stray = spread["outside"]
    placed = place(city, stray.id, G4, OFFICIAL_T2, note="the shop east of the market")
    assert (placed.grid_code, placed.placement) == (G4, "placed")
    assert placed.placement_detail["nearest"]["code"] == G4, "what intake recorded is kept"
    assert placed.placement_detail["placed_from"] == {"grid_code": None, "placement": "outside"}
    last = events_of(city, stray.id)[-1]
    assert (last.action, last.from_state, last.to_state, last.note) == (
        "place",
        "reported",
        "reported",
        "the shop east of the market",
    )
    assert last.data == {"grid_code": G4, "from_grid_code": None, "from_placement": "outside"}
    assert listed(city, WORKER_G4) == [G4, G4]


def test_place_refusals(city, spread):
    stray = spread["outside"]
    with pytest.raises(Forbidden):
        place(city, stray.id, G4, PATROL_G1)
    with pytest.raises(Forbidden):  # may see it (nearest G4) but not put it in another's grid
        place(city, stray.id, G1, OFFICIAL_T2)
    with pytest.raises(Forbidden):  # out of G1 into G2: the worker does not answer for G2
        place(city, spread[G1].id, G2, WORKER_G1)
    with pytest.raises(CodeError, match="there is no grid 370705002001009") as info:
        place(city, stray.id, "370705002001009", ADMIN)
    assert info.value.field == "grid_code"
    with pytest.raises(CodeError):
        place(city, stray.id, "370705002001", ADMIN)
    with pytest.raises(InputError, match="already in grid"):
        place(city, spread[G1].id, G1, ADMIN)
    spread[G2].state = "rejected"
    with pytest.raises(IllegalTransition):
        place(city, spread[G2].id, G1, ADMIN)
    assert stray.grid_code is None and len(events_of(city, stray.id)) == 1


def test_the_event_log_refuses_updates_and_deletes(city, spread):
    event_id = events_of(city, spread[G1].id)[0].id
    for statement in (
        update(IncidentEvent).where(IncidentEvent.id == event_id).values(note="rewritten"),
        delete(IncidentEvent).where(IncidentEvent.id == event_id),
    ):
        with pytest.raises(DBAPIError, match="append-only"), city.begin_nested():
            city.execute(statement)
    assert events_of(city, spread[G1].id)[0].note == ""
