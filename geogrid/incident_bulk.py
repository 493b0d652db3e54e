"""Writing many incidents at once: COPY into a staging table, then one set-based insert.

Used by the import of historic incidents and by the demo data. Rows go in chunks: each
chunk is copied (CSV over ``COPY ... FROM STDIN``) into a temporary staging table, then
one statement inserts the incidents with ``ON CONFLICT (idempotency_key) DO NOTHING``
and, from the rows that insert returns, their contacts, their events and their recorded
breaches. So a row whose key is already there is skipped with all that belongs to it:
the unique constraint decides, not a check before the insert, and importing a file
twice inserts nothing the second time. The next chunk's CSV text is made while the
database inserts the current one.

Library code: the caller owns the transaction; nothing here commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from geogrid.models import (
    STORAGE_SRID,
    Incident,
    IncidentBreach,
    IncidentContact,
    IncidentEvent,
)

#: ``progress(phase, rows_done, rows_total)``.
Progress = Callable[[str, int, int], None]
CHUNK_ROWS = 50_000

_stage_metadata = MetaData()


def _temporary(name: str, *columns: Column) -> Table:
    return Table(
        name, _stage_metadata, *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )


# Times are staged as UTC without a zone: pandas writes those fast, and nothing is lost.
_INCIDENTS = _temporary(
    "incident_stage",
    Column("row_no", BigInteger),
    Column("idempotency_key", Text),
    Column("category", Text),
    Column("description", Text),
    Column("channel", Text),
    Column("complex", Boolean),
    Column("state", Text),
    Column("reported_at", DateTime),
    Column("reported_by", Text),
    Column("given_lon", Float),
    Column("given_lat", Float),
    Column("coord_type", Text),
    Column("lon", Float),
    Column("lat", Float),
    Column("address", Text),
    Column("grid_code", Text),
    Column("generation", Integer),
    Column("placement", Text),
    Column("placement_detail", Text),
    Column("level", Text),
    Column("assignee", Text),
    Column("department", Text),
    Column("accept_due_at", DateTime),
    Column("report_in_due_at", DateTime),
    Column("resolve_due_at", DateTime),
    Column("deadline_alert", Text),
    Column("accepted_at", DateTime),
    Column("dispatched_at", DateTime),
    Column("resolved_at", DateTime),
    Column("evaluated_at", DateTime),
    Column("satisfaction", Text),
    Column("reopened_count", Integer),
    Column("escalation_count", Integer),
    Column("reject_reason", Text),
    Column("contact_name", Text),
    Column("contact_phone", Text),
    Column("event_data", Text),
)
_EVENTS = _temporary(
    "incident_event_stage",
    Column("row_no", BigInteger),
    Column("idempotency_key", Text),
    Column("at", DateTime),
    Column("actor", Text),
    Column("role", Text),
    Column("action", Text),
    Column("from_state", Text),
    Column("to_state", Text),
    Column("level", Text),
    Column("note", Text),
    Column("data", Text),
)
_BREACHES = _temporary(
    "incident_breach_stage",
    Column("idempotency_key", Text),
    Column("deadline", Text),
    Column("due_at", DateTime),
    Column("escalated_at", DateTime),
    Column("level", Text),
)
#: The columns an incidents frame may have (``idempotency_key`` is required).
INCIDENT_COLUMNS = tuple(c.name for c in _INCIDENTS.columns if c.name != "row_no")
#: The columns of an events frame; rows of one incident are in the order they happened.
EVENT_COLUMNS = tuple(c.name for c in _EVENTS.columns if c.name != "row_no")
BREACH_COLUMNS = tuple(c.name for c in _BREACHES.columns)


@dataclass(frozen=True)
class ImportEvent:
    """The one event each imported incident gets, with the historic times in its data."""

    actor: str
    role: str
    at: datetime
    note: str = ""
    #: The event's data for each row of a chunk of incidents, as JSON text. It is made
    #: in the thread that prepares the next chunk, while the database inserts this one.
    data: Callable[[pd.DataFrame], Sequence[str]] | None = None


@dataclass
class BulkWritten:
    """What a bulk write did."""

    staged: int = 0
    inserted: int = 0
    events: int = 0
    contacts: int = 0
    breaches: int = 0

    @property
    def skipped(self) -> int:
        """Rows whose idempotency key was already taken: imported before."""
        return self.staged - self.inserted


def write_incidents(
    session: Session,
    incidents: pd.DataFrame,
    *,
    import_event: ImportEvent | None = None,
    events: pd.DataFrame | None = None,
    breaches: pd.DataFrame | None = None,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> BulkWritten:
    """Insert incidents (keyed by ``idempotency_key``) with their contacts, events, breaches."""
    written = BulkWritten(staged=len(incidents))
    if incidents.empty:
        return written
    if incidents["idempotency_key"].isna().any():
        raise ValueError("every incident written in bulk needs an idempotency key")
    session.flush()
    tables = [_INCIDENTS] + [
        t for t, f in ((_EVENTS, events), (_BREACHES, breaches)) if f is not None
    ]
    for table in tables:
        table.create(session.connection())
    statement = _insert_statement(import_event, tables)
    chunks = _chunks(incidents, events, breaches, chunk_rows)
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming: Future | None = pool.submit(_csv_texts, next(chunks), import_event)
        done = 0
        while upcoming is not None:
            texts, rows = upcoming.result()
            following = next(chunks, None)
            if following is not None:
                upcoming = pool.submit(_csv_texts, following, import_event)
            else:
                upcoming = None
            counts = _write_chunk(session, texts, statement)
            written.inserted += counts.incidents
            written.events += counts.events
            written.contacts += counts.contacts
            written.breaches += counts.breaches
            done += rows
            if progress is not None:
                progress("write", done, len(incidents))
    for table in tables:
        table.drop(session.connection())
    return written


def _write_chunk(session: Session, texts: dict[Table, str], statement) -> Any:
    """Stage one chunk, insert it, empty the staging tables; what the insert counted."""
    for table, text in texts.items():
        _copy(session, table, text)
        # Temporary tables get no statistics otherwise: without them the planner guesses,
        # joins by sorting on disk and compiles the statement (JIT) as if for millions.
        _analyze(session, table)
    counts = session.execute(statement).one()
    for table in texts:
        _truncate(session, table)
    return counts


def _chunks(
    incidents: pd.DataFrame,
    events: pd.DataFrame | None,
    breaches: pd.DataFrame | None,
    chunk_rows: int,
):
    """Chunks of the incidents, each with the events and breaches of its incidents."""
    incidents = incidents.reset_index(drop=True)
    chunk_of = pd.Series(
        np.arange(len(incidents)) // chunk_rows, index=incidents["idempotency_key"]
    )
    by_chunk = {}
    for name, frame in (("events", events), ("breaches", breaches)):
        if frame is not None:
            frame = frame.reset_index(drop=True)
            frame = frame.assign(row_no=np.arange(len(frame))) if name == "events" else frame
            owner = chunk_of.reindex(frame["idempotency_key"]).to_numpy()
            if np.isnan(owner.astype(float)).any():
                raise ValueError(f"{name} name an idempotency key that no incident has")
            by_chunk[name] = dict(tuple(frame.groupby(owner.astype(np.int64), sort=False)))
    for number, start in enumerate(range(0, len(incidents), chunk_rows)):
        part = incidents.iloc[start : start + chunk_rows].assign(
            row_no=np.arange(start, min(start + chunk_rows, len(incidents)))
        )
        yield {
            _INCIDENTS: part,
            **{
                table: by_chunk[name].get(number, pd.DataFrame(columns=["idempotency_key"]))
                for table, name in ((_EVENTS, "events"), (_BREACHES, "breaches"))
                if name in by_chunk
            },
        }


def _csv_texts(
    chunk: dict[Table, pd.DataFrame], import_event: ImportEvent | None
) -> tuple[dict[Table, str], int]:
    """Each staging table's rows as CSV text, in its column order."""
    texts = {}
    part = chunk[_INCIDENTS]
    if import_event is not None and import_event.data is not None:
        part = part.assign(event_data=list(import_event.data(part)))
    chunk = {**chunk, _INCIDENTS: part}
    for table, frame in chunk.items():
        columns = {}
        for column in table.columns:
            values = frame.get(column.name)
            columns[column.name] = _csv_values(values, column, len(frame))
        texts[table] = pd.DataFrame(columns).to_csv(index=False, header=False)
    return texts, len(chunk[_INCIDENTS])


def _csv_values(values: pd.Series | None, column: Column, rows: int) -> Any:
    if values is None:
        return np.full(rows, None, dtype=object)
    if isinstance(column.type, DateTime):
        # Aware instants to naive UTC; formatting aware ones is twenty times slower.
        return pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy()
    if isinstance(column.type, BigInteger | Integer):
        return values.astype("Int64").to_numpy()
    if column.name in ("data", "placement_detail", "event_data"):
        return [_json_text(value) for value in values]
    return values.to_numpy()


def _json_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _copy(session: Session, table: Table, text: str) -> None:
    """COPY CSV text into a staging table; an empty field, quoted or not, is NULL."""
    names = [sql.Identifier(column.name) for column in table.columns]
    statement = sql.SQL("COPY {table} ({columns}) FROM STDIN (FORMAT csv, FORCE_NULL ({columns}))")
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        query = statement.format(
            table=sql.Identifier(table.name), columns=sql.SQL(", ").join(names)
        )
        with cursor.copy(query) as copy:
            copy.write(text)


def _analyze(session: Session, table: Table) -> None:
    """Count the staged rows for the planner; the key column's statistics are all it needs."""
    raw = session.connection().connection.driver_connection
    statement = sql.SQL("ANALYZE {table} (idempotency_key)")
    raw.execute(statement.format(table=sql.Identifier(table.name)))


def _truncate(session: Session, table: Table) -> None:
    """Empty a staging table for the next chunk (DELETE would leave dead rows to scan)."""
    raw = session.connection().connection.driver_connection
    raw.execute(sql.SQL("TRUNCATE {table}").format(table=sql.Identifier(table.name)))


def _utc(column: Column) -> Any:
    return func.timezone("UTC", column)


def _insert_statement(import_event: ImportEvent | None, tables: list[Table]):
    """One statement: the incidents, then from what it returns, contacts, events, breaches."""
    s = _INCIDENTS.c
    values = {  # column name -> staged value
        "idempotency_key": s.idempotency_key,
        "category": s.category,
        "description": s.description,
        "channel": s.channel,
        "complex": func.coalesce(s.complex, False),
        "state": s.state,
        "reported_at": _utc(s.reported_at),
        "reported_by": func.coalesce(s.reported_by, ""),
        "given_lon": s.given_lon,
        "given_lat": s.given_lat,
        "coord_type": s.coord_type,
        "geom": func.ST_SetSRID(func.ST_MakePoint(s.lon, s.lat), STORAGE_SRID),
        "address": func.coalesce(s.address, ""),
        "grid_code": s.grid_code,
        "generation": s.generation,
        "placement": s.placement,
        "placement_detail": func.coalesce(
            cast(s.placement_detail, JSONB), cast(literal("{}"), JSONB)
        ),
        "level": func.coalesce(s.level, "grid"),
        "assignee": s.assignee,
        "department": func.coalesce(s.department, ""),
        "accept_due_at": _utc(s.accept_due_at),
        "report_in_due_at": _utc(s.report_in_due_at),
        "resolve_due_at": _utc(s.resolve_due_at),
        "deadline_alert": s.deadline_alert,
        "accepted_at": _utc(s.accepted_at),
        "dispatched_at": _utc(s.dispatched_at),
        "resolved_at": _utc(s.resolved_at),
        "evaluated_at": _utc(s.evaluated_at),
        "satisfaction": s.satisfaction,
        "reopened_count": func.coalesce(s.reopened_count, 0),
        "escalation_count": func.coalesce(s.escalation_count, 0),
        "reject_reason": s.reject_reason,
    }
    inserted = (
        insert(Incident)
        .from_select(
            list(values),
            # No ORDER BY: the staged rows come in the order they were copied, and sorting
            # a chunk would spill to disk for nothing.
            select(*values.values()),
        )
        .on_conflict_do_nothing(index_elements=[Incident.idempotency_key])
        .returning(Incident.id, Incident.idempotency_key, Incident.state, Incident.level)
        .cte("inserted")
    )
    joined = inserted.join(_INCIDENTS, s.idempotency_key == inserted.c.idempotency_key)
    contacts = (
        insert(IncidentContact)
        .from_select(
            ["incident_id", "name", "phone"],
            select(
                inserted.c.id,
                func.coalesce(s.contact_name, ""),
                func.coalesce(s.contact_phone, ""),
            )
            .select_from(joined)
            .where((s.contact_name.is_not(None)) | (s.contact_phone.is_not(None))),
        )
        .returning(IncidentContact.incident_id)
        .cte("contacts")
    )
    events = []
    if import_event is not None:
        events.append(_import_events(import_event, inserted, joined))
    if _EVENTS in tables:
        events.append(_staged_events(inserted))
    breaches = [_staged_breaches(inserted)] if _BREACHES in tables else []

    def count(cte) -> Any:
        return select(func.count()).select_from(cte).scalar_subquery()

    return select(
        count(inserted).label("incidents"),
        count(contacts).label("contacts"),
        sum((count(cte) for cte in events), literal(0)).label("events"),
        sum((count(cte) for cte in breaches), literal(0)).label("breaches"),
    ).add_cte(contacts, *events, *breaches)


def _import_events(import_event: ImportEvent, inserted, joined):
    s = _INCIDENTS.c
    query = select(
        inserted.c.id,
        literal(import_event.at, DateTime(timezone=True)),
        literal(import_event.actor),
        literal(import_event.role),
        literal("import"),
        inserted.c.state,
        inserted.c.level,
        literal(import_event.note),
        func.coalesce(cast(s.event_data, JSONB), cast(literal("{}"), JSONB)),
    ).select_from(joined)
    columns = ["incident_id", "at", "actor", "role", "action", "to_state", "level", "note", "data"]
    return (
        insert(IncidentEvent)
        .from_select(columns, query)
        .returning(IncidentEvent.id)
        .cte("import_events")
    )


def _staged_events(inserted):
    e = _EVENTS.c
    query = (
        select(
            inserted.c.id,
            _utc(e.at),
            e.actor,
            e.role,
            e.action,
            e.from_state,
            e.to_state,
            e.level,
            func.coalesce(e.note, ""),
            func.coalesce(cast(e.data, JSONB), cast(literal("{}"), JSONB)),
        )
        .select_from(inserted.join(_EVENTS, e.idempotency_key == inserted.c.idempotency_key))
        .order_by(e.row_no)
    )
    columns = [
        "incident_id", "at", "actor", "role", "action", "from_state", "to_state", "level",
        "note", "data",
    ]  # fmt: skip
    return (
        insert(IncidentEvent).from_select(columns, query).returning(IncidentEvent.id).cte("events")
    )


def _staged_breaches(inserted):
    b = _BREACHES.c
    query = select(
        inserted.c.id, b.deadline, _utc(b.due_at), _utc(b.escalated_at), b.level
    ).select_from(inserted.join(_BREACHES, b.idempotency_key == inserted.c.idempotency_key))
    columns = ["incident_id", "deadline", "due_at", "escalated_at", "level"]
    return (
        insert(IncidentBreach)
        .from_select(columns, query)
        .returning(IncidentBreach.incident_id)
        .cte("breaches")
    )
