"""Reports and league tables on the tiny city: known counts, rates, medians and ranks."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from factories import add_incident, load_tiny_city
from geoalchemy2.shape import from_shape
from shapely import Point

from geogrid.actors import Actor
from geogrid.categories import set_category
from geogrid.errors import CodeError, InputError
from geogrid.periods import Period, last_complete
from geogrid.repeats import repeat_flags
from geogrid.reports import COUNTS, SCORE_WEIGHTS, build_report
from geogrid.workdays import SHANGHAI, WorkCalendar

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
#: The moment the October reports are made: Monday 2 November 2026, 09:00.
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
HOUR = timedelta(hours=1)


def at(text: str) -> datetime:
    """A Shanghai moment from ``MM-DDTHH:MM`` in 2026."""
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=SHANGHAI)


def point(lon: float, lat: float):
    return from_shape(Point(lon, lat), srid=4490)


def handled(db, grid, reported, *, spot, accepted=HOUR, resolved=timedelta(days=1), **fields):
    """An incident accepted, resolved and evaluated satisfied, each well within its deadline."""
    values = {
        "state": "evaluated",
        "accept_due_at": reported + timedelta(days=1),
        "resolve_due_at": reported + timedelta(days=3),
        "accepted_at": reported + accepted,
        "resolved_at": reported + resolved,
        "satisfaction": "satisfied",
        "geom": spot,
    }
    values.update(fields)
    return add_incident(db, grid_code=grid, reported_at=reported, **values)


def spots(west: float):
    """Points of one grid column, 222 m apart, so that none repeats another by place."""
    return iter(point(west + 0.005, 36.701 + 0.002 * k) for k in range(9))


@pytest.fixture
def october(db, settings, tmp_path):
    """The tiny city with October 2026's incidents (hand-counted in each test)."""
    load_tiny_city(db, settings, tmp_path)
    s1, s2 = spots(119.00), spots(119.01)
    # G1: six incidents around National Day (1-7 October off, Saturday 10 October worked).
    handled(
        db, G1, at("10-09T10:00"), resolved=at("10-12T10:00") - at("10-09T10:00"), spot=next(s1)
    )
    handled(
        db,
        G1,
        at("10-03T10:00"),  # a holiday: the working clock starts on 8 October
        accept_due_at=at("10-09T00:00"),
        resolve_due_at=at("10-13T00:00"),
        accepted_at=at("10-08T08:00"),
        resolved_at=at("10-09T12:00"),
        spot=next(s1),
    )
    handled(
        db,
        G1,
        at("10-12T09:00"),
        accepted=timedelta(hours=25),  # one hour late
        resolved=timedelta(days=4),  # one day late
        satisfaction="unsatisfied",
        reopened_count=1,
        spot=next(s1),
    )
    handled(
        db,
        G1,
        at("10-14T09:00"),
        resolve_due_at=at("10-19T09:00"),
        resolved_at=at("10-19T09:00"),  # on the dot counts as on time
        paused_working_s=86_400.0,
        escalation_count=1,
        spot=next(s1),
    )
    handled(
        db,
        G1,
        at("10-20T09:00"),
        state="in_progress",
        resolved_at=None,
        satisfaction=None,
        escalation_count=2,
        level="community",
        spot=next(s1),
    )
    add_incident(db, grid_code=G1, reported_at=at("10-28T09:00"), state="rejected", geom=next(s1))
    # G2: five incidents, each resolved one working day after it came in.
    first = None
    for day in ("10-19", "10-20", "10-21", "10-22", "10-26"):
        incident = handled(db, G2, at(f"{day}T09:00"), spot=next(s2))
        first = first or incident
    add_incident(
        db, grid_code=G2, reported_at=at("10-19T10:00"), state="merged", duplicate_of=first.id
    )
    # G3: an environment incident in September, and one 44 m from it in October (a repeat);
    # a noise incident at the same spot (another category) and one 167 m away (too far).
    handled(db, G3, at("09-25T09:00"), spot=point(119.025, 36.705))
    handled(db, G3, at("10-05T09:00"), spot=point(119.025, 36.7054))
    handled(db, G3, at("10-06T09:00"), spot=point(119.025, 36.705), category="noise")
    handled(db, G3, at("10-10T09:00"), spot=point(119.025, 36.7065))
    handled(db, G3, at("10-07T09:00"), spot=point(119.0295, 36.71))
    # G4: 89 m across the border from G3's incident the day before (a repeat); one without
    # deadlines; an old one still waiting for acceptance (overdue now); a suspended one.
    handled(db, G4, at("10-08T09:00"), spot=point(119.0305, 36.71))
    add_incident(
        db,
        grid_code=G4,
        reported_at=at("10-20T09:00"),
        deadline_alert="calendar_not_covered: the working-day calendar does not cover 2027",
        geom=point(119.035, 36.715),
    )
    add_incident(
        db,
        grid_code=G4,
        reported_at=at("09-10T09:00"),
        accept_due_at=at("09-11T09:00"),
        resolve_due_at=at("09-15T09:00"),
        geom=point(119.035, 36.717),
    )
    add_incident(
        db,
        grid_code=G4,
        reported_at=at("09-10T09:00"),
        state="suspended",
        accepted_at=at("09-10T10:00"),
        accept_due_at=at("09-11T09:00"),
        resolve_due_at=at("09-15T09:00"),
        geom=point(119.035, 36.719),
    )
    # Outside every grid: waits to be placed, counted by no unit.
    add_incident(db, grid_code=None, reported_at=at("10-15T09:00"))
    return db


def monthly(db, settings, level="grid", **options):
    options.setdefault("now", NOW)
    return build_report(db, settings, "monthly", "2026-10", level, **options)


def test_counts_rates_and_median_per_grid(october, settings):
    report = monthly(october, settings)
    g1 = report.row(G1)
    assert g1["name"] == "东关第1网格"
    assert {k: g1[k] for k in ("received", "rejected", "accept_due", "accepted_on_time")} == {
        "received": 6,
        "rejected": 1,
        "accept_due": 5,
        "accepted_on_time": 4,
    }
    assert g1["accept_on_time_rate"] == pytest.approx(0.8)
    assert (g1["resolve_due"], g1["resolved_on_time"], g1["resolved"]) == (5, 3, 4)
    assert g1["resolve_on_time_rate"] == pytest.approx(0.6)
    assert (g1["evaluated"], g1["satisfied"]) == (4, 3)
    assert g1["satisfaction_rate"] == pytest.approx(0.75)
    assert (g1["escalations"], g1["reopened"], g1["overdue_now"]) == (3, 1, 1)
    # Working days 2.0 (over the 调休 Saturday), 1.5 (reported on a holiday), 4.0, and
    # 3.0 less a day suspended: the median is 2.0.
    assert g1["median_resolve_days"] == pytest.approx(2.0)
    g2 = report.row(G2)
    assert g2["received"] == 5  # the merged duplicate is not counted again
    assert g2["median_resolve_days"] == pytest.approx(1.0)
    assert g2["accept_on_time_rate"] == g2["resolve_on_time_rate"] == 1.0


def test_overdue_now_is_a_snapshot_whatever_the_period(october, settings):
    report = monthly(october, settings)
    # G4's September incident still waits for acceptance; the suspended one is never overdue.
    assert report.row(G4)["overdue_now"] == 1
    assert report.totals["overdue_now"] == 2
    # Before the deadlines passed nothing was overdue, and G1's open incident was not yet due.
    earlier = monthly(october, settings, now=at("09-11T08:00"))
    assert earlier.totals["overdue_now"] == 0
    assert monthly(october, settings, now=at("10-21T09:00")).row(G1)["resolve_due"] == 4


def test_repeat_locations(october, settings):
    report = monthly(october, settings)
    assert report.row(G3)["repeat_locations"] == 1
    assert report.row(G4)["repeat_locations"] == 1  # the earlier incident is in G3
    assert report.row(G1)["repeat_locations"] == report.row(G2)["repeat_locations"] == 0
    # Within 30 m nothing repeats; the place rule follows the settings.
    assert monthly(october, settings.with_(duplicate_distance_m=30)).totals["repeat_locations"] == 0


def test_score_and_ranking(october, settings):
    report = monthly(october, settings)
    g1 = report.row(G1)
    expected = 100 * (
        SCORE_WEIGHTS["accept_on_time_rate"] * 0.8
        + SCORE_WEIGHTS["resolve_on_time_rate"] * 0.6
        + SCORE_WEIGHTS["satisfaction_rate"] * 0.75
    )
    assert g1["score"] == pytest.approx(expected) == pytest.approx(70.5)
    assert list(report.table["code"]) == [G2, G1, G3, G4]
    assert [report.row(code)["rank"] for code in (G2, G1, G3, G4)] == [1, 2, None, None]
    # G3 has a perfect score but only four incidents: listed, not ranked.
    assert report.row(G3)["score"] == 100.0 and report.row(G3)["received"] == 4
    everyone = monthly(october, settings, min_to_rank=1)
    assert [everyone.row(code)["rank"] for code in (G2, G3, G4, G1)] == [1, 1, 1, 4]


def test_levels_add_up_and_totals(october, settings):
    townships = monthly(october, settings, level="township")
    assert {row["code"]: row["received"] for row in townships.rows()} == {
        "370705001": 11,
        "370705002": 6,
    }
    assert townships.row("370705001")["name"] == "东关街道"
    communities = monthly(october, settings, level="community")
    assert communities.row("370705001001")["overdue_now"] == 1
    totals = townships.totals
    assert (totals["received"], totals["rejected"], totals["units"]) == (17, 1, 2)
    # The median of all resolved incidents, not a median of medians.
    assert totals["median_resolve_days"] == pytest.approx(1.0)


def test_zero_incident_units_are_listed(october, settings):
    report = build_report(october, settings, "daily", "2026-10-09", "grid", now=NOW)
    assert len(report.table) == 4
    assert report.row(G1)["received"] == 1
    for code in (G2, G3, G4):
        row = report.row(code)
        assert row["received"] == 0 and row["score"] is None and row["rank"] is None
        assert row["median_resolve_days"] is None


def test_weekly_report(october, settings):
    report = build_report(october, settings, "weekly", "2026-W42", "grid", now=NOW)
    assert report.period.start == at("10-12T00:00") and report.period.end == at("10-19T00:00")
    assert {row["code"]: row["received"] for row in report.rows()} == {G1: 2, G2: 0, G3: 0, G4: 0}


def test_alerts(october, settings):
    report = monthly(october, settings)
    kinds = [alert.kind for alert in report.alerts]
    assert kinds.count("deadline_alert") == 2  # the summary and the one incident
    assert kinds.count("awaiting_placement") == 2
    listed = [a for a in report.alerts if a.kind == "deadline_alert" and a.incident_id]
    assert listed[0].code == G4 and "2027" in listed[0].message
    assert "calendar_not_covered" not in kinds


def test_a_year_the_calendar_does_not_cover_is_an_alert(october, settings):
    narrow = WorkCalendar(
        package_holidays=frozenset(),
        package_workdays=frozenset(),
        package_years=frozenset({2025}),
        overrides={},
    )
    report = monthly(october, settings, calendar=narrow)
    alerts = [a for a in report.alerts if a.kind == "calendar_not_covered"]
    assert alerts and "2026" in alerts[0].message
    assert report.row(G1)["median_resolve_days"] is None
    assert report.row(G1)["received"] == 6  # counts do not need the calendar


def test_scope_limits_the_report(october, settings):
    worker = Actor(name="li", role="grid_worker", scope=("370705002",))
    report = monthly(october, settings, actor=worker)
    assert list(report.table["code"]) == [G3, G4]
    assert report.totals["received"] == 6
    assert report.scope == ("370705002",)
    # Outside incidents have no grid, so a scoped reader is not told about them.
    assert "awaiting_placement" not in {alert.kind for alert in report.alerts}
    one_grid = Actor(name="wang", role="grid_worker", scope=(G2,))
    townships = monthly(october, settings, level="township", actor=one_grid)
    assert townships.rows()[0]["code"] == "370705001" and len(townships.table) == 1
    assert townships.row("370705001")["received"] == 5
    nobody = Actor(name="zhao", role="official", scope=())
    assert monthly(october, settings, actor=nobody).table.empty


def test_a_category_limits_every_measure(october, settings):
    # Retired since: its incidents' history still has a report.
    set_category(october, "noise", active=False)
    noise = monthly(october, settings, category="noise")
    assert (noise.category.code, noise.category.name_zh) == ("noise", "噪音扰民")
    assert noise.as_dict()["category"] == "noise"
    assert sorted(noise.table["code"]) == [G1, G2, G3, G4]  # every unit is still listed
    g3 = noise.row(G3)
    handled_well = ("received", "accepted_on_time", "resolved_on_time", "satisfied")
    assert [g3[measure] for measure in handled_well] == [1, 1, 1, 1]
    # It lies where an environment incident was reported before: no repeat of its own kind.
    assert g3["repeat_locations"] == 0
    assert g3["rank"] is None  # one incident is too few to rank
    assert [noise.row(code)["received"] for code in (G1, G2, G4)] == [0, 0, 0]
    assert (noise.totals["received"], noise.totals["overdue_now"]) == (1, 0)
    # The incidents without deadlines and outside every grid are environment ones.
    assert not {"deadline_alert", "awaiting_placement"} & {a.kind for a in noise.alerts}
    again = monthly(october, settings, category="noise", attribution="current")
    assert again.row(G3)["received"] == 1 and again.totals["received"] == 1


def test_the_categories_add_up_to_the_whole(october, settings):
    everything = monthly(october, settings)
    assert everything.category is None and everything.as_dict()["category"] is None
    environment = monthly(october, settings, category="environment")
    noise = monthly(october, settings, category="noise")
    for code in (G1, G2, G3, G4):
        for measure in COUNTS:
            parts = environment.row(code)[measure] + noise.row(code)[measure]
            assert parts == everything.row(code)[measure], (code, measure)
    assert environment.row(G3)["received"] == 3 and environment.row(G3)["repeat_locations"] == 1
    assert environment.totals["overdue_now"] == everything.totals["overdue_now"] == 2
    assert [a.kind for a in environment.alerts] == [a.kind for a in everything.alerts]
    assert monthly(october, settings, category="dispute").totals["received"] == 0


def test_report_as_json_has_no_contacts(october, settings):
    data = monthly(october, settings).as_dict()
    assert data["period"] == "2026-10" and data["level"] == "grid"
    assert len(data["rows"]) == 4 and data["totals"]["received"] == 17
    text = repr(data)
    assert "phone" not in text and "contact" not in text


@pytest.mark.parametrize(
    ("kind", "text", "start", "end"),
    [
        ("daily", "2026-11-28", "2026-11-28", "2026-11-29"),
        ("weekly", "2026-W48", "2026-11-23", "2026-11-30"),
        ("weekly", "2026w1", "2025-12-29", "2026-01-05"),  # ISO week 1 starts in December
        ("weekly", "2020-W53", "2020-12-28", "2021-01-04"),
        ("monthly", "2026-11", "2026-11-01", "2026-12-01"),
        ("monthly", "2026-12", "2026-12-01", "2027-01-01"),
    ],
)
def test_period_parsing(kind, text, start, end):
    period = Period.parse(kind, text)
    assert period.start == datetime.fromisoformat(start).replace(tzinfo=SHANGHAI)
    assert period.end == datetime.fromisoformat(end).replace(tzinfo=SHANGHAI)
    assert Period.parse(kind, period.label) == period


def test_previous_periods():
    assert Period.parse("monthly", "2026-01").previous().label == "2025-12"
    assert Period.parse("weekly", "2026-W01").previous().label == "2025-W52"
    assert Period.parse("daily", "2026-03-01").previous().label == "2026-02-28"
    assert last_complete("monthly", NOW).label == "2026-10"
    assert last_complete("weekly", NOW).label == "2026-W44"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("daily", "2026-02-30"),
        ("daily", "2026-11"),
        ("weekly", "2026-W54"),
        ("weekly", "2026-11-28"),
        ("monthly", "2026-13"),
        ("monthly", "November"),
    ],
)
def test_bad_periods_name_the_field(kind, text):
    with pytest.raises(InputError) as info:
        Period.parse(kind, text)
    assert info.value.field == "period"


def test_bad_arguments_name_their_field(october, settings):
    with pytest.raises(CodeError) as info:
        build_report(october, settings, "monthly", "2026-10", "street")
    assert info.value.field == "level"
    with pytest.raises(InputError) as info:
        build_report(october, settings, "monthly", "2026-10", "microgrid")
    assert info.value.field == "level"
    with pytest.raises(InputError) as info:
        build_report(october, settings, "yearly", "2026", "grid")
    assert info.value.field == "kind"
    with pytest.raises(InputError) as info:
        build_report(october, settings, "monthly", "2026-10", "grid", attribution="today")
    assert info.value.field == "attribution"
    with pytest.raises(InputError) as info:
        build_report(october, settings, "monthly", Period.parse("daily", "2026-10-01"), "grid")
    assert info.value.field == "period"
    with pytest.raises(InputError) as info:
        build_report(october, settings, "monthly", "2026-10", "grid", category="graffiti")
    assert info.value.field == "category" and "graffiti" in info.value.message


def brute_force_repeats(x, y, categories, times, ids, asking, distance_m, window_s):
    found = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(asking):
        for j in range(len(x)):
            earlier = (times[j], ids[j]) < (times[i], ids[i])
            near = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 <= distance_m**2
            if earlier and near and categories[i] == categories[j]:
                found[i] |= times[i] - times[j] <= window_s
    return found


def test_repeat_flags_agree_with_a_brute_force_search():
    rng = np.random.default_rng(3)
    n = 600
    x, y = rng.uniform(0, 1500, n), rng.uniform(0, 1500, n)
    categories = rng.integers(0, 3, n)
    times = rng.integers(0, 60, n).astype(float) * 86_400  # whole days: ties by id
    ids, asking = np.arange(n), rng.random(n) < 0.5
    got = repeat_flags(x, y, categories, times, ids, asking, distance_m=100, window_s=30 * 86_400)
    assert got.sum() > 20
    expected = brute_force_repeats(x, y, categories, times, ids, asking, 100, 30 * 86_400)
    assert (got == expected).all()


def test_repeat_flags_edges():
    # Exactly 100 m apart, across a cell border, the same second: the lower id is earlier.
    x, y = np.array([99.0, 199.0, 199.0]), np.array([0.0, 0.0, 0.0])
    times, ids = np.array([0.0, 0.0, 30 * 86_400.0 + 1]), np.array([2, 1, 3])
    flags = repeat_flags(
        x,
        y,
        np.zeros(3, dtype=int),
        times,
        ids,
        np.ones(3, dtype=bool),
        distance_m=100,
        window_s=30 * 86_400,
    )
    # The third is 30 days and a second after the others: outside the window.
    assert list(flags) == [True, False, False]


def test_a_period_without_incidents(october, settings):
    report = build_report(october, settings, "monthly", "2025-06", "community", now=NOW)
    assert [row["received"] for row in report.rows()] == [0, 0]
    assert report.totals["received"] == 0 and report.totals["median_resolve_days"] is None
    assert report.totals["overdue_now"] == 2  # still a snapshot at now
