"""The officials' dashboard: one area and one period, what happened there and how it was handled.

An official looks at an area inside their scope (a code they cover; anything else is
Forbidden) over a month, an ISO week or a range of days (Asia/Shanghai). The page
shows incident density, counts and rates per unit of a chosen level, hotspots
(:mod:`geogrid.hotspots`), the deadline figures and league table of the units one level
below the area (:func:`geogrid.reports.build_report`, limited to the area), and the
incidents overdue now. A category, when chosen, limits all of them alike. Everything is
read through the actor, so a query never leaves the scope whatever the page asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session

from geogrid import sla
from geogrid.actors import OFFICIAL, UNSCOPED_ROLES, Actor
from geogrid.codes import CodeScheme
from geogrid.errors import Forbidden, InputError, NotFound
from geogrid.generations import metric_srid_of
from geogrid.incidents import visible_clause
from geogrid.models import Area, Generation, Incident, IncidentCategory
from geogrid.periods import DAILY, MONTHLY, WEEKLY, Period, last_complete
from geogrid.report_counts import query_frame
from geogrid.reports import Report, build_report
from geogrid.settings import Settings
from geogrid.shapes import frame_from_rows, wkb_column

#: How the period is chosen on the page, and the report kind each stands for.
PERIOD_CHOICES = {"month": MONTHLY, "week": WEEKLY, "range": DAILY}
#: A custom range is at most a year: longer ones are a yearly report's business.
MAX_RANGE_DAYS = 366
#: Time slices of the emerging hotspot analysis, and how many end with the period.
SLICES = {"week": WEEKLY, "month": MONTHLY}
EMERGING_SLICES = 12
#: Incidents are pooled on a lattice this fine (degrees, about 10 m) for the heat map:
#: the picture is the same and a city's year stays a few thousand points.
HEAT_CELL_DEG = 1e-4
#: Overdue incidents listed beside the map; the total is always given.
OVERDUE_ROWS = 50


@dataclass(frozen=True)
class DateRange(Period):
    """A custom period of whole days, ``first_day`` to ``last`` inclusive, in Shanghai time.

    Reports take it as a daily report spanning several days; its label is the ISO 8601
    interval ``2026-10-01/2026-10-15``.
    """

    last: date

    @property
    def label(self) -> str:
        """The range as an ISO 8601 interval of dates."""
        return f"{self.first_day.isoformat()}/{self.last.isoformat()}"

    def _next_first_day(self) -> date:
        return self.last + timedelta(days=1)


@dataclass(frozen=True)
class AreaChoice:
    """The area the dashboard shows: its code, name and level."""

    code: str
    name: str
    level: str


def choose_period(
    kind: str,
    *,
    now: datetime,
    month: str | None = None,
    week: str | None = None,
    first: str | None = None,
    last: str | None = None,
) -> Period:
    """The period asked for: a month, an ISO week (each by default the last full one) or a range."""
    if kind not in PERIOD_CHOICES:
        choices = ", ".join(PERIOD_CHOICES)
        raise InputError(f"the period is one of {choices}, not {kind!r}", field="period")
    report_kind = PERIOD_CHOICES[kind]
    if report_kind == MONTHLY:
        return Period.parse(MONTHLY, month) if month else last_complete(MONTHLY, now)
    if report_kind == WEEKLY:
        return Period.parse(WEEKLY, week) if week else last_complete(WEEKLY, now)
    start, end = _day(first, "from"), _day(last, "to")
    if end < start:
        raise InputError(f"the range ends ({end}) before it starts ({start})", field="to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InputError(f"a range is at most {MAX_RANGE_DAYS} days", field="to")
    return DateRange(DAILY, start, end)


def choose_area(
    session: Session, scheme: CodeScheme, actor: Actor, code: str | None, generation: int
) -> AreaChoice:
    """The area to show: ``code`` if the actor covers it, else by default their scope's first."""
    if not code:
        code = default_area_code(session, actor, generation)
    level = scheme.validate(code, field="area")
    if scheme.depth(level) > scheme.depth(scheme.default_geocode_level):
        raise InputError(
            f"the dashboard shows areas down to {scheme.default_geocode_level}s, not {level}s",
            field="area",
        )
    if not actor.covers(code):
        raise Forbidden(
            f"area {code} is outside the scope of {actor.name} ({', '.join(actor.scope)})",
            field="area",
        )
    name = session.scalar(select(Area.name).where(Area.code == code, Area.valid_in(generation)))
    if name is None:
        raise NotFound(f"there is no area {code} in generation {generation}", field="area")
    return AreaChoice(code, name, level)


def default_area_code(session: Session, actor: Actor, generation: int) -> str:
    """The actor's first scope code; for the unscoped, the first area of the coarsest level."""
    if actor.role not in UNSCOPED_ROLES:
        if not actor.scope:
            raise Forbidden(f"{actor.name} has no scope to show", field="area")
        return sorted(actor.scope)[0]
    code = session.scalar(
        select(Area.code)
        .where(Area.valid_in(generation))
        .order_by(func.length(Area.code), Area.code)
        .limit(1)
    )
    if code is None:
        raise NotFound(f"generation {generation} has no areas", field="area")
    return code


def area_links(
    session: Session, scheme: CodeScheme, actor: Actor, area: AreaChoice, generation: int
) -> dict[str, list[AreaChoice]]:
    """The areas to move to: the scope's roots, the way down to this area, and its children."""
    roots = (
        list(actor.scope)
        if actor.role not in UNSCOPED_ROLES
        else [default_area_code(session, actor, generation)]
    )
    path = [code for code in scheme.ancestors_of(area.code) if actor.covers(code)]
    child = scheme.child_level(area.level)
    below = []
    if child is not None and scheme.depth(child.name) <= scheme.depth(scheme.default_geocode_level):
        below = _areas_named(session, generation, within=area.code, level=child.name)
    return {
        "scope": _areas_named(session, generation, codes=roots),
        "path": _areas_named(session, generation, codes=[*path, area.code]),
        "children": below,
    }


def analysis_levels(scheme: CodeScheme, area_level: str) -> list[str]:
    """Levels the map may count by: below the area's, down to the level incidents are placed in."""
    names = scheme.level_names
    finest = names.index(scheme.default_geocode_level)
    start = names.index(area_level)
    return names[start + 1 : finest + 1] or [area_level]


def league_level(scheme: CodeScheme, area_level: str) -> str:
    """The units of the league table: the level below the area (the area itself at the finest)."""
    return analysis_levels(scheme, area_level)[0]


def emerging_window(period: Period, slice_kind: str) -> tuple[Period, Period]:
    """The first and last of :data:`EMERGING_SLICES` whole slices ending with the period."""
    if slice_kind not in SLICES:
        raise InputError(f"slices are week or month, not {slice_kind!r}", field="slice")
    last = Period.containing(SLICES[slice_kind], period.end - timedelta(seconds=1))
    first = last
    for _ in range(EMERGING_SLICES - 1):
        first = first.previous()
    return first, last


# -- what the map shows ---------------------------------------------------------------------


def unit_areas(
    session: Session,
    generation: Generation,
    level: str,
    within: str,
    *,
    simplify: float | None = None,
) -> pd.DataFrame:
    """The units of ``level`` in the area: code, name, households, km² and outline.

    ``simplify`` (degrees) simplifies outlines in PostGIS, so that a district's grids
    arrive ready to draw (a GeoDataFrame); ``None`` leaves the outline out (a plain
    frame, for maps that fetch outlines from the layers endpoint).
    """
    # Square metres in the generation's Gauss-Krüger zone: as exact as the geography
    # type for areas a few kilometres across, and several times faster.
    metric = func.ST_Transform(Area.geom, metric_srid_of(session, generation))
    columns = [
        Area.code,
        Area.name,
        Area.households,
        (cast(func.ST_Area(metric), Float) / 1e6).label("area_km2"),
    ]
    if simplify is not None:
        shape = func.ST_SimplifyPreserveTopology(Area.geom, simplify) if simplify else Area.geom
        columns.append(wkb_column(shape).label("geometry"))
    query = (
        select(*columns)
        .where(Area.valid_in(generation.id), Area.level == level)
        .where(Area.code.startswith(within, autoescape=True))
        .order_by(Area.code)
    )
    rows = session.execute(query).all()
    names = ["code", "name", "households", "area_km2"]
    if simplify is not None:
        return frame_from_rows(rows, [*names, "geometry"])
    return pd.DataFrame(rows, columns=names)


def area_bounds(session: Session, code: str, generation: int) -> tuple[float, float, float, float]:
    """The area's (west, south, east, north) in lon/lat."""
    box = (
        select(
            func.ST_XMin(Area.geom),
            func.ST_YMin(Area.geom),
            func.ST_XMax(Area.geom),
            func.ST_YMax(Area.geom),
        )
        .where(Area.code == code, Area.valid_in(generation))
        .limit(1)
    )
    found = session.execute(box).one()
    return (float(found[0]), float(found[1]), float(found[2]), float(found[3]))


def incident_rates(counts: pd.Series, units: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Counts and rates per unit, and the basis: ``households`` (per 1,000) or ``area`` (per km²).

    The rate is per 1,000 households when every unit's households are known, else per
    km² for all of them: a map mixing the two would class unlike numbers together.
    """
    table = units.set_index("code")[["households", "area_km2"]].astype(float)
    table["count"] = counts.reindex(table.index).fillna(0).astype(int)
    households = table["households"]
    if len(table) and households.notna().all() and (households > 0).all():
        table["rate"] = table["count"] / households * 1000
        return table, "households"
    table["rate"] = table["count"] / table["area_km2"].where(table["area_km2"] > 0)
    return table, "area"


def incident_points(
    session: Session,
    actor: Actor,
    *,
    within: str,
    start: datetime,
    end: datetime,
    category: str | None = None,
) -> pd.DataFrame:
    """The located incidents in the area and period, pooled on a ~10 m lattice: lon, lat, weight."""
    cell = func.ST_SnapToGrid(Incident.geom, HEAT_CELL_DEG)
    conditions = _incident_conditions(actor, within, category)
    query = (
        select(
            func.ST_X(cell).label("lon"),
            func.ST_Y(cell).label("lat"),
            func.count().label("weight"),
        )
        .where(*conditions, Incident.geom.is_not(None))
        .where(Incident.reported_at >= start, Incident.reported_at < end)
        .group_by(cell)
    )
    points = query_frame(session, query)
    return points.astype({"lon": float, "lat": float, "weight": int})


@dataclass(frozen=True)
class OverdueIncident:
    """An incident overdue now, as the list beside the map shows it."""

    id: int
    category: str
    category_name: str
    grid_code: str | None
    state: str
    reported_at: datetime
    #: The deadline it has missed (``accept``, ``report_in`` or ``resolve``) and when it was.
    deadline: str
    due_at: datetime


def overdue_incidents(
    session: Session,
    actor: Actor,
    *,
    within: str,
    now: datetime,
    category: str | None = None,
    language: str = "zh_CN",
    limit: int = OVERDUE_ROWS,
) -> tuple[list[OverdueIncident], int]:
    """The area's incidents overdue at ``now``, longest waiting first, and how many there are."""
    name = IncidentCategory.name_en if language == "en" else IncidentCategory.name_zh
    query = (
        select(Incident, name, func.count().over().label("total"))
        .outerjoin(IncidentCategory, IncidentCategory.code == Incident.category)
        .where(*_incident_conditions(actor, within, category))
        .where(sla.overdue_condition(now), Incident.reported_at <= now)
        .order_by(Incident.reported_at, Incident.id)
        .limit(limit)
    )
    rows = session.execute(query).all()
    listed = [_overdue(incident, category_name, now) for incident, category_name, _ in rows]
    return listed, (rows[0].total if rows else 0)


def deadline_report(
    session: Session,
    settings: Settings,
    actor: Actor,
    area: AreaChoice,
    period: Period,
    *,
    now: datetime,
    category: str | None = None,
) -> Report:
    """The report of the area's units one level down: deadline figures (totals) and league table.

    ``category`` limits every figure to that category's incidents.
    """
    if not actor.covers(area.code):
        raise Forbidden(f"area {area.code} is outside the scope of {actor.name}", field="area")
    # Reports are limited by their reader's scope; reading one as an official whose scope
    # is just this area limits it to the area, which the actor is known to cover.
    reader = Actor(actor.name, OFFICIAL, (area.code,))
    level = league_level(settings.scheme, area.level)
    return build_report(
        session, settings, period.kind, period, level, actor=reader, now=now, category=category
    )


def category_choices(session: Session, language: str) -> list[tuple[str, str]]:
    """The categories an official can filter by: (code, name in the language)."""
    rows = session.execute(
        select(IncidentCategory.code, IncidentCategory.name_zh, IncidentCategory.name_en).order_by(
            IncidentCategory.code
        )
    ).all()
    return [(code, name_en if language == "en" else name_zh) for code, name_zh, name_en in rows]


# -- helpers --------------------------------------------------------------------------------


def _incident_conditions(actor: Actor, within: str, category: str | None) -> list[Any]:
    conditions = [
        visible_clause(actor),
        Incident.grid_code.startswith(within, autoescape=True),
        Incident.state != "merged",
    ]
    if category:
        conditions.append(Incident.category == category)
    return conditions


def _overdue(incident: Incident, category_name: str | None, now: datetime) -> OverdueIncident:
    missed = [d for d in sla.DEADLINES.values() if d.missed(incident, now)]
    # The earliest missed deadline is the one it has been overdue for longest.
    deadline = min(missed, key=lambda d: d.due_at(incident))
    return OverdueIncident(
        id=incident.id,
        category=incident.category,
        category_name=category_name or incident.category,
        grid_code=incident.grid_code,
        state=incident.state,
        reported_at=incident.reported_at,
        deadline=deadline.name,
        due_at=deadline.due_at(incident),
    )


def _areas_named(
    session: Session,
    generation: int,
    *,
    codes: list[str] | None = None,
    within: str | None = None,
    level: str | None = None,
) -> list[AreaChoice]:
    query = select(Area.code, Area.name, Area.level).where(Area.valid_in(generation))
    if codes is not None:
        query = query.where(Area.code.in_(codes))
    if within is not None:
        query = query.where(Area.code.startswith(within, autoescape=True))
    if level is not None:
        query = query.where(Area.level == level)
    rows = session.execute(query.order_by(func.length(Area.code), Area.code)).all()
    return [AreaChoice(code, name, area_level) for code, name, area_level in rows]


def _day(text: str | None, field: str) -> date:
    if not text:
        raise InputError("a range needs its first and last day", field=field)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"a day is written YYYY-MM-DD, not {text!r}", field=field) from None
