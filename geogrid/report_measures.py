"""The measures of :mod:`geogrid.reports` that need the incidents one by one.

Working days to resolve (the vectorised working clock), repeat places (a spatial join
in metres over the period and the 30 days before it) and the alerts a report carries.
Rows come from one query as plain numbers (epoch seconds, lon/lat), so a month of a
city's incidents is a few arrays, not a million Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from geogrid.crs import to_metric
from geogrid.errors import CalendarNotCovered
from geogrid.models import Incident
from geogrid.periods import Period
from geogrid.repeats import repeat_flags
from geogrid.report_counts import category_clause, query_frame, scope_clause
from geogrid.sla import open_condition, resolution_working_days_many
from geogrid.workdays import WorkCalendar

#: How far back an earlier incident at the same place makes a repeat.
REPEAT_WINDOW = timedelta(days=30)
#: Alerts about single incidents listed in a report (the summary gives the full count).
ALERT_ROWS = 200

_SHANGHAI_OFFSET_S = 8 * 3600


@dataclass(frozen=True)
class Alert:
    """Something a reader of the report must know: a gap in the calendar, an unplaced incident."""

    kind: str
    message: str
    incident_id: int | None = None
    code: str | None = None
    reported_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """The alert as a JSON-ready mapping."""
        when = self.reported_at.isoformat() if self.reported_at else None
        return {
            "kind": self.kind,
            "message": self.message,
            "incident_id": self.incident_id,
            "code": self.code,
            "reported_at": when,
        }


def incident_rows(session: Session, period: Period, category: str | None = None) -> pd.DataFrame:
    """The incidents reported in the period and the repeat window before it, as numbers.

    Limited to one category, the rows still find every repeat of its incidents: an
    incident repeats only earlier ones of its own category.
    """
    i = Incident
    in_period = i.reported_at >= period.start
    # The repeat window before the period needs only place, category and time; leaving the
    # rest empty there saves reading a string per incident.
    query = select(
        i.id,
        case((in_period, i.generation)).label("generation"),
        case((in_period, i.grid_code)).label("grid_code"),
        i.category,
        func.ST_X(i.geom).label("lon"),
        func.ST_Y(i.geom).label("lat"),
        _epoch(i.reported_at).label("reported_s"),
        case((and_(in_period, i.state != "rejected"), _epoch(i.resolved_at))).label("resolved_s"),
        case((in_period, i.paused_working_s)).label("paused_s"),
        in_period.label("in_period"),
    ).where(
        i.reported_at >= period.start - REPEAT_WINDOW,
        i.reported_at < period.end,
        i.state != "merged",
        category_clause(category),
    )
    rows = query_frame(session, query)
    for column in ("lon", "lat", "reported_s", "resolved_s", "paused_s"):
        rows[column] = rows[column].astype(float)
    rows["in_period"] = rows["in_period"].astype(bool)
    rows["grid_code"] = rows["grid_code"].astype(object)
    return rows


def _epoch(column: Any) -> Any:
    return cast(func.date_part("epoch", column), Float)


def calendar_alerts(calendar: WorkCalendar, period: Period) -> list[Alert]:
    """An alert for each year of the period that the working-day calendar does not cover."""

    return [
        Alert(
            "calendar_not_covered",
            f"the working-day calendar does not cover {year}: deadlines and working days in "
            f"it are unknown; enter its holidays with `geogrid calendar set` or upgrade "
            "chinese-calendar",
        )
        for year in calendar.missing_years(period.years())
    ]


def resolution_days(
    rows: pd.DataFrame, period: Period, calendar: WorkCalendar, alerts: list[Alert]
) -> pd.Series:
    """Working days from report to resolution of the period's resolved incidents (else NaN)."""

    days = pd.Series(np.nan, index=rows.index)
    resolved = rows["in_period"] & rows["resolved_s"].notna() & rows["grid_code"].notna()
    if not resolved.any():
        return days
    covered_years = np.array(sorted(calendar.covered_years()))
    reported_year = _local_year(rows.loc[resolved, "reported_s"])
    resolved_year = _local_year(rows.loc[resolved, "resolved_s"])
    covered = np.isin(reported_year, covered_years) & np.isin(resolved_year, covered_years)
    if not covered.all():
        missing = sorted(set(reported_year[~covered]) | set(resolved_year[~covered]))
        missing = [year for year in missing if year not in set(covered_years)]
        alerts.append(
            Alert(
                "calendar_not_covered",
                f"{int((~covered).sum())} resolved incidents are left out of the median "
                f"working days: the calendar does not cover {', '.join(map(str, missing))}",
            )
        )
    index = rows.index[resolved][covered]
    try:
        days.loc[index] = resolution_working_days_many(
            calendar,
            _instants(rows.loc[index, "reported_s"]),
            _instants(rows.loc[index, "resolved_s"]),
            rows.loc[index, "paused_s"].fillna(0.0).to_numpy(),
        )
    except CalendarNotCovered as exc:
        alerts.append(Alert("calendar_not_covered", f"no median working days: {exc.message}"))
    return days


def _local_year(epoch_s: pd.Series) -> np.ndarray:
    seconds = (epoch_s.to_numpy() + _SHANGHAI_OFFSET_S).astype("int64")
    return seconds.astype("datetime64[s]").astype("datetime64[Y]").astype(int) + 1970


def _instants(epoch_s: pd.Series) -> pd.Series:
    return pd.Series(pd.to_datetime(epoch_s.to_numpy(), unit="s", utc=True))


def repeats(rows: pd.DataFrame, distance_m: float, epsg: int) -> np.ndarray:
    """Whether each incident of the period repeats an earlier one at the same place.

    See :func:`geogrid.repeats.repeat_flags`; incidents filed by grid code have no
    point and never repeat, and the earlier incident may lie in any grid.
    """
    flags = np.zeros(len(rows), dtype=bool)
    located = np.flatnonzero(rows["lon"].notna().to_numpy() & rows["lat"].notna().to_numpy())
    if located.size == 0:
        return flags
    x, y = to_metric(rows["lon"].to_numpy()[located], rows["lat"].to_numpy()[located], epsg)
    flags[located] = repeat_flags(
        x,
        y,
        pd.factorize(rows["category"].to_numpy()[located])[0],
        rows["reported_s"].to_numpy()[located],
        rows["id"].to_numpy()[located],
        rows["in_period"].to_numpy()[located],
        distance_m=distance_m,
        window_s=REPEAT_WINDOW.total_seconds(),
    )
    return flags


def incident_alerts(
    session: Session,
    period: Period,
    now: datetime,
    scope: tuple[str, ...] | None,
    category: str | None = None,
) -> list[Alert]:
    """Alerts for incidents without deadlines (period) and incidents waiting to be placed.

    Both keep to the report's scope and, when it has one, its category.
    """
    i = Incident
    alerts: list[Alert] = []
    no_deadline = [
        i.reported_at >= period.start,
        i.reported_at < period.end,
        i.state != "merged",
        i.deadline_alert.is_not(None),
        category_clause(category),
    ]
    if scope is not None:
        no_deadline.append(scope_clause(scope))
    alerts += _listed(
        session,
        no_deadline,
        "deadline_alert",
        "{n} incidents reported in the period have no deadline (the calendar does not cover "
        "their year); their on-time rates leave them out",
        detail=i.deadline_alert,
    )
    if scope is None:
        # No grid is the same as outside (a check constraint), and that one the
        # (grid_code, reported_at) index finds directly, in order.
        outside = [
            i.grid_code.is_(None),
            i.reported_at <= now,
            open_condition(),
            category_clause(category),
        ]
        alerts += _listed(
            session,
            outside,
            "awaiting_placement",
            "{n} incidents fell outside every grid and wait for a person to place them "
            "(`geogrid incidents place`); no unit counts them until then",
        )
    return alerts


def _listed(
    session: Session, conditions: list[Any], kind: str, summary: str, detail: Any = None
) -> list[Alert]:
    """A summary alert with the count, then the first ``ALERT_ROWS`` incidents (one scan)."""
    i = Incident
    listed = session.execute(
        select(
            i.id,
            i.grid_code,
            i.reported_at,
            detail if detail is not None else i.placement,
            func.count().over().label("total"),
        )
        .where(*conditions)
        .order_by(i.reported_at, i.id)
        .limit(ALERT_ROWS)
    ).all()
    if not listed:
        return []
    count = listed[0].total
    shown = "" if count <= ALERT_ROWS else f" (the first {ALERT_ROWS} are listed)"
    alerts = [Alert(kind, summary.format(n=count) + shown)]
    for incident_id, code, reported_at, text, _ in listed:
        message = text if detail is not None else "outside every grid, waiting to be placed"
        alerts.append(Alert(kind, message, incident_id, code, reported_at))
    return alerts


def unmapped_alert(codes: list[str]) -> Alert:
    """The alert for recorded grids whose land reached no grid of the current generation."""
    listed = ", ".join(codes[:20]) + (" ..." if len(codes) > 20 else "")
    return Alert(
        "unmapped_grid",
        f"{len(codes)} recorded grids have no successor in the current generation; their "
        f"incidents are counted under the recorded codes: {listed}",
    )
