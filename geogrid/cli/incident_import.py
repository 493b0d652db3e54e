"""``geogrid incidents import``: historic incidents from CSV or XLSX, all rows or none."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from geogrid.cli.base import CRS_HELP, Context, pass_context, user_name
from geogrid.cli.incidents import incidents_group

_TEMPLATE = (
    "client_id, category, description, reported_at, lon, lat, coord_type, grid_code, "
    "channel, address, state, accepted_at, resolved_at, evaluated_at, satisfaction, "
    "contact_name, contact_phone, complex"
)


class _Bars:
    """One tqdm bar per phase of the import (placing, writing), on stderr."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.bar: tqdm | None = None

    def update(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=total, desc=phase, unit="row", unit_scale=True, file=sys.stderr)
        assert self.bar is not None
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@incidents_group.command(
    "import", epilog=f"Template columns (Chinese names work too): {_TEMPLATE}."
)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", help=f"{CRS_HELP}; for rows that give no coord_type")
@click.option(
    "--field",
    "field_pairs",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="read FIELD from another column, e.g. --field reported_at=上报时间 (repeatable)",
)
@click.option("--encoding", help="the CSV's encoding, e.g. gbk (default: UTF-8 or GBK, detected)")
@click.option("--user", help="who imports, recorded on each import event (default: your login)")
@click.option("--commit", is_flag=True, help="write them; without it nothing is written")
@pass_context
def import_command(
    context: Context,
    path: Path,
    crs: str | None,
    field_pairs: tuple[str, ...],
    encoding: str | None,
    user: str | None,
    commit: bool,
) -> None:
    """Import historic incidents from a CSV or XLSX file: every row, or none.

    Any problem in any row (unknown category, missing coordinate type, bad or swapped
    coordinates, unreadable or impossible times, unknown grid code, a client_id used
    twice) and nothing is written; every problem is listed with its line and field.
    A row whose client_id was imported before is skipped. Without --commit the whole
    import runs in a transaction that is rolled back, so the counts are exact.
    """
    from geogrid.incident_import import FieldMap, import_incidents

    fields = FieldMap.parse(field_pairs)
    bars = _Bars()
    try:
        with context.session(commit=commit) as session:
            result = import_incidents(
                session,
                context.settings,
                path,
                fields=fields,
                crs=crs,
                encoding=encoding,
                created_by=user_name(user),
                progress=bars.update,
            )
    finally:
        bars.close()
    for line in result.lines(verb="inserted" if commit else "would insert"):
        click.echo(line)
    if not result.ok:
        sys.exit(1)
    if not commit:
        click.echo("dry run: nothing was written (add --commit to import)")
