"""The incident workflow: known deadlines through a whole life, refusals, the event log."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from factories import add_incident, load_tiny_city
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from geogrid import sla, workflow
from geogrid.actors import (
    ADMINISTRATOR,
    DEPARTMENT,
    GRID_WORKER,
    OFFICIAL,
    RESIDENT,
    Actor,
)
from geogrid.errors import Forbidden, IllegalTransition, InputError, NotFound
from geogrid.models import Incident, IncidentCategory, IncidentEvent
from geogrid.workdays import SHANGHAI, WorkCalendar

G1, G3 = "370705001001001", "370705002001001"
HOUR = 3600

ADMIN = Actor("admin", ADMINISTRATOR)
WORKER = Actor("wang", GRID_WORKER, scope=(G1,))
OTHER_WORKER = Actor("li", GRID_WORKER, scope=(G3,))
OFFICIAL_ = Actor("zhao", OFFICIAL, scope=("370705",))
CITY_MGMT = Actor("chen", DEPARTMENT, scope=("370705",), department="城市管理局")
RESIDENT_ = Actor("138-0000-0000", RESIDENT)


def at(text: str) -> datetime:
    """A Shanghai moment from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return WorkCalendar.from_package()


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    return db


@pytest.fixture
def file(city, calendar):
    """File an incident as intake would: reported by the resident, with its deadlines."""

    def make(reported: str, *, grid_code: str | None = G1, **fields) -> Incident:
        fields.setdefault("reported_by", RESIDENT_.name)
        incident = add_incident(city, grid_code=grid_code, reported_at=at(reported), **fields)
        category = city.get(IncidentCategory, incident.category)
        due = sla.deadlines_of(calendar, category, incident)
        incident.accept_due_at, incident.resolve_due_at = due.accept_due_at, due.resolve_due_at
        incident.deadline_alert = due.alert
        city.flush()
        return incident

    return make


@pytest.fixture
def act(city, settings, calendar):
    """Take an action at a Shanghai time."""

    def run(incident: Incident, action: str, actor: Actor, when: str, **params) -> Incident:
        return workflow.act(
            city, settings, incident.id, action, actor, now=at(when), calendar=calendar, **params
        )

    return run


def events(db, incident: Incident) -> list[IncidentEvent]:
    query = select(IncidentEvent).where(IncidentEvent.incident_id == incident.id)
    return list(db.scalars(query.order_by(IncidentEvent.id)))


def test_a_whole_life_with_deadlines_over_mid_autumn_and_national_day(city, file, act, calendar):
    # Friday 2026-09-25 is the Mid-Autumn holiday: the clock starts Monday 09-28 00:00.
    incident = file("2026-09-25T16:00")
    assert incident.accept_due_at == at("2026-09-29T00:00")
    assert incident.resolve_due_at == at("2026-10-01T00:00")
    assert workflow.allowed_actions(incident, WORKER) == ["accept", "reject", "escalate"]

    act(incident, "accept", WORKER, "2026-09-28T09:00", complex=True)
    # Complex: 5 working days, skipping National Day (10-01..10-07) → end of Friday 10-09.
    assert (incident.state, incident.complex) == ("accepted", True)
    assert incident.resolve_due_at == at("2026-10-10T00:00")
    act(incident, "dispatch", OFFICIAL_, "2026-09-28T10:00", department="城市管理局")
    assert (incident.assignee, incident.department) == ("城市管理局", "城市管理局")
    assert "start" in workflow.allowed_actions(incident, CITY_MGMT)
    act(incident, "start", CITY_MGMT, "2026-09-28T11:00")
    act(incident, "request_extension", CITY_MGMT, "2026-09-30T09:00", days=1)
    assert incident.extension_requested_days == 1
    act(incident, "approve_extension", OFFICIAL_, "2026-09-30T10:00")
    # One more working day: the swapped working Saturday 10-10.
    assert incident.resolve_due_at == at("2026-10-11T00:00")
    assert (incident.extension_days, incident.extension_requested_days) == (1, None)
    act(incident, "resolve", CITY_MGMT, "2026-10-09T15:00", note="垃圾已清运")
    assert incident.resolved_at == at("2026-10-09T15:00")
    assert workflow.allowed_actions(incident, RESIDENT_) == ["evaluate"]
    act(incident, "evaluate", RESIDENT_, "2026-10-10T09:00", satisfied=True)
    assert (incident.state, incident.satisfaction) == ("evaluated", "satisfied")
    assert workflow.allowed_actions(incident, ADMIN) == []
    # Monday 00:00 to Friday 10-09 15:00: 3 days, National Day, then 1 day and 15 hours.
    assert sla.resolution_working_days(calendar, incident) == pytest.approx(4 + 15 / 24)

    log = [
        (e.action, e.actor, e.role, e.from_state, e.to_state, e.at, e.note)
        for e in events(city, incident)
    ]
    assert log == [
        ("accept", "wang", GRID_WORKER, "reported", "accepted", at("2026-09-28T09:00"), ""),
        ("dispatch", "zhao", OFFICIAL, "accepted", "dispatched", at("2026-09-28T10:00"), ""),
        ("start", "chen", DEPARTMENT, "dispatched", "in_progress", at("2026-09-28T11:00"), ""),
        ("request_extension", "chen", DEPARTMENT, "in_progress", "in_progress",
         at("2026-09-30T09:00"), ""),
        ("approve_extension", "zhao", OFFICIAL, "in_progress", "in_progress",
         at("2026-09-30T10:00"), ""),
        ("resolve", "chen", DEPARTMENT, "in_progress", "resolved", at("2026-10-09T15:00"),
         "垃圾已清运"),
        ("evaluate", RESIDENT_.name, RESIDENT, "resolved", "evaluated", at("2026-10-10T09:00"),
         ""),
    ]  # fmt: skip
    data = [e.data for e in events(city, incident)]
    assert data[0] == {"complex": True, "resolve_due_at": "2026-10-10T00:00:00+08:00"}
    assert data[4] == {"granted_days": 1, "resolve_due_at": "2026-10-11T00:00:00+08:00"}


def test_an_illegal_transition_names_the_state_and_writes_nothing(city, file, act):
    incident = file("2026-11-16T10:00")
    act(incident, "reject", OFFICIAL_, "2026-11-16T11:00", note="重复投诉 duplicate")
    assert (incident.state, incident.reject_reason) == ("rejected", "重复投诉 duplicate")
    before = len(events(city, incident))
    with pytest.raises(IllegalTransition, match="it is rejected") as caught:
        act(incident, "resolve", ADMIN, "2026-11-16T12:00", note="done")
    assert caught.value.details["allowed"] == []
    city.expire_all()
    assert city.get(Incident, incident.id).state == "rejected"
    assert city.get(Incident, incident.id).resolved_at is None
    assert len(events(city, incident)) == before

    accepted = file("2026-11-16T10:00")
    act(accepted, "accept", WORKER, "2026-11-16T10:30")
    with pytest.raises(IllegalTransition) as caught:
        act(accepted, "accept", WORKER, "2026-11-16T10:40")
    assert caught.value.details["allowed"] == ["reject", "dispatch", "suspend", "escalate"]


@pytest.mark.parametrize(
    ("actor", "action", "params", "why"),
    [
        (OTHER_WORKER, "accept", {}, "outside your scope"),
        (RESIDENT_, "accept", {}, "the resident role may not accept"),
        (CITY_MGMT, "accept", {}, "the department role may not accept"),
        (Actor("sun", OFFICIAL, scope=("370705002",)), "reject", {"note": "x"}, "outside"),
    ],
)
def test_wrong_role_or_scope_is_forbidden(file, act, actor, action, params, why):
    incident = file("2026-11-16T10:00")
    with pytest.raises(Forbidden, match=why):
        act(incident, action, actor, "2026-11-16T11:00", **params)
    assert incident.state == "reported"


def test_department_staff_act_only_on_what_is_theirs(city, file, act):
    incident = file("2026-11-16T10:00")
    act(incident, "accept", OFFICIAL_, "2026-11-16T10:30")
    act(incident, "dispatch", OFFICIAL_, "2026-11-16T10:40", department="司法局")
    with pytest.raises(Forbidden, match="not with your department"):
        act(incident, "start", CITY_MGMT, "2026-11-16T11:00")
    county_wide = Actor("zhou", DEPARTMENT, department="司法局")
    act(incident, "start", county_wide, "2026-11-16T11:00")
    assert incident.state == "in_progress"


def test_a_grid_worker_dispatches_only_to_themselves(file, act):
    incident = file("2026-11-16T10:00")
    act(incident, "accept", WORKER, "2026-11-16T10:30")
    with pytest.raises(Forbidden, match="only to themselves"):
        act(incident, "dispatch", WORKER, "2026-11-16T10:40", assignee="li")
    with pytest.raises(InputError) as caught:
        act(incident, "dispatch", WORKER, "2026-11-16T10:40")
    assert caught.value.field == "assignee"
    act(incident, "dispatch", WORKER, "2026-11-16T10:40", assignee="wang")
    assert incident.assignee == "wang"


def test_residents_evaluate_only_their_own_reports_and_administrators_not_at_all(file, act):
    incident = file("2026-11-16T10:00", state="resolved", resolved_at=at("2026-11-17T10:00"))
    with pytest.raises(Forbidden, match="not your report"):
        act(incident, "evaluate", Actor("someone", RESIDENT), "2026-11-17T11:00", satisfied=True)
    with pytest.raises(Forbidden, match="the administrator role may not evaluate"):
        act(incident, "evaluate", ADMIN, "2026-11-17T11:00", satisfied=True)


def test_an_incident_outside_every_grid_is_for_administrators_until_placed(file, act):
    incident = file("2026-11-16T10:00", grid_code=None)
    with pytest.raises(Forbidden, match="outside every grid"):
        act(incident, "accept", OFFICIAL_, "2026-11-16T11:00")
    act(incident, "reject", ADMIN, "2026-11-16T11:00", note="不在本区 not ours")
    assert incident.state == "rejected"


@pytest.mark.parametrize(
    ("action", "params", "field"),
    [
        ("reject", {}, "note"),
        ("reject", {"note": "   "}, "note"),
        ("reject", {"note": 5}, "note"),
        ("accept", {"days": 2}, "days"),
        ("accept", {"complex": "yes"}, "complex"),
        ("whistle", {}, "action"),
    ],
)
def test_bad_parameters_name_the_field(file, act, action, params, field):
    incident = file("2026-11-16T10:00")
    with pytest.raises(InputError) as caught:
        act(incident, action, ADMIN, "2026-11-16T11:00", **params)
    assert caught.value.field == field
    assert incident.state == "reported"


def test_unknown_incident_and_naive_time(city, settings, file):
    with pytest.raises(NotFound):
        workflow.act(city, settings, 999_999_999, "accept", ADMIN)
    incident = file("2026-11-16T10:00")
    with pytest.raises(InputError) as caught:
        workflow.act(city, settings, incident.id, "accept", ADMIN, now=datetime(2026, 11, 16))
    assert caught.value.field == "now"


def test_unsatisfied_evaluation_reopens(city, file, act):
    incident = file("2026-11-16T10:00")
    act(incident, "accept", WORKER, "2026-11-16T10:30")
    act(incident, "dispatch", WORKER, "2026-11-16T10:40", assignee="wang")
    act(incident, "resolve", WORKER, "2026-11-17T10:00", note="已清理")
    act(incident, "evaluate", RESIDENT_, "2026-11-17T12:00", satisfied=False, note="还有垃圾")
    assert (incident.state, incident.satisfaction, incident.reopened_count) == (
        "in_progress",
        "unsatisfied",
        1,
    )
    assert incident.resolved_at is None
    assert incident.resolve_due_at == at("2026-11-19T10:00")  # the resident's clock runs on
    act(incident, "resolve", WORKER, "2026-11-18T10:00", note="彻底清理")
    act(incident, "evaluate", WORKER, "2026-11-18T15:00", satisfied=True, note="电话回访")
    assert (incident.state, incident.satisfaction, incident.reopened_count) == (
        "evaluated",
        "satisfied",
        1,
    )
    steps = [(e.action, e.to_state) for e in events(city, incident)][-3:]
    assert steps == [
        ("evaluate", "in_progress"),
        ("resolve", "resolved"),
        ("evaluate", "evaluated"),
    ]


def test_suspend_and_resume_move_the_deadline_by_the_working_time_suspended(
    city, file, act, calendar
):
    incident = file("2026-11-18T10:00")  # a Wednesday
    assert incident.resolve_due_at == at("2026-11-23T10:00")
    act(incident, "accept", WORKER, "2026-11-18T11:00")
    act(incident, "dispatch", WORKER, "2026-11-18T11:10", assignee="wang")
    act(incident, "start", WORKER, "2026-11-18T11:20")
    act(incident, "suspend", OFFICIAL_, "2026-11-20T15:00", note="等待产权单位 waiting for owner")
    assert (incident.state, incident.suspended_from) == ("suspended", "in_progress")
    assert incident.suspended_at == at("2026-11-20T15:00")
    assert not sla.overdue_status(calendar, incident, at("2026-11-23T12:00")).overdue
    with pytest.raises(IllegalTransition):
        act(incident, "request_extension", WORKER, "2026-11-21T10:00", days=2)

    old_due = incident.resolve_due_at
    act(incident, "resume", OFFICIAL_, "2026-11-23T09:00")
    # Friday 15:00 → Monday 09:00 is 9 + 9 = 18 working hours (the weekend counts none).
    assert incident.paused_working_s == 18 * HOUR
    assert incident.resolve_due_at == at("2026-11-24T04:00")
    assert calendar.working_seconds(old_due, incident.resolve_due_at) == 18 * HOUR
    assert (incident.state, incident.suspended_from, incident.suspended_at) == (
        "in_progress",
        None,
        None,
    )
    assert incident.accept_due_at == at("2026-11-19T10:00")  # accepted: not moved
    # Recomputing from scratch agrees with moving it.
    category = city.get(IncidentCategory, incident.category)
    assert sla.deadlines_of(calendar, category, incident).resolve_due_at == at("2026-11-24T04:00")
    assert events(city, incident)[-1].data["suspended_working_s"] == 18 * HOUR


def test_extension_requests_are_granted_in_part_or_denied_once(file, act):
    incident = file("2026-11-16T10:00")  # a Monday; resolve due Thursday 10:00
    act(incident, "accept", WORKER, "2026-11-16T10:30")
    act(incident, "dispatch", WORKER, "2026-11-16T10:40", assignee="wang")
    with pytest.raises(IllegalTransition, match="no extension has been requested"):
        act(incident, "approve_extension", OFFICIAL_, "2026-11-16T11:00")
    for days in (0, 11, True):
        with pytest.raises(InputError, match="days|working days"):
            act(incident, "request_extension", WORKER, "2026-11-16T11:00", days=days)
    act(incident, "request_extension", WORKER, "2026-11-17T09:00", days=3)
    with pytest.raises(IllegalTransition, match="awaits a decision"):
        act(incident, "request_extension", WORKER, "2026-11-17T09:10", days=4)
    with pytest.raises(Forbidden):
        act(incident, "approve_extension", WORKER, "2026-11-17T10:00")
    with pytest.raises(InputError, match="cannot grant 5"):
        act(incident, "approve_extension", OFFICIAL_, "2026-11-17T10:00", days=5)
    act(incident, "approve_extension", OFFICIAL_, "2026-11-17T10:00", days=2)
    # Thursday 10:00 plus two working days, over the weekend: Monday 10:00.
    assert incident.resolve_due_at == at("2026-11-23T10:00")
    act(incident, "request_extension", WORKER, "2026-11-18T09:00", days=1)
    act(incident, "deny_extension", OFFICIAL_, "2026-11-18T10:00", note="不予延期")
    assert (incident.extension_days, incident.extension_requested_days) == (2, None)
    assert incident.resolve_due_at == at("2026-11-23T10:00")


def test_escalation_up_to_the_county_and_no_further(city, file, act, calendar):
    incident = file("2026-11-16T10:00")
    act(incident, "accept", WORKER, "2026-11-16T10:30")
    with pytest.raises(InputError) as caught:
        act(incident, "escalate", WORKER, "2026-11-16T11:00")
    assert caught.value.field == "note"
    act(incident, "escalate", WORKER, "2026-11-16T11:00", note="需社区协调 needs the community")
    assert (incident.state, incident.level, incident.escalation_count) == (
        "escalated",
        "community",
        1,
    )
    # A report-in deadline for the community, one working day from the whistle; the
    # acceptance deadline, one working day from the report, stays for the reports.
    assert incident.report_in_due_at == at("2026-11-17T11:00")
    assert incident.accept_due_at == at("2026-11-17T10:00")
    status = sla.overdue_status(calendar, incident, at("2026-11-17T12:30"))
    assert (status.accept_overdue, status.report_in_overdue) == (False, True)
    assert status.report_in_overdue_h == pytest.approx(1.5)
    assert events(city, incident)[-1].data == {
        "to_level": "community",
        "previous_report_in_due_at": None,
        "report_in_due_at": "2026-11-17T11:00:00+08:00",
    }

    grid_official = Actor("qian", OFFICIAL, scope=(G1,))
    with pytest.raises(Forbidden, match="escalated to community 370705001001"):
        act(incident, "report_in", grid_official, "2026-11-16T14:00")
    assert "report_in" not in workflow.allowed_actions(incident, grid_official)
    community = Actor("sun", OFFICIAL, scope=("370705001001",))
    assert "report_in" in workflow.allowed_actions(incident, community)
    act(incident, "report_in", community, "2026-11-16T14:00")
    assert (incident.state, incident.assignee) == ("in_progress", "sun")
    # Reported in: nothing more is awaited, and the log keeps the deadline it answered.
    assert incident.report_in_due_at is None
    assert events(city, incident)[-1].data == {
        "assignee": "sun",
        "report_in_due_at": "2026-11-17T11:00:00+08:00",
    }
    assert incident.accepted_at == at("2026-11-16T10:30")  # the first acceptance stands

    act(incident, "escalate", community, "2026-11-17T09:00", note="社区解决不了 beyond us")
    township_dept = Actor("wu", DEPARTMENT, scope=("370705001",), department="应急管理局")
    act(incident, "report_in", township_dept, "2026-11-17T10:00")
    assert (incident.level, incident.assignee, incident.department) == (
        "township",
        "应急管理局",
        "应急管理局",
    )
    act(incident, "escalate", OFFICIAL_, "2026-11-18T09:00", note="吹哨到区 to the county")
    assert (incident.level, incident.escalation_count) == ("county", 3)
    assert "escalate" not in workflow.allowed_actions(incident, ADMIN)
    with pytest.raises(IllegalTransition, match="already at the county level"):
        act(incident, "escalate", ADMIN, "2026-11-18T10:00", note="again")
    assert incident.level == "county"
    levels = [(e.action, e.level) for e in events(city, incident)]
    assert levels[-5:] == [
        ("escalate", "community"),
        ("report_in", "community"),
        ("escalate", "township"),
        ("report_in", "township"),
        ("escalate", "county"),
    ]


def test_deadlines_reaching_into_2027_are_an_alert_not_a_crash(city, file, act):
    incident = file("2026-12-29T10:00")
    # Filed on Tuesday 12-29: acceptance is due this year, resolution falls into 2027.
    assert incident.accept_due_at == at("2026-12-30T10:00")
    assert incident.resolve_due_at is None and "2027" in incident.deadline_alert
    act(incident, "accept", WORKER, "2026-12-29T11:00", complex=True)
    assert incident.state == "accepted"
    assert incident.resolve_due_at is None
    assert "2027" in incident.deadline_alert
    assert incident.accept_due_at == at("2026-12-30T10:00")

    other = file("2026-12-30T10:00")
    act(other, "escalate", WORKER, "2026-12-31T10:00", note="年底吹哨")
    assert (other.state, other.level, other.report_in_due_at) == ("escalated", "community", None)
    assert other.accept_due_at == at("2026-12-31T10:00")
    assert "2027" in other.deadline_alert


def test_reporting_in_clears_an_alert_that_was_only_about_the_report_in(city, file, act):
    # Thursday 12-24: accept due Friday 10:00, resolve due Tuesday 12-29 10:00, both known.
    incident = file("2026-12-24T10:00")
    assert (incident.accept_due_at, incident.resolve_due_at) == (
        at("2026-12-25T10:00"),
        at("2026-12-29T10:00"),
    )
    act(incident, "escalate", OFFICIAL_, "2026-12-31T10:00", note="逾期未受理")
    assert incident.report_in_due_at is None and "2027" in incident.deadline_alert
    community = Actor("sun", OFFICIAL, scope=("370705001001",))
    act(incident, "report_in", community, "2026-12-31T11:00")
    assert (incident.report_in_due_at, incident.deadline_alert) == (None, None)
    # Never accepted at the grid: reporting in is the acceptance, late on the first clock.
    assert incident.accepted_at == at("2026-12-31T11:00") > incident.accept_due_at


def test_a_report_in_within_the_first_acceptance_time_is_accepted_on_time(city, file, act):
    incident = file("2026-11-16T10:00")  # accept due Tuesday 10:00
    act(incident, "escalate", WORKER, "2026-11-16T11:00", note="不归网格管 not a grid matter")
    assert incident.report_in_due_at == at("2026-11-17T11:00")
    community = Actor("sun", OFFICIAL, scope=("370705001001",))
    act(incident, "report_in", community, "2026-11-17T09:00")
    assert incident.accepted_at == at("2026-11-17T09:00") <= incident.accept_due_at


def test_the_event_log_cannot_be_rewritten(city, file, act):
    incident = file("2026-11-16T10:00")
    act(incident, "accept", WORKER, "2026-11-16T10:30")
    with pytest.raises(DBAPIError, match="append-only"), city.begin_nested():
        city.execute(
            update(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id)
            .values(note="rewritten")
        )
    count = select(func.count()).where(IncidentEvent.incident_id == incident.id)
    assert city.scalar(count) == 1


# -- the command line, on a committed database of this module's own ----------------------


@pytest.fixture(scope="module")
def geogrid(make_database, base_settings, tmp_path_factory):
    """Invoke ``geogrid`` on a database with the tiny city; also returns its engine."""
    from click.testing import CliRunner
    from sqlalchemy.orm import Session

    from geogrid.cli import main

    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    with Session(engine) as session:
        load_tiny_city(session, settings, tmp_path_factory.mktemp("city"))
        session.commit()
    env = {"GEOGRID_DATABASE_URL": settings.database_url}

    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke.engine = engine
    return invoke


def test_the_commands_act_and_show_the_log(geogrid):
    from sqlalchemy.orm import Session

    with Session(geogrid.engine) as session:
        incident = add_incident(
            session,
            grid_code=G1,
            reported_at=at("2026-11-16T10:00"),
            accept_due_at=at("2026-11-17T10:00"),
            resolve_due_at=at("2026-11-19T10:00"),
        )
        incident_id = str(incident.id)
        session.commit()
    worker = ("--user", "wang", "--role", "grid_worker", "--scope", G1)

    dry = geogrid("incidents", "act", incident_id, "accept", *worker).output
    assert f"incident {incident_id}: would go reported → accepted" in dry
    assert "dry run: nothing was written" in dry
    assert geogrid("incidents", "events", incident_id, "--json").output.strip() == "[]"

    done = geogrid(
        "incidents", "act", incident_id, "accept", "--complex", *worker,
        "--now", "2026-11-16T11:00", "--commit",
    ).output  # fmt: skip
    assert "reported → accepted, level grid" in done
    assert "resolve due 2026-11-23 10:00" in done  # complex: 5 working days
    assert "next for wang: reject, dispatch, escalate" in done
    geogrid(
        "incidents", "act", incident_id, "dispatch", "--assignee", "wang", *worker,
        "--now", "2026-11-16T11:30", "--commit",
    )  # fmt: skip
    refused = geogrid("incidents", "act", incident_id, "resolve", *worker, "--commit", ok=False)
    assert refused.exit_code == 1
    assert "error [note]: resolve needs a note" in refused.output

    log = json.loads(geogrid("incidents", "events", incident_id, "--json").output)
    assert [(e["action"], e["from_state"], e["to_state"], e["actor"]) for e in log] == [
        ("accept", "reported", "accepted", "wang"),
        ("dispatch", "accepted", "dispatched", "wang"),
    ]
    assert log[0]["at"] == "2026-11-16T11:00:00+08:00"
    text = geogrid("incidents", "events", incident_id).output
    assert "2026-11-16 11:30  dispatch" in text and "wang (grid_worker)" in text
    outsider = geogrid(
        "incidents", "events", incident_id, "--role", "grid_worker", "--scope", G3, ok=False
    )
    assert outsider.exit_code == 1 and "outside the scope" in outsider.output

    official = ("--user", "zhao", "--role", "official", "--scope", "370705")
    whistled = geogrid(
        "incidents", "act", incident_id, "escalate", "--note", "需社区协调", *official,
        "--now", "2026-11-16T12:00", "--commit",
    ).output  # fmt: skip
    assert "dispatched → escalated, level community" in whistled
    # The first acceptance deadline stays; the community's report-in deadline is added.
    assert (
        "accept due 2026-11-17 10:00, report in due 2026-11-17 12:00, "
        "resolve due 2026-11-23 10:00" in whistled
    )
