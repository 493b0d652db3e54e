"""Coverage gaps (防范死角盲区): where risk is high and the measured patrol dose is low.

Definitions, for a day and the grids in scope (a station's family, or every grid that
a station answers for):

* **risk** — the incidents reported in the ``days`` days up to the end of the day
  (Asia/Shanghai), rejected and merged reports left out, each weighted by its
  category's ``risk_weight`` (:func:`grid_risk`, one ``GROUP BY`` in SQL).
* **hot** — risk at least ``min_risk`` when given, otherwise in the top
  ``1 - hot_quantile`` of the grids that have any risk (the quantile over grids with
  none would be zero); plus every grid in ``hotspot_grids``, the hook for the hotspot
  analysis (issue 5) to mark grids hot whatever their incident count.
* **shortfall** — the share of a hot grid's shift time left unprotected: a visit of the
  target's length protects the grid for half the target's gap before and after it
  (a visit every two hours protects all the time between), clipped to the shifts;
  1 for a hot grid with no shift at all.
* **gap score** — risk times shortfall: the risk left without the dose. Gaps are the hot
  grids whose dosage was not met in some shift of the day (or that had none), ranked by
  score, highest first.

Beside the ranking: grids with no team working them that day, and assigned grids that
no visit reached (both whatever their risk).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geogrid import assignments
from geogrid.alliance_values import patrol_level
from geogrid.coverage import CoverageResult, coverage_for_day, json_ready, table_records
from geogrid.coverage_dosage import DosageTarget
from geogrid.coverage_pieces import merge_intervals
from geogrid.errors import InputError
from geogrid.generations import resolve_generation
from geogrid.models import Area, Incident, IncidentCategory, StationGrid
from geogrid.settings import Settings
from geogrid.stations import station_grid_codes
from geogrid.workdays import SHANGHAI

#: Reports that are not risk: turned away, or duplicates merged into another.
NOT_RISK_STATES = ("rejected", "merged")

GAP_COLUMNS = [
    "rank",
    "grid_code",
    "risk",
    "incidents",
    "hot_because",
    "shifts",
    "teams",
    "visits",
    "qualifying_visits",
    "shifts_met",
    "shortfall",
    "score",
]


@dataclass
class GapsResult:
    """Ranked gaps, grids nobody works, assigned grids never visited, and the risk table."""

    gaps: pd.DataFrame
    unassigned: pd.DataFrame
    never_visited: pd.DataFrame
    risk: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the parameters and each table as records."""
        return {
            "parameters": json_ready(self.parameters),
            "gaps": table_records(self.gaps),
            "unassigned": table_records(self.unassigned),
            "never_visited": table_records(self.never_visited),
        }

    def lines(self, limit: int = 20) -> list[str]:
        """A printable account: the top gaps and the counts."""
        p = self.parameters
        threshold = p.get("hot_threshold", 0.0)
        hot = f"risk >= {threshold:.2f}" if np.isfinite(threshold) else "no incident risk"
        lines = [
            f"{len(self.gaps)} coverage gaps among {p.get('hot_grids', 0)} hot grids "
            f"({hot}, last {p.get('days')} days); "
            f"{len(self.unassigned)} grids with no team; "
            f"{len(self.never_visited)} assigned grids never visited"
        ]
        for row in self.gaps.head(limit).itertuples():
            lines.append(
                f"{row.rank:>4}. {row.grid_code}  score {row.score:.2f}  risk {row.risk:.2f} "
                f"({row.incidents} incidents)  shortfall {row.shortfall:.0%}  "
                f"shifts met {row.shifts_met}/{row.shifts}  teams {row.teams or '-'}"
            )
        return lines


def grid_risk(
    session: Session, *, until: datetime, days: int = 28, grid_codes: Collection[str] | None = None
) -> pd.DataFrame:
    """Incidents and risk (weighted by category) per grid over the ``days`` days to ``until``."""
    if days < 1:
        raise InputError(f"days must be at least 1, not {days}", field="days")
    query = (
        select(
            Incident.grid_code,
            func.count().label("incidents"),
            func.sum(IncidentCategory.risk_weight).label("risk"),
        )
        .join(IncidentCategory, IncidentCategory.code == Incident.category)
        .where(
            Incident.grid_code.is_not(None),
            Incident.reported_at >= until - timedelta(days=days),
            Incident.reported_at < until,
            Incident.state.not_in(NOT_RISK_STATES),
        )
        .group_by(Incident.grid_code)
    )
    if grid_codes is not None:
        query = query.where(Incident.grid_code.in_(sorted(grid_codes)))
    rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=["grid_code", "incidents", "risk"])
    return frame.astype({"incidents": np.int64, "risk": float})


def coverage_gaps(
    session: Session,
    settings: Settings,
    *,
    day: date,
    station_code: str | None = None,
    days: int = 28,
    hot_quantile: float = 0.9,
    min_risk: float | None = None,
    hotspot_grids: Collection[str] = (),
    target: DosageTarget | None = None,
    min_dwell_s: float = 120.0,
    coverage: CoverageResult | None = None,
) -> GapsResult:
    """The coverage gaps of ``day``: hot grids short of the dose, ranked; see the module."""
    if not 0 <= hot_quantile < 1:
        raise InputError("hot_quantile must be in [0, 1)", field="hot_quantile")
    target = target or DosageTarget()
    scope = _scope(session, station_code)
    until = datetime.combine(day + timedelta(1), time(0), SHANGHAI)
    risk = grid_risk(session, until=until, days=days, grid_codes=scope)
    threshold = _threshold(risk, hot_quantile, min_risk)
    hot = set(risk.loc[risk["risk"] >= threshold, "grid_code"]) | set(hotspot_grids)
    if coverage is None:
        coverage = coverage_for_day(
            session,
            settings,
            day=day,
            station_code=station_code,
            reach_m=None,
            min_dwell_s=min_dwell_s,
            target=target,
            hot_grids=hot,
        )
    gaps = _ranked(hot, risk, coverage, target, threshold, set(hotspot_grids))
    unassigned = pd.DataFrame(
        [
            asdict(g)
            for g in assignments.unassigned_grids(session, station_code=station_code, day=day)
        ],
        columns=["grid_code", "name", "station_codes"],
    )
    unassigned = unassigned.merge(risk, on="grid_code", how="left").fillna(
        {"incidents": 0, "risk": 0.0}
    )
    never = _never_visited(coverage.shifts).merge(risk, on="grid_code", how="left")
    parameters = {
        "day": day.isoformat(),
        "station_code": station_code,
        "days": days,
        "hot_quantile": hot_quantile,
        "min_risk": min_risk,
        "hot_threshold": threshold,
        "hot_grids": len(hot),
        "target": asdict(target),
    }
    return GapsResult(
        gaps,
        unassigned.sort_values(["risk", "grid_code"], ascending=[False, True]),
        never.fillna({"incidents": 0, "risk": 0.0}),
        risk,
        parameters,
    )


def _scope(session: Session, station_code: str | None) -> list[str] | None:
    """The grids in scope: the station family's, or every grid a station answers for."""
    if station_code is not None:
        return station_grid_codes(session, station_code)
    generation = resolve_generation(session, None)
    return list(
        session.scalars(
            select(StationGrid.grid_code)
            .join(Area, Area.code == StationGrid.grid_code)
            .where(Area.level == patrol_level(session), Area.valid_in(generation.id))
            .distinct()
        )
    )


def _threshold(risk: pd.DataFrame, hot_quantile: float, min_risk: float | None) -> float:
    if min_risk is not None:
        return float(min_risk)
    positive = risk.loc[risk["risk"] > 0, "risk"]
    if positive.empty:
        return float("inf")
    return float(np.quantile(positive.to_numpy(), hot_quantile))


def _ranked(hot, risk, coverage, target, threshold, hotspots) -> pd.DataFrame:
    shifts = coverage.shifts[coverage.shifts["grid_code"].isin(hot)]
    dosage = coverage.dosage
    risk_of = risk.set_index("grid_code")
    rows = []
    shortfall = _shortfall(shifts, coverage.visits, target)
    for code in sorted(hot):
        mine = shifts[shifts["grid_code"] == code]
        doses = dosage[dosage["grid_code"] == code]
        met = int(doses["met"].sum())
        if len(mine) and met == len(mine):
            continue
        value = float(risk_of["risk"].get(code, 0.0))
        rows.append(
            {
                "grid_code": code,
                "risk": value,
                "incidents": int(risk_of["incidents"].get(code, 0)),
                "hot_because": "hotspot" if code in hotspots and value < threshold else "risk",
                "shifts": len(mine),
                "teams": ",".join(sorted(set(mine["team_mark"]))),
                "visits": int(mine["visits"].sum()),
                "qualifying_visits": int(doses["qualifying_visits"].sum()),
                "shifts_met": met,
                "shortfall": shortfall.get(code, 1.0),
            }
        )
    table = pd.DataFrame(rows, columns=[c for c in GAP_COLUMNS if c not in ("rank", "score")])
    table["score"] = table["risk"] * table["shortfall"]
    table = table.sort_values(["score", "risk", "grid_code"], ascending=[False, False, True])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[GAP_COLUMNS].reset_index(drop=True)


def _shortfall(shifts: pd.DataFrame, visits: pd.DataFrame, target: DosageTarget) -> dict:
    """Per grid: the unprotected share of its shift time (see the module docstring)."""
    if shifts.empty:
        return {}
    reach_s = target.max_gap_min * 60 / 2
    good = visits[visits["shift"].isin(shifts.index) & (visits["minutes"] >= target.min_visit_min)]
    window_from = shifts["_from"].reindex(good["shift"]).to_numpy()
    window_to = shifts["_to"].reindex(good["shift"]).to_numpy()
    protected = merge_intervals(
        good["grid_code"].to_numpy(),
        np.maximum(good["_from"].to_numpy() - reach_s, window_from),
        np.minimum(good["_to"].to_numpy() + reach_s, window_to),
    )
    on_duty = merge_intervals(
        shifts["grid_code"].to_numpy(), shifts["_from"].to_numpy(), shifts["_to"].to_numpy()
    )
    duty = (on_duty["ends"] - on_duty["starts"]).groupby(on_duty["key"]).sum()
    cover = (protected["ends"] - protected["starts"]).groupby(protected["key"]).sum()
    share = 1 - cover.reindex(duty.index, fill_value=0.0) / duty
    return share.clip(0, 1).to_dict()


def _never_visited(shifts: pd.DataFrame) -> pd.DataFrame:
    """Assigned grids (with a shift that day) that no visit reached."""
    if shifts.empty:
        return pd.DataFrame(columns=["grid_code", "shifts", "teams"])
    grouped = shifts.groupby("grid_code")
    table = pd.DataFrame(
        {
            "visits": grouped["visits"].sum(),
            "shifts": grouped.size(),
            "teams": grouped["team_mark"].agg(lambda marks: ",".join(sorted(set(marks)))),
        }
    )
    table = table[table["visits"] == 0].drop(columns=["visits"])
    return table.reset_index()
