"""GPS noise in patrol tracks: found, handled and reported, never silently dropped.

:func:`clean` turns the fixes of one upload into the continuous pieces that are stored,
with a :class:`Quality` report of everything it found and did. The rules, in order:

1. Unusable fixes (not finite, the 0,0 a phone sends without a fix, out of range) are
   dropped and counted. A track whose every fix is out of range, or whose fixes would lie
   in China with lat and lon exchanged, is refused as swapped. The rest is converted to
   storage coordinates (GCJ-02 and BD-09 undone) before anything else is measured.
2. Fixes are put in time order (those that came out of order are counted) and of several
   fixes with the same time the first in the file is kept (the others are counted).
3. Spikes: a run of at most ``max_spike_fixes`` fixes that leaves the track faster than
   ``max_speed_mps`` and comes back (the fixes before and after it are within reach of
   each other) is dropped; so is such a short run at either end of the track when the
   track goes on within the limit beyond it (a cold start). Any other step faster than
   the limit is a *jump*: nothing is dropped, the track is split there, so no line is
   ever drawn across it (a track fast throughout is not eroded: it is refused with a
   hint to raise the limit, e.g. for a car patrol).
4. Gaps: no fix for more than ``max_gap_minutes`` (signal lost, app paused) splits the
   track. A stored line is then continuous: every segment of it was walked or ridden,
   so coverage can credit every segment without knowing about gaps.
5. Idle spells (a phone left in a drawer, or on a desk at the station): fixes staying
   within a box ``idle_span_m`` across for at least ``idle_minutes``. The first
   ``idle_minutes`` of a spell are kept (a fixed post such as a school gate is real
   presence) and the rest of it is dropped and the track split after it, so hours on a
   desk never count as hours on patrol.
6. Pieces of a single fix (between two breaks) cannot be a line; they are counted.

Default limits: 15 m/s (54 km/h) suits foot, bicycle and e-bike patrols (e-bikes are
limited to 25 km/h by GB 17761-2018, the rest is margin for GPS error); car patrols (taxi
drivers, police cars) need a higher limit, e.g. 35 m/s. Distances for speeds and spans
use a local equirectangular projection about the track's median point, within a fraction
of a percent over a city.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from geogrid.crs import CGCS2000, check_lonlat, looks_swapped, to_storage
from geogrid.errors import CoordinateError, GeogridError, InputError
from geogrid.trackfiles import TrackFixes
from geogrid.workdays import SHANGHAI

_EARTH_RADIUS_M = 6_371_008.8
#: How many spikes, jumps, idle spells and gaps the report lists one by one.
LISTED = 20


@dataclass(frozen=True)
class CleaningRules:
    """The limits cleaning applies; the defaults suit patrols on foot, bicycle or e-bike."""

    max_speed_mps: float = 15.0
    max_gap_minutes: float = 10.0
    idle_minutes: float = 30.0
    idle_span_m: float = 50.0
    max_spike_fixes: int = 5

    def __post_init__(self) -> None:
        for name in ("max_speed_mps", "max_gap_minutes", "idle_minutes", "idle_span_m"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number, not {value!r}", field=name)
        if not (isinstance(self.max_spike_fixes, int) and self.max_spike_fixes >= 1):
            raise InputError("max_spike_fixes must be a whole number >= 1", field="max_spike_fixes")


DEFAULT_RULES = CleaningRules()


@dataclass
class Quality:
    """What cleaning found and did to one upload; stored with each of its tracks."""

    received: int
    rules: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    kept: int = 0
    unusable: int = 0
    reordered: int = 0
    duplicate_times: int = 0
    spike_fixes: int = 0
    spikes: list[dict[str, Any]] = field(default_factory=list)
    jumps: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    idle_fixes_dropped: int = 0
    idle: list[dict[str, Any]] = field(default_factory=list)
    lone_fixes: int = 0
    #: Fixes outside every grid of the current generation (None until placed).
    outside_fixes: int | None = None
    parts: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; long lists keep their first entries and a count."""
        # A shallow copy: the entries are flat dicts of numbers and text, never changed.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["rules"], data["notes"] = dict(self.rules), list(self.notes)
        data["warnings"] = list(self.warnings)
        for name in ("spikes", "jumps", "gaps", "idle"):
            data[f"{name}_count"] = len(data[name])
            data[name] = data[name][:LISTED]
        return data

    def lines(self) -> list[str]:
        """The report in words, one finding a line."""
        lines = [
            f"{self.received} fixes received, {self.kept} kept in {self.parts} track(s)",
            *(f"note: {note}" for note in self.notes),
        ]
        counts = [
            (self.unusable, "unusable fixes dropped (no fix, 0,0 or out of range)"),
            (self.reordered, "fixes out of time order, sorted"),
            (self.duplicate_times, "fixes repeating an earlier time, dropped (first kept)"),
            (self.spike_fixes, f"fixes in {len(self.spikes)} GPS spikes, dropped"),
            (len(self.jumps), "impossible jumps, track split there"),
            (len(self.gaps), "gaps without fixes, track split there"),
            (self.idle_fixes_dropped, f"fixes of {len(self.idle)} idle spells, dropped"),
            (self.lone_fixes, "lone fixes between breaks, left out"),
            (self.outside_fixes or 0, "fixes outside every grid (kept)"),
        ]
        lines += [f"{count} {what}" for count, what in counts if count]
        lines += [f"  spike at {s['at']}: {s['fixes']} fixes" for s in self.spikes[:LISTED]]
        lines += [
            f"  jump at {j['at']}: {j['distance_m']:.0f} m at {j['speed_mps']:.0f} m/s"
            for j in self.jumps[:LISTED]
        ]
        lines += [f"  gap {g['from']} to {g['to']}" for g in self.gaps[:LISTED]]
        lines += [
            f"  idle {i['minutes']:.0f} min from {i['from']} at {i['lon']:.6f},{i['lat']:.6f}:"
            f" {i['dropped']} fixes after the first {self.rules['idle_minutes']:g} min dropped"
            for i in self.idle[:LISTED]
        ]
        return lines + [f"warning: {warning}" for warning in self.warnings]


@dataclass
class Cleaned:
    """The continuous pieces of a cleaned upload and the report; pieces are in storage CGCS2000."""

    pieces: list[TrackFixes]
    quality: Quality


def clean(fixes: TrackFixes, rules: CleaningRules = DEFAULT_RULES) -> Cleaned:
    """Clean one upload into continuous pieces in storage coordinates, reporting everything."""
    (result,) = clean_many([fixes], rules)
    if isinstance(result, GeogridError):
        raise result
    return result


def clean_many(
    uploads: Sequence[TrackFixes], rules: CleaningRules = DEFAULT_RULES
) -> list[Cleaned | GeogridError]:
    """Clean many uploads; each gives its Cleaned, or the error that refused it.

    The conversion to storage coordinates is done once per coordinate type for all of
    them: GCJ-02's inverse costs about as much for one track as for a thousand.
    """
    results: list[Any] = []
    for fixes in uploads:
        quality = Quality(received=len(fixes), rules=asdict(rules), notes=list(fixes.notes))
        try:
            results.append((quality, *_usable(fixes, quality)))
        except GeogridError as exc:
            results.append(exc)
    _to_storage_together(uploads, results)
    for position, (fixes, result) in enumerate(zip(uploads, results, strict=True)):
        if not isinstance(result, GeogridError):
            try:
                results[position] = _cleaned(fixes, *result, rules)
            except GeogridError as exc:
                results[position] = exc
    return results


def _to_storage_together(uploads: Sequence[TrackFixes], results: list[Any]) -> None:
    by_type: dict[Any, list[int]] = {}
    for position, result in enumerate(results):
        if not isinstance(result, GeogridError):
            by_type.setdefault(uploads[position].coord_type, []).append(position)
    for coord_type, positions in by_type.items():
        lon = np.concatenate([results[p][1] for p in positions])
        lat = np.concatenate([results[p][2] for p in positions])
        lon, lat = (np.asarray(v) for v in to_storage(lon, lat, coord_type))
        splits = np.cumsum([len(results[p][1]) for p in positions])[:-1]
        for p, x, y in zip(positions, np.split(lon, splits), np.split(lat, splits), strict=True):
            results[p] = (results[p][0], x, y, results[p][3])


def _cleaned(
    fixes: TrackFixes,
    quality: Quality,
    lon: np.ndarray,
    lat: np.ndarray,
    t: np.ndarray,
    rules: CleaningRules,
) -> Cleaned:
    lon, lat, t = _in_time_order(lon, lat, t, quality)
    x, y = _local_metres(lon, lat)
    keep = _drop_spikes(x, y, t, rules, quality)
    lon, lat, t, x, y = lon[keep], lat[keep], t[keep], x[keep], y[keep]
    breaks = _jumps(x, y, t, rules, quality) | _gaps(t, rules, quality)
    keep, idle_breaks = _trim_idle(lon, lat, x, y, t, breaks, rules, quality)
    breaks = (breaks | idle_breaks)[keep]
    lon, lat, t = lon[keep], lat[keep], t[keep]
    pieces = _pieces(fixes, lon, lat, t, breaks, quality)
    quality.kept = sum(len(piece) for piece in pieces)
    quality.parts = len(pieces)
    if not pieces:
        raise InputError(
            f"nothing of the track is left to store: {'; '.join(quality.lines())}", field="fixes"
        )
    return Cleaned(pieces, quality)


def _usable(fixes: TrackFixes, quality: Quality) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixes with a position, as given; refuses a swapped or positionless track."""
    lon, lat, t = fixes.lon, fixes.lat, fixes.t
    finite = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(t)
    no_fix = finite & (lon == 0) & (lat == 0)
    in_range = finite & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if not len(t) or not (finite & ~no_fix).any():
        raise CoordinateError("the track has no usable fix (all empty, NaN or 0,0)", field="lon")
    if not in_range.any():
        check_lonlat(lon[finite & ~no_fix], lat[finite & ~no_fix])  # raises, naming the field
    usable = in_range & ~no_fix
    quality.unusable = int(len(t) - usable.sum())
    lon, lat, t = lon[usable], lat[usable], t[usable]
    mid_lon, mid_lat = float(lon[len(t) // 2]), float(lat[len(t) // 2])
    if looks_swapped(mid_lon, mid_lat):
        raise CoordinateError(
            f"lat/lon look swapped: the track's middle ({mid_lon}, {mid_lat}) is outside China "
            f"but ({mid_lat}, {mid_lon}) is in it; give longitude in lon and latitude in lat",
            field="lat",
            swapped=True,
        )
    return lon, lat, t


def _in_time_order(
    lon: np.ndarray, lat: np.ndarray, t: np.ndarray, quality: Quality
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # A fix is out of order when an earlier one in the file is later in time.
    quality.reordered = int((t < np.maximum.accumulate(t)).sum())
    order = np.argsort(t, kind="stable")  # stable: of equal times, the file's first comes first
    lon, lat, t = lon[order], lat[order], t[order]
    first = np.empty(len(t), dtype=bool)
    first[0], first[1:] = True, t[1:] > t[:-1]
    quality.duplicate_times = int((~first).sum())
    return lon[first], lat[first], t[first]


def _local_metres(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon0, lat0 = float(lon.mean()), float(lat.mean())
    scale = math.radians(1.0) * _EARTH_RADIUS_M
    return (lon - lon0) * scale * math.cos(math.radians(lat0)), (lat - lat0) * scale


def _speeds(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distance = np.hypot(np.diff(x), np.diff(y))
    return distance, distance / np.diff(t)


def _drop_spikes(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, rules: CleaningRules, quality: Quality
) -> np.ndarray:
    keep = np.ones(len(t), dtype=bool)
    while True:
        index = np.flatnonzero(keep)
        _, speed = _speeds(x[index], y[index], t[index])
        fast = np.flatnonzero(speed > rules.max_speed_mps)
        # Excursions first: a spike next to the start makes the start look like a loose end.
        runs = _excursions(x[index], y[index], t[index], fast, rules) or _loose_ends(
            len(index), fast, rules
        )
        if not runs:
            return keep
        for first, last in runs:
            dropped = index[first : last + 1]
            keep[dropped] = False
            quality.spike_fixes += len(dropped)
            quality.spikes.append({"at": _iso(t[dropped[0]]), "fixes": len(dropped)})


def _excursions(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, fast: np.ndarray, rules: CleaningRules
) -> list[tuple[int, int]]:
    # Fast step ``a`` leaves (fix a to a+1), fast step ``b`` returns (b to b+1): fixes
    # a+1..b are a spike when they are few and fix a can reach fix b+1 within the limit.
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(fast):
        a = fast[i]
        for j in range(i + 1, len(fast)):
            b = fast[j]
            if b - a > rules.max_spike_fixes:
                break
            step = math.hypot(x[b + 1] - x[a], y[b + 1] - y[a]) / (t[b + 1] - t[a])
            if step <= rules.max_speed_mps:
                runs.append((a + 1, b))
                i = j
                break
        i += 1
    return runs


def _loose_ends(n: int, fast: np.ndarray, rules: CleaningRules) -> list[tuple[int, int]]:
    # A short run cut off at either end by a fast step, beyond which the track goes on
    # within the limit for a while (so a track that is fast throughout is not eroded).
    if not len(fast):
        return []
    runs, calm = [], rules.max_spike_fixes
    head = int(fast[0]) + 1
    if head <= calm and n - head > head and (len(fast) == 1 or fast[1] - fast[0] > calm):
        runs.append((0, head - 1))
    tail = n - 1 - int(fast[-1])
    if tail <= calm and n - tail > tail and (len(fast) == 1 or fast[-1] - fast[-2] > calm):
        runs.append((n - tail, n - 1))
    return runs


def _jumps(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, rules: CleaningRules, quality: Quality
) -> np.ndarray:
    """Breaks before the fixes reached by a step faster than the limit (not a spike)."""
    distance, speed = _speeds(x, y, t)
    fast = np.flatnonzero(speed > rules.max_speed_mps)
    quality.jumps = [
        {
            "at": _iso(t[k + 1]),
            "distance_m": round(float(distance[k]), 1),
            "speed_mps": round(float(speed[k]), 1),
        }
        for k in fast
    ]
    if len(t) > 1 and len(fast) > 0.2 * (len(t) - 1):
        quality.warnings.append(
            f"{len(fast)} of {len(t) - 1} steps are faster than {rules.max_speed_mps:g} m/s: "
            "if this team patrols by car, upload with a higher speed limit"
        )
    return _marks(len(t), fast + 1)


def _gaps(t: np.ndarray, rules: CleaningRules, quality: Quality) -> np.ndarray:
    """Breaks before the first fix after each stretch without fixes."""
    long = np.flatnonzero(np.diff(t) > rules.max_gap_minutes * 60.0)
    quality.gaps = [
        {"from": _iso(t[k]), "to": _iso(t[k + 1]), "minutes": round((t[k + 1] - t[k]) / 60, 1)}
        for k in long
    ]
    return _marks(len(t), long + 1)


def _marks(n: int, positions: np.ndarray) -> np.ndarray:
    marks = np.zeros(n, dtype=bool)
    marks[positions] = True
    return marks


def _trim_idle(
    lon: np.ndarray,
    lat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    breaks: np.ndarray,
    rules: CleaningRules,
    quality: Quality,
) -> tuple[np.ndarray, np.ndarray]:
    """Which fixes to keep, and breaks after trimmed idle spells."""
    n = len(t)
    keep, idle_breaks = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    if n < 2:
        return keep, idle_breaks
    idle_s = rules.idle_minutes * 60.0
    # Window i runs from fix i to the first fix at least idle_s later, within one piece.
    end = np.searchsorted(t, t + idle_s, side="left")
    piece = np.cumsum(breaks)
    valid = np.flatnonzero(end < n)
    valid = valid[piece[valid] == piece[end[valid]]]
    # A window's two ends lie within the span when all of it does: a cheap first sieve.
    valid = valid[
        (np.abs(x[end[valid]] - x[valid]) <= rules.idle_span_m)
        & (np.abs(y[end[valid]] - y[valid]) <= rules.idle_span_m)
    ]
    span_x = _range_span(x, valid, end[valid])
    span_y = _range_span(y, valid, end[valid])
    still = valid[(span_x <= rules.idle_span_m) & (span_y <= rules.idle_span_m)]
    if not len(still):
        return keep, idle_breaks
    cover = np.zeros(n + 1, dtype=np.int64)
    np.add.at(cover, still, 1)
    np.add.at(cover, end[still] + 1, -1)
    idle = np.cumsum(cover[:n]) > 0
    # Spells are runs of idle fixes, cut at the pieces' breaks.
    begins = idle & (np.r_[True, ~idle[:-1]] | breaks)
    ends = idle & np.r_[~idle[1:] | begins[1:], True]
    for first, last in zip(np.flatnonzero(begins), np.flatnonzero(ends), strict=True):
        spell = np.arange(first, last + 1)
        late = spell[t[spell] > t[first] + idle_s]
        keep[late] = False
        if len(late) and last + 1 < n:
            idle_breaks[last + 1] = True
        quality.idle_fixes_dropped += len(late)
        quality.idle.append(
            {
                "from": _iso(t[first]),
                "to": _iso(t[last]),
                "minutes": round((t[last] - t[first]) / 60.0, 1),
                "lon": round(float(np.mean(lon[spell])), 7),
                "lat": round(float(np.mean(lat[spell])), 7),
                "dropped": len(late),
            }
        )
    return keep, idle_breaks


def _range_span(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """max - min of ``values[first[k]:last[k] + 1]`` for every k (sparse tables)."""
    if not len(first):
        return np.zeros(0)
    highs, lows = [values], [values]
    width = 1
    longest = int((last - first).max()) + 1
    while width * 2 <= longest:
        highs.append(np.maximum(highs[-1][:-width], highs[-1][width:]))
        lows.append(np.minimum(lows[-1][:-width], lows[-1][width:]))
        width *= 2
    length = last - first + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    high, low = np.empty(len(first)), np.empty(len(first))
    for k in np.unique(level):
        rows = level == k
        right = last[rows] - (1 << int(k)) + 1
        high[rows] = np.maximum(highs[k][first[rows]], highs[k][right])
        low[rows] = np.minimum(lows[k][first[rows]], lows[k][right])
    return high - low


def _pieces(
    fixes: TrackFixes,
    lon: np.ndarray,
    lat: np.ndarray,
    t: np.ndarray,
    breaks: np.ndarray,
    quality: Quality,
) -> list[TrackFixes]:
    if not len(t):
        return []
    starts = np.flatnonzero(np.r_[True, breaks[1:]])
    stops = np.r_[starts[1:], len(t)]
    pieces = []
    for start, stop in zip(starts, stops, strict=True):
        if stop - start < 2:
            quality.lone_fixes += int(stop - start)
            continue
        pieces.append(
            TrackFixes(
                lon[start:stop],
                lat[start:stop],
                t[start:stop],
                CGCS2000,
                fixes.source_format,
                fixes.name,
            )
        )
    return pieces


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), SHANGHAI).isoformat(timespec="seconds")
