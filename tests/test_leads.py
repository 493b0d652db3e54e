"""Check-ins and leads: placed into grids, idempotent, categories checked, decisions guarded."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select

from geogrid.actors import Actor
from geogrid.crs import wgs84_to_gcj02
from geogrid.errors import Conflict, CoordinateError, Forbidden, IllegalTransition, InputError
from geogrid.leads import checkin, decide_lead, file_lead, lead_as_dict, list_leads
from geogrid.models import PatrolCheckin, PatrolLead
from geogrid.workdays import SHANGHAI
from tests.factories import load_tiny_city
from tests.patrol_factories import add_member, add_station, add_team

AT = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)
#: Inside grid 370705001001001 (lon 119.00-119.01), far from its edges.
INSIDE = (119.005, 36.71)
OFFICER = Actor("王警官", "station_officer", ("370705",))


@pytest.fixture
def city(db, settings, tmp_path):
    generation = load_tiny_city(db, settings, tmp_path)
    station = add_station(db, "370705-PS01", lon=119.01, lat=36.71, grids=["370705001001001"])
    team = add_team(db, "PA-370705-0001", station.code)
    other_station = add_station(db, "370706-PS01", lon=119.2, lat=36.8)
    other = add_team(db, "PA-370706-0001", other_station.code)
    member = add_member(db, "李四", team=team, user_name="lisi")
    stranger = add_member(db, "赵六", team=other, user_name="zhaoliu")
    return {
        "generation": generation,
        "team": team,
        "other": other,
        "member": member,
        "stranger": stranger,
    }


def do_checkin(db, settings, city, **changes):
    values = {
        "team_mark": "PA-370705-0001",
        "member_id": city["member"].id,
        "lon": INSIDE[0],
        "lat": INSIDE[1],
        "coord_type": "wgs84",
        "at": AT,
        "note": "到岗",
        "now": NOW,
    }
    values.update(changes)
    return checkin(db, settings, **values)


def do_lead(db, settings, city, **changes):
    values = {
        "team_mark": "PA-370705-0001",
        "member_id": city["member"].id,
        "lon": INSIDE[0],
        "lat": INSIDE[1],
        "coord_type": "wgs84",
        "at": AT,
        "category": "public_order",
        "note": "可疑人员在小区门口徘徊",
        "now": NOW,
    }
    values.update(changes)
    return file_lead(db, settings, **values)


# -- check-ins -------------------------------------------------------------------------------


def test_a_checkin_is_placed_into_its_grid(db, settings, city):
    result = do_checkin(db, settings, city)
    row = result.checkin
    assert result.created and result.warnings == []
    assert (row.grid_code, row.placement) == ("370705001001001", "inside")
    assert row.generation == city["generation"].generation.id
    assert row.at == AT and row.note == "到岗"


def test_a_retried_checkin_returns_the_first(db, settings, city):
    first = do_checkin(db, settings, city)
    again = do_checkin(db, settings, city)
    assert not again.created and again.checkin.id == first.checkin.id
    assert db.scalar(select(func.count()).select_from(PatrolCheckin)) == 1
    with pytest.raises(Conflict):
        do_checkin(db, settings, city, lon=119.035)


def test_a_checkin_without_member_is_idempotent_too(db, settings, city):
    first = do_checkin(db, settings, city, member_id=None)
    again = do_checkin(db, settings, city, member_id=None)
    assert not again.created and again.checkin.id == first.checkin.id


def test_a_gcj02_checkin_is_converted_before_placing(db, settings, city):
    gcj_lon, gcj_lat = wgs84_to_gcj02(*INSIDE)
    row = do_checkin(db, settings, city, lon=gcj_lon, lat=gcj_lat, coord_type="gcj02").checkin
    where = to_shape(row.geom)
    assert (where.x, where.y) == pytest.approx(INSIDE, abs=1e-8)
    assert row.grid_code == "370705001001001"


def test_a_checkin_outside_is_kept_and_flagged(db, settings, city):
    result = do_checkin(db, settings, city, lon=119.06)
    assert result.created
    assert (result.checkin.grid_code, result.checkin.placement) == (None, "outside")
    assert "outside every grid" in result.warnings[0]
    assert "370705002001002" in result.warnings[0]


def test_checkin_input_errors(db, settings, city):
    with pytest.raises(CoordinateError) as caught:
        do_checkin(db, settings, city, lon=INSIDE[1], lat=INSIDE[0])
    assert caught.value.field == "lat"
    with pytest.raises(InputError) as caught:
        do_checkin(db, settings, city, at=NOW + timedelta(hours=1))
    assert caught.value.field == "at"
    with pytest.raises(InputError) as caught:
        do_checkin(db, settings, city, member_id=city["stranger"].id)
    assert caught.value.field == "member_id"
    with pytest.raises(InputError) as caught:
        do_checkin(db, settings, city, team_mark="PA-NOPE")
    assert caught.value.field == "team"
    assert db.scalar(select(func.count()).select_from(PatrolCheckin)) == 0


# -- leads -----------------------------------------------------------------------------------


def test_a_lead_is_geocoded_and_starts_new(db, settings, city):
    result = do_lead(db, settings, city)
    lead = result.lead
    assert result.created
    assert (lead.grid_code, lead.placement, lead.category) == (
        "370705001001001",
        "inside",
        "public_order",
    )
    assert (lead.status, lead.reward, lead.reward_amount) == ("new", "pending", None)
    assert (lead.given_lon, lead.given_lat, lead.coord_type) == (*INSIDE, "wgs84")
    assert lead_as_dict(lead)["at"] == "2026-03-02T09:30:00+08:00"


def test_a_lead_needs_a_known_category_and_a_note(db, settings, city):
    with pytest.raises(InputError) as caught:
        do_lead(db, settings, city, category="aliens")
    assert caught.value.field == "category"
    assert "public_order" in caught.value.message
    with pytest.raises(InputError) as caught:
        do_lead(db, settings, city, note="  ")
    assert caught.value.field == "note"
    assert db.scalar(select(func.count()).select_from(PatrolLead)) == 0


def test_a_lead_with_a_key_is_filed_once(db, settings, city):
    first = do_lead(db, settings, city, idempotency_key="app-42")
    again = do_lead(db, settings, city, idempotency_key="app-42")
    assert not again.created and again.lead.id == first.lead.id
    assert db.scalar(select(func.count()).select_from(PatrolLead)) == 1
    with pytest.raises(Conflict) as caught:
        do_lead(db, settings, city, idempotency_key="app-42", note="另一条线索")
    assert caught.value.field == "idempotency_key"
    assert do_lead(db, settings, city).created  # no key: a second lead


def test_a_lead_outside_is_kept(db, settings, city):
    lead = do_lead(db, settings, city, lon=119.06).lead
    assert (lead.grid_code, lead.placement) == (None, "outside")


# -- decisions -------------------------------------------------------------------------------


def test_a_station_officer_verifies_and_rewards(db, settings, city):
    lead = do_lead(db, settings, city).lead
    decided = decide_lead(db, lead.id, actor=OFFICER, status="verified", now=NOW)
    assert (decided.status, decided.decided_by, decided.decided_at) == ("verified", "王警官", NOW)
    decided = decide_lead(db, lead.id, actor=OFFICER, reward="granted", amount=200, now=NOW)
    assert (decided.reward, decided.reward_amount) == ("granted", 200.0)
    # The same decision again changes nothing; another one is refused.
    decide_lead(db, lead.id, actor=OFFICER, reward="granted", amount=200)
    with pytest.raises(IllegalTransition):
        decide_lead(db, lead.id, actor=OFFICER, reward="declined")
    closed = decide_lead(db, lead.id, actor=OFFICER, status="closed")
    assert closed.status == "closed"


def test_status_moves_and_rewards_are_checked(db, settings, city):
    lead = do_lead(db, settings, city).lead
    with pytest.raises(IllegalTransition) as caught:
        decide_lead(db, lead.id, actor=OFFICER, reward="granted", amount=100)
    assert caught.value.field == "reward"  # not verified yet
    with pytest.raises(InputError) as caught:
        decide_lead(db, lead.id, actor=OFFICER, status="verified", reward="granted")
    assert caught.value.field == "amount"
    with pytest.raises(InputError) as caught:
        decide_lead(db, lead.id, actor=OFFICER, status="verified", reward="declined", amount=5)
    assert caught.value.field == "amount"
    decide_lead(db, lead.id, actor=OFFICER, status="rejected", reward="declined")
    with pytest.raises(IllegalTransition) as caught:
        decide_lead(db, lead.id, actor=OFFICER, status="verified")
    assert "final" in caught.value.message
    with pytest.raises(InputError):
        decide_lead(db, lead.id, actor=OFFICER, status="lost")


def test_who_may_decide(db, settings, city):
    lead = do_lead(db, settings, city).lead
    outside = do_lead(db, settings, city, lon=119.06).lead
    for actor in (
        Actor("lisi", "patrol_member", ("370705",)),
        Actor("网格员", "grid_worker", ("370705",)),
        Actor("隔壁所", "station_officer", ("370706",)),
    ):
        with pytest.raises(Forbidden):
            decide_lead(db, lead.id, actor=actor, status="verified")
    # The team's station covers a lead outside every grid; so does an administrator.
    by_station = Actor("所长", "station_officer", ("370705-PS01",))
    assert decide_lead(db, outside.id, actor=by_station, status="verified").status == "verified"
    admin = Actor("admin", "administrator")
    assert decide_lead(db, lead.id, actor=admin, status="rejected").status == "rejected"


def test_leads_are_listed_within_scope(db, settings, city):
    mine = do_lead(db, settings, city).lead
    theirs = do_lead(
        db,
        settings,
        city,
        team_mark="PA-370706-0001",
        member_id=city["stranger"].id,
        lon=119.06,
        at=AT + timedelta(minutes=5),
    ).lead
    admin = Actor("admin", "administrator")
    assert [lead.id for lead in list_leads(db, admin)] == [theirs.id, mine.id]
    assert [lead.id for lead in list_leads(db, OFFICER)] == [mine.id]
    member = Actor("zhaoliu", "patrol_member")
    assert [lead.id for lead in list_leads(db, member)] == [theirs.id]
    assert list_leads(db, Actor("nobody", "official")) == []
    decide_lead(db, mine.id, actor=admin, status="verified")
    assert [lead.id for lead in list_leads(db, admin, status="verified")] == [mine.id]
    assert [lead.id for lead in list_leads(db, admin, team_mark="PA-370706-0001")] == [theirs.id]
    assert [lead.id for lead in list_leads(db, admin, grid_code="3707050010")] == [mine.id]
