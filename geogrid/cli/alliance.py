"""Commands for the alliance: ``geogrid patrols orgs|stations|teams|members``, the
``import-orgs|import-stations|import-teams|import-members`` imports, ``add-team``,
``add-station`` and ``station-grids``. Shift assignments are :mod:`geogrid.cli.assignments`.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from geogrid import alliance, alliance_import, alliance_rows, stations
from geogrid.cli.base import CRS_HELP, Context, echo_json, pass_context
from geogrid.cli.patrols import patrols_group
from geogrid.crs import parse_coord_type
from geogrid.models import ORGANISATION_TYPES

COMMIT_HELP = "write the change; without it nothing is changed"
DATE = click.DateTime(formats=["%Y-%m-%d"])


def day_of(value: datetime | None) -> date | None:
    """The date of a ``--date`` option (click gives a datetime)."""
    return value.date() if value is not None else None


def dry_run(what: str) -> None:
    """Say that nothing was written and how to write it."""
    click.echo(f"dry run: nothing was written (add --commit to {what})")


def print_json(rows: list[Any]) -> None:
    """Records (with ``as_dict``) as a JSON array, Chinese left readable."""
    echo_json([row.as_dict() for row in rows])


def print_table(rows: list[list[Any]], empty: str) -> None:
    """Rows as aligned columns, or ``empty`` when there are none."""
    if not rows:
        click.echo(empty)
        return
    texts = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(texts[0]))]
    for row in texts:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


# -- lists ------------------------------------------------------------------------------


@patrols_group.command("orgs")
@click.option("--kind", type=click.Choice(ORGANISATION_TYPES))
@click.option("--json", "as_json", is_flag=True)
@pass_context
def orgs_list(context: Context, kind: str | None, as_json: bool) -> None:
    """List member organisations with their type and number of active members."""
    with context.session(commit=False) as session:
        rows = alliance.list_organisations(session, kind=kind)
    if as_json:
        return print_json(rows)
    print_table(
        [[o.name, o.kind, o.kind_label, o.county_code, f"{o.members} members"] for o in rows],
        "no organisations yet (`geogrid patrols import-orgs FILE --commit`)",
    )


@patrols_group.command("stations")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def stations_list(context: Context, as_json: bool) -> None:
    """List police stations and community offices with the grids they answer for."""
    with context.session(commit=False) as session:
        rows = stations.list_stations(session)
    if as_json:
        return print_json(rows)
    print_table(
        [
            [
                s.code,
                s.name,
                s.kind_label,
                s.parent_code or "",
                f"{s.lon:.6f},{s.lat:.6f}",
                f"{s.teams} teams",
                " ".join(s.grid_codes),
            ]
            for s in rows
        ],
        "no stations yet (`geogrid patrols import-stations FILE --crs ... --commit`)",
    )


@patrols_group.command("teams")
@click.option("--station", help="a station's code: its teams and its offices' teams")
@click.option("--all", "include_inactive", is_flag=True, help="inactive teams too")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def teams_list(
    context: Context, station: str | None, include_inactive: bool, as_json: bool
) -> None:
    """List teams by unified mark."""
    with context.session(commit=False) as session:
        rows = alliance.list_teams(session, station_code=station, include_inactive=include_inactive)
    if as_json:
        return print_json(rows)
    print_table(
        [
            [
                t.mark,
                t.name,
                t.station_code,
                t.organisation or "",
                f"capacity {t.capacity:g}",
                f"{t.members} members",
                "" if t.active else "inactive",
            ]
            for t in rows
        ],
        "no teams yet (`geogrid patrols import-teams FILE --commit`)",
    )


@patrols_group.command("members")
@click.option("--team", help="a team's mark")
@click.option("--organisation", help="an organisation's name")
@click.option("--all", "include_inactive", is_flag=True, help="inactive members too")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def members_list(
    context: Context,
    team: str | None,
    organisation: str | None,
    include_inactive: bool,
    as_json: bool,
) -> None:
    """List members; phones are shown masked, as stored."""
    with context.session(commit=False) as session:
        rows = alliance.list_members(
            session, team_mark=team, organisation=organisation, include_inactive=include_inactive
        )
    if as_json:
        return print_json(rows)
    print_table(
        [
            [
                m.name,
                m.team_mark or "",
                m.organisation or "",
                m.phone_masked,
                "leader" if m.is_leader else "",
                "" if m.active else "inactive",
            ]
            for m in rows
        ],
        "no members yet (`geogrid patrols import-members FILE --commit`)",
    )


# -- imports ----------------------------------------------------------------------------


def _template_help(what: str) -> str:
    lines = [f"Columns of the {what} file (names or aliases, any case; * required):", "", "\b"]
    for column in alliance_rows.TEMPLATES[what]:
        star = "*" if column.required else " "
        lines.append(f"  {star} {column.name} ({'/'.join(column.aliases)}): {column.help}")
    return "\n".join(lines)


def _report(result: alliance_import.AllianceImport, commit: bool, as_json: bool) -> None:
    if as_json:
        echo_json(result.as_dict())
    elif result.blocked:
        click.echo(
            f"{result.path.name}: {result.read} rows read; {len(result.problems)} "
            "problems, nothing written"
        )
        for problem in result.problems:
            where = f" [{problem.field}]" if problem.field else ""
            click.echo(f"  line {problem.record}{where}: {problem.message}")
    else:
        verb = ("added", "updated", "left") if commit else ("would add", "update", "leave")
        click.echo(
            f"{result.path.name}: {result.read} rows read; {verb[0]} {result.count('add')}, "
            f"{verb[1]} {result.count('update')}, {verb[2]} {result.count('unchanged')} unchanged"
        )
        for change in result.changes:
            if change.action != "unchanged":
                fields = f" ({', '.join(change.fields)})" if change.fields else ""
                click.echo(f"  line {change.line}: {change.action} {change.key}{fields}")
        if not commit:
            dry_run("write them")
    if result.blocked:
        raise click.exceptions.Exit(1)


def _import_command(name: str, what: str, function: Any, crs: str | None) -> None:
    @patrols_group.command(
        name,
        help=f"Add or update {what} from a CSV/XLSX file (UTF-8 or GBK); all or nothing.",
        epilog=_template_help(what),
    )
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--commit", is_flag=True, help=COMMIT_HELP)
    @click.option("--json", "as_json", is_flag=True)
    @pass_context
    def command(context: Context, path: Path, commit: bool, as_json: bool, **options: Any) -> None:
        if options.get("crs") is not None:
            options["coord_type"] = parse_coord_type(options.pop("crs"))
        options.pop("crs", None)
        with context.session(commit=commit) as session:
            result = function(session, path, progress=not as_json, **options)
        _report(result, commit, as_json)

    if crs is not None:
        click.option("--crs", required=crs == "required", help=CRS_HELP)(command)


_import_command("import-orgs", "organisations", alliance_import.import_organisations, None)
_import_command("import-stations", "stations", alliance_import.import_stations, "required")
_import_command("import-teams", "teams", alliance_import.import_teams, "optional")
_import_command("import-members", "members", alliance_import.import_members, None)


# -- single records ---------------------------------------------------------------------


@patrols_group.command("add-team")
@click.argument("mark")
@click.option("--name", required=True)
@click.option("--station", required=True, help="the station or office the team is attached to")
@click.option("--organisation", help="the organisation the team comes from")
@click.option("--base", nargs=2, type=float, metavar="LON LAT", help="where the team starts from")
@click.option("--crs", help=f"of --base; {CRS_HELP}")
@click.option("--capacity", type=float, default=1.0, show_default=True)
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def add_team(
    context: Context,
    mark: str,
    name: str,
    station: str,
    organisation: str | None,
    base: tuple[float, float] | None,
    crs: str | None,
    capacity: float,
    commit: bool,
) -> None:
    """Add a team known by its unified MARK (PA-<county>-<4 digits>)."""
    coord_type = parse_coord_type(crs) if base else None
    with context.session(commit=commit) as session:
        team = alliance.add_team(
            session,
            mark=mark,
            name=name,
            station_code=station,
            organisation=organisation,
            base=base or None,
            coord_type=coord_type,
            capacity=capacity,
        )
        described = f"team {team.mark} ({team.name}) of station {team.station_code}"
    click.echo(f"{'added' if commit else 'would add'} {described}")
    if not commit:
        dry_run("add it")


@patrols_group.command("add-station")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["station", "community_office"]), default="station")
@click.option("--parent", help="for a community office, the station it belongs to")
@click.option("--at", "lonlat", nargs=2, type=float, required=True, metavar="LON LAT")
@click.option("--crs", required=True, help=CRS_HELP)
@click.option("--grids", default="", help="grid codes it answers for, comma- or space-separated")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def add_station(
    context: Context,
    code: str,
    name: str,
    kind: str,
    parent: str | None,
    lonlat: tuple[float, float],
    crs: str,
    grids: str,
    commit: bool,
) -> None:
    """Add police station (or community office) CODE at a point, with its grids."""
    with context.session(commit=commit) as session:
        station = stations.add_station(
            session,
            code=code,
            name=name,
            kind=kind,
            parent_code=parent,
            lon=lonlat[0],
            lat=lonlat[1],
            coord_type=parse_coord_type(crs),
            grid_codes=grids.replace(",", " ").split(),
        )
        owned = stations.own_grid_codes(session, station.code)
    click.echo(
        f"{'added' if commit else 'would add'} {station.kind} {station.code} ({station.name}) "
        f"answering for {len(owned)} grids"
    )
    if not commit:
        dry_run("add it")


@patrols_group.command("station-grids")
@click.argument("code")
@click.argument("grids", nargs=-1)
@click.option("--replace", is_flag=True, help="these are all its grids (others are removed)")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def station_grids(
    context: Context, code: str, grids: tuple[str, ...], replace: bool, commit: bool
) -> None:
    """Give station CODE more GRIDS to answer for (or exactly these, with --replace)."""
    with context.session(commit=commit) as session:
        added, removed = stations.set_station_grids(
            session, code, " ".join(grids).replace(",", " ").split(), replace=replace
        )
    verb = "" if commit else "would have "
    click.echo(
        f"{code}: {verb}added {', '.join(added) or 'no grids'}; "
        f"{verb}removed {', '.join(removed) or 'none'}"
    )
    if not commit:
        dry_run("change them")
