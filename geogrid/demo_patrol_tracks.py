"""A week of the demo alliance's patrols: tracks with real faults, check-ins and leads.

For each day, the stored assignments give the shifts (:func:`geogrid.assignments.shifts_for`,
one patrol per team and window over all its grids). 8 % of shifts are skipped
entirely; in the others a member of the team (the leader seven times in ten) patrols
as :mod:`geogrid.demo_routes` has it: on foot or by e-bike, a fix every 10-30 s, with
short patrols, GPS spikes, lost signal, phones left lying and GCJ-02 uploads among them.

The tracks go through the bulk path :func:`geogrid.tracks.load_tracks`, so the cleaning
report of every stored track shows what was found. Volume: a 3-hour shift gives about
450 fixes, 奎文区's week about 1.3 million (a dozen seconds). A week that would pass
:data:`TRACK_FIX_BUDGET` fixes keeps only its latest days that fit, at least one: all of
潍坊 (~20 million fixes a week) gets the week's last day, about the benchmark's day of
6,000 tracks. The assignments stay for the whole week.

Members check in where they first reach each grid of a shift (70 % of the time), placed
in bulk by the grid index. Leads follow 奎文区's 750 a year for its 986 grids (~15 a week),
on the days with tracks, filed and decided through :mod:`geogrid.leads` by an officer of
the township's station: a quarter still new, most of the rest verified, passed on or
closed, one in ten rejected; rewards of 50-500 yuan for about a third of the verified.
Leads are filed as of the end of the week (``now``), so a week in the future works too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import perf_counter

import geopandas as gpd
import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from geogrid import demo_routes
from geogrid.actors import STATION_OFFICER, Actor
from geogrid.assignments import shifts_for
from geogrid.bulk import place_points
from geogrid.crs import GCJ02, WGS84, from_storage
from geogrid.leads import decide_lead, file_lead
from geogrid.models import STORAGE_SRID, IncidentCategory, PatrolAssignment, PatrolCheckin
from geogrid.settings import Settings
from geogrid.shifts import weekday_bit
from geogrid.trackfiles import TrackFixes
from geogrid.trackload import LoadSummary, load_tracks
from geogrid.workdays import SHANGHAI

TRACK_FIX_BUDGET = 2_500_000
SKIP_SHARE = 0.08
LEADS_PER_GRID_YEAR = 750 / 986
LEAD_CATEGORIES = {
    "public_order": 0.40, "safety_hazard": 0.25, "dispute": 0.12, "environment": 0.07,
    "public_facility": 0.06, "property": 0.04, "noise": 0.03, "livelihood": 0.02, "other": 0.01,
}  # fmt: skip
LEAD_NOTES = {
    "public_order": (
        "发现可疑人员在小区内反复徘徊",
        "有人深夜撬电动车锁",
        "陌生人挨户打听住户情况",
    ),
    "safety_hazard": ("电动车在楼道内充电", "消防通道被车辆堵塞", "沿街商铺燃气瓶露天存放"),
    "dispute": ("两户居民因停车位发生争执", "商户与顾客发生口角"),
    "environment": ("夜间偷倒建筑垃圾",),
    "public_facility": ("路口监控探头损坏",),
    "property": ("小区门禁长期损坏无人修",),
    "noise": ("深夜烧烤摊喧哗扰民",),
    "livelihood": ("独居老人多日未出门",),
    "other": ("群众反映可疑车辆长期停放",),
}
#: The status a lead reached by the end of the week, the steps to it and their shares.
LEAD_OUTCOMES = {
    "new": ((), 0.25), "verified": (("verified",), 0.20),
    "passed_on": (("verified", "passed_on"), 0.15), "closed": (("verified", "closed"), 0.30),
    "rejected": (("rejected",), 0.10),
}  # fmt: skip
REWARDS = ((50.0, 0.35), (100.0, 0.35), (200.0, 0.2), (500.0, 0.1))
_WINDOW = (PatrolAssignment.weekdays, PatrolAssignment.starts, PatrolAssignment.ends)


@dataclass(frozen=True)
class Team:
    """What a walk needs of a team: its id and mark, type, members (leader first), township."""

    id: int
    mark: str
    kind: str
    member_ids: list[int]
    township: str


@dataclass
class DemoWeek:
    """What the week of patrols added, and the faults planted in its tracks."""

    days: list[date] = field(default_factory=list)
    shifts: int = 0
    skipped: int = 0
    planted: dict[str, int] = field(default_factory=dict)
    load: LoadSummary | None = None
    checkins: int = 0
    leads: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A printable account."""
        load = self.load or LoadSummary()
        planted = ", ".join(f"{n} {what}" for what, n in self.planted.items())
        leads = ", ".join(f"{n} {status}" for status, n in self.leads.items())
        return [
            f"  tracks on {len(self.days)} days from {min(self.days, default='-')}: "
            f"{self.shifts} shifts, {self.skipped} skipped; {load.stored} tracks from "
            f"{load.uploads} uploads ({len(load.rejected)} rejected), {load.fixes_kept} of "
            f"{load.fixes_received} fixes kept",
            f"  planted: {planted}",
            f"  {self.checkins} check-ins, {sum(self.leads.values())} leads ({leads})",
        ]


@dataclass
class _Shift:
    team: Team
    starts_at: datetime
    ends_at: datetime
    grids: list[str]


@dataclass
class _Walk:
    team: Team
    member_id: int
    fixes: TrackFixes  # as uploaded: declared type, with its faults
    lon: np.ndarray  # where the member really was (storage), for leads
    lat: np.ndarray
    t: np.ndarray
    checkins: list[tuple[float, float, float]]  # lon, lat, epoch seconds


def patrol_week(
    session: Session,
    settings: Settings,
    grids: gpd.GeoDataFrame,
    roster: dict[str, Team],
    *,
    first_day: date,
    seed: int,
    progress: bool | None = None,
) -> DemoWeek:
    """Tracks, check-ins and leads for the seven days from ``first_day``; flushes only."""
    clock = perf_counter()
    rng = np.random.default_rng([seed, 6])
    week = DemoWeek()
    week.days = _track_days(session, roster, first_day)
    pools = demo_routes.point_pools(grids, rng)
    shifts = [shift for day in week.days for shift in _shifts(session, day, roster)]
    walks = []
    bar = tqdm(shifts, desc="demo patrols", unit="shift", file=sys.stderr, disable=not progress)
    for shift in bar:
        walk = None if rng.random() < SKIP_SHARE else _walk(shift, pools, rng, week.planted)
        week.skipped += walk is None
        walks += [walk] if walk else []
    week.shifts = len(shifts)
    week.seconds["walks"] = perf_counter() - clock
    clock = perf_counter()
    uploads = [(w.team.mark, w.fixes, w.member_id) for w in walks]
    week.load = load_tracks(session, settings, uploads, uploaded_by="demo", progress=progress)
    week.seconds["tracks"] = perf_counter() - clock
    clock = perf_counter()
    week.checkins = _add_checkins(session, settings, walks)
    end = datetime.combine(first_day + timedelta(days=7), time(0), SHANGHAI)
    count = round(LEADS_PER_GRID_YEAR * len(grids) * len(week.days) / 365.25)
    week.leads = _add_leads(session, settings, walks, count, rng, seed=seed, end=end)
    week.seconds["check-ins and leads"] = perf_counter() - clock
    return week


def _days(first_day: date) -> list[date]:
    return [first_day + timedelta(days=k) for k in range(7)]


def _shifts(session: Session, day: date, roster: dict[str, Team]) -> list[_Shift]:
    """The day's shifts of the demo teams, one per team and window, with all its grids."""
    grouped: dict[tuple[str, datetime, datetime], list[str]] = {}
    for shift in shifts_for(session, day=day):
        if shift.team_mark in roster:
            grouped.setdefault((shift.team_mark, shift.starts_at, shift.ends_at), []).append(
                shift.grid_code
            )
    return [
        _Shift(roster[mark], starts_at, ends_at, sorted(codes))
        for (mark, starts_at, ends_at), codes in sorted(grouped.items())
    ]


def _track_days(session: Session, roster: dict[str, Team], first_day: date) -> list[date]:
    """The latest days of the week whose expected fixes fit the budget (at least the last)."""
    # One patrol per team and window, whatever its number of grids.
    windows = session.execute(
        select(PatrolAssignment.weekdays, PatrolAssignment.starts, PatrolAssignment.ends)
        .where(PatrolAssignment.team_id.in_([team.id for team in roster.values()]))
        .group_by(PatrolAssignment.team_id, *_WINDOW)
    ).all()
    days: list[date] = []
    total = 0.0
    for day in reversed(_days(first_day)):
        minutes = sum(
            (_minutes(ends) - _minutes(starts)) % 1440
            for weekdays, starts, ends in windows
            if weekdays & weekday_bit(day)
        )
        fixes = minutes * 60 * 0.8 / 20  # a patrol lasts ~80 % of its shift, a fix every 20 s
        if days and total + fixes > TRACK_FIX_BUDGET:
            break
        days.append(day)
        total += fixes
    return sorted(days)


def _minutes(clock: time) -> int:
    return clock.hour * 60 + clock.minute


def _walk(
    shift: _Shift, pools: dict[str, np.ndarray], rng: np.random.Generator, planted: dict[str, int]
) -> _Walk | None:
    """One patrol of a shift: a route through its grids, walked, then recorded with faults."""
    route = demo_routes.route(
        shift.grids, shift.starts_at, shift.ends_at, shift.team.kind, pools, rng
    )
    if route is None:
        return None
    fixes = demo_routes.recorded(
        route, f"{shift.team.mark} {shift.starts_at:%Y-%m-%d %H:%M}", rng, planted
    )
    team = shift.team
    member = team.member_ids[0] if rng.random() < 0.7 else int(rng.choice(team.member_ids))
    return _Walk(team, member, fixes, route.lon, route.lat, route.t, route.checkins)


# -- check-ins and leads ---------------------------------------------------------------


def _add_checkins(session: Session, settings: Settings, walks: list[_Walk]) -> int:
    """Check-ins where members first reached each grid, placed in bulk; how many."""
    rows = {(w.team.id, w.member_id, at): (lon, lat) for w in walks for lon, lat, at in w.checkins}
    if not rows:
        return 0
    lon, lat = np.array(list(rows.values())).T
    placed = place_points(session, settings, lon, lat)
    values = [
        {
            "team_id": team_id,
            "member_id": member_id,
            "at": datetime.fromtimestamp(at, SHANGHAI),
            "geom": from_shape(shapely.Point(x, y), srid=STORAGE_SRID),
            "grid_code": grid_code,
            "generation": int(generation),
            "placement": status,
            "note": "巡逻签到",
        }
        for (team_id, member_id, at), x, y, grid_code, status, generation in zip(
            rows, lon, lat, placed["grid_code"], placed["status"], placed["generation"], strict=True
        )
    ]
    session.execute(insert(PatrolCheckin), values)
    return len(values)


def _add_leads(
    session: Session,
    settings: Settings,
    walks: list[_Walk],
    count: int,
    rng: np.random.Generator,
    *,
    seed: int,
    end: datetime,
) -> dict[str, int]:
    """Leads seen on patrols, filed and decided through the library; counts by status."""
    active = set(session.scalars(select(IncidentCategory.code).where(IncidentCategory.active)))
    mix = {code: share for code, share in LEAD_CATEGORIES.items() if code in active}
    if not walks or not mix or count <= 0:
        return {}
    statuses: dict[str, int] = {}
    sizes = np.array([len(w.t) for w in walks], dtype=float)
    for k in range(count):
        walk = walks[int(rng.choice(len(walks), p=sizes / sizes.sum()))]
        i = int(rng.integers(0, len(walk.t)))
        category = str(rng.choice(list(mix), p=np.array(list(mix.values())) / sum(mix.values())))
        declared = GCJ02 if rng.random() < demo_routes.GCJ02_SHARE else WGS84
        # What was seen lies a few metres from where the member stood.
        lon, lat = from_storage(
            *demo_routes.moved(walk.lon[i], walk.lat[i], *rng.normal(0, 15, 2)), declared
        )
        at = datetime.fromtimestamp(float(walk.t[i]), SHANGHAI)
        lead = file_lead(
            session, settings, team_mark=walk.team.mark, member_id=walk.member_id,
            lon=float(lon), lat=float(lat), coord_type=declared.name, at=at, category=category,
            note=str(rng.choice(LEAD_NOTES[category])),
            idempotency_key=f"demo:{seed}:{at:%Y-%m-%d}:lead:{k}", now=end,
        ).lead  # fmt: skip
        outcome = str(rng.choice(list(LEAD_OUTCOMES), p=[p for _, p in LEAD_OUTCOMES.values()]))
        _decide(session, lead.id, walk.team, outcome, at, end, rng)
        statuses[outcome] = statuses.get(outcome, 0) + 1
    return dict(sorted(statuses.items()))


def _decide(
    session: Session,
    lead_id: int,
    team: Team,
    outcome: str,
    at: datetime,
    end: datetime,
    rng: np.random.Generator,
) -> None:
    """Move a lead to its outcome as the township's station officer, deciding the reward."""
    officer = Actor(f"{team.township}-PS 值班民警", STATION_OFFICER, (team.township,))
    steps = LEAD_OUTCOMES[outcome][0]
    for n, status in enumerate(steps, start=1):
        when = min(at + timedelta(hours=float(rng.uniform(1, 36)) * n), end)
        reward, amount = None, None
        if n == len(steps) and status == "rejected":
            reward = "declined"
        elif n == len(steps) and rng.random() < 0.35:
            reward = "granted"
            amount = float(rng.choice([a for a, _ in REWARDS], p=[p for _, p in REWARDS]))
        decide_lead(
            session, lead_id, actor=officer, status=status, reward=reward, amount=amount, now=when
        )
