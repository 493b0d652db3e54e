"""Service levels: known deadlines, overdue status in working hours, time to resolve, alerts."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from factories import add_incident, load_tiny_city
from sqlalchemy import select

from geogrid import sla
from geogrid.errors import CalendarNotCovered
from geogrid.models import Incident, IncidentCategory
from geogrid.workdays import SHANGHAI, WorkCalendar

G1 = "370705001001001"
HOUR = 3600


def at(text: str) -> datetime:
    """A Shanghai moment from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return WorkCalendar.from_package()


@pytest.fixture
def environment() -> IncidentCategory:
    """The seeded category's deadlines: accept 1, resolve 3, complex 5 working days."""
    return IncidentCategory(code="environment", accept_days=1, resolve_days=3, complex_days=5)


@pytest.mark.parametrize(
    ("reported", "complex_", "extension", "accept", "resolve"),
    [
        # Wednesday before National Day: 3 working days land on the swapped Saturday 10-10.
        ("2026-09-30T10:00", False, 0, "2026-10-08T10:00", "2026-10-10T10:00"),
        ("2026-09-30T10:00", True, 0, "2026-10-08T10:00", "2026-10-13T10:00"),
        # Friday 09-25 is the Mid-Autumn holiday: the clock starts on Monday 09-28 00:00.
        ("2026-09-25T16:00", False, 0, "2026-09-29T00:00", "2026-10-01T00:00"),
        ("2026-09-25T16:00", True, 0, "2026-10-10T00:00", "2026-10-10T00:00"),
        ("2026-09-25T16:00", True, 1, "2026-09-29T00:00", "2026-10-11T00:00"),
    ],
)
def test_known_deadlines(calendar, environment, reported, complex_, extension, accept, resolve):
    due = sla.deadlines(
        calendar, environment, at(reported), complex_=complex_, extension_days=extension
    )
    if not complex_ or extension:
        assert due.accept_due_at == at(accept)
    assert due.resolve_due_at == at(resolve)
    assert due.alert is None


def test_time_suspended_moves_the_resolution_deadline_on_the_working_clock(calendar, environment):
    # 18 working hours from Monday 2026-11-23 10:00 is Tuesday 04:00.
    due = sla.deadlines(calendar, environment, at("2026-11-18T10:00"), paused_working_s=18 * HOUR)
    assert due.accept_due_at == at("2026-11-19T10:00")
    assert due.resolve_due_at == at("2026-11-24T04:00")
    # Across a weekend: Friday 20:00 plus 6 working hours is Monday 02:00.
    assert sla.add_working_seconds(calendar, at("2026-11-20T20:00"), 6 * HOUR) == at(
        "2026-11-23T02:00"
    )


def test_a_deadline_in_2027_is_an_alert_and_keeps_the_deadline_that_is_known(calendar, environment):
    assert 2027 not in calendar.covered_years()
    due = sla.deadlines(calendar, environment, at("2026-12-30T10:00"))
    assert due.accept_due_at == at("2026-12-31T10:00")
    assert due.resolve_due_at is None
    assert due.alert.startswith("calendar_not_covered") and "2027" in due.alert


def test_explicit_calendar_calls_still_raise_for_2027(calendar):
    with pytest.raises(CalendarNotCovered, match="2027"):
        sla.add_working_seconds(calendar, at("2026-12-31T10:00"), 2 * 86_400)
    with pytest.raises(CalendarNotCovered):
        calendar.add_working_days(at("2026-12-31T10:00"), 1)


def _incident(**fields) -> Incident:
    values = {
        "state": "reported",
        "reported_at": at("2026-09-30T10:00"),
        "accept_due_at": at("2026-10-08T10:00"),
        # Set on every one, so that only the state decides whether it is awaited.
        "report_in_due_at": at("2026-10-09T10:00"),
        "resolve_due_at": at("2026-10-10T10:00"),
        "paused_working_s": 0.0,
    }
    return Incident(**(values | fields))


@pytest.mark.parametrize(
    ("state", "when", "accept_h", "report_in_h", "resolve_h"),
    [
        ("reported", "2026-10-08T09:00", None, None, None),
        ("reported", "2026-10-08T15:00", 5, None, None),
        # The swapped Saturday is a working day: accept 14 + 24 + 12 h, resolve 2 h late.
        ("reported", "2026-10-10T12:00", 50, None, 2),
        # Sunday counts nothing: the resolution deadline is 14 working hours behind.
        ("in_progress", "2026-10-11T12:00", None, None, 14),
        # Escalated, it waits for the report-in (Friday 14 h + Saturday 24 h), no longer
        # for the first acceptance, whose deadline stays as it was.
        ("escalated", "2026-10-11T12:00", None, 14 + 24, 14),
        ("escalated", "2026-10-09T09:00", None, None, None),
        ("resolved", "2026-10-11T12:00", None, None, None),
        ("suspended", "2026-10-11T12:00", None, None, None),
        ("evaluated", "2026-10-11T12:00", None, None, None),
    ],
)
def test_overdue_status_in_working_hours(calendar, state, when, accept_h, report_in_h, resolve_h):
    status = sla.overdue_status(calendar, _incident(state=state), at(when))
    expected = {"accept": accept_h, "report_in": report_in_h, "resolve": resolve_h}
    for name, hours in expected.items():
        assert getattr(status, f"{name}_overdue") is (hours is not None), name
        assert getattr(status, f"{name}_overdue_h") == pytest.approx(hours or 0), name
    assert status.overdue is any(hours is not None for hours in expected.values())
    assert status.alert is None
    shown = status.as_dict()
    assert [key for key in shown if key.endswith("_overdue")] == [
        "accept_overdue",
        "report_in_overdue",
        "resolve_overdue",
    ]
    assert shown["report_in_overdue_h"] == pytest.approx(report_in_h or 0)


def test_overdue_status_past_the_calendar_is_an_alert_not_a_crash(calendar):
    incident = _incident(state="in_progress", resolve_due_at=at("2026-12-31T10:00"))
    status = sla.overdue_status(calendar, incident, at("2027-01-05T10:00"))
    assert status.resolve_overdue and status.resolve_overdue_h == 0
    assert "2027" in status.alert
    assert status.as_dict()["alert"] == status.alert


def test_working_days_to_resolve_leave_out_time_suspended(calendar):
    # 2026-09-30 10:00 to 2026-10-09 16:00: 14 + 24 + 16 working hours = 2.25 days.
    incident = _incident(resolved_at=at("2026-10-09T16:00"))
    assert sla.resolution_working_days(calendar, incident) == pytest.approx(2.25)
    incident.paused_working_s = 6 * HOUR
    assert sla.resolution_working_days(calendar, incident) == pytest.approx(2.0)
    assert sla.resolution_working_days(calendar, _incident()) is None
    many = sla.resolution_working_days_many(
        calendar,
        pd.Series([at("2026-09-30T10:00"), at("2026-09-25T16:00")]),
        pd.Series([at("2026-10-09T16:00"), at("2026-10-09T15:00")]),
        [6 * HOUR, 0.0],
    )
    # From the Mid-Autumn holiday: Monday 09-28 00:00 to 10-09 15:00 is 111 working hours.
    assert many.tolist() == pytest.approx([2.0, 111 / 24])


def test_sql_and_python_agree_on_what_is_overdue(db, settings, tmp_path, calendar):
    load_tiny_city(db, settings, tmp_path)
    now = at("2026-10-09T12:00")
    # (state, accept due, report-in due, resolve due): the deadlines missed at ``now``.
    cases = {
        ("reported", "10-08T10:00", None, "10-10T10:00"): {"accept"},
        ("reported", "10-09T13:00", None, "10-12T10:00"): set(),
        ("reported", "10-09T13:00", "10-08T10:00", "10-12T10:00"): set(),
        ("accepted", "10-08T10:00", None, "10-10T10:00"): set(),
        ("accepted", "10-08T10:00", None, "10-09T10:00"): {"resolve"},
        # Escalated: the first acceptance is no longer awaited, the report-in is.
        ("escalated", "10-08T10:00", "10-09T13:00", "10-12T10:00"): set(),
        ("escalated", "10-09T13:00", "10-09T11:00", "10-12T10:00"): {"report_in"},
        ("escalated", "10-08T10:00", "10-09T11:00", "10-09T10:00"): {"report_in", "resolve"},
        ("escalated", "10-08T10:00", None, "10-12T10:00"): set(),  # unknown: an alert
        ("in_progress", "10-08T10:00", "10-09T11:00", "10-12T10:00"): set(),
        ("suspended", "10-08T10:00", None, "10-09T10:00"): set(),
        ("resolved", "10-08T10:00", None, "10-09T10:00"): set(),
        ("rejected", "10-08T10:00", None, "10-09T10:00"): set(),
        ("in_progress", None, None, None): set(),
    }
    expected: dict[str, set[int]] = {name: set() for name in sla.DEADLINES}
    for (state, *due), missed in cases.items():
        accept, report_in, resolve = (at(f"2026-{d}") if d else None for d in due)
        incident = add_incident(
            db,
            grid_code=G1,
            reported_at=at("2026-09-30T10:00"),
            state=state,
            accept_due_at=accept,
            report_in_due_at=report_in,
            resolve_due_at=resolve,
        )
        status = sla.overdue_status(calendar, incident, now)
        assert {n for n in sla.DEADLINES if getattr(status, f"{n}_overdue")} == missed, state
        assert status.overdue is bool(missed)
        for name in missed:
            expected[name].add(incident.id)
    for name, deadline in sla.DEADLINES.items():
        found = set(db.scalars(select(Incident.id).where(deadline.missed_condition(now))))
        assert found == expected[name], name
    overdue = set(db.scalars(select(Incident.id).where(sla.overdue_condition(now))))
    assert overdue == set().union(*expected.values())
