"""The counts of a report, aggregated in SQL, and the units they are counted in.

Incidents are grouped by the prefix of their grid code (codes nest: a unit's code is
the first digits of every grid code below it); to re-attribute them to today's grids
they are grouped by (generation, grid) instead and mapped with
:func:`geogrid.attribution.attribute` before the prefix is taken. Results are read
with :func:`query_frame`, one array per column, which is what keeps a city's month
well under a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from geogrid.attribution import attribute
from geogrid.models import Area, Incident
from geogrid.periods import Period
from geogrid.sla import overdue_condition


def scope_clause(scope: tuple[str, ...]) -> Any:
    """SQL: the incident's recorded grid lies under one of the code prefixes."""
    if not scope:
        return false()
    return or_(*(Incident.grid_code.startswith(prefix, autoescape=True) for prefix in scope))


def category_clause(category: str | None) -> Any:
    """SQL: the incident is of the category (always true when every category counts)."""
    return true() if category is None else Incident.category == category


def query_frame(session: Session, query: Any) -> pd.DataFrame:
    """The rows of a select as a frame, read as one array per column.

    A city's month is some 10^5 rows. Read row by row, through SQLAlchemy's row objects,
    that costs seconds; one ``array_agg`` per column read in psycopg's binary format
    costs a fraction. The statement is compiled by SQLAlchemy and runs, with bound
    parameters, on the session's own connection, inside its transaction.
    """
    session.flush()
    rows = query.subquery()
    arrays = select(*(func.array_agg(column) for column in rows.c))
    connection = session.connection()
    compiled = arrays.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    with connection.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        values = cursor.fetchone()
    # array_agg over no rows is NULL, not an empty array.
    return pd.DataFrame(
        {column.name: value or [] for column, value in zip(rows.c, values, strict=True)}
    )


class Counting:
    """How incidents become units: grouped by code prefix, after re-attribution if asked.

    ``category``, when given, limits what is counted to incidents of that category.
    """

    def __init__(
        self,
        unit_length: int,
        scope: tuple[str, ...] | None,
        successors: pd.DataFrame | None,
        category: str | None = None,
    ) -> None:
        self.unit_length = unit_length
        self.scope = scope
        self.successors = successors
        self.category = category
        self.unmapped: set[str] = set()

    def keys(self) -> list[Any]:
        """SQL group keys: the unit's code prefix, or (generation, grid) to re-attribute."""
        if self.successors is None:
            return [func.substr(Incident.grid_code, 1, self.unit_length).label("code")]
        return [Incident.generation.label("generation"), Incident.grid_code.label("code")]

    def where(self) -> list[Any]:
        """SQL conditions: placed in a grid, of the category, in scope when counting as recorded."""
        conditions: list[Any] = [Incident.grid_code.is_not(None), category_clause(self.category)]
        if self.scope is not None and self.successors is None:
            conditions.append(scope_clause(self.scope))
        return conditions

    def to_units(self, grouped: pd.DataFrame) -> pd.DataFrame:
        """Counts per unit code from the SQL groups."""
        if self.successors is not None:
            grouped = grouped.assign(grid_code=grouped["code"])
            grouped["code"] = self.unit_of(grouped)
            grouped = grouped.drop(columns=["generation", "grid_code"])
        if self.scope is not None:
            grouped = grouped[grouped["code"].notna()]
        return grouped.groupby("code").sum()

    def unit_of(self, rows: pd.DataFrame) -> pd.Series:
        """The unit code of each row (None outside the scope or outside every grid)."""
        codes = rows["grid_code"]
        if self.successors is not None:
            codes, unmapped = attribute(rows["generation"], codes, self.successors)
            self.unmapped.update(codes[unmapped].dropna())
        units = codes.str.slice(0, self.unit_length)
        if self.scope is not None:
            units = units.where(codes.str.startswith(self.scope).fillna(False).astype(bool))
        return units.astype(object).where(units.notna(), None)


def period_counts(
    session: Session, period: Period, now: datetime, counting: Counting
) -> pd.DataFrame:
    """The period's counts per SQL group (see the module docstring for each measure)."""
    i = Incident
    handled = i.state != "rejected"
    accept_due = and_(
        handled,
        i.accept_due_at.is_not(None),
        or_(i.accepted_at.is_not(None), i.accept_due_at <= now),
    )
    resolve_due = and_(
        handled,
        i.resolve_due_at.is_not(None),
        or_(i.resolved_at.is_not(None), i.resolve_due_at <= now),
    )
    values = {
        "received": func.count(),
        "rejected": func.count().filter(i.state == "rejected"),
        "accept_due": func.count().filter(accept_due),
        "accepted_on_time": func.count().filter(and_(handled, i.accepted_at <= i.accept_due_at)),
        "resolve_due": func.count().filter(resolve_due),
        "resolved_on_time": func.count().filter(and_(handled, i.resolved_at <= i.resolve_due_at)),
        "resolved": func.count().filter(and_(handled, i.resolved_at.is_not(None))),
        "escalations": func.coalesce(func.sum(i.escalation_count), 0),
        "evaluated": func.count().filter(i.satisfaction.is_not(None)),
        "satisfied": func.count().filter(i.satisfaction == "satisfied"),
        "reopened": func.count().filter(i.reopened_count > 0),
    }
    keys = counting.keys()
    query = (
        select(*keys, *(value.label(name) for name, value in values.items()))
        .where(i.reported_at >= period.start, i.reported_at < period.end, i.state != "merged")
        .where(*counting.where())
        .group_by(*keys)
    )
    return _frame(session, query)


def overdue_counts(session: Session, now: datetime, counting: Counting) -> pd.DataFrame:
    keys = counting.keys()
    query = (
        select(*keys, func.count().label("overdue_now"))
        .where(overdue_condition(now), Incident.reported_at <= now, *counting.where())
        .group_by(*keys)
    )
    return _frame(session, query)


def _frame(session: Session, query: Any) -> pd.DataFrame:
    frame = query_frame(session, query)
    return frame.assign(code=frame["code"].astype(object))


def unit_table(
    session: Session,
    generation: int,
    level: str,
    scope: tuple[str, ...] | None,
    unit_length: int,
    counted: pd.Index,
) -> pd.DataFrame:
    """Every unit of the level in the generation, plus recorded codes it no longer has."""
    query = select(Area.code, Area.name).where(Area.valid_in(generation), Area.level == level)
    units = query_frame(session, query).astype({"code": object, "name": object})
    units = units.assign(in_generation=True)
    if scope is not None:
        containing = {prefix[:unit_length] for prefix in scope if len(prefix) > unit_length}
        keep = units["code"].str.startswith(scope) | units["code"].isin(containing)
        units = units[keep]
    gone = sorted(set(counted) - set(units["code"]))
    if gone:
        names = dict(
            session.execute(
                select(Area.code, Area.name)
                .where(Area.code.in_(gone), Area.level == level)
                .order_by(Area.generation_high)
            ).all()
        )
        extra = pd.DataFrame({"code": gone, "name": [names.get(code, "") for code in gone]})
        units = pd.concat([units, extra.assign(in_generation=False)], ignore_index=True)
    return units.sort_values("code").reset_index(drop=True)
