"""Working days: known deadlines around real holidays and 调休 days, overrides, coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from geogrid import workdays
from geogrid.errors import GeogridError, InputError
from geogrid.workdays import SHANGHAI, CalendarNotCovered, WorkCalendar


def at(text: str) -> datetime:
    """A Shanghai moment from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def package() -> WorkCalendar:
    return WorkCalendar.from_package()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2025-01-26", True),  # Sunday, worked for the Spring Festival (调休)
        ("2025-01-28", False),  # 除夕
        ("2025-02-04", False),  # last day of the Spring Festival break
        ("2025-02-08", True),  # Saturday, worked (调休)
        ("2025-09-28", True),  # Sunday, worked for National Day
        ("2025-10-08", False),  # National Day and Mid-Autumn, eight days in 2025
        ("2025-10-11", True),  # Saturday, worked
        ("2026-02-14", True),  # Saturday, worked before the Spring Festival
        ("2026-02-23", False),  # Monday, still the Spring Festival
        ("2026-10-07", False),
        ("2026-10-10", True),  # Saturday, worked after National Day
        ("2026-11-21", False),  # an ordinary Saturday
        ("2026-11-23", True),  # an ordinary Monday
    ],
)
def test_known_working_days(package, day, working):
    assert package.is_workday(date.fromisoformat(day)) is working


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # The example: National Day 2026, landing on the 调休 Saturday.
        ("2026-09-30T10:00", 3, "2026-10-10T10:00"),
        ("2026-09-30T10:00", 1, "2026-10-08T10:00"),
        # National Day 2025: Sunday 9-28 and Saturday 10-11 are working days.
        ("2025-09-26T17:30", 1, "2025-09-28T17:30"),
        ("2025-09-30T10:00", 1, "2025-10-09T10:00"),
        ("2025-09-30T10:00", 3, "2025-10-11T10:00"),
        # Spring Festival 2025: worked Sunday 1-26 before, Saturday 2-8 after.
        ("2025-01-24T09:00", 1, "2025-01-26T09:00"),
        ("2025-01-26T15:00", 2, "2025-02-05T15:00"),
        ("2025-02-07T10:00", 1, "2025-02-08T10:00"),
        # Spring Festival 2026: worked Saturday 2-14, nine days off 2-15..2-23.
        ("2026-02-13T09:00", 1, "2026-02-14T09:00"),
        ("2026-02-13T09:00", 2, "2026-02-24T09:00"),
        # Starting on a non-working day: the clock starts at the next working day's 00:00.
        ("2025-01-30T10:00", 1, "2025-02-06T00:00"),
        ("2026-11-21T10:00", 1, "2026-11-24T00:00"),
        ("2026-11-21T10:00", 0, "2026-11-23T00:00"),
        ("2026-11-23T10:00", 0, "2026-11-23T10:00"),
    ],
)
def test_known_deadlines(package, start, n, due):
    assert package.add_working_days(at(start), n) == at(due)


def test_deadline_from_another_time_zone_is_counted_in_shanghai(package):
    # 02:00 UTC is 10:00 in Shanghai, the example again.
    start = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    due = package.add_working_days(start, 3)
    assert due == at("2026-10-10T10:00") and due.tzinfo == SHANGHAI
    # Friday 17:00 UTC is already Saturday 01:00 in Shanghai: a non-working start.
    friday_evening = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    assert package.add_working_days(friday_evening, 1) == at("2026-11-24T00:00")


def test_bad_arguments_are_input_errors(package):
    with pytest.raises(InputError) as naive:
        package.add_working_days(datetime(2026, 9, 30, 10, 0), 1)
    assert naive.value.field == "start"
    with pytest.raises(InputError) as negative:
        package.add_working_days(at("2026-09-30T10:00"), -1)
    assert negative.value.field == "n"


def test_uncovered_year_is_an_error_not_a_weekday_guess(package):
    assert 2027 not in package.covered_years()
    with pytest.raises(CalendarNotCovered) as error:
        package.add_working_days(at("2026-12-30T10:00"), 3)
    assert isinstance(error.value, GeogridError)
    assert error.value.code == "calendar_not_covered"
    assert error.value.year == 2027
    assert "2027" in error.value.message and "geogrid calendar set" in error.value.message
    with pytest.raises(CalendarNotCovered):
        package.is_workday(date(2003, 6, 2))  # a Monday before the package's first year
    assert package.missing_years([2026, 2027, 2003]) == [2003, 2027]


def test_overrides_win_and_cover_their_year():
    overrides = {
        date(2026, 10, 8): "holiday",  # an extra day off after National Day
        date(2026, 10, 3): "workday",  # a package holiday worked after all
        date(2027, 1, 1): "holiday",  # 元旦 2027, entered by hand
    }
    calendar = WorkCalendar.from_package(overrides)
    assert calendar.is_workday(date(2026, 10, 3)) and not calendar.is_workday(date(2026, 10, 8))
    # Worked 10-03, off 10-08: the three working days are 10-03, 10-09 and 10-10.
    assert calendar.add_working_days(at("2026-09-30T10:00"), 3) == at("2026-10-10T10:00")
    only_worked = WorkCalendar.from_package({date(2026, 10, 3): "workday"})
    assert only_worked.add_working_days(at("2026-09-30T10:00"), 3) == at("2026-10-09T10:00")
    assert calendar.override_years == {2026, 2027}
    # 2027 is covered by the override now; the rest of it follows the weekday rule.
    assert calendar.add_working_days(at("2026-12-30T10:00"), 3) == at("2027-01-05T10:00")


def test_set_and_unset_overrides_in_the_database(db):
    assert workdays.list_overrides(db) == []
    first = workdays.set_override(db, date(2027, 1, 1), "holiday", set_by="admin", name="元旦")
    assert (first.kind, first.name, first.set_by) == ("holiday", "元旦", "admin")
    assert first.set_at is not None
    workdays.set_override(db, date(2027, 1, 1), "workday", set_by="admin2", note="revised")
    rows = workdays.list_overrides(db, year=2027)
    assert [(row.day, row.kind, row.name, row.note) for row in rows] == [
        (date(2027, 1, 1), "workday", "", "revised")
    ]
    assert workdays.load_calendar(db).is_workday(date(2027, 1, 1))
    assert workdays.unset_override(db, date(2027, 1, 1)) is not None
    assert workdays.unset_override(db, date(2027, 1, 1)) is None
    with pytest.raises(CalendarNotCovered):
        workdays.load_calendar(db).is_workday(date(2027, 1, 1))


def test_a_change_made_in_another_session_is_seen_at_once(make_database, base_settings):
    # Committed for real, by two sessions: the cache must never hide another's change.
    engine = make_database(base_settings.code_scheme)
    new_year = date(2027, 1, 1)

    def change(kind: str | None) -> None:
        with Session(engine) as admin:
            if kind is None:
                workdays.unset_override(admin, new_year)
            else:
                workdays.set_override(admin, new_year, kind, set_by="admin")
            admin.commit()

    with Session(engine) as reader:
        before = workdays.load_calendar(reader)
        assert workdays.load_calendar(reader) is before, "unchanged overrides reuse the build"
        change("workday")
        assert workdays.load_calendar(reader).is_workday(new_year)
        change("holiday")  # as many overrides as before, one of them different
        assert not workdays.load_calendar(reader).is_workday(new_year)
        change(None)
        assert workdays.load_calendar(reader).overrides == {}
        with pytest.raises(CalendarNotCovered):
            workdays.load_calendar(reader).is_workday(new_year)


def test_a_shared_calendar_cannot_be_changed_by_one_caller(db):
    calendar = workdays.load_calendar(db)
    with pytest.raises(TypeError):
        calendar.overrides[date(2027, 1, 1)] = "holiday"  # type: ignore[index]


def test_unknown_kind_is_refused(db):
    with pytest.raises(InputError) as error:
        workdays.set_override(db, date(2027, 1, 1), "half-day", set_by="admin")
    assert error.value.field == "kind"


# -- the command line, on a database of its own ------------------------------------------


@pytest.fixture(scope="module")
def run(make_cli):
    """Invoke ``geogrid`` against a fresh database of this module's own."""
    return make_cli()


def test_cli_due_prints_the_deadline(run):
    assert run("calendar", "due", "2026-09-30T10:00", "3").output.strip() == (
        "2026-10-10T10:00+08:00"
    )
    assert run("calendar", "due", "2025-09-30T10:00+08:00", "3").output.strip() == (
        "2025-10-11T10:00+08:00"
    )
    bad = run("calendar", "due", "yesterday", "3", ok=False)
    assert bad.exit_code == 1 and "error [start]" in bad.output


def test_cli_set_is_a_dry_run_until_commit_and_unset_restores(run):
    uncovered = run("calendar", "due", "2026-12-30T10:00", "3", ok=False)
    assert uncovered.exit_code == 1
    assert "does not cover 2027" in uncovered.output and "Traceback" not in uncovered.output

    dry = run("calendar", "set", "2027-01-01", "holiday", "--name", "元旦", "--user", "admin")
    assert "2027-01-01 would become a holiday (元旦)" in dry.output
    assert "dry run: nothing was written" in dry.output
    assert "overrides: none" in run("calendar", "check", "--year", "2027").output
    assert run("calendar", "due", "2026-12-30T10:00", "3", ok=False).exit_code == 1

    done = run("calendar", "set", "2027-01-01", "holiday", "--name", "元旦", "--commit")
    assert "2027-01-01 is now a holiday (元旦)" in done.output
    assert run("calendar", "due", "2026-12-30T10:00", "3").output.strip() == (
        "2027-01-05T10:00+08:00"
    )
    checked = run("calendar", "check", "--year", "2027").output
    assert "overrides: 2027 (1 days)" in checked and "2027: covered by 1 overrides only" in checked

    dry_unset = run("calendar", "unset", "2027-01-01")
    assert "would remove the override of 2027-01-01" in dry_unset.output
    assert "2027 (1 days)" in run("calendar", "check").output
    run("calendar", "unset", "2027-01-01", "--commit")
    assert "overrides: none" in run("calendar", "check").output
    assert "has no override" in run("calendar", "unset", "2027-01-01").output


def test_cli_override_moves_a_deadline(run):
    run("calendar", "set", "2026-10-08", "holiday", "--note", "test", "--commit")
    try:
        assert run("calendar", "due", "2026-09-30T10:00", "3").output.strip() == (
            "2026-10-12T10:00+08:00"
        )
    finally:
        run("calendar", "unset", "2026-10-08", "--commit")
    assert run("calendar", "due", "2026-09-30T10:00", "3").output.strip() == (
        "2026-10-10T10:00+08:00"
    )


def test_cli_check_warns_for_an_uncovered_year(run):
    covered = run("calendar", "check", "--year", "2026").output
    assert "2026: covered by the calendar package" in covered
    assert "chinese-calendar" in covered
    uncovered = run("calendar", "check", "--year", "2040").output
    assert "warning: 2040 is not covered" in uncovered
    assert "geogrid calendar set 2040-MM-DD" in uncovered
    this_year = workdays.today().year
    assert f"{this_year}" in run("calendar", "check").output


def test_working_time_between_counts_only_working_days(package: WorkCalendar) -> None:
    # Wednesday 10:00 before National Day to the swapped working Saturday 10:00: 3 days.
    assert package.working_seconds(at("2026-09-30T10:00"), at("2026-10-10T10:00")) == 3 * 86_400
    # A whole weekend counts nothing; Friday 18:00 to Monday 09:00 is 15 working hours.
    assert package.working_seconds(at("2026-11-20T18:00"), at("2026-11-23T09:00")) == 15 * 3600
    assert package.working_seconds(at("2026-11-23T09:00"), at("2026-11-20T18:00")) == -15 * 3600


def test_working_clock_agrees_with_the_deadline_rule(package: WorkCalendar) -> None:
    starts = [at("2025-01-24T16:30"), at("2025-09-30T08:00"), at("2026-02-13T23:59")]
    starts.append(at("2026-11-21T15:00"))  # a Saturday: the clock starts on Monday
    for start in starts:
        for n in (1, 3, 5):
            due = package.add_working_days(start, n)
            assert package.working_seconds(start, due) == n * 86_400, (start, n)


def test_working_clock_is_vectorised_and_refuses_uncovered_years(package: WorkCalendar) -> None:
    instants = [at("2026-01-05T09:00"), datetime(2026, 1, 6, 1, 0, tzinfo=UTC)]
    clock = package.working_clock(instants)
    assert clock[1] - clock[0] == 24 * 3600  # 09:00 Shanghai to 09:00 Shanghai next day
    with pytest.raises(CalendarNotCovered) as raised:
        package.working_clock([at("2026-12-30T09:00"), at("2027-01-04T09:00")])
    assert "2027" in raised.value.message
