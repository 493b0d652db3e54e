"""The demo incidents: one seed, one year; a realistic rhythm; a workflow the real one allows."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from geogrid import escalation, workflow
from geogrid.demo_incidents import generate_incidents, load_demo_incidents
from geogrid.models import (
    CLOSED_STATES,
    ESCALATION_LEVELS,
    Incident,
    IncidentBreach,
    IncidentCategory,
    IncidentEvent,
)
from geogrid.pointindex import GridIndex
from geogrid.workdays import SHANGHAI, WorkCalendar
from tests.factories import load_tiny_city, tiny_city

NOW = datetime(2026, 11, 29, 15, 30, tzinfo=SHANGHAI)
COUNT = 3000


@pytest.fixture(scope="module")
def grids():
    areas = tiny_city()
    grids = areas[areas["level"] == "grid"].reset_index(drop=True)
    return grids.assign(kind="comprehensive")


@pytest.fixture(scope="module")
def index(grids):
    return GridIndex.build(list(grids["code"]), grids.geometry.values, metric_epsg=4549)


@pytest.fixture
def categories(db):
    return {c.code: c for c in db.scalars(select(IncidentCategory))}


@pytest.fixture
def demo(grids, index, categories):
    calendar = WorkCalendar.from_package()
    return generate_incidents(
        grids, index, categories, calendar, seed=3, now=NOW, count=COUNT, generation=1
    )


def test_same_seed_same_rows_other_seed_other_rows(demo, grids, index, categories):
    calendar = WorkCalendar.from_package()
    again = generate_incidents(
        grids, index, categories, calendar, seed=3, now=NOW, count=COUNT, generation=1
    )
    pd.testing.assert_frame_equal(demo.incidents, again.incidents)
    pd.testing.assert_frame_equal(demo.events, again.events)
    pd.testing.assert_frame_equal(demo.breaches, again.breaches)
    other = generate_incidents(
        grids, index, categories, calendar, seed=4, now=NOW, count=COUNT, generation=1
    )
    assert not other.incidents["reported_at"].equals(demo.incidents["reported_at"])


def test_a_year_with_a_weekly_and_daily_rhythm(demo):
    incidents = demo.incidents
    assert len(incidents) == COUNT and incidents["idempotency_key"].is_unique
    local = incidents["reported_at"].dt.tz_convert(SHANGHAI)
    assert local.min() >= pd.Timestamp("2025-11-29", tz=SHANGHAI) and local.max() < NOW
    calendar = WorkCalendar.from_package()
    days = pd.date_range("2025-11-30", "2026-11-28", freq="D")
    working = np.array([calendar.is_workday(day.date()) for day in days])
    per_day = local.dt.floor("D").dt.tz_localize(None).value_counts().reindex(days, fill_value=0)
    assert per_day[working].mean() > 1.4 * per_day[~working].mean()
    hours = local.dt.hour
    assert hours.between(8, 17).mean() > 0.6 and hours.between(0, 5).mean() < 0.03
    mix = incidents["category"].value_counts(normalize=True)
    assert mix.index[0] == "environment" and mix["other"] < 0.06


def test_most_resolved_on_time_some_escalated_reopened_and_open(demo):
    incidents = demo.incidents
    resolved = incidents[incidents["resolved_at"].notna()]
    on_time = (resolved["resolved_at"] <= resolved["resolve_due_at"]).mean()
    assert 0.75 < on_time < 0.97
    accepted = incidents[incidents["accepted_at"].notna()]
    assert (accepted["accepted_at"] <= accepted["accept_due_at"]).mean() > 0.9
    assert 0.05 < (incidents["escalation_count"] > 0).mean() < 0.3
    assert (incidents["reopened_count"] > 0).sum() > 20
    assert (incidents["satisfaction"] == "satisfied").mean() > 0.6
    still_open = ~incidents["state"].isin([*CLOSED_STATES, "resolved"])
    assert 0 < still_open.sum() < 0.05 * len(incidents)
    assert (incidents["state"] == "rejected").sum() > 0
    # Outside every grid: placed by hand, the grid they came from kept.
    placed = incidents[incidents["placement"] == "placed"]
    assert len(placed) > 0 and placed["grid_code"].notna().all()
    assert all('"placement": "outside"' in detail for detail in placed["placement_detail"])


def test_escalations_match_their_breaches_and_levels(demo):
    events, incidents, breaches = demo.events, demo.incidents, demo.breaches
    automatic = events[(events["action"] == "escalate") & (events["role"] == "system")]
    assert len(automatic) == len(breaches) > 0
    assert set(breaches["deadline"]) == {"accept", "resolve"}
    assert not breaches.duplicated(["idempotency_key", "deadline", "due_at"]).any()
    by_key = incidents.set_index("idempotency_key")
    for breach in breaches.itertuples():
        due = by_key.loc[breach.idempotency_key, f"{breach.deadline}_due_at"]
        assert breach.due_at == due and breach.escalated_at > due
    escalations = events[events["action"] == "escalate"].groupby("idempotency_key").size()
    counts = by_key["escalation_count"]
    assert (counts[escalations.index] == escalations).all()
    levels = by_key["level"].map(ESCALATION_LEVELS.index)
    assert (levels == counts).all()


def test_every_step_is_one_the_workflow_allows(demo):
    """Each event's action is allowed from the state before it and leads where the table says."""
    incidents = demo.incidents.set_index("idempotency_key")
    for key, steps in demo.events.groupby("idempotency_key", sort=False):
        assert steps["action"].iloc[0] == "report" and steps["at"].is_monotonic_increasing
        for step in steps.itertuples():
            if step.action in ("report", "place"):
                continue
            transition = workflow.ACTIONS[step.action]
            assert step.from_state in transition.from_states, (key, step)
            assert step.role in transition.roles, (key, step)
            if transition.to_state in workflow_states():
                assert step.to_state == transition.to_state, (key, step)
        last = steps.iloc[-1]
        assert incidents.loc[key, "state"] == last["to_state"]
        assert incidents.loc[key, "level"] == last["level"]


def workflow_states():
    from geogrid.models import INCIDENT_STATES

    return INCIDENT_STATES


def test_loaded_through_the_bulk_path_once_and_escalate_overdue_finds_little(
    db, settings, tmp_path
):
    load_tiny_city(db, settings, tmp_path)
    first = load_demo_incidents(db, settings, seed=5, count=400, now=NOW)
    assert first.generated == first.inserted == 400
    assert db.scalar(select(func.count()).select_from(Incident)) == 400
    assert db.scalar(select(func.count()).select_from(IncidentEvent)) == first.events > 2000
    assert db.scalar(select(func.count()).select_from(IncidentBreach)) == first.breaches > 0
    again = load_demo_incidents(db, settings, seed=5, count=400, now=NOW)
    assert (again.inserted, again.events, again.breaches) == (0, 0, 0)
    # Every deadline missed more than a few minutes ago was escalated by the demo itself.
    run = escalation.escalate_overdue(db, settings, now=NOW)
    late = [e for e in run.escalated if e.due_at.astimezone(SHANGHAI) < NOW - pd.Timedelta("5min")]
    assert late == []


def test_cli_adds_demo_incidents_to_the_current_generation(make_database, base_settings, tmp_path):
    from click.testing import CliRunner

    from geogrid.cli import main
    from geogrid.db import make_sessionmaker, session_scope

    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    with session_scope(make_sessionmaker(engine)) as session:
        load_tiny_city(session, settings, tmp_path)
    env = {"GEOGRID_DATABASE_URL": settings.database_url}

    def invoke(*args):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    dry = invoke("demo", "incidents", "--per-year", "200")
    assert "demo incidents: 200 of 200 new" in dry and "dry run" in dry
    assert "demo incidents: 200 of 200 new" in invoke(
        "demo", "incidents", "--per-year", "200", "--commit"
    )
    assert "0 of 200 new" in invoke("demo", "incidents", "--per-year", "200", "--commit")
