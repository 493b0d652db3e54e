"""Area outlines for maps: one level of a generation, simplified per zoom, as GeoJSON.

A level is simplified as a *coverage* (``shapely.coverage_simplify``): the edge two
neighbouring grids share is simplified once, so they still meet exactly, with no gaps or
overlaps at any zoom, which per-polygon simplification cannot promise. Each zoom bucket
(:data:`geogrid.maplayers.ZOOM_BUCKETS`) has its own tolerance, half a pixel at the
bucket's deepest zoom, and coordinates are rounded to a quarter of it, which keeps the
shared vertices shared.

The geometry of a generation never changes once it is active (a redraw is a new
generation), so a level's outlines are computed once per process, database, generation
and bucket, and every answer (a whole level, the areas under one code, or one chunk
tile) is kept gzipped with its ETag. Drafts change while planners edit them: their
answers are computed afresh and never kept.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import shapely
from shapely.errors import GEOSException
from sqlalchemy import select
from sqlalchemy.orm import Session

from geogrid.area_index import CHEAP_AREAS, level_summaries
from geogrid.errors import InputError, NotFound
from geogrid.generations import resolve_generation
from geogrid.maplayers import MAX_BUCKET, ZOOM_BUCKETS, zoom_bucket
from geogrid.models import Area, Generation
from geogrid.settings import Settings
from geogrid.shapes import frame_from_rows, wkb_column

#: The deepest tile zoom a chunk may be asked for (a tile of a few metres).
MAX_TILE_ZOOM = 22
#: Kept answers, gzipped and plain, per process; least recently used go first.
_ANSWER_CACHE_BYTES = 192 * 1024 * 1024
_LEVEL_CACHE_SIZE = 48
#: Levels whose shapes are kept as read, to simplify for the next bucket without reading.
_SOURCE_CACHE_SIZE = 8
#: Past this, coordinates carry more digits than any screen shows (about 1 cm).
_MAX_DECIMALS = 7

T = TypeVar("T")


@dataclass(frozen=True)
class LevelOutlines:
    """One level of one generation simplified for one zoom bucket, in code order."""

    generation: int
    level: str
    bucket: int
    tolerance: float
    codes: np.ndarray
    features: list[bytes]
    tree: shapely.STRtree

    def select(
        self,
        within: str | None,
        tile: tuple[int, int, int] | None,
        scope: tuple[str, ...] | None = None,
    ) -> np.ndarray:
        """Positions of the areas under ``within`` that meet ``tile``, in code order.

        With a ``scope``, only the areas under its codes and the areas holding them.
        """
        chosen = np.arange(len(self.codes))
        if within is not None:
            chosen = chosen[self._under(within)]
        if scope is not None:
            seen = np.zeros(len(self.codes), dtype=bool)
            for prefix in scope:
                seen[self._under(prefix)] = True
                if self.codes.size and len(self.codes[0]) < len(prefix):
                    seen[self._under(prefix[: len(self.codes[0])])] = True
            chosen = chosen[seen[chosen]]
        if tile is not None:
            hits = self.tree.query(shapely.box(*tile_bounds(*tile)), predicate="intersects")
            chosen = np.intersect1d(chosen, hits)
        return chosen

    def _under(self, prefix: str) -> slice:
        """The positions of the codes starting with ``prefix`` (codes are sorted)."""
        start = int(np.searchsorted(self.codes, prefix, side="left"))
        stop = int(np.searchsorted(self.codes, prefix + "\uffff", side="right"))
        return slice(start, stop)


@dataclass(frozen=True)
class LayerAnswer:
    """A layer request's answer: the GeoJSON plain and gzipped, and how it may be cached."""

    body: bytes
    gzipped: bytes
    etag: str
    immutable: bool
    features: int


def layer_geojson(
    session: Session,
    settings: Settings,
    generation: int,
    level: str,
    *,
    z: int | None = None,
    within: str | None = None,
    tile: str | None = None,
    scope: tuple[str, ...] | None = None,
) -> LayerAnswer:
    """The areas of ``level`` under ``within`` meeting ``tile`` ("z/x/y"), simplified for ``z``.

    ``z`` defaults to the most detailed bucket. ``scope`` (an actor's codes; None for
    everything) keeps the areas under those codes and the areas holding them. Kept
    answers are given without asking the database: a kept generation is never a draft,
    and its geometry never changes.
    """
    scheme = settings.scheme
    scheme.level(level)
    bucket = _bucket(z)
    chunk = parse_tile(tile)
    if within is not None:
        within_level = scheme.validate(within, field="within")
        if scheme.depth(within_level) > scheme.depth(level):
            raise InputError(
                f"within {within} is a {within_level}, finer than {level}: give a coarser area",
                field="within",
            )
    database = str(session.get_bind().engine.url)
    scope = None if scope is None else tuple(sorted(set(scope)))
    key = (database, generation, level, bucket, within, chunk, scope)
    kept = _answers.get(key)
    if kept is not None:
        return kept
    gen = resolve_generation(session, generation)
    outlines = level_outlines(session, gen, level, bucket)
    chosen = outlines.select(within, chunk, scope)
    if within is not None and not len(chosen) and not _exists(session, gen, within):
        raise NotFound(f"there is no area {within} in generation {gen.id}", field="within")
    answer = _answer(outlines, chosen, immutable=gen.status != "draft")
    if answer.immutable:
        _answers.put(key, answer, len(answer.body) + len(answer.gzipped))
    return answer


def level_outlines(
    session: Session, generation: Generation, level: str, bucket: int
) -> LevelOutlines:
    """A level's outlines for a zoom bucket, simplified as a coverage (kept unless a draft)."""
    database = str(session.get_bind().engine.url)
    key = (database, generation.id, level, bucket)

    def build() -> LevelOutlines:
        codes, names, polygons = _level_source(session, generation, level)
        return simplified_outlines(generation.id, level, bucket, codes, names, polygons)

    if generation.status == "draft":
        return build()
    return _levels.get_or_build(key, build)


def simplified_outlines(
    generation: int,
    level: str,
    bucket: int,
    codes: list[str],
    names: list[str],
    polygons: np.ndarray,
) -> LevelOutlines:
    """Simplify areas (lon/lat) as a coverage for a bucket and write each as a GeoJSON feature."""
    order = np.argsort(np.asarray(codes, dtype=object), kind="stable")
    codes_sorted = np.asarray(codes, dtype=object)[order]
    polygons = np.asarray(polygons, dtype=object)[order]
    names_sorted = [names[i] for i in order]
    latitude = _middle_latitude(polygons)
    tolerance = bucket_tolerance(bucket, latitude)
    simplified = _simplify_coverage(polygons, tolerance)
    decimals = min(_MAX_DECIMALS, max(0, math.ceil(-math.log10(tolerance / 4))))
    rounded = shapely.transform(simplified, lambda xy: np.round(xy, decimals))
    geometries = shapely.to_geojson(rounded)
    features = [
        b'{"type":"Feature","properties":'
        + json.dumps({"code": code, "name": name}, ensure_ascii=False).encode()
        + b',"geometry":'
        + geometry.encode()
        + b"}"
        for code, name, geometry in zip(codes_sorted, names_sorted, geometries, strict=True)
    ]
    return LevelOutlines(
        generation=generation,
        level=level,
        bucket=bucket,
        tolerance=tolerance,
        codes=codes_sorted.astype(str),
        features=features,
        tree=shapely.STRtree(rounded),
    )


def bucket_tolerance(bucket: int, latitude: float = 0.0) -> float:
    """Simplification tolerance in degrees for a bucket: half a pixel at its deepest zoom.

    A bucket serves its own zoom and the next ones up to the following bucket (the last
    serves one more). At zoom z a 256-pixel tile spans 360 / 2**z degrees of longitude,
    and a degree of latitude is longer on Web Mercator by 1 / cos(latitude).
    """
    following = [b for b in ZOOM_BUCKETS if b > bucket]
    deepest = (following[0] if following else bucket + 2) - 1
    pixel = 360 / (256 * 2**deepest)
    return pixel / 2 * math.cos(math.radians(min(abs(latitude), 85.0)))


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of the Web Mercator tile z/x/y."""
    n = 2**z

    def latitude(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return (x / n * 360 - 180, latitude(y + 1), (x + 1) / n * 360 - 180, latitude(y))


def parse_tile(tile: str | None) -> tuple[int, int, int] | None:
    """``"z/x/y"`` as numbers; InputError for anything else or a tile outside the world."""
    if tile is None:
        return None
    parts = tile.split("/")
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        raise InputError(f"tile must be z/x/y in whole numbers, not {tile!r}", field="tile")
    z, x, y = (int(part) for part in parts)
    if z > MAX_TILE_ZOOM:
        raise InputError(f"tile zoom must be 0-{MAX_TILE_ZOOM}, not {z}", field="tile")
    if x >= 2**z or y >= 2**z:
        raise InputError(f"tile {tile} is outside the world at zoom {z}", field="tile")
    return z, x, y


def warm(session: Session, generation: Generation, *, overview: bool) -> int:
    """Simplify ahead of the first maps; how many (level, bucket) sets were made.

    ``overview``: only what a whole city's first view draws, the levels fetched whole
    (:data:`geogrid.area_index.CHEAP_AREAS`) at the zooms up to 10. Otherwise the rest:
    those levels at the deeper zooms, and the finer levels from the zoom they appear at.
    """
    done = 0
    for summary in sorted(level_summaries(session, generation).values(), key=lambda s: s.areas):
        whole = summary.areas <= CHEAP_AREAS
        for bucket in ZOOM_BUCKETS:
            if overview and not (whole and bucket <= 10):
                continue
            if not overview and (whole and bucket <= 10 or bucket < summary.min_zoom - 1):
                continue
            level_outlines(session, generation, summary.level, bucket)
            done += 1
    return done


def forget(database: str | None = None) -> None:
    """Drop kept outlines and answers (of one database URL, or all): for tests and tools."""
    _levels.clear(database)
    _sources.clear(database)
    _answers.clear(database)


def _bucket(z: int | None) -> int:
    if z is None:
        return MAX_BUCKET
    if not 0 <= z <= MAX_TILE_ZOOM:
        raise InputError(f"z must be a zoom level 0-{MAX_TILE_ZOOM}, not {z}", field="z")
    return zoom_bucket(z)


def _level_source(
    session: Session, generation: Generation, level: str
) -> tuple[list[str], list[str], np.ndarray]:
    """Codes, names and shapes of a level, read once for all its buckets (unless a draft)."""
    database = str(session.get_bind().engine.url)

    def read() -> tuple[list[str], list[str], np.ndarray]:
        query = select(Area.code, Area.name, wkb_column(Area.geom).label("geometry")).where(
            Area.valid_in(generation.id), Area.level == level
        )
        frame = frame_from_rows(session.execute(query.order_by(Area.code)).all(), ["code", "name"])
        names = [name or "" for name in frame["name"]]
        return list(frame["code"]), names, np.asarray(frame.geometry.values, dtype=object)

    if generation.status == "draft":
        return read()
    return _sources.get_or_build((database, generation.id, level), read)


def _exists(session: Session, generation: Generation, code: str) -> bool:
    query = select(Area.id).where(Area.valid_in(generation.id), Area.code == code).limit(1)
    return session.scalar(query) is not None


def _simplify_coverage(polygons: np.ndarray, tolerance: float) -> np.ndarray:
    """Coverage simplification; per polygon if the areas are no clean coverage (a draft)."""
    if not len(polygons):
        return polygons
    try:
        simplified = shapely.coverage_simplify(polygons, tolerance)
        if shapely.is_valid(simplified).all() and not shapely.is_empty(simplified).any():
            return simplified
    except GEOSException:
        pass
    # A draft with overlaps is no coverage; its errors must still be seen on the map.
    return shapely.simplify(polygons, tolerance, preserve_topology=True)


def _middle_latitude(polygons: np.ndarray) -> float:
    if not len(polygons):
        return 0.0
    _, south, _, north = shapely.total_bounds(polygons)
    return (south + north) / 2


def _answer(outlines: LevelOutlines, chosen: np.ndarray, *, immutable: bool) -> LayerAnswer:
    head = json.dumps(
        {
            "type": "FeatureCollection",
            "generation": outlines.generation,
            "level": outlines.level,
            "z": outlines.bucket,
            "tolerance": outlines.tolerance,
        }
    ).encode()[:-1]
    body = head + b',"features":[' + b",".join(outlines.features[i] for i in chosen) + b"]}"
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    return LayerAnswer(
        body=body,
        # Level 6: nearly the size of 9 in a fraction of the time, once per answer.
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        etag=f'"{outlines.generation}-{digest}"',
        immutable=immutable,
        features=len(chosen),
    )


class _Kept:
    """A thread-safe LRU cache keyed by tuples whose first item is the database URL."""

    def __init__(self, *, max_items: int | None = None, max_bytes: int | None = None) -> None:
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self._bytes = 0
        self._max_items = max_items
        self._max_bytes = max_bytes

    def get(self, key: Hashable) -> Any:
        """The kept value, or None."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, value: Any, size: int = 0) -> None:
        """Keep a value, dropping the least recently used past the limits."""
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._items and (
                (self._max_items is not None and len(self._items) > self._max_items)
                or (self._max_bytes is not None and self._bytes > self._max_bytes)
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The kept value, built once even when several threads ask at the same time."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            found = self.get(key)
            if found is None:
                found = build()
                self.put(key, found)
        with self._lock:
            self._building.pop(key, None)
        return found

    def clear(self, database: str | None = None) -> None:
        """Forget every value, or those of one database."""
        with self._lock:
            for key in [k for k in self._items if database is None or k[0] == database]:
                self._bytes -= self._items.pop(key)[1]


_levels = _Kept(max_items=_LEVEL_CACHE_SIZE)
_sources = _Kept(max_items=_SOURCE_CACHE_SIZE)
_answers = _Kept(max_bytes=_ANSWER_CACHE_BYTES)
