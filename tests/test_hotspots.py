"""Gi* hotspots: known answers on lattices, the FDR correction, counts per grid, the caches."""

from __future__ import annotations

import warnings
from datetime import datetime

import esda
import numpy as np
import pandas as pd
import pytest
from factories import add_incident, load_tiny_city
from libpysal.weights import W, lat2W
from libpysal.weights.util import fill_diagonal
from test_neighbours import add_lattice_generation, grid_code

from geogrid import hotspots
from geogrid.errors import InputError, NotFound
from geogrid.workdays import SHANGHAI

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
START = datetime(2026, 10, 1, tzinfo=SHANGHAI)
END = datetime(2026, 11, 1, tzinfo=SHANGHAI)
IN_OCTOBER = datetime(2026, 10, 15, 10, 0, tzinfo=SHANGHAI)


def queen_lattice(side: int) -> W:
    """Queen weights of a side x side lattice, ids ``NNN`` numbered row by row."""
    plain = lat2W(side, side, rook=False)
    ids = [f"{i:03d}" for i in range(side * side)]
    neighbours = {ids[i]: [ids[j] for j in plain.neighbors[i]] for i in range(side * side)}
    return W(neighbours, id_order=ids)


def cell(row: int, col: int, side: int) -> str:
    return f"{row * side + col:03d}"


def field(side: int, mean: float, seed: int) -> pd.Series:
    """Counts drawn independently from Poisson(mean): no spatial pattern."""
    counts = np.random.default_rng(seed).poisson(mean, side * side)
    return pd.Series(counts, index=[f"{i:03d}" for i in range(side * side)])


def block(counts: pd.Series, rows: range, cols: range, side: int, value: int) -> pd.Series:
    planted = counts.copy()
    for row in rows:
        for col in cols:
            planted[cell(row, col, side)] = value
    return planted


def test_a_planted_cluster_is_hot_at_99_percent():
    side = 15
    counts = block(field(side, 2, seed=1), range(6, 9), range(6, 9), side, 30)
    frame = hotspots.gi_star(counts, queen_lattice(side))
    assert frame.loc[cell(7, 7, side), "bin"] == 3
    assert frame.loc[cell(7, 7, side), "label"] == "hot_99"
    assert frame.loc[cell(7, 7, side), "z"] > 2.58
    # Far from the cluster nothing is hot.
    assert (frame.loc[[cell(0, 0, side), cell(14, 14, side), cell(0, 14, side)], "bin"] <= 0).all()


def test_a_planted_empty_area_in_a_busy_field_is_cold():
    side = 15
    counts = block(field(side, 20, seed=2), range(5, 10), range(5, 10), side, 0)
    frame = hotspots.gi_star(counts, queen_lattice(side))
    assert frame.loc[cell(7, 7, side), "bin"] == -3
    assert frame.loc[cell(7, 7, side), "label"] == "cold_99"
    assert (frame["bin"] <= 0).all()


def test_uniform_counts_give_nothing_significant():
    side = 10
    same = pd.Series(5, index=[f"{i:03d}" for i in range(side * side)])
    frame = hotspots.gi_star(same, queen_lattice(side))
    assert (frame["bin"] == 0).all()
    assert (frame["label"] == "not_significant").all()
    assert not frame["significant"].any()


def test_the_false_discovery_rate_is_corrected_for():
    # No pattern at all: some areas pass p < 0.05 by chance; corrected, none does.
    frame = hotspots.gi_star(field(20, 3, seed=7), queen_lattice(20))
    assert (frame["p"] < 0.05).sum() > 0
    assert (frame["p_fdr"] >= 0.05).all()
    assert (frame["bin"].abs() < 2).all()


def test_p_fdr_is_benjamini_hochberg_of_the_two_sided_p():
    side = 12
    frame = hotspots.gi_star(
        block(field(side, 2, seed=3), range(2, 5), range(2, 5), side, 12), queen_lattice(side)
    )
    assert np.allclose(frame["p"], 2 * (1 - _normal_cdf(frame["z"].abs())))
    # Benjamini-Hochberg by hand: p(k) m / k, then the running minimum from the largest.
    p = frame["p"].sort_values()
    m = len(p)
    adjusted = (p * m / np.arange(1, m + 1))[::-1].cummin()[::-1].clip(upper=1)
    assert np.allclose(frame.loc[p.index, "p_fdr"], adjusted)


def test_bins_follow_the_corrected_p_and_the_sign_of_z():
    side = 15
    counts = block(field(side, 2, seed=4), range(3, 7), range(3, 7), side, 20)
    counts = block(counts, range(10, 14), range(10, 14), side, 0)
    frame = hotspots.gi_star(counts, queen_lattice(side))
    level = np.select(
        [frame["p_fdr"] < 0.01, frame["p_fdr"] < 0.05, frame["p_fdr"] < 0.10], [3, 2, 1], 0
    )
    assert (frame["bin"] == np.sign(frame["z"]).astype(int) * level).all()
    assert set(frame["bin"]) >= {3, 0}
    assert frame["label"].map({v: k for k, v in hotspots.LABELS.items()}).equals(frame["bin"])


def test_z_is_esdas_permutation_z_for_gi_star_on_binary_weights():
    side = 10
    counts = block(field(side, 2, seed=5), range(2, 5), range(2, 5), side, 9)
    weights = queen_lattice(side)
    frame = hotspots.gi_star(counts, weights, permutations=199, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        direct = esda.G_Local(
            counts.to_numpy(dtype=float),
            fill_diagonal(weights, 1),
            transform="B",
            star=True,
            permutations=199,
            seed=11,
            n_jobs=1,
        )
    assert np.allclose(frame["z"].to_numpy(), direct.z_sim)
    assert np.allclose(frame["p_sim"].to_numpy(), direct.p_sim)


def test_a_fixed_seed_gives_the_same_answer_twice():
    side = 12
    counts = block(field(side, 2, seed=6), range(4, 7), range(4, 7), side, 10)
    weights = queen_lattice(side)
    first = hotspots.gi_star(counts, weights, seed=42)
    np.random.seed(0)  # the global generator's state must not matter
    second = hotspots.gi_star(counts, weights, seed=42)
    other = hotspots.gi_star(counts, weights, seed=43)
    pd.testing.assert_frame_equal(first, second)
    assert not np.allclose(first["z"], other["z"])


def test_islands_are_reported_and_never_significant():
    weights = queen_lattice(6)
    neighbours = dict(weights.neighbors)
    neighbours["far"] = []
    with_island = W(neighbours, id_order=[*weights.id_order, "far"], silence_warnings=True)
    counts = field(6, 2, seed=8)
    counts["far"] = 500
    frame = hotspots.gi_star(counts, with_island)
    assert frame.loc["far", "bin"] == 0
    assert frame.loc["far", "p_fdr"] == 1.0
    assert frame.loc["far", "count"] == 500


def test_counts_must_be_of_the_weights_areas():
    weights = queen_lattice(3)
    with pytest.raises(InputError):
        hotspots.gi_star(pd.Series(1, index=["x", "y", "z"]), weights)
    with pytest.raises(InputError):
        hotspots.gi_star(field(3, 2, seed=1), weights, permutations=10)


# -- counts per grid, in the database ---------------------------------------------------------


@pytest.fixture
def city(db, settings, tmp_path):
    hotspots.clear_caches()
    return load_tiny_city(db, settings, tmp_path).generation


def test_grid_counts_cover_every_grid_and_only_counted_incidents(db, city):
    for _ in range(3):
        add_incident(db, grid_code=G1, reported_at=IN_OCTOBER)
    add_incident(db, grid_code=G2, reported_at=IN_OCTOBER)
    add_incident(db, grid_code=G2, reported_at=IN_OCTOBER, state="merged")
    add_incident(db, grid_code=G3, reported_at=IN_OCTOBER, category="noise")
    add_incident(db, grid_code=None, reported_at=IN_OCTOBER)
    add_incident(db, grid_code=G4, reported_at=datetime(2026, 9, 30, 23, 59, tzinfo=SHANGHAI))
    counts = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    assert counts.to_dict() == {G1: 3, G2: 1, G3: 1, G4: 0}
    noise = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END, category="noise")
    assert noise.to_dict() == {G1: 0, G2: 0, G3: 1, G4: 0}
    east = hotspots.grid_counts(db, generation_id=city.id, within="370705002", start=START, end=END)
    assert east.to_dict() == {G3: 1, G4: 0}
    communities = hotspots.grid_counts(
        db, generation_id=city.id, level="community", start=START, end=END
    )
    assert communities.to_dict() == {"370705001001": 4, "370705002001": 1}


def test_grid_counts_refuse_a_naive_or_backwards_period(db, city):
    with pytest.raises(InputError):
        hotspots.grid_counts(db, generation_id=city.id, start=START.replace(tzinfo=None), end=END)
    with pytest.raises(InputError):
        hotspots.grid_counts(db, generation_id=city.id, start=END, end=START)
    with pytest.raises(NotFound):
        hotspots.grid_counts(db, generation_id=city.id, within="370799", start=START, end=END)


def test_counts_are_cached_until_an_incident_is_added(db, city, monkeypatch):
    add_incident(db, grid_code=G1, reported_at=IN_OCTOBER)
    first = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    counted = []
    original = hotspots._count
    monkeypatch.setattr(hotspots, "_count", lambda *args: counted.append(1) or original(*args))
    again = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    assert counted == []
    assert again.equals(first)
    add_incident(db, grid_code=G1, reported_at=IN_OCTOBER)
    after = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    assert counted == [1]
    assert after[G1] == first[G1] + 1


def test_hotspots_of_a_generation_carry_their_making(db, city):
    add_incident(db, grid_code=G1, reported_at=IN_OCTOBER)
    counts = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    result = hotspots.hotspots(db, counts, generation_id=city.id, permutations=199, seed=3)
    assert list(result.frame.columns) == hotspots.COLUMNS
    assert list(result.frame.index) == [G1, G2, G3, G4]
    assert result.frame["count"].tolist() == [1, 0, 0, 0]
    assert (result.generation, result.level, result.permutations) == (city.id, "grid", 199)
    assert (result.seed, result.alpha, result.method) == (3, 0.05, "fdr")
    assert result.islands == ()
    assert result.seconds >= 0
    assert sum(result.summary().values()) == 4


def test_results_are_cached_until_the_counts_change(db, city):
    add_incident(db, grid_code=G1, reported_at=IN_OCTOBER)
    counts = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    first = hotspots.hotspots(db, counts, generation_id=city.id)
    again = hotspots.hotspots(
        db,
        hotspots.grid_counts(db, generation_id=city.id, start=START, end=END),
        generation_id=city.id,
    )
    assert again.computed_at == first.computed_at
    add_incident(db, grid_code=G2, reported_at=IN_OCTOBER)
    counts = hotspots.grid_counts(db, generation_id=city.id, start=START, end=END)
    after = hotspots.hotspots(db, counts, generation_id=city.id)
    assert after.computed_at > first.computed_at
    assert after.frame.loc[G2, "count"] == 1


def test_a_planted_cluster_in_the_database_is_hot(db):
    hotspots.clear_caches()
    side = 9
    generation = add_lattice_generation(db, side)
    codes = [grid_code(row, col, side) for row in range(side) for col in range(side)]
    counts = pd.Series(0, index=sorted(codes))
    for row in range(3, 6):
        for col in range(3, 6):
            counts[grid_code(row, col, side)] = 25
    counts[grid_code(0, 8, side)] = 2
    result = hotspots.hotspots(db, counts, generation_id=generation.id)
    hot = set(result.frame.index[result.frame["label"] == "hot_99"])
    centre_and_edges = {(4, 4), (3, 4), (5, 4), (4, 3), (4, 5)}
    assert {grid_code(row, col, side) for row, col in centre_and_edges} <= hot
    assert result.frame.loc[grid_code(0, 0, side), "bin"] == 0


def test_too_few_areas_with_neighbours_are_not_tested(db, city):
    counts = hotspots.grid_counts(db, generation_id=city.id, level="county", start=START, end=END)
    result = hotspots.hotspots(db, counts, generation_id=city.id, level="county")
    assert result.note
    assert result.frame["bin"].tolist() == [0]


def test_warm_up_runs_esda_and_loads_the_active_weights(db, city):
    timings = hotspots.warm_up(db)
    assert set(timings) == {"esda_s", "weights_grid_s"}


def _normal_cdf(z: pd.Series) -> np.ndarray:
    from scipy import stats

    return stats.norm.cdf(z)
