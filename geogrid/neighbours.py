"""Binary contiguity of a level's areas in a generation: which areas touch which.

Two areas are neighbours when their outlines meet, along an edge or only at a corner
(queen contiguity, ArcGIS's ``CONTIGUITY_EDGES_CORNERS``); ``shares_edge`` records
which pairs also share an edge (rook). Queen is what the hotspot statistics use: on
square grid cells it gives the eight cells around a cell rather than four, so a
cluster that runs diagonally is still one neighbourhood, and it is the usual meaning
of "binary contiguity" for grid cells. Rook stays available from the same rows.

Contiguity is exact: validation refuses an active generation whose neighbours do not
share their vertices or leave narrow gaps, so areas that meet on the ground meet in the
data, and no snapping tolerance is needed.

The pairs are found once per generation and level (on activation, or the first time
they are asked for) and stored in ``area_neighbour``, both ways round. Weights built
from them are kept in the process for every generation that is not a draft, whose
areas never change; a draft's are built afresh each time and never stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import ARRAY, Boolean, String, bindparam, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geogrid.codes import CodeScheme
from geogrid.errors import Conflict, NotFound
from geogrid.models import Area, AreaNeighbour, Generation
from geogrid.report_counts import query_frame
from geogrid.shapes import wkb_column

if TYPE_CHECKING:
    from libpysal.graph import Graph
    from libpysal.weights import W

#: DE-9IM pattern: the two boundaries meet along a line, not only at points.
_SHARED_EDGE = "****1****"
_CACHE_SIZE = 16
_cache: OrderedDict[tuple[Any, ...], Contiguity] = OrderedDict()
_cache_lock = threading.Lock()
# Held while building, so that concurrent first requests wait for one build.
_build_lock = threading.Lock()


@dataclass(frozen=True)
class Contiguity:
    """The areas of a level (codes sorted) and their neighbour pairs, both ways round."""

    codes: np.ndarray
    #: Positions in ``codes`` of each pair's area and neighbour.
    focal: np.ndarray
    neighbour: np.ndarray
    shares_edge: np.ndarray
    _weights: dict[bool, W] = field(default_factory=dict, repr=False, compare=False)
    _graphs: OrderedDict[Any, Graph] = field(default_factory=OrderedDict, repr=False, compare=False)

    @property
    def islands(self) -> list[str]:
        """Codes of the areas that touch no other area of the level."""
        touching = np.zeros(len(self.codes), dtype=bool)
        touching[self.focal] = True
        return list(self.codes[~touching])

    def pairs(self) -> pd.DataFrame:
        """The pairs as codes: ``code``, ``neighbour_code``, ``shares_edge``."""
        return pd.DataFrame(
            {
                "code": self.codes[self.focal],
                "neighbour_code": self.codes[self.neighbour],
                "shares_edge": self.shares_edge,
            }
        )

    def weights(self, *, rook: bool = False) -> W:
        """Binary weights (queen, or rook when asked); ids are the sorted codes."""
        from libpysal.weights import W  # slow to import; activation does not need it

        if rook not in self._weights:
            keep = self.shares_edge if rook else np.ones(len(self.focal), dtype=bool)
            neighbours: dict[str, list[str]] = {code: [] for code in self.codes}
            pairs = zip(self.codes[self.focal[keep]], self.codes[self.neighbour[keep]], strict=True)
            for code, neighbour_code in pairs:
                neighbours[code].append(neighbour_code)
            # Islands are reported through ``W.islands``, not as a warning on every build.
            self._weights[rook] = W(neighbours, id_order=list(self.codes), silence_warnings=True)
        return self._weights[rook]

    def star_graph(self, codes: pd.Index | None = None) -> Graph:
        """Binary queen weights with each area its own neighbour (Gi*), over ``codes`` if given.

        ``codes`` must be among the level's; pairs with an area outside them are dropped,
        so an area whose neighbours all lie outside becomes an island of the subset.
        """
        chosen = self.codes if codes is None else np.asarray(codes, dtype=object)
        key = _codes_key(chosen)
        with _cache_lock:
            if key in self._graphs:
                self._graphs.move_to_end(key)
                return self._graphs[key]
        graph = _star_graph(self, chosen)
        with _cache_lock:
            self._graphs[key] = graph
            while len(self._graphs) > _CACHE_SIZE:
                self._graphs.popitem(last=False)
        return graph


def contiguity(codes: Any, geoms: Any) -> Contiguity:
    """Queen contiguity of areas (codes and shapely outlines), with the rook pairs marked."""
    order = np.argsort(np.asarray(codes, dtype=object), kind="stable")
    codes = np.asarray(codes, dtype=object)[order]
    geoms = np.asarray(geoms, dtype=object)[order]
    focal, neighbour = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    # Each pair is tested once (a < b) and then stored both ways round.
    once = focal < neighbour
    a, b = focal[once], neighbour[once]
    edge = shapely.relate_pattern(geoms[a], geoms[b], _SHARED_EDGE)
    both = np.concatenate([a, b]), np.concatenate([b, a])
    by_pair = np.lexsort((both[1], both[0]))
    return Contiguity(
        codes=codes,
        focal=both[0][by_pair],
        neighbour=both[1][by_pair],
        shares_edge=np.concatenate([edge, edge])[by_pair],
    )


def ensure_neighbours(session: Session, generation_id: int, level: str) -> int:
    """Find and store the level's neighbour pairs unless stored; the rows written (0 if there)."""
    generation = _generation(session, generation_id)
    if generation.status == "draft":
        raise Conflict(
            f"generation {generation_id} is a draft whose areas still change; its neighbours "
            "are stored when it is activated",
            field="generation",
        )
    if _stored(session, generation_id, level) or not _has_areas(session, generation_id, level):
        return 0
    found = find_neighbours(session, generation_id, level)
    store_neighbours(session, generation_id, level, found)
    return len(found.focal)


def ensure_generation_neighbours(
    session: Session, generation_id: int, scheme: CodeScheme
) -> dict[str, int]:
    """Store neighbours of every level incidents are counted at (down to the grid level)."""
    finest = scheme.depth(scheme.default_geocode_level)
    return {
        level.name: ensure_neighbours(session, generation_id, level.name)
        for level in scheme.levels[: finest + 1]
    }


def level_contiguity(session: Session, generation_id: int, level: str) -> Contiguity:
    """The level's contiguity: from this process's cache, the stored pairs, or found now."""
    key = (_database(session), generation_id, level)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with _build_lock:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        generation = _generation(session, generation_id)
        if generation.status == "draft":
            return find_neighbours(session, generation_id, level)
        if _stored(session, generation_id, level):
            found = _read(session, generation_id, level)
        else:
            found = find_neighbours(session, generation_id, level)
            store_neighbours(session, generation_id, level, found)
        with _cache_lock:
            _cache[key] = found
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return found


def neighbour_weights(session: Session, generation_id: int, level: str, *, rook: bool = False) -> W:
    """Binary contiguity weights of a level (queen unless ``rook``), ids the sorted codes."""
    return level_contiguity(session, generation_id, level).weights(rook=rook)


def find_neighbours(session: Session, generation_id: int, level: str) -> Contiguity:
    """The level's contiguity found from the areas' outlines (nothing stored or cached)."""
    query = select(Area.code, wkb_column(Area.geom).label("wkb")).where(
        Area.valid_in(generation_id), Area.level == level
    )
    areas = query_frame(session, query)
    if areas.empty:
        raise NotFound(f"generation {generation_id} has no {level} areas", field="level")
    geoms = shapely.from_wkb(np.asarray([bytes(wkb) for wkb in areas["wkb"]], dtype=object))
    return contiguity(areas["code"].to_numpy(dtype=object), geoms)


def store_neighbours(session: Session, generation_id: int, level: str, found: Contiguity) -> None:
    """Write the pairs to ``area_neighbour`` (pairs already there are left as they are)."""
    pairs = found.pairs()
    if pairs.empty:
        return
    rows = select(
        literal(generation_id),
        literal(level),
        func.unnest(bindparam("codes", list(pairs["code"]), type_=ARRAY(String))),
        func.unnest(bindparam("neighbours", list(pairs["neighbour_code"]), type_=ARRAY(String))),
        func.unnest(bindparam("edges", [bool(e) for e in pairs["shares_edge"]], ARRAY(Boolean))),
    )
    columns = ["generation_id", "level", "code", "neighbour_code", "shares_edge"]
    # Two processes may find a level missing at once; the second one's rows are the same.
    statement = insert(AreaNeighbour).from_select(columns, rows).on_conflict_do_nothing()
    session.execute(statement)
    session.flush()


def clear_cache() -> None:
    """Forget every cached contiguity (tests, or after editing ``area_neighbour`` by hand)."""
    with _cache_lock:
        _cache.clear()


# -- helpers --------------------------------------------------------------------------------


def _database(session: Session) -> str:
    return str(session.get_bind().engine.url)


def _generation(session: Session, generation_id: int) -> Generation:
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise NotFound(f"there is no generation {generation_id}", field="generation")
    return generation


def _stored(session: Session, generation_id: int, level: str) -> bool:
    row = select(AreaNeighbour.code).where(
        AreaNeighbour.generation_id == generation_id, AreaNeighbour.level == level
    )
    return bool(session.scalar(select(exists(row))))


def _has_areas(session: Session, generation_id: int, level: str) -> bool:
    area = select(Area.id).where(Area.valid_in(generation_id), Area.level == level)
    return bool(session.scalar(select(exists(area))))


def _level_codes(session: Session, generation_id: int, level: str) -> np.ndarray:
    query = select(Area.code).where(Area.valid_in(generation_id), Area.level == level)
    codes = query_frame(session, query)["code"].to_numpy(dtype=object)
    return np.sort(codes)


def _read(session: Session, generation_id: int, level: str) -> Contiguity:
    codes = _level_codes(session, generation_id, level)
    if not len(codes):
        raise NotFound(f"generation {generation_id} has no {level} areas", field="level")
    query = select(
        AreaNeighbour.code, AreaNeighbour.neighbour_code, AreaNeighbour.shares_edge
    ).where(AreaNeighbour.generation_id == generation_id, AreaNeighbour.level == level)
    pairs = query_frame(session, query)
    positions = pd.Index(codes)
    focal = positions.get_indexer(pairs["code"].to_numpy(dtype=object))
    neighbour = positions.get_indexer(pairs["neighbour_code"].to_numpy(dtype=object))
    by_pair = np.lexsort((neighbour, focal))
    return Contiguity(
        codes=codes,
        focal=focal[by_pair].astype(np.int64),
        neighbour=neighbour[by_pair].astype(np.int64),
        shares_edge=pairs["shares_edge"].to_numpy(dtype=bool)[by_pair],
    )


def _codes_key(codes: np.ndarray) -> tuple[int, int]:
    return len(codes), hash(tuple(codes))


def _star_graph(found: Contiguity, chosen: np.ndarray) -> Graph:
    from libpysal.graph import Graph

    position = pd.Index(found.codes).get_indexer(chosen)
    if (position < 0).any():
        unknown = list(chosen[position < 0][:5])
        raise NotFound(f"codes {unknown} are not areas of this level", field="code")
    inside = np.zeros(len(found.codes), dtype=bool)
    inside[position] = True
    keep = inside[found.focal] & inside[found.neighbour]
    # Every area is its own neighbour with weight 1 (Gi* counts the area itself); listed
    # first, so that the graph's ids come in the order of ``chosen``.
    focal = np.concatenate([chosen, found.codes[found.focal[keep]]])
    neighbour = np.concatenate([chosen, found.codes[found.neighbour[keep]]])
    return Graph.from_arrays(focal, neighbour, np.ones(len(focal)))
