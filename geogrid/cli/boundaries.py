"""Commands for the database, unified codes, boundary files and generations."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from geogrid import boundaries, codes, db, generations
from geogrid.cli.base import (
    CRS_HELP,
    Context,
    issue_line,
    main,
    pass_context,
    print_report,
    user_name,
)
from geogrid.errors import ValidationFailed

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
            created_by=user_name(user),
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
    print_report(result.report)
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
            click.echo(f"  - {issue_line(issue)}")


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
                activated_by=user_name(user),
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
    print_report(result.report, limit=10)
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
        generations.retire(session, generation, retired_by=user_name(user), reason=reason)
    click.echo(
        f"generation {generation} retired"
        if commit
        else f"generation {generation} would be retired (add --commit)"
    )
