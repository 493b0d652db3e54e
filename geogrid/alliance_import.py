"""Alliance imports from CSV or XLSX: organisations, stations, teams, members.

Each import is all or nothing. Every row is read and checked first (values, references
to stations, organisations and teams, grid codes against the current generation, keys
repeated within the file); if any row has a problem, nothing is written and every
problem is listed with its line and field. Otherwise each row adds a record or updates
the one with the same natural key, so importing a file twice changes nothing:

================  ============================================================
file              natural key
================  ============================================================
organisations     name
stations          code
teams             mark (normalised to ``PA-370705-0042``)
members           name within the team (within the organisation if no team)
================  ============================================================

An empty cell in an optional column leaves the stored value as it is (a new record
takes the default); imports never delete. The import flushes; the caller commits, or
rolls back for a dry run, which still reports what would change. The columns of each
file are :data:`geogrid.alliance_rows.TEMPLATES`; files are read by
:func:`geogrid.files.read_table` (CSV or XLSX, UTF-8 or GBK).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tqdm import tqdm

from geogrid.alliance_rows import (
    TEMPLATES,
    RowProblems,
    cell,
    column_names,
    member_values,
    organisation_values,
    station_values,
    team_values,
)
from geogrid.alliance_values import set_fields, unknown_grid_codes
from geogrid.crs import CoordType
from geogrid.errors import Conflict, GeogridError, InputError
from geogrid.files import RecordProblem, read_table
from geogrid.models import PatrolMember, PatrolOrganisation, PatrolTeam, PoliceStation
from geogrid.stations import check_station_parent, set_station_grids


@dataclass(frozen=True)
class RowChange:
    """What an import did (or would do) with one line: add, update or leave unchanged."""

    line: int
    key: str
    action: str
    fields: tuple[str, ...] = ()


@dataclass
class AllianceImport:
    """The outcome of an import: the problems that blocked it, or the changes made."""

    what: str
    path: Path
    read: int
    problems: list[RecordProblem] = field(default_factory=list)
    changes: list[RowChange] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        """Whether problems stopped the import before anything was written."""
        return bool(self.problems)

    def count(self, action: str) -> int:
        """How many lines were added, updated or left unchanged."""
        return sum(change.action == action for change in self.changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "what": self.what,
            "path": str(self.path),
            "read": self.read,
            "blocked": self.blocked,
            "added": self.count("add"),
            "updated": self.count("update"),
            "unchanged": self.count("unchanged"),
            "problems": [vars(problem) for problem in self.problems],
            "changes": [vars(change) for change in self.changes],
        }


def import_organisations(session: Session, path: Path, *, progress: bool = False) -> AllianceImport:
    """Add or update member organisations from a file (key: name)."""
    result, rows = _read(path, "organisations", progress, organisation_values)
    keys = _keys(result, rows, lambda values: values["name"])
    if _blocked(result):
        return result
    stored = _organisations(session)
    with _writing(session, result):
        for line, values in _bar(rows, progress, path):
            existing = stored.get(keys[line])
            _upsert(session, result, line, keys[line], existing, PatrolOrganisation, values)
    return result


def import_stations(
    session: Session, path: Path, *, coord_type: CoordType, progress: bool = False
) -> AllianceImport:
    """Add or update stations and offices with the grids they answer for (key: code)."""
    result, rows = _read(path, "stations", progress, lambda v: station_values(v, coord_type))
    keys = _keys(result, rows, lambda values: values["code"])
    stored = {station.code: station for station in session.scalars(select(PoliceStation))}
    _check_station_rows(session, result, rows, stored)
    if _blocked(result):
        return result
    # Stations before offices, so that an office's station exists when it is added.
    rows.sort(key=lambda row: row[1]["kind"] == "community_office")
    with _writing(session, result):
        for line, values in _bar(rows, progress, path):
            grids = values.pop("grids")
            existing = stored.get(keys[line])
            _upsert(session, result, line, keys[line], existing, PoliceStation, values)
            if grids is not None and any(
                set_station_grids(session, keys[line], grids, replace=True)
            ):
                _also_changed(result, "grids")
        result.changes.sort(key=lambda change: change.line)
    return result


def import_teams(
    session: Session, path: Path, *, coord_type: CoordType | None = None, progress: bool = False
) -> AllianceImport:
    """Add or update teams (key: mark); a base point needs ``coord_type``."""
    result, rows = _read(path, "teams", progress, lambda v: team_values(v, coord_type))
    keys = _keys(result, rows, lambda values: values["mark"])
    stations = {code: code for code in session.scalars(select(PoliceStation.code))}
    organisations = _organisations(session)
    for line, values in rows:
        _resolve(result, line, values, "station_code", stations)
        _resolve(result, line, values, "organisation", organisations, into="organisation_id")
    if _blocked(result):
        return result
    stored = {
        team.mark: team
        for team in session.scalars(select(PatrolTeam).where(PatrolTeam.mark.in_(keys.values())))
    }
    with _writing(session, result):
        for line, values in _bar(rows, progress, path):
            if "organisation_id" in values:
                values["organisation_id"] = values["organisation_id"].id
            _upsert(session, result, line, keys[line], stored.get(keys[line]), PatrolTeam, values)
    return result


def import_members(session: Session, path: Path, *, progress: bool = False) -> AllianceImport:
    """Add or update members (key: name within the team, or the organisation if no team)."""
    result, rows = _read(path, "members", progress, member_values)
    keys = _keys(result, rows, _member_key)
    teams = {team.mark: team for team in session.scalars(select(PatrolTeam))}
    organisations = _organisations(session)
    for line, values in rows:
        _resolve(result, line, values, "team", teams, into="team_id")
        _resolve(result, line, values, "organisation", organisations, into="organisation_id")
    if _blocked(result):
        return result
    stored = _members(session)
    with _writing(session, result):
        for line, values in _bar(rows, progress, path):
            team, org = values.pop("team_id", None), values.pop("organisation_id", None)
            values["team_id"] = team.id if team is not None else None
            if org is not None:
                values["organisation_id"] = org.id
            elif team is not None and (values["team_id"], None, values["name"]) not in stored:
                values["organisation_id"] = team.organisation_id  # a new member: the team's
            key = (values["team_id"], None if team else org.id, values["name"])
            _upsert(session, result, line, keys[line], stored.get(key), PatrolMember, values)
    return result


# -- reading and checking rows ----------------------------------------------------------

_Rows = list[tuple[int, dict[str, Any]]]


def _read(
    path: Path, what: str, progress: bool, parse: Callable[[dict[str, Any]], dict[str, Any]]
) -> tuple[AllianceImport, _Rows]:
    table = read_table(path, progress=progress)
    names = column_names(list(table.frame.columns), TEMPLATES[what], Path(path).name)
    result = AllianceImport(what, Path(path), len(table.frame) + len(table.problems))
    result.problems.extend(table.problems)
    rows: _Rows = []
    for line, record in zip(table.lines, table.frame.itertuples(index=False), strict=True):
        cells = dict(zip(table.frame.columns, record, strict=True))
        given = {name: cell(cells[column]) for name, column in names.items()}
        try:
            rows.append((line, parse(given)))
        except RowProblems as exc:
            result.problems.extend(RecordProblem(line, f, m) for f, m in exc.problems)
    if not result.read:
        result.problems.append(RecordProblem(0, None, "the file holds no rows"))
    return result, rows


def _member_key(values: dict[str, Any]) -> str:
    return f"{values.get('team') or values.get('organisation')}/{values['name']}"


def _keys(
    result: AllianceImport, rows: _Rows, key: Callable[[dict[str, Any]], str]
) -> dict[int, str]:
    """Each line's natural key; a key repeated within the file is a problem."""
    keys: dict[int, str] = {}
    first: dict[str, int] = {}
    for line, values in rows:
        keys[line] = key(values)
        if keys[line] in first:
            message = f"{keys[line]} is also on line {first[keys[line]]}; keep one"
            result.problems.append(RecordProblem(line, None, message))
        first.setdefault(keys[line], line)
    return keys


def _organisations(session: Session) -> dict[str, PatrolOrganisation]:
    return {org.name: org for org in session.scalars(select(PatrolOrganisation))}


def _members(session: Session) -> dict[tuple[int | None, int | None, str], PatrolMember]:
    """Stored members by natural key; the first (oldest) wins where names repeat."""
    stored: dict[tuple[int | None, int | None, str], PatrolMember] = {}
    for member in session.scalars(select(PatrolMember).order_by(PatrolMember.id)):
        where = None if member.team_id is not None else member.organisation_id
        stored.setdefault((member.team_id, where, member.name), member)
    return stored


def _resolve(
    result: AllianceImport,
    line: int,
    values: dict[str, Any],
    name: str,
    known: dict[str, Any],
    *,
    into: str | None = None,
) -> None:
    """Replace a reference (a code, a mark, a name) by what it names, or list a problem."""
    if name not in values:
        return
    reference = values.pop(name)
    if reference not in known:
        what = {"station_code": "station", "team": "team"}.get(name, name)
        result.problems.append(RecordProblem(line, name, f"there is no {what} {reference!r}"))
        return
    values[into or name] = known[reference]


def _check_station_rows(
    session: Session, result: AllianceImport, rows: _Rows, stored: dict[str, PoliceStation]
) -> None:
    """Parents exist (stored or in the file) and are stations; grids are current grids."""
    kinds = {code: station.kind for code, station in stored.items()}
    kinds.update({values["code"]: values["kind"] for _line, values in rows})
    parents = {station.parent_code for station in stored.values()}
    parents.update(values["parent_code"] for _line, values in rows)
    grids = [grid for _line, values in rows for grid in values["grids"] or ()]
    unknown = set(unknown_grid_codes(session, grids)) if grids else set()
    for line, values in rows:
        code, kind, parent = values["code"], values["kind"], values["parent_code"]
        try:
            if parent == code:
                raise InputError(f"{code} cannot be its own parent", field="parent_code")
            check_station_parent(code, kind, parent, kinds.get(parent) if parent else None)
        except GeogridError as exc:
            result.problems.append(RecordProblem(line, exc.field, exc.message))
        if kind == "community_office" and code in parents:
            message = f"{code} has community offices under it, so it must be a station"
            result.problems.append(RecordProblem(line, "kind", message))
        missing = [grid for grid in values["grids"] or () if grid in unknown]
        if missing:
            message = f"no grid {', '.join(missing)} in the current generation"
            result.problems.append(RecordProblem(line, "grids", message))
    result.problems.sort(key=lambda problem: problem.record)


# -- writing ----------------------------------------------------------------------------


def _upsert(
    session: Session,
    result: AllianceImport,
    line: int,
    key: str,
    existing: Any,
    model: type,
    values: dict[str, Any],
) -> None:
    """Add a row with ``values`` or write them into ``existing``; record what happened."""
    if existing is None:
        row = model()
        set_fields(row, values)
        session.add(row)
        if model is PoliceStation:
            session.flush()  # before its grids, and before the offices under it
        result.changes.append(RowChange(line, key, "add"))
        return
    changed = set_fields(existing, values)
    result.changes.append(
        RowChange(line, key, "update" if changed else "unchanged", tuple(changed))
    )


def _also_changed(result: AllianceImport, name: str) -> None:
    last = result.changes[-1]
    if last.action != "add":
        result.changes[-1] = RowChange(last.line, last.key, "update", (*last.fields, name))


def _blocked(result: AllianceImport) -> bool:
    result.problems.sort(key=lambda problem: problem.record)
    return result.blocked


@contextmanager
def _writing(session: Session, result: AllianceImport) -> Iterator[None]:
    """A savepoint around the writes: an error leaves none of them behind."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError:
        # Only a concurrent writer can get here: every key was checked beforehand.
        raise Conflict(
            f"{result.path.name}: the same {result.what} were changed by someone else while "
            "importing; run the import again"
        ) from None


def _bar(rows: _Rows, enabled: bool, path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    return tqdm(rows, disable=not enabled, file=sys.stderr, desc=Path(path).name, unit="row")
