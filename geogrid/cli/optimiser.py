"""The assignment optimiser's command: ``geogrid patrols assign --station CODE``."""

from __future__ import annotations

from datetime import datetime

import click

from geogrid import optimiser
from geogrid.cli.alliance import COMMIT_HELP, DATE, day_of, dry_run
from geogrid.cli.base import Context, echo_json, pass_context, user_name
from geogrid.cli.patrols import patrols_group
from geogrid.shifts import parse_clock, parse_weekdays

_MARKS = {"added": "+", "kept": "=", "locked": "L"}


@patrols_group.command("assign")
@click.option("--station", required=True, help="the station's code (with its offices)")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="seconds to search; the best found is proposed, with its gap to the bound",
)
@click.option(
    "--gap",
    type=click.FloatRange(min=0),
    default=1e-4,
    show_default=True,
    help="stop once within this relative gap of the bound",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=28,
    show_default=True,
    help="incidents of this many days make the risk",
)
@click.option(
    "--valid-from", type=DATE, help="the first day of the new assignments (default: tomorrow)"
)
@click.option(
    "--shift-days", default="daily", show_default=True, help="days of a team with no shifts yet"
)
@click.option("--shift-from", default="08:00", show_default=True)
@click.option("--shift-to", default="20:00", show_default=True)
@click.option("--user", help="who is assigning (default: your login)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--commit", is_flag=True, help=COMMIT_HELP)
@pass_context
def assign(
    context: Context,
    station: str,
    time_limit: float,
    gap: float,
    days: int,
    valid_from: datetime | None,
    shift_days: str,
    shift_from: str,
    shift_to: str,
    user: str | None,
    as_json: bool,
    commit: bool,
) -> None:
    """Propose assignments of a station's teams to its grids (a MILP solved by HiGHS).

    Every grid gets one team; risk-weighted workload is balanced against capacity,
    travel from the team's base kept short, a team's grids kept together, and locked
    assignments kept. Replaced assignments end the day before --valid-from.
    """
    default_shift = optimiser.ShiftPattern(
        parse_weekdays(shift_days, field="shift_days"),
        parse_clock(shift_from, field="shift_from"),
        parse_clock(shift_to, field="shift_to", end=True),
    )
    with context.session(commit=commit) as session:
        proposal = optimiser.propose(
            session,
            station,
            days=days,
            valid_from=day_of(valid_from),
            time_limit=time_limit,
            mip_rel_gap=gap,
            default_shift=default_shift,
        )
        applied = (
            optimiser.apply_proposal(session, proposal, created_by=user_name(user))
            if commit
            else None
        )
    if as_json:
        body = proposal.as_dict()
        body["applied"] = applied.as_dict() if applied else None
        echo_json(body)
        return
    _print(proposal)
    if applied is not None:
        click.echo(
            f"written: {len(applied.added)} assignments added, {len(applied.ended)} ended, "
            f"{len(applied.deleted)} deleted"
        )
    else:
        dry_run("apply the proposal")


def _print(proposal: optimiser.Proposal) -> None:
    s = proposal.solution
    w = proposal.weights
    gap = f"{s.mip_gap:.2%}" if s.mip_gap is not None else "unknown"
    bound = f"{s.dual_bound:.4f}" if s.dual_bound is not None else "none"
    ratio = f"{s.balance_ratio:.2f}" if s.balance_ratio is not None else "inf"
    t = s.terms
    lines = [
        f"station {proposal.station_code}: {len(proposal.teams)} teams, "
        f"{len(set(a.grid_code for a in proposal.assignments))} grids, generation "
        f"{proposal.generation}, risk from {proposal.days} days of incidents",
        f"solver: {s.status} ({s.source}) in {s.seconds:.2f} s, {s.variables} variables, "
        f"{s.constraints} constraints",
        f"objective {t.objective:.4f}, bound {bound}, gap {gap}",
        f"  balance {t.balance:.4f} x{w.balance:g}, worst team {t.worst:.4f} x{w.worst:g}, "
        f"travel {t.travel_km:.3f} km/grid x{w.travel_per_km:g}, split {t.split:.4f} "
        f"x{w.split:g}, overload {t.overload:.4f} x{w.overload:g}",
        f"balance: utilisation {s.min_utilisation:.0%} to {s.max_utilisation:.0%} "
        f"(max/min {ratio}); workload {proposal.total_workload:.1f} a week, capacity "
        f"{proposal.total_capacity:.1f}",
    ]
    for line in lines:
        click.echo(line)
    for note in proposal.notes:
        click.secho(f"note: {note}", fg="yellow")
    click.echo("teams:")
    for team in proposal.teams:
        click.echo(
            f"  {team.team_mark}  load {team.load:.2f}/{team.capacity:g} "
            f"({team.utilisation:.0%}), {team.grids} grids, {team.travel_km:.2f} km"
        )
    counts = proposal.counts()
    click.echo(
        f"changes from {proposal.valid_from}: {counts['added']} added, {counts['removed']} "
        f"removed, {counts['kept']} kept, {counts['locked']} locked (+ - = L)"
    )
    for a in proposal.assignments:
        shifts = "; ".join(shift.describe() for shift in a.shifts)
        click.echo(f"  {_MARKS[a.change]} {a.team_mark} {a.grid_code} {shifts}")
    for r in proposal.removed:
        click.echo(
            f"  - {r.team_mark} {r.grid_code} {r.shift.describe()} (assignment {r.assignment_id})"
        )
