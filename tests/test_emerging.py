"""Emerging hotspots: Mann-Kendall by hand, ESRI's categories on made-up series, time slices."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from factories import add_incident, load_tiny_city
from scipy import stats
from sqlalchemy import insert
from test_neighbours import add_lattice_generation, grid_code

from geogrid import emerging, hotspots
from geogrid.errors import InputError
from geogrid.models import Incident
from geogrid.workdays import SHANGHAI

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
YEAR_START = datetime(2025, 12, 1, tzinfo=SHANGHAI)
YEAR_END = datetime(2026, 12, 1, tzinfo=SHANGHAI)


def test_mann_kendall_of_a_rising_series():
    trend = emerging.mann_kendall(np.arange(12.0))
    # S = 66 pairs all rising; var S = 12 * 11 * 29 / 18; continuity-corrected z.
    assert trend.s[0] == 66
    assert trend.tau[0] == 1.0
    assert trend.z[0] == pytest.approx(65 / np.sqrt(12 * 11 * 29 / 18))
    assert trend.p[0] == pytest.approx(2 * stats.norm.sf(trend.z[0]))


def test_mann_kendall_corrects_for_ties():
    trend = emerging.mann_kendall(np.array([1.0, 2.0, 2.0, 3.0]))
    # Five rising pairs, one tie; var S = (4*3*13 - 2*1*9) / 18 = 138/18.
    assert trend.s[0] == 5
    assert trend.z[0] == pytest.approx(4 / np.sqrt(138 / 18))
    assert trend.p[0] == pytest.approx(0.1486, abs=1e-4)


def test_mann_kendall_of_a_flat_series_is_no_trend():
    trend = emerging.mann_kendall(np.full((2, 6), 3.0))
    assert (trend.s == 0).all()
    assert (trend.p == 1.0).all()


#: Ten slices, oldest first: (bins, z-scores) for each category, and what it must be called.
HOT, COLD, NOT = 2, -2, 0
CASES = {
    "new": ([NOT] * 9 + [HOT], [0.1] * 9 + [2.5]),
    "consecutive": ([NOT] * 7 + [HOT] * 3, [0.2] * 7 + [2.2, 2.4, 2.6]),
    "intensifying": ([HOT] * 10, [2.0 + k for k in range(10)]),
    "persistent": ([HOT] * 10, [3.0, 4.0, 3.5, 3.8, 3.2, 4.0, 3.1, 3.9, 3.3, 3.6]),
    "diminishing": ([HOT] * 10, [12.0 - k for k in range(10)]),
    "sporadic": (
        [NOT, HOT, NOT, NOT, HOT, NOT, NOT, NOT, NOT, HOT],
        [0, 2, 0, 0, 2, 0, 0, 0, 0, 2],
    ),
    "oscillating": ([COLD] + [NOT] * 7 + [HOT] * 2, [-2.5] + [0.0] * 7 + [2.3, 2.4]),
    "historical": ([HOT] * 9 + [NOT], [3.0] * 9 + [1.0]),
    "no pattern": ([NOT] * 10, [0.3, -0.2, 0.1, 0.0, 0.4, -0.1, 0.2, 0.0, 0.1, 0.2]),
}


@pytest.mark.parametrize("expected", list(CASES))
def test_categories_on_hand_made_series(expected):
    bins, z = CASES[expected]
    result = emerging.classify(np.array([z]), np.array([bins]), index=["a"])
    assert result.loc["a", "category"] == expected
    assert result.loc["a", "slices_hot"] == sum(b > 0 for b in bins)
    assert result.loc["a", "last_bin"] == bins[-1]


def test_a_coldspot_only_history_is_no_pattern():
    result = emerging.classify(np.array([[-3.0] * 10]), np.array([[COLD] * 10]))
    assert result["category"].tolist() == ["no pattern"]
    assert result["slices_cold"].tolist() == [10]


def test_categories_are_given_to_every_row_at_once():
    bins = np.array([CASES[name][0] for name in CASES])
    z = np.array([CASES[name][1] for name in CASES], dtype=float)
    result = emerging.classify(z, bins, index=list(CASES))
    assert result["category"].tolist() == list(CASES)
    assert set(result["category"]) <= set(emerging.CATEGORIES)


def test_time_slices_are_whole_months_and_iso_weeks():
    months = emerging.time_slices(YEAR_START, YEAR_END, "month")
    assert [p.label for p in months[:2]] == ["2025-12", "2026-01"]
    assert len(months) == 12
    weeks = emerging.time_slices(
        datetime(2026, 9, 7, tzinfo=SHANGHAI), datetime(2026, 11, 30, tzinfo=SHANGHAI), "week"
    )
    assert len(weeks) == 12
    assert weeks[0].label == "2026-W37"
    with pytest.raises(InputError):
        emerging.time_slices(YEAR_START, YEAR_START + timedelta(days=40), "month")
    with pytest.raises(InputError):
        emerging.time_slices(YEAR_START, YEAR_END, "day")


@pytest.fixture
def city(db, settings, tmp_path):
    hotspots.clear_caches()
    return load_tiny_city(db, settings, tmp_path).generation


def test_slices_are_counted_in_shanghai_time(db, city):
    # 23:30 on 31 January in Shanghai is still January; 00:30 on 1 February is not.
    add_incident(db, grid_code=G1, reported_at=datetime(2026, 1, 31, 23, 30, tzinfo=SHANGHAI))
    add_incident(db, grid_code=G1, reported_at=datetime(2026, 2, 1, 0, 30, tzinfo=SHANGHAI))
    add_incident(db, grid_code=G3, reported_at=datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI))
    add_incident(
        db,
        grid_code=G3,
        reported_at=datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI),
        category="noise",
    )
    slices = emerging.time_slices(YEAR_START, YEAR_END, "month")
    counts = emerging.slice_counts(db, city.id, "grid", None, YEAR_START, YEAR_END, slices)
    assert list(counts.index) == [G1, G2, G3, G4]
    assert counts.shape == (4, 12)
    assert counts.loc[G1].tolist() == [0, 1, 1] + [0] * 9
    assert counts.loc[G3].tolist() == [0] * 11 + [2]
    noise = emerging.slice_counts(
        db, city.id, "grid", "370705002", YEAR_START, YEAR_END, slices, category="noise"
    )
    assert noise.to_dict("list") == {day: [0, 0] for day in noise.columns[:-1]} | {
        noise.columns[-1]: [1, 0]
    }


def test_emerging_hotspots_answer_for_every_grid_and_are_cached(db, city):
    add_incident(db, grid_code=G1, reported_at=datetime(2026, 3, 3, tzinfo=SHANGHAI))
    kwargs = dict(generation_id=city.id, start=YEAR_START, end=YEAR_END, slice="month")
    first = emerging.emerging_hotspots(db, **kwargs)
    assert list(first.index) == [G1, G2, G3, G4]
    assert list(first.columns) == emerging.COLUMNS
    assert set(first["category"]) <= set(emerging.CATEGORIES)
    assert len(first.attrs["slices"]) == 12
    again = emerging.emerging_hotspots(db, **kwargs)
    assert again.attrs["seconds"] == first.attrs["seconds"]
    add_incident(db, grid_code=G2, reported_at=datetime(2026, 3, 3, tzinfo=SHANGHAI))
    after = emerging.emerging_hotspots(db, **kwargs)
    assert after.attrs["seconds"] != first.attrs["seconds"]


def add_counted(db, generation_id: int, grid: str, when: datetime, times: int = 1) -> None:
    """Incidents filed by grid code (no point), many in one statement."""
    rows = [
        {
            "category": "environment",
            "description": "垃圾堆放",
            "channel": "grid_worker",
            "reported_at": when,
            "grid_code": grid,
            "generation": generation_id,
            "placement": "by_code",
        }
    ] * times
    db.execute(insert(Incident), rows)


def test_a_cluster_that_appears_in_the_last_month_is_new(db):
    hotspots.clear_caches()
    side = 9
    generation = add_lattice_generation(db, side)
    moments = [YEAR_START + timedelta(days=30 * k + 10) for k in range(12)]
    # A thin background every month; in the last month a busy 3x3 block in the middle.
    for row in range(side):
        for col in range(side):
            for when in moments[(row * side + col) % 3 :: 3]:
                add_counted(db, generation.id, grid_code(row, col, side), when)
    for row in range(3, 6):
        for col in range(3, 6):
            add_counted(db, generation.id, grid_code(row, col, side), moments[-1], times=12)
    result = emerging.emerging_hotspots(
        db, generation_id=generation.id, start=YEAR_START, end=YEAR_END, slice="month"
    )
    centre = grid_code(4, 4, side)
    assert result.loc[centre, "category"] == "new"
    assert result.loc[centre, "last_bin"] == 3
    assert result.loc[grid_code(0, 0, side), "category"] == "no pattern"
