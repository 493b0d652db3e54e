"""The ``geogrid`` command line.

Each command parses its arguments, opens one session, calls one library function and
prints the answer. Commands that change data say what they would do and change nothing
unless given ``--commit``; the command owns the transaction.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import chinese_calendar
import click
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from geogrid import boundaries, codes, db, generations, workdays
from geogrid.errors import GeogridError, InputError, ValidationFailed
from geogrid.settings import Settings, unknown_variables
from geogrid.validate import ValidationRules

CRS_HELP = "coordinate type: wgs84, cgcs2000, gcj02, bd09 or EPSG:n"


class Context:
    """What every command needs: the settings, and a way to open the database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine = None
        self._factory = None

    def close(self) -> None:
        """Close the database connections this command opened."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def session(self, *, commit: bool = True, check: bool = True) -> Iterator[Session]:
        """A session whose transaction commits at the end only when ``commit`` is true."""
        if self._factory is None:
            self._engine = db.make_engine(self.settings)
            self._factory = db.make_sessionmaker(self._engine)
        session = self._factory()
        try:
            if check:
                db.check_schema(session, self.settings.scheme)
            yield session
            if commit:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @property
    def rules(self) -> ValidationRules:
        return ValidationRules.from_settings(self.settings)


pass_context = click.make_pass_decorator(Context)


class GeogridGroup(click.Group):
    """Turns domain errors into a one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            click.secho(f"error: {db.connection_advice(exc)}", fg="red", err=True)
            ctx.exit(1)
        except OSError as exc:
            click.secho(
                f"error [{exc.filename or 'path'}]: {exc.strerror or exc}", fg="red", err=True
            )
            ctx.exit(1)
        except GeogridError as exc:
            where = f" [{exc.field}]" if exc.field else ""
            click.secho(f"error{where}: {exc.message}", fg="red", err=True)
            for issue in exc.details.get("issues", [])[:50]:
                click.echo(f"  - {_issue_line(issue)}", err=True)
            ctx.exit(1)


@click.group(cls=GeogridGroup)
@click.version_option(package_name="geogrid")
@click.pass_context
def main(ctx: click.Context) -> None:
    """geogrid: grids with unified codes, boundary generations and geocoding into grids."""
    try:
        settings = Settings.from_env()
    except GeogridError as exc:
        raise click.UsageError(f"{exc.field}: {exc.message}") from None
    for name in unknown_variables():
        click.secho(
            f"warning: {name} is not a geogrid setting (see the README); ignored",
            fg="yellow",
            err=True,
        )
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


def _user(value: str | None) -> str:
    return value or getpass.getuser()


def _issue_line(issue: dict[str, Any]) -> str:
    where = ""
    if issue.get("location"):
        lon, lat = issue["location"]
        where = f" at {lon:.6f},{lat:.6f}"
    return f"{issue.get('severity', 'error')}: {issue.get('check')}: {issue.get('message')}{where}"


def _print_report(report: Any, *, limit: int = 50) -> None:
    for line in report.summary_lines():
        click.echo(line)
    for issue in report.issues[:limit]:
        click.echo(f"  - {_issue_line(issue.as_dict())}")
    if len(report.issues) > limit:
        click.echo(f"  ... and {len(report.issues) - limit} more (see `geogrid generations show`)")


# -- db ------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(context: Context, revision: str) -> None:
    """Create the PostGIS extension if needed and apply the migrations."""
    engine = db.make_engine(context.settings)
    try:
        db.upgrade(engine, context.settings.scheme, revision)
    finally:
        engine.dispose()
    click.echo(f"database {engine.url.render_as_string(hide_password=True)} is at {revision}")


@db_group.command("current")
@pass_context
def db_current(context: Context) -> None:
    """Print the migration the database is at."""
    with context.session(commit=False, check=False) as session:
        click.echo(db.current_revision(session.connection()) or "none")


# -- codes ---------------------------------------------------------------------------


@main.group("codes")
def codes_group() -> None:
    """Unified codes: check a code, find the next free child code."""


@codes_group.command("check")
@click.argument("code")
@pass_context
def codes_check(context: Context, code: str) -> None:
    """Say which level a code is at and what its ancestors are."""
    scheme = context.settings.scheme
    code = codes.normalise_code(code)
    level = scheme.level_of(code)
    ancestors = " > ".join(scheme.ancestors_of(code)) or "(top level)"
    click.echo(f"{code}: {level}; ancestors {ancestors}")


@codes_group.command("next")
@click.argument("parent")
@pass_context
def codes_next(context: Context, parent: str) -> None:
    """Print the next child code under PARENT never used in any generation."""
    with context.session(commit=False) as session:
        used = generations.codes_ever_used(session, parent)
        click.echo(context.settings.scheme.next_free_child(codes.normalise_code(parent), used))


# -- boundaries ----------------------------------------------------------------------


@main.group("boundaries")
def boundaries_group() -> None:
    """Import and export boundary sets."""


@boundaries_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", required=True, help="the level these areas are at")
@click.option("--code-field", default="code", show_default=True)
@click.option("--name-field")
@click.option("--parent-field", help="checked against the parent the code implies")
@click.option("--households-field")
@click.option("--population-field")
@click.option("--kind-field", help="comprehensive/dedicated (综合/专属)")
@click.option("--wkt-field", help="CSV column holding WKT (found by name if not given)")
@click.option("--crs", "crs", required=True, help=CRS_HELP)
@click.option(
    "--generation",
    type=int,
    help="the draft to import into (default: the open draft, or a new one)",
)
@click.option(
    "--replace-level", is_flag=True, help="replace the whole level, not just the parents present"
)
@click.option(
    "--repair", is_flag=True, help="apply make_valid to invalid polygons, reporting each repair"
)
@click.option(
    "--derive-parents",
    is_flag=True,
    help="build the missing levels above by dissolving these areas by code prefix",
)
@click.option("--user", help="who is importing (default: your login)")
@click.option("--commit", is_flag=True, help="write the import; without it nothing is changed")
@pass_context
def boundaries_import(
    context: Context,
    path: Path,
    level: str,
    code_field: str,
    name_field: str | None,
    parent_field: str | None,
    households_field: str | None,
    population_field: str | None,
    kind_field: str | None,
    wkt_field: str | None,
    crs: str,
    generation: int | None,
    replace_level: bool,
    repair: bool,
    derive_parents: bool,
    user: str | None,
    commit: bool,
) -> None:
    """Load a boundary file (GeoJSON, GeoPackage, zipped Shapefile, CSV+WKT) into a draft."""
    from geogrid.crs import parse_coord_type

    fields = boundaries.FieldMap(
        code_field, name_field, parent_field, households_field, population_field, kind_field
    )
    with context.session(commit=commit) as session:
        result = boundaries.import_boundaries(
            session,
            path,
            level=level,
            fields=fields,
            coord_type=parse_coord_type(crs),
            scheme=context.settings.scheme,
            rules=context.rules,
            created_by=_user(user),
            generation_id=generation,
            replace_level=replace_level,
            repair=repair,
            with_parents=derive_parents,
            wkt_field=wkt_field,
            progress=True,
        )
        _print_import(result, commit)
        if result.blocked:
            session.rollback()
            sys.exit(1)


def _print_import(result: boundaries.ImportResult, commit: bool) -> None:
    prepared = result.prepared
    encoding = f", {prepared.encoding}" if prepared.encoding else ""
    click.echo(
        f"read {result.read} records ({prepared.source_format}{encoding}) as {result.level} areas"
    )
    for repair in prepared.repairs:
        click.echo(f"  repaired: {repair.message}")
    if result.blocked:
        click.secho(f"{len(prepared.problems)} problems; nothing was imported:", fg="red", err=True)
        for problem in prepared.problems:
            where = f" [{problem.field}]" if problem.field else ""
            click.echo(f"  record {problem.record}{where}: {problem.message}", err=True)
        return
    changes = result.changes
    assert changes is not None and result.generation is not None and result.report is not None
    verb = "imported into" if commit else "would import into"
    target = (
        "a new draft generation"
        if result.new_draft and not commit
        else f"draft generation {result.generation.id}"
    )
    click.echo(
        f"{verb} {target}: {len(changes.added)} added, "
        f"{len(changes.replaced)} replaced, {len(changes.unchanged)} unchanged, "
        f"{len(changes.removed)} removed"
    )
    _print_report(result.report)
    if not commit:
        click.echo("dry run: nothing was written (add --commit to import)")


@boundaries_group.command("export")
@click.option("--level", required=True)
@click.option("--generation", type=int, help="default: the current generation")
@click.option("--within", help="only areas below this code")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["geojson", "gpkg", "csv"]),
    default="geojson",
    show_default=True,
)
@click.option("--crs", "crs", default="wgs84", show_default=True, help=CRS_HELP)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@pass_context
def boundaries_export(
    context: Context,
    level: str,
    generation: int | None,
    within: str | None,
    fmt: str,
    crs: str,
    out: Path,
) -> None:
    """Write a level's areas (RFC 7946 GeoJSON by default: lon, lat, right-hand winding)."""
    from geogrid.crs import parse_coord_type

    context.settings.scheme.level(level)
    with context.session(commit=False) as session:
        count = boundaries.export_areas(
            session,
            out,
            level=level,
            fmt=fmt,
            coord_type=parse_coord_type(crs),
            generation_id=generation,
            within=within,
        )
    click.echo(f"wrote {count} {level} areas to {out}")


# -- generations ---------------------------------------------------------------------


@main.group("generations")
def generations_group() -> None:
    """Boundary generations: list, show, activate, retire."""


@generations_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def generations_list(context: Context, as_json: bool) -> None:
    """List generations, newest first."""
    with context.session(commit=False) as session:
        rows = [generations.summary(session, g) for g in generations.list_generations(session)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("no generations yet")
    for row in rows:
        counts = ", ".join(f"{n} {level}" for level, n in row["areas"].items())
        click.echo(
            f"{row['id']:>4}  {row['status']:<8} {row['created_at']:%Y-%m-%d %H:%M}  "
            f"{row['description']}  [{counts}]"
        )


@generations_group.command("show")
@click.argument("generation", type=int)
@pass_context
def generations_show(context: Context, generation: int) -> None:
    """Show a generation: who made it, when and why, its areas and its last validation."""
    with context.session(commit=False) as session:
        row = generations.summary(session, generations.get_generation(session, generation))
    validation = row.pop("validation") or {}
    for key, value in row.items():
        click.echo(f"{key}: {value}")
    if validation:
        click.echo(
            f"validation: {validation.get('errors', 0)} errors, "
            f"{validation.get('warnings', 0)} warnings"
        )
        for issue in validation.get("issues", [])[:100]:
            click.echo(f"  - {_issue_line(issue)}")


@generations_group.command("activate")
@click.argument("generation", type=int)
@click.option("--user", help="who is activating (default: your login)")
@click.option(
    "--commit", is_flag=True, help="activate it; without it, validate and say what would happen"
)
@pass_context
def generations_activate(context: Context, generation: int, user: str | None, commit: bool) -> None:
    """Validate a draft and make it the current generation (refused on any error)."""
    with context.session(commit=False) as session:
        try:
            result = generations.activate(
                session,
                generation,
                context.settings.scheme,
                context.rules,
                activated_by=_user(user),
                progress=True,
            )
        except ValidationFailed:
            draft = generations.get_generation(session, generation)
            report = draft.validation
            if commit:
                session.commit()  # keep the report on the draft so planners can read it
            raise ValidationFailed(
                f"generation {generation} was not activated: {report['errors']} errors",
                field="generation",
                issues=report["issues"][:50],
            ) from None
        if commit:
            session.commit()
    if commit:
        click.echo(f"generation {generation} is now active")
    else:
        click.echo(f"generation {generation} passes validation and would become active")
    if result.superseded is not None:
        verb = "retired" if commit else "would be retired"
        click.echo(
            f"generation {result.superseded.id} {verb}; {result.lineage_rows} lineage rows recorded"
        )
    _print_report(result.report, limit=10)
    if not commit:
        click.echo("dry run: nothing was changed (add --commit to activate)")


@generations_group.command("retire")
@click.argument("generation", type=int)
@click.option("--reason", default="", help="why (kept with the generation)")
@click.option("--user", help="who is retiring it (default: your login)")
@click.option("--commit", is_flag=True, help="retire it; without it nothing is changed")
@pass_context
def generations_retire(
    context: Context, generation: int, reason: str, user: str | None, commit: bool
) -> None:
    """Discard a draft generation (the current one is retired by activating another)."""
    with context.session(commit=commit) as session:
        generations.retire(session, generation, retired_by=_user(user), reason=reason)
    click.echo(
        f"generation {generation} retired"
        if commit
        else f"generation {generation} would be retired (add --commit)"
    )


# -- geocoding -----------------------------------------------------------------------


@main.command("locate", context_settings={"ignore_unknown_options": True})
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", "crs", required=True, help=CRS_HELP)
@click.option("--level", help="default: grid (or the finest level)")
@click.option("--generation", type=int, help="default: the current generation")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def locate_command(
    context: Context,
    lon: float,
    lat: float,
    crs: str,
    level: str | None,
    generation: int | None,
    as_json: bool,
) -> None:
    """Say which grid (and which area of every level above) holds a point."""
    from geogrid.geocode import locate

    with context.session(commit=False) as session:
        location = locate(
            session, context.settings, lon, lat, crs, level=level, generation=generation
        )
    if as_json:
        click.echo(json.dumps(location.as_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{location.status}: {location.grid_code or '-'} "
        f"(generation {location.generation}, {location.level})"
    )
    for lvl, code in location.codes.items():
        click.echo(f"  {lvl:<10} {code}  {location.names.get(lvl, '')}")
    if location.candidates:
        click.echo(f"  candidates: {', '.join(location.candidates)}")
    if location.nearest:
        click.echo(
            f"  nearest: {location.nearest['code']} at {location.nearest['distance_m']:.1f} m"
        )
    if location.swapped_code:
        click.echo(
            f"  with lat and lon swapped the point falls in {location.swapped_code}: "
            "check the input"
        )


@main.command("geocode")
@click.argument(
    "input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--lon-field", required=True)
@click.option("--lat-field", required=True)
@click.option("--crs", "crs", required=True, help=CRS_HELP)
@click.option("--level", help="default: grid (or the finest level)")
@click.option("--generation", type=int)
@click.option(
    "--method",
    type=click.Choice(["index", "postgis"]),
    default="index",
    show_default=True,
    help="the in-memory index (fast) or one PostGIS lookup per row (the reference)",
)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@pass_context
def geocode_command(
    context: Context,
    input_path: Path,
    lon_field: str,
    lat_field: str,
    crs: str,
    level: str | None,
    generation: int | None,
    method: str,
    out: Path,
) -> None:
    """Add grid_code, generation, status and candidates to every row of a CSV/XLSX/GeoJSON."""
    from geogrid.bulk import geocode_file

    with context.session(commit=False) as session:
        summary = geocode_file(
            session,
            context.settings,
            input_path,
            out,
            lon_field=lon_field,
            lat_field=lat_field,
            crs=crs,
            level=level,
            generation=generation,
            method=method,
            progress=True,
        )
    for line in summary.lines():
        click.echo(line)


# -- demo and serving ----------------------------------------------------------------


@main.group("demo")
def demo_group() -> None:
    """The demo city."""


@demo_group.command("build")
@click.option("--county", help="a county code (default 370705, 奎文区)")
@click.option("--city", help="a city code: 3707 builds all of Weifang (~15,000 grids)")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when a generation is already active")
@click.option("--commit", is_flag=True, help="load and activate it; without it nothing is changed")
@pass_context
def demo_build(
    context: Context, county: str | None, city: str | None, seed: int, if_empty: bool, commit: bool
) -> None:
    """Generate the demo city inside the real district outlines, load and activate it."""
    from geogrid.demo_load import build_and_load

    if county and city:
        raise click.UsageError("give --county or --city, not both")
    with context.session(commit=commit) as session:
        if if_empty and generations.current_generation(session) is not None:
            click.echo("a generation is already active; leaving the demo as it is")
            return
        result = build_and_load(
            session,
            context.settings,
            county=county,
            city=city,
            seed=seed,
            created_by=_user(None),
            progress=True,
        )
        for line in result.lines():
            click.echo(line)
        if not commit:
            click.echo("dry run: nothing was written (add --commit to load it)")


@main.command("serve")
@click.option("--host", help="default: GEOGRID_HOST or 127.0.0.1")
@click.option("--port", type=int, help="default: GEOGRID_PORT or 8000")
@pass_context
def serve(context: Context, host: str | None, port: int | None) -> None:
    """Serve the web app with a production WSGI server (gunicorn)."""
    # The one place the CLI reaches the web layer; the library never imports Flask.
    from web.server import serve as run_server

    settings = context.settings.with_(
        host=host or context.settings.host, port=port or context.settings.port
    )
    run_server(settings)


# -- calendar -----------------------------------------------------------------------------


@main.group("calendar")
def calendar_group() -> None:
    """The working-day calendar: the official holidays plus administrators' overrides."""


def _calendar_day(value: str, field: str = "date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"not a date (YYYY-MM-DD): {value!r}", field=field) from None


@calendar_group.command("set")
@click.argument("day", metavar="DATE")
@click.argument("kind", type=click.Choice(workdays.OVERRIDE_KINDS))
@click.option("--name", default="", help="the holiday it belongs to, e.g. 元旦")
@click.option("--note", default="", help="where it comes from, e.g. the State Council notice")
@click.option("--user", help="who is setting it (default: your login)")
@click.option("--commit", is_flag=True, help="write the override; without it nothing is changed")
@pass_context
def calendar_set(
    context: Context, day: str, kind: str, name: str, note: str, user: str | None, commit: bool
) -> None:
    """Declare DATE a working day or a holiday, over what the calendar package says."""
    when = _calendar_day(day)
    with context.session(commit=commit) as session:
        before = workdays.load_calendar(session).describe(when)
        workdays.set_override(session, when, kind, set_by=_user(user), name=name, note=note)
        calendar = workdays.load_calendar(session)
    label = f" ({name})" if name else ""
    verb = "is now" if commit else "would become"
    click.echo(f"{when.isoformat()} {verb} a {kind}{label}; it was: {before}")
    if when.year not in calendar.package_years:
        click.secho(
            f"warning: the calendar package does not cover {when.year}; with this override "
            f"the year counts as covered, so enter every holiday and swapped working day "
            f"(调休) of {when.year}",
            fg="yellow",
            err=True,
        )
    if not commit:
        click.echo("dry run: nothing was written (add --commit to set it)")


@calendar_group.command("unset")
@click.argument("day", metavar="DATE")
@click.option("--commit", is_flag=True, help="remove the override; without it nothing is changed")
@pass_context
def calendar_unset(context: Context, day: str, commit: bool) -> None:
    """Remove the override of DATE, so the calendar package decides again."""
    when = _calendar_day(day)
    with context.session(commit=commit) as session:
        removed = workdays.unset_override(session, when)
        removed_kind = removed.kind if removed is not None else None
        after = workdays.load_calendar(session).describe(when)
    if removed_kind is None:
        click.echo(f"{when.isoformat()} has no override; nothing to remove")
        return
    verb = "removed" if commit else "would remove"
    click.echo(f"{verb} the override of {when.isoformat()} ({removed_kind}); it is then: {after}")
    if not commit:
        click.echo("dry run: nothing was changed (add --commit to remove it)")


@calendar_group.command("check")
@click.option("--year", type=int, help="check this year (default: this year and the next)")
@pass_context
def calendar_check(context: Context, year: int | None) -> None:
    """Say which years the calendar covers, and warn about years that it does not."""
    with context.session(commit=False) as session:
        calendar = workdays.load_calendar(session)
        per_year = Counter(override.day.year for override in workdays.list_overrides(session))
    package = sorted(calendar.package_years)
    click.echo(
        f"calendar package chinese-calendar {chinese_calendar.__version__}: "
        f"{package[0]}-{package[-1]}"
        if package
        else "calendar package chinese-calendar: no data"
    )
    listed = ", ".join(f"{y} ({per_year[y]} days)" for y in sorted(per_year)) or "none"
    click.echo(f"overrides: {listed}")
    this_year = workdays.today().year
    for checked in [year] if year is not None else [this_year, this_year + 1]:
        if checked in calendar.package_years:
            click.echo(f"{checked}: covered by the calendar package")
        elif checked in calendar.override_years:
            click.echo(f"{checked}: covered by {per_year[checked]} overrides only")
        else:
            click.secho(
                f"warning: {checked} is not covered; deadlines reaching into it fail. "
                f"Upgrade chinese-calendar or enter {checked}'s holidays and swapped working "
                f"days with `geogrid calendar set {checked}-MM-DD holiday|workday --commit`",
                fg="yellow",
            )


@calendar_group.command("due")
@click.argument("start")
@click.argument("n", type=int)
@pass_context
def calendar_due(context: Context, start: str, n: int) -> None:
    """Print the deadline N working days after START (ISO date-time, Asia/Shanghai by default)."""
    try:
        moment = datetime.fromisoformat(start)
    except ValueError:
        raise InputError(f"not a date-time (YYYY-MM-DDTHH:MM): {start!r}", field="start") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=workdays.SHANGHAI)
    with context.session(commit=False) as session:
        due_at = workdays.load_calendar(session).add_working_days(moment, n)
    click.echo(due_at.isoformat(timespec="minutes"))


if __name__ == "__main__":  # pragma: no cover
    main()
