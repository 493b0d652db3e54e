"""``geogrid report daily|weekly|monthly``: the reports and league tables (月评比)."""

from __future__ import annotations

from datetime import datetime

import click

from geogrid.attribution import ATTRIBUTIONS
from geogrid.cli.base import Context, echo_json, main, parse_moment, pass_context
from geogrid.cli.incidents import actor_options, make_actor
from geogrid.periods import PERIOD_KINDS, Period, last_complete
from geogrid.reports import Report, build_report
from geogrid.sheets import LANGUAGES, title, write_report_csv, write_report_xlsx
from geogrid.workdays import SHANGHAI


@main.command("report")
@click.argument("kind", type=click.Choice(PERIOD_KINDS))
@click.option(
    "--period",
    help="2026-11-28 (daily), 2026-W48 (weekly, ISO week) or 2026-11 (monthly);"
    " default: the last complete one",
)
@click.option("--level", help="township, community or grid (default: grid)")
@click.option(
    "--attribution",
    type=click.Choice(ATTRIBUTIONS),
    default="recorded",
    show_default=True,
    help="count incidents in the grid they were recorded in, or in today's grids (lineage)",
)
@click.option(
    "--category",
    metavar="CODE",
    help="count only incidents of this category (`geogrid incidents categories`); default: all",
)
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False), help="write an XLSX file")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="write a CSV file")
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
@click.option("--top", type=int, default=20, show_default=True, help="ranked units to print")
@click.option(
    "--language", type=click.Choice(LANGUAGES), help="file headers (default: GEOGRID_LANGUAGE)"
)
@click.option(
    "--as-of", help="the moment deadlines are judged at (ISO date-time, Shanghai); default: now"
)
@actor_options
@pass_context
def report_command(
    context: Context,
    kind: str,
    period: str | None,
    level: str | None,
    attribution: str,
    category: str | None,
    xlsx_path: str | None,
    csv_path: str | None,
    as_json: bool,
    top: int,
    language: str | None,
    as_of: str | None,
    user: str | None,
    role: str,
    scope: str,
) -> None:
    """Received, on time, overdue, working days, satisfaction and rank, per unit of a level."""
    if xlsx_path and csv_path:
        raise click.UsageError("write either --xlsx or --csv, not both")
    now = parse_moment(as_of, "as_of") if as_of else datetime.now(SHANGHAI)
    chosen = Period.parse(kind, period) if period else last_complete(kind, now)
    settings = context.settings
    with context.session(commit=False) as session:
        report = build_report(
            session,
            settings,
            kind,
            chosen,
            level or settings.scheme.default_geocode_level,
            attribution=attribution,
            actor=make_actor(user, role, scope),
            now=now,
            category=category,
        )
    language = language or settings.language
    if xlsx_path:
        write_report_xlsx(report, xlsx_path, language=language)
    elif csv_path:
        write_report_csv(report, csv_path, language=language)
    if as_json:
        echo_json(report.as_dict())
        return
    written = xlsx_path or csv_path
    if written:
        click.echo(f"wrote {len(report.table)} units to {written}")
    _print_ranking(report, top)


def _print_ranking(report: Report, top: int) -> None:
    click.echo(title(report, "en"))
    totals = report.totals
    click.echo(
        f"{totals['units']} units, {totals['received']} incidents received, "
        f"{totals['overdue_now']} overdue now; accepted on time {_rate(totals, 'accept')}, "
        f"resolved on time {_rate(totals, 'resolve')}, satisfied "
        f"{_percent(totals['satisfaction_rate'])}, median {_days(totals['median_resolve_days'])}"
        " working days to resolve"
    )
    ranking = report.ranking(top)
    if ranking.empty:
        click.echo(f"no unit has the {report.min_to_rank} incidents needed to be ranked")
    else:
        click.echo(
            f"{'rank':>4}  {'code':<17} {'recv':>5} {'acc%':>6} {'res%':>6} {'overdue':>7} "
            f"{'days':>5} {'sat%':>6} {'repeat':>6} {'score':>6}  name"
        )
        for row in ranking.to_dict("records"):
            click.echo(
                f"{row['rank']:>4}  {row['code']:<17} {row['received']:>5} "
                f"{_percent(row['accept_on_time_rate']):>6} "
                f"{_percent(row['resolve_on_time_rate']):>6} {row['overdue_now']:>7} "
                f"{_days(row['median_resolve_days']):>5} {_percent(row['satisfaction_rate']):>6} "
                f"{row['repeat_locations']:>6} {row['score']:>6.1f}  {row['name']}"
            )
        unranked = len(report.table) - totals["ranked"]
        if unranked:
            click.echo(
                f"({unranked} units with fewer than {report.min_to_rank} incidents unranked)"
            )
    # The summaries only; the incidents behind them are in the files and the JSON.
    for alert in report.alerts:
        if alert.incident_id is None:
            click.secho(f"alert: {alert.message}", fg="yellow")


def _rate(totals: dict, name: str) -> str:
    return _percent(totals[f"{name}_on_time_rate"])


def _percent(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"
