"""Commands for shift assignments: ``geogrid patrols assign-team|unassign|assignments|
conflicts|unassigned``. ``patrols assign --station`` (the optimiser) is in
:mod:`geogrid.cli.optimiser`.
"""

from __future__ import annotations

from datetime import datetime

import click

from geogrid import assignments
from geogrid.cli.alliance import COMMIT_HELP, DATE, day_of, dry_run, print_json, print_table
from geogrid.cli.base import Context, pass_context, user_name
from geogrid.cli.patrols import patrols_group


@patrols_group.command("assign-team")
@click.argument("team")
@click.argument("grid")
@click.option("--days", required=True, help="mon-fri, mon,wed,sat, daily, weekends, 周一至周五 ...")
@click.option("--from", "starts", required=True, help="start of the shift, HH:MM")
@click.option("--to", "ends", required=True, help="end, HH:MM; before --from runs past midnight")
@click.option("--valid-from", type=DATE, required=True)
@click.option("--valid-to", type=DATE, help="the last day (default: open-ended)")
@click.option("--locked", is_flag=True, help="the optimiser keeps it as it is")
@click.option("--user", help="who is assigning (default: your login)")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def assign_team(
    context: Context,
    team: str,
    grid: str,
    days: str,
    starts: str,
    ends: str,
    valid_from: datetime,
    valid_to: datetime | None,
    locked: bool,
    user: str | None,
    commit: bool,
) -> None:
    """Give TEAM (a mark) GRID (a code) for a shift pattern; refused if it clashes."""
    with context.session(commit=commit) as session:
        made = assignments.assign(
            session,
            team,
            grid,
            weekdays=days,
            starts=starts,
            ends=ends,
            valid_from=valid_from.date(),
            valid_to=day_of(valid_to),
            locked=locked,
            created_by=user_name(user),
        )
        info = assignments.assignment_info(session, made.id)
    number = f"assignment {info.id}: " if commit else ""
    click.echo(f"{'assigned' if commit else 'would assign'} {number}{_describe(info)}")
    if not commit:
        dry_run("assign it")


def _describe(a: assignments.AssignmentInfo) -> str:
    valid = f"from {a.valid_from}" + (f" to {a.valid_to}" if a.valid_to else "")
    lock = ", locked" if a.locked else ""
    return f"{a.team_mark} on {a.grid_code}, {a.weekdays} {a.starts}-{a.ends}, {valid}{lock}"


@patrols_group.command("unassign")
@click.argument("assignment_id", type=int)
@click.option("--last-day", type=DATE, help="the last day it runs (default: today)")
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def unassign(context: Context, assignment_id: int, last_day: datetime | None, commit: bool) -> None:
    """End assignment ASSIGNMENT_ID after its last day (deleted if it never started)."""
    last = day_of(last_day) or assignments.today()
    with context.session(commit=commit) as session:
        done = assignments.unassign(session, assignment_id, last_day=last)
    what = (
        f"ended assignment {assignment_id} after {last}"
        if done == "ended"
        else (f"deleted assignment {assignment_id} (it would only have started after {last})")
    )
    click.echo(what if commit else f"would have {what}")
    if not commit:
        dry_run("do it")


@patrols_group.command("assignments")
@click.option("--station", help="a station's code (with its offices' teams)")
@click.option("--team", help="a team's mark")
@click.option("--grid", help="a grid's code")
@click.option("--date", "day", type=DATE, help="only those with a shift starting that day")
@click.option("--all", "include_ended", is_flag=True, help="ended assignments too")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def assignments_list(
    context: Context,
    station: str | None,
    team: str | None,
    grid: str | None,
    day: datetime | None,
    include_ended: bool,
    as_json: bool,
) -> None:
    """List assignments (by default those not yet ended)."""
    with context.session(commit=False) as session:
        rows = assignments.list_assignments(
            session,
            station_code=station,
            team_mark=team,
            grid_code=grid,
            day=day_of(day),
            include_ended=include_ended,
        )
    if as_json:
        return print_json(rows)
    print_table(
        [
            [
                a.id,
                a.team_mark,
                a.grid_code,
                a.weekdays,
                f"{a.starts}-{a.ends}",
                f"{a.valid_from}..{a.valid_to or ''}",
                "locked" if a.locked else "",
                a.source,
            ]
            for a in rows
        ],
        "no assignments",
    )


@patrols_group.command("conflicts")
@click.option("--station", help="a station's code (with its offices' teams)")
@click.option("--date", "day", type=DATE, help="clashes on that day (default: from today on)")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def conflicts(context: Context, station: str | None, day: datetime | None, as_json: bool) -> None:
    """List teams assigned to two places at once, or to one grid twice."""
    with context.session(commit=False) as session:
        rows = assignments.conflicts(session, station_code=station, day=day_of(day))
    if as_json:
        return print_json(rows)
    words = {"two_places": "in two places", "same_grid_twice": "on one grid twice"}
    print_table(
        [
            [
                c.team_mark,
                words[c.kind],
                f"assignments {c.assignment_ids[0]} and {c.assignment_ids[1]}",
                " / ".join(c.grid_codes),
                f"from {c.at:%Y-%m-%d %H:%M}",
            ]
            for c in rows
        ],
        "no conflicts",
    )


@patrols_group.command("unassigned")
@click.option("--station", help="a station's code (with its offices' grids)")
@click.option("--date", "day", type=DATE, help="no shift that day (default: from today on)")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def unassigned(context: Context, station: str | None, day: datetime | None, as_json: bool) -> None:
    """List grids that stations answer for but no active team is assigned to."""
    with context.session(commit=False) as session:
        rows = assignments.unassigned_grids(session, station_code=station, day=day_of(day))
    if as_json:
        return print_json(rows)
    print_table(
        [[g.grid_code, g.name, " ".join(g.station_codes)] for g in rows],
        "every grid has a team",
    )
