"""Coverage commands: ``geogrid patrols coverage`` and ``geogrid patrols gaps``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import pandas as pd

from geogrid import coverage, gaps
from geogrid.cli.base import Context, echo_json, pass_context
from geogrid.cli.patrols import patrols_group
from geogrid.coverage_dosage import DosageTarget
from geogrid.filewriters import write_table

DATE = click.DateTime(formats=["%Y-%m-%d"])
CSV_HELP = "write the table to PATH (.csv or .xlsx) instead of printing it"


def _target_options(command):
    for option in reversed(
        [
            click.option(
                "--visit-min",
                type=float,
                default=10.0,
                show_default=True,
                help="dosage: minutes a visit needs to count",
            ),
            click.option(
                "--visit-max",
                type=float,
                default=15.0,
                show_default=True,
                help="dosage: minutes past which a visit is reported as long",
            ),
            click.option(
                "--gap-max",
                type=float,
                default=120.0,
                show_default=True,
                help="dosage: most minutes between counted visits",
            ),
            click.option(
                "--min-dwell",
                type=float,
                default=120.0,
                show_default=True,
                help="seconds inside a grid that make a visit",
            ),
        ]
    ):
        command = option(command)
    return command


@patrols_group.command("coverage")
@click.option("--date", "day", type=DATE, required=True, help="the day the shifts start")
@click.option("--station", "station_code", help="only this station's teams (and its offices')")
@click.option(
    "--reach",
    type=float,
    default=50.0,
    show_default=True,
    help="metres from a track that count as covered",
)
@_target_options
@click.option("--json", "as_json", is_flag=True, help="everything as JSON")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help=CSV_HELP)
@pass_context
def coverage_command(
    context: Context,
    day: datetime,
    station_code: str | None,
    reach: float,
    visit_min: float,
    visit_max: float,
    gap_max: float,
    min_dwell: float,
    as_json: bool,
    csv_path: Path | None,
) -> None:
    """Per grid and shift: minutes inside, visits, longest gap, reach; per team; dosage."""
    target = DosageTarget(visit_min, visit_max, gap_max)
    with context.session(commit=False) as session:
        result = coverage.coverage_for_day(
            session,
            context.settings,
            day=day.date(),
            station_code=station_code,
            reach_m=reach,
            min_dwell_s=min_dwell,
            target=target,
        )
    table = _with_dosage(result.shifts, result.dosage)
    if csv_path is not None:
        write_table(_visible(table), csv_path)
        teams = csv_path.with_name(f"{csv_path.stem}.teams{csv_path.suffix}")
        write_table(_visible(result.teams), teams)
        click.echo(f"wrote {len(table)} grid-shifts to {csv_path} and teams to {teams}")
    elif as_json:
        echo_json(result.as_dict())
    else:
        for line in result.lines():
            click.echo(line)
        _print(
            table,
            [
                "grid_code",
                "team_mark",
                "starts_at",
                "minutes_inside",
                "visits",
                "longest_gap_min",
                "reach_share",
                "met",
            ],
            "no shifts start on that day",
        )


@patrols_group.command("gaps")
@click.option("--date", "day", type=DATE, required=True, help="the day the shifts start")
@click.option("--station", "station_code", help="only this station's grids")
@click.option(
    "--days",
    type=int,
    default=28,
    show_default=True,
    help="incidents of this many days, to the end of --date, make the risk",
)
@click.option(
    "--quantile",
    type=float,
    default=0.9,
    show_default=True,
    help="hot: risk in this top quantile of grids with any risk",
)
@click.option("--min-risk", type=float, help="hot: risk at least this (instead of --quantile)")
@_target_options
@click.option("--json", "as_json", is_flag=True, help="everything as JSON")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help=CSV_HELP)
@pass_context
def gaps_command(
    context: Context,
    day: datetime,
    station_code: str | None,
    days: int,
    quantile: float,
    min_risk: float | None,
    visit_min: float,
    visit_max: float,
    gap_max: float,
    min_dwell: float,
    as_json: bool,
    csv_path: Path | None,
) -> None:
    """Coverage gaps (防范死角盲区): hot grids short of the dose, ranked; unworked grids."""
    with context.session(commit=False) as session:
        result = gaps.coverage_gaps(
            session,
            context.settings,
            day=day.date(),
            station_code=station_code,
            days=days,
            hot_quantile=quantile,
            min_risk=min_risk,
            target=DosageTarget(visit_min, visit_max, gap_max),
            min_dwell_s=min_dwell,
        )
    if csv_path is not None:
        write_table(_visible(result.gaps), csv_path)
        click.echo(f"wrote {len(result.gaps)} gaps to {csv_path}")
    elif as_json:
        echo_json(result.as_dict())
    else:
        for line in result.lines():
            click.echo(line)
        if len(result.unassigned):
            codes = ", ".join(result.unassigned["grid_code"].head(20))
            click.echo(f"no team: {codes}{' ...' if len(result.unassigned) > 20 else ''}")
        if len(result.never_visited):
            codes = ", ".join(result.never_visited["grid_code"].head(20))
            more = " ..." if len(result.never_visited) > 20 else ""
            click.echo(f"assigned, never visited: {codes}{more}")


def _with_dosage(shifts: pd.DataFrame, dosage: pd.DataFrame) -> pd.DataFrame:
    """The grid-shift rows with their dosage verdict, where one was made."""
    verdict = dosage.set_index("shift")[["met", "why"]]
    return shifts.join(verdict, how="left")


def _visible(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not str(c).startswith("_")]]


def _print(frame: pd.DataFrame, columns: list[str], empty: str, limit: int = 100) -> None:
    if frame.empty:
        click.echo(empty)
        return
    shown = frame[columns].head(limit).copy()
    for column in ("minutes_inside", "longest_gap_min"):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.0f}")
    shown["reach_share"] = shown["reach_share"].map(lambda v: "-" if pd.isna(v) else f"{v:.1%}")
    shown["starts_at"] = shown["starts_at"].map(lambda v: v.strftime("%m-%d %H:%M"))
    shown["met"] = shown["met"].map(lambda v: "" if pd.isna(v) else ("met" if v else "not met"))
    rows = [columns, *shown.astype(str).to_numpy().tolist()]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(columns))]
    for row in rows:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    if len(frame) > limit:
        click.echo(f"... and {len(frame) - limit} more (--csv PATH writes them all)")
