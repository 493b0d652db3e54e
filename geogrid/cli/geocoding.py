"""Commands that place points into grids: one point, or a whole file."""

from __future__ import annotations

from pathlib import Path

import click

from geogrid.cli.base import (
    CRS_HELP,
    Context,
    echo_json,
    main,
    pass_context,
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
        echo_json(location.as_dict())
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
