"""Escalating missed deadlines: once per breach, level by level, even with two runs at once."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import pytest
from click.testing import CliRunner
from factories import add_incident, load_tiny_city
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geogrid import escalation, sla, workflow
from geogrid.actors import GRID_WORKER, OFFICIAL, SYSTEM, Actor
from geogrid.errors import InputError
from geogrid.models import Incident, IncidentBreach, IncidentEvent
from geogrid.workdays import SHANGHAI, WorkCalendar

G1, G3, G4 = "370705001001001", "370705002001001", "370705002001002"


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


def late(session: Session, state: str, *, grid_code: str = G1, **fields) -> Incident:
    """An incident reported Monday 2026-11-16 10:00: accept due Tue 10:00, resolve due Thu."""
    values = {
        "accept_due_at": at("2026-11-17T10:00"),
        "resolve_due_at": at("2026-11-19T10:00"),
    } | fields
    return add_incident(
        session, grid_code=grid_code, reported_at=at("2026-11-16T10:00"), state=state, **values
    )


def breaches(db) -> set[tuple[int, str, datetime, str]]:
    rows = db.execute(
        select(
            IncidentBreach.incident_id,
            IncidentBreach.deadline,
            IncidentBreach.due_at,
            IncidentBreach.level,
        )
    )
    return {tuple(row) for row in rows}


def test_missed_deadlines_escalate_once_and_a_new_deadline_again(city, settings, calendar):
    unaccepted = late(city, "reported")
    unresolved = late(city, "in_progress", accepted_at=at("2026-11-16T11:00"))
    on_time = late(city, "in_progress", resolve_due_at=at("2026-11-30T10:00"))
    suspended = late(city, "suspended", suspended_from="in_progress")
    closed = late(city, "evaluated")
    top = late(city, "in_progress", level="county")
    no_deadline = late(city, "reported", accept_due_at=None, resolve_due_at=None)

    first = escalation.escalate_overdue(
        city, settings, now=at("2026-11-19T12:00"), calendar=calendar
    )
    assert sorted(first.escalated) == [
        (unaccepted.id, "accept", at("2026-11-17T10:00"), "community"),
        (unaccepted.id, "resolve", at("2026-11-19T10:00"), "community"),
        (unresolved.id, "resolve", at("2026-11-19T10:00"), "community"),
    ]
    assert (first.already_escalated, first.at_top) == (0, 1)
    # Both deadlines of the never-accepted one were missed by the first run: one whistle.
    assert (unaccepted.state, unaccepted.level, unaccepted.escalation_count) == (
        "escalated",
        "community",
        1,
    )
    # The community must report in within a working day; the missed acceptance stays.
    assert unaccepted.report_in_due_at == at("2026-11-20T12:00")
    assert unaccepted.accept_due_at == at("2026-11-17T10:00")
    for untouched in (on_time, suspended, closed, top, no_deadline):
        assert untouched.escalation_count == 0
    assert top.level == "county"
    assert (top.id, "resolve", at("2026-11-19T10:00"), "county") in breaches(city)
    event = city.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == unresolved.id)
    ).one()
    assert (event.actor, event.role, event.action) == ("geogrid", SYSTEM, "escalate")
    assert (event.from_state, event.to_state, event.level) == (
        "in_progress",
        "escalated",
        "community",
    )
    assert event.note == "missed the resolve deadline due 2026-11-19 10:00"
    assert event.at == at("2026-11-19T12:00")

    again = escalation.escalate_overdue(
        city, settings, now=at("2026-11-19T12:05"), calendar=calendar
    )
    assert again.escalated == []
    assert (again.already_escalated, again.at_top) == (3, 0)  # two resolve breaches, the top one

    # Nobody reported in by Friday 12:00: the missed report-in escalates once more.
    later = escalation.escalate_overdue(
        city, settings, now=at("2026-11-20T12:30"), calendar=calendar
    )
    assert sorted(later.escalated) == [
        (unaccepted.id, "report_in", at("2026-11-20T12:00"), "township"),
        (unresolved.id, "report_in", at("2026-11-20T12:00"), "township"),
    ]
    # The missed acceptance is not awaited any more, so not counted again: the resolutions.
    assert (later.already_escalated, later.at_top) == (3, 0)
    assert unaccepted.escalation_count == 2
    assert unaccepted.report_in_due_at == at("2026-11-23T12:30")  # Friday → Monday
    assert unaccepted.accept_due_at == at("2026-11-17T10:00")
    assert len(breaches(city)) == 6
    assert {(kind, level) for id_, kind, _, level in breaches(city) if id_ == unaccepted.id} == {
        ("accept", "community"),
        ("resolve", "community"),
        ("report_in", "township"),
    }
    event = city.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == unaccepted.id)
        .order_by(IncidentEvent.id.desc())
    ).first()
    assert event.note == "missed the report_in deadline due 2026-11-20 12:00"
    assert event.data == {
        "to_level": "township",
        "previous_report_in_due_at": "2026-11-20T12:00:00+08:00",
        "report_in_due_at": "2026-11-23T12:30:00+08:00",
    }
    quiet = escalation.escalate_overdue(
        city, settings, now=at("2026-11-20T12:35"), calendar=calendar
    )
    assert (quiet.escalated, quiet.already_escalated) == ([], 3)


def test_a_report_in_in_time_ends_the_wait_and_nothing_more_escalates(city, settings, calendar):
    incident = late(city, "reported")
    escalation.escalate_overdue(city, settings, now=at("2026-11-17T12:00"), calendar=calendar)
    assert (incident.state, incident.report_in_due_at) == ("escalated", at("2026-11-18T12:00"))
    community = Actor("sun", OFFICIAL, scope=("370705001001",))
    workflow.act(
        city, settings, incident.id, "report_in", community,
        now=at("2026-11-18T09:00"), calendar=calendar,
    )  # fmt: skip
    assert (incident.state, incident.report_in_due_at) == ("in_progress", None)
    run = escalation.escalate_overdue(city, settings, now=at("2026-11-18T13:00"), calendar=calendar)
    assert run.escalated == [] and incident.level == "community"
    assert {kind for _, kind, _, _ in breaches(city)} == {"accept"}


def test_the_candidate_query_reads_only_open_incidents_through_the_partial_index(city):
    late(city, "reported")
    query = select(Incident.id).where(sla.overdue_condition(at("2026-11-19T12:00")))
    compiled = query.compile(dialect=city.bind.dialect, compile_kwargs={"render_postcompile": True})
    city.execute(text("SET LOCAL enable_seqscan = off"))
    plan = city.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars().all()
    assert any("ix_incident_open_state" in line for line in plan), plan


def test_overdue_list_is_what_the_actor_answers_for(city, calendar):
    mine = late(city, "reported")
    late(city, "in_progress", grid_code=G3)
    late(city, "in_progress", resolve_due_at=at("2026-11-30T10:00"))
    worker = Actor("wang", GRID_WORKER, scope=(G1,))
    listed = escalation.overdue_incidents(
        city, worker, now=at("2026-11-18T10:00"), calendar=calendar
    )
    assert [(incident.id, status.accept_overdue_h) for incident, status in listed] == [
        (mine.id, 24.0)
    ]
    everyone = Actor("zhao", OFFICIAL, scope=("370705",))
    assert len(escalation.overdue_incidents(city, everyone, now=at("2026-11-20T10:00"))) == 2
    with pytest.raises(InputError) as caught:
        escalation.overdue_incidents(city, worker, limit=0)
    assert caught.value.field == "limit"


# -- on a committed database: two runs at once, and the command line ----------------------


@pytest.fixture(scope="module")
def committed(make_database, base_settings, tmp_path_factory):
    """A database of this module's own with the tiny city committed, and its settings."""
    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    with Session(engine) as session:
        load_tiny_city(session, settings, tmp_path_factory.mktemp("city"))
        session.commit()
    return engine, settings


def test_two_runs_at_once_escalate_each_breach_once(committed, calendar):
    engine, settings = committed
    with Session(engine) as session:
        ids = [late(session, "reported", grid_code=G1).id for _ in range(40)]
        session.commit()
    start = threading.Barrier(2)
    runs: list[escalation.EscalationRun] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with Session(engine) as session:
                start.wait()
                runs.append(
                    escalation.escalate_overdue(
                        session, settings, now=at("2026-11-17T12:00"), calendar=calendar
                    )
                )
                session.commit()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    escalated = [item.incident_id for one in runs for item in one.escalated]
    assert sorted(escalated) == ids
    # Each run saw every breach once: escalated by itself or already by the other.
    assert all(len(one.escalated) + one.already_escalated == 40 for one in runs)
    with Session(engine) as session:
        rows = session.execute(
            select(Incident.level, Incident.escalation_count).where(Incident.id.in_(ids))
        ).all()
        assert set(rows) == {("community", 1)}
        events = select(func.count()).where(
            IncidentEvent.incident_id.in_(ids), IncidentEvent.action == "escalate"
        )
        assert session.scalar(events) == 40
        breached = select(func.count()).where(IncidentBreach.incident_id.in_(ids))
        assert session.scalar(breached) == 40


def test_a_run_that_waited_for_another_sees_its_breaches_and_escalates_nothing(committed, calendar):
    engine, settings = committed
    now = at("2026-11-17T12:00")
    with Session(engine) as session:
        ids = [late(session, "reported", grid_code=G3).id for _ in range(5)]
        session.commit()
    first = Session(engine)
    ahead = escalation.escalate_overdue(first, settings, now=now, calendar=calendar)
    assert sorted(item.incident_id for item in ahead.escalated) == ids
    second: list[escalation.EscalationRun] = []
    waiting = threading.Thread(
        target=lambda: second.append(_run_and_commit(engine, settings, now, calendar))
    )
    waiting.start()
    try:
        # The second run found the same candidates and now waits for the first one's locks.
        _wait_for_a_lock_wait(engine)
    finally:
        first.commit()
        first.close()
    waiting.join(timeout=60)
    assert second and second[0].escalated == []
    assert second[0].already_escalated == 5
    with Session(engine) as session:
        counts = select(Incident.escalation_count).where(Incident.id.in_(ids))
        assert set(session.scalars(counts)) == {1}


def _run_and_commit(engine, settings, now, calendar) -> escalation.EscalationRun:
    with Session(engine) as session:
        run = escalation.escalate_overdue(session, settings, now=now, calendar=calendar)
        session.commit()
    return run


def _wait_for_a_lock_wait(engine) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as connection:
        for _ in range(200):
            if connection.execute(waiting).scalar():
                return
            time.sleep(0.05)
    raise AssertionError("the second run never waited for the first one's lock")


def test_the_commands_escalate_and_list_overdue(committed):
    engine, settings = committed
    with Session(engine) as session:
        incident_id = late(
            session, "in_progress", grid_code=G4, accepted_at=at("2026-11-16T11:00")
        ).id
        session.commit()
    env = {"GEOGRID_DATABASE_URL": engine.url.render_as_string(False)}

    def geogrid(*args: str) -> str:
        from geogrid.cli import main

        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(
        geogrid("incidents", "overdue", "--now", "2026-11-19T12:00", "--scope", G4,
                "--role", "grid_worker", "--json")
    )  # fmt: skip
    assert [(row["id"], row["resolve_overdue_h"]) for row in listed] == [(incident_id, 2.0)]

    dry = geogrid("incidents", "escalate-overdue", "--now", "2026-11-19T12:00")
    line = f"incident {incident_id}: missed the resolve deadline (due 2026-11-19 10:00); "
    assert line + "would escalate to community" in dry
    assert "dry run: nothing was written" in dry
    with Session(engine) as session:
        assert session.get(Incident, incident_id).level == "grid"

    done = geogrid("incidents", "escalate-overdue", "--now", "2026-11-19T12:00", "--commit")
    assert line + "escalated to community" in done
    repeat = geogrid("incidents", "escalate-overdue", "--now", "2026-11-19T12:00", "--commit")
    assert f"incident {incident_id}:" not in repeat
    with Session(engine) as session:
        assert session.get(Incident, incident_id).level == "community"
