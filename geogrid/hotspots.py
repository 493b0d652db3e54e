"""Hotspots and coldspots of incidents: Getis-Ord Gi* per area, corrected for multiple testing.

The statistic is PySAL esda's ``G_Local`` with ``star=True`` on binary queen contiguity
(:mod:`geogrid.neighbours`, transform ``"B"``): an area's count plus its neighbours'
counts, against what the same number of areas drawn at random would give. Each area is
tested by conditional permutation (999 by default, with a fixed seed, so the same data
always gives the same map).

Which p-value. esda gives two from the permutations: the pseudo p-value (the share of
permutations as extreme as the observed value, never below 1/(permutations + 1)) and
the normal approximation of the permutation distribution (``z_sim``: the observed value
less the permutations' mean, over their standard deviation). geogrid tests with the
second, two-sided: ``p = 2 Φ(-|z|)``. The pseudo p-value cannot survive a correction for
15,000 tests: Benjamini-Hochberg accepts the k-th smallest p-value at ``k q / m``, so
with 999 permutations (p >= 0.001) and m = 15,209 grids at q = 0.05 some 300 grids would
have to beat every permutation before any was called significant; on the demo county's
year (986 grids) it finds nothing at any level, while the permutation z finds the 17
planted hot grids. The pseudo p-value is kept in the result as ``p_sim``.

Multiple testing: the Benjamini-Hochberg false discovery rate over the areas tested,
via ``scipy.stats.false_discovery_control`` (esda's ``fdr`` gives only the cut-off for
one rate; adjusted p-values give all three confidence levels at once). Bins follow
ArcGIS's ``Gi_Bin``: ±3, ±2, ±1 when the adjusted p-value is below 0.01, 0.05, 0.10
(99, 95, 90% confidence), the sign of z saying hot or cold; 0 otherwise. ``alpha`` sets
the ``significant`` column.

Islands (areas touching no other area) have no neighbourhood to test: they keep their
count, are reported, and are never significant. Nor is anything when every count is the
same (nothing to compare).

Results are cached in the process by what they are computed from: counts by
:func:`grid_counts` until the incidents change (:func:`data_version`), Gi* results by
the counts themselves. Neighbour weights are built once per generation and level.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import esda
import numpy as np
import pandas as pd
import shapely
from libpysal.graph import Graph
from libpysal.weights import W
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid.errors import InputError, NotFound
from geogrid.generations import current_generation
from geogrid.models import Area, Incident, IncidentEvent
from geogrid.neighbours import contiguity, level_contiguity
from geogrid.report_counts import query_frame

PERMUTATIONS = 999
#: The fixed seed of the permutations: the same counts always give the same map.
SEED = 20_261_129
#: Fewer permutations than this cannot estimate the permutation distribution's spread.
MIN_PERMUTATIONS = 99
#: (bin, adjusted p-value below which it applies), strongest first: 99, 95, 90% confidence.
CONFIDENCE_BINS = ((3, 0.01), (2, 0.05), (1, 0.10))
LABELS = {
    3: "hot_99",
    2: "hot_95",
    1: "hot_90",
    0: "not_significant",
    -1: "cold_90",
    -2: "cold_95",
    -3: "cold_99",
}
#: How the p-values were corrected: Benjamini-Hochberg false discovery rate.
METHOD = "fdr"
COLUMNS = ["count", "z", "p_sim", "p", "p_fdr", "bin", "label", "significant"]

T = TypeVar("T")


@dataclass(frozen=True)
class HotspotResult:
    """Gi* of every area: ``frame`` indexed by code (see :data:`COLUMNS`) and how it was made."""

    frame: pd.DataFrame
    generation: int
    level: str
    permutations: int
    seed: int
    alpha: float
    method: str
    computed_at: datetime
    seconds: float
    #: Areas with no neighbour among those tested: reported, never significant.
    islands: tuple[str, ...] = ()
    #: Why nothing could be tested, when that is so.
    note: str = ""

    def summary(self) -> dict[str, int]:
        """How many areas fall in each bin, by label (every label present, hot first)."""
        counts = self.frame["label"].value_counts()
        return {label: int(counts.get(label, 0)) for label in LABELS.values()}


class ResultCache:
    """A small least-recently-used cache; one computation per key at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, computing it (once, however many ask) if missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                value = compute()
            except BaseException:
                with self._lock:
                    self._computing.pop(key, None)
                raise
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._computing.pop(key, None)
            return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()


_counts_cache = ResultCache(64)
_results_cache = ResultCache(32)
# esda seeds NumPy's global generator; one Gi* at a time keeps each seed's draws its own.
_esda_lock = threading.Lock()


def data_version(session: Session) -> tuple[int, int, int]:
    """What changes whenever incidents do: (highest incident id, incidents, highest event id).

    Every change to an incident records an event, and neither incidents nor events are
    ever deleted (a trigger refuses it), so a new row or a new step raises a maximum.
    The count catches an incident whose transaction commits after a later one's.
    """
    incidents = select(func.coalesce(func.max(Incident.id), 0), func.count()).select_from(Incident)
    highest, count = session.execute(incidents).one()
    event = session.scalar(select(func.coalesce(func.max(IncidentEvent.id), 0)))
    return int(highest), int(count), int(event)


def grid_counts(
    session: Session,
    *,
    generation_id: int,
    level: str = "grid",
    within: str | None = None,
    start: datetime,
    end: datetime,
    category: str | None = None,
) -> pd.Series:
    """Incidents reported in [start, end) per area of the level (every area, zeros included).

    Incidents count in the area whose code prefixes their recorded grid code; merged
    duplicates do not count. ``within`` limits areas and incidents to a code prefix.
    """
    check_period(start, end)
    key = (
        database_key(session),
        generation_id,
        level,
        within,
        start,
        end,
        category,
        data_version(session),
    )
    counts = _counts_cache.get_or_compute(
        key,
        lambda: _count(session, generation_id, level, within, start, end, category),
    )
    return counts.copy()


def hotspots(
    session: Session,
    counts: pd.Series,
    *,
    generation_id: int,
    level: str = "grid",
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
    alpha: float = 0.05,
) -> HotspotResult:
    """Gi* hotspots and coldspots of ``counts`` (indexed by code) on the level's weights."""
    check_options(permutations, alpha)
    key = (
        database_key(session),
        generation_id,
        level,
        permutations,
        seed,
        alpha,
        counts_digest(counts),
    )

    def compute() -> HotspotResult:
        started = time.perf_counter()
        graph = level_contiguity(session, generation_id, level).star_graph(counts.index)
        frame, islands, note = _gi_star(counts, graph, permutations, seed, alpha)
        return HotspotResult(
            frame=frame,
            generation=generation_id,
            level=level,
            permutations=permutations,
            seed=seed,
            alpha=alpha,
            method=METHOD,
            computed_at=datetime.now(UTC),
            seconds=time.perf_counter() - started,
            islands=islands,
            note=note,
        )

    result = _results_cache.get_or_compute(key, compute)
    return replace(result, frame=result.frame.copy())


def gi_star(
    counts: pd.Series,
    weights: W | Graph,
    *,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Gi* of counts on binary contiguity weights (ids = the counts' codes), as a frame.

    The weights need not include each area itself: Gi* always does (weight 1).
    """
    check_options(permutations, alpha)
    graph = Graph.from_W(weights) if isinstance(weights, W) else weights
    if not (graph.sparse.diagonal() == 1).all():
        graph = graph.assign_self_weight(1)
    return _gi_star(counts, graph, permutations, seed, alpha)[0]


def counts_digest(counts: pd.Series) -> str:
    """A digest of codes and counts, so equal counts find the same cached result."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update("\x1f".join(map(str, counts.index)).encode())
    digest.update(np.ascontiguousarray(counts.to_numpy(dtype=float)).tobytes())
    return digest.hexdigest()


def warm_up(session: Session | None = None, *, levels: tuple[str, ...] = ("grid",)) -> dict:
    """Pay start-up costs before the first request: esda's first run, the active weights.

    Call it once per process at start (a background thread will do); with a session it
    also loads (and if need be stores) the active generation's weights for ``levels``.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    cells = [shapely.box(col, row, col + 1, row + 1) for row in range(4) for col in range(4)]
    lattice = contiguity([f"{cell:02d}" for cell in range(16)], cells).star_graph()
    counts = pd.Series(np.arange(16, dtype=float), index=lattice.unique_ids)
    gi_star(counts, lattice, permutations=MIN_PERMUTATIONS)
    timings["esda_s"] = round(time.perf_counter() - started, 3)
    if session is not None:
        generation = current_generation(session)
        for level in levels if generation is not None else ():
            started = time.perf_counter()
            try:
                level_contiguity(session, generation.id, level).star_graph()
            except NotFound:
                continue
            timings[f"weights_{level}_s"] = round(time.perf_counter() - started, 3)
    return timings


def clear_caches() -> None:
    """Forget cached counts and results (weights are :func:`geogrid.neighbours.clear_cache`)."""
    _counts_cache.clear()
    _results_cache.clear()


# -- helpers --------------------------------------------------------------------------------


def _gi_star(
    counts: pd.Series, graph: Graph, permutations: int, seed: int, alpha: float
) -> tuple[pd.DataFrame, tuple[str, ...], str]:
    """Gi* of counts on a star graph: the frame, the islands and a note when nothing was tested."""
    codes = pd.Index(graph.unique_ids, dtype=object)
    if len(counts.index) != len(codes) or not counts.index.isin(codes).all():
        raise InputError("the counts and the weights are not of the same areas", field="counts")
    y = counts.reindex(codes).to_numpy(dtype=float)
    matrix = graph.sparse
    island = np.asarray((matrix != 0).sum(axis=1)).ravel() - (matrix.diagonal() != 0) == 0
    tested = ~island
    z = np.zeros(len(y))
    p_sim = np.ones(len(y))
    note = _untestable(y, tested)
    if not note:
        z, p_sim = _permutation_z(y, graph, permutations, seed)
        z[island] = 0.0
        p_sim[island] = 1.0
    p = 2 * stats.norm.sf(np.abs(z))
    p_fdr = np.ones(len(y))
    if tested.any():
        p_fdr[tested] = stats.false_discovery_control(p[tested], method="bh")
    bins = _bins(z, p_fdr)
    frame = pd.DataFrame(
        {
            "count": counts.reindex(codes).to_numpy(),
            "z": z,
            "p_sim": p_sim,
            "p": p,
            "p_fdr": p_fdr,
            "bin": bins,
            "label": [LABELS[b] for b in bins],
            "significant": p_fdr < alpha,
        },
        index=pd.Index(codes, name="code"),
    )
    return frame.reindex(counts.index), tuple(codes[island]), note


def _untestable(y: np.ndarray, tested: np.ndarray) -> str:
    if tested.sum() < 3:
        return "fewer than three areas with neighbours: nothing to test"
    if np.ptp(y) == 0:
        return "every area has the same count: nothing to test"
    return ""


def _permutation_z(
    y: np.ndarray, graph: Graph, permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """esda's Gi* (binary, star): the permutation z and the pseudo p-value of each area."""
    with _esda_lock, warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda warns that conditional randomisation's default alternative will change; the
        # pseudo p-value is only reported, so its convention does not matter here.
        warnings.filterwarnings("ignore", message=".*alternative.*", category=DeprecationWarning)
        state = np.random.get_state()
        try:
            g = esda.G_Local(
                y, graph, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1
            )
        finally:
            np.random.set_state(state)
    # An area whose neighbourhood every permutation fills alike has no spread: nothing to say.
    z = np.nan_to_num(np.asarray(g.z_sim, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    return z, np.asarray(g.p_sim, dtype=float)


def _bins(z: np.ndarray, p_fdr: np.ndarray) -> np.ndarray:
    level = np.zeros(len(z), dtype=int)
    for value, below in reversed(CONFIDENCE_BINS):
        level[p_fdr < below] = value
    return (np.sign(z).astype(int) * level).astype(int)


def _count(
    session: Session,
    generation_id: int,
    level: str,
    within: str | None,
    start: datetime,
    end: datetime,
    category: str | None,
) -> pd.Series:
    codes = level_codes(session, generation_id, level, within)
    unit = func.substr(Incident.grid_code, 1, len(codes[0]))
    query = (
        select(unit.label("code"), func.count().label("count"))
        .where(Incident.reported_at >= start, Incident.reported_at < end)
        .where(Incident.grid_code.is_not(None), Incident.state != "merged")
        .group_by(unit)
    )
    if within:
        query = query.where(Incident.grid_code.startswith(within, autoescape=True))
    if category:
        query = query.where(Incident.category == category)
    counted = query_frame(session, query)
    found = pd.Series(
        counted["count"].to_numpy(dtype=np.int64), index=counted["code"].astype(object)
    )
    counts = found.reindex(pd.Index(codes, name="code"), fill_value=0).astype(np.int64)
    return counts.rename("count")


def level_codes(session: Session, generation_id: int, level: str, within: str | None) -> np.ndarray:
    """The sorted codes of the level's areas in the generation (below ``within``, if given)."""
    query = select(Area.code).where(Area.valid_in(generation_id), Area.level == level)
    if within:
        query = query.where(Area.code.startswith(within, autoescape=True))
    codes = np.sort(query_frame(session, query)["code"].to_numpy(dtype=object))
    if not len(codes):
        place = f" within {within}" if within else ""
        raise NotFound(f"generation {generation_id} has no {level} areas{place}", field="level")
    return codes


def check_period(start: datetime, end: datetime) -> None:
    """An InputError unless ``start`` and ``end`` are aware and in order."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("the period's start and end need a time zone", field="start")
    if end <= start:
        raise InputError(f"the period ends ({end}) before it starts ({start})", field="end")


def check_options(permutations: int, alpha: float) -> None:
    """An InputError unless there are enough permutations and alpha is a probability."""
    if permutations < MIN_PERMUTATIONS:
        raise InputError(
            f"at least {MIN_PERMUTATIONS} permutations are needed, not {permutations}",
            field="permutations",
        )
    if not 0 < alpha < 1:
        raise InputError(f"alpha is between 0 and 1, not {alpha}", field="alpha")


def database_key(session: Session) -> str:
    """Which database a session reads, for cache keys."""
    return str(session.get_bind().engine.url)
