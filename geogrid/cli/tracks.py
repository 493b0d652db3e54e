"""Patrol commands: upload tracks, list them, check in, file leads, list and decide leads."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from geogrid.cli.base import CRS_HELP, Context, echo_json, parse_moment, pass_context, user_name
from geogrid.cli.incidents import actor_options, make_actor
from geogrid.cli.patrols import patrols_group
from geogrid.models import LEAD_STATUSES
from geogrid.workdays import SHANGHAI

_DRY_RUN = "dry run: nothing was written (add --commit to {})"


def _local(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


# -- tracks ---------------------------------------------------------------------------------


@patrols_group.command("upload-track")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--team", "team_mark", required=True, help="the team's unified mark number")
@click.option("--crs", "coord_type", required=True, help=CRS_HELP)
@click.option("--member", "member_id", type=int, help="the member who walked it (an id)")
@click.option(
    "--max-speed", type=float, default=15.0, show_default=True, help="m/s; raise for cars"
)
@click.option("--gap-minutes", type=float, default=10.0, show_default=True, help="split after")
@click.option("--idle-minutes", type=float, default=30.0, show_default=True, help="trim beyond")
@click.option("--user", help="who uploads (default: your login)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--commit", is_flag=True, help="store it; without it nothing is written")
@pass_context
def upload_track_command(
    context: Context,
    path: Path,
    team_mark: str,
    coord_type: str,
    member_id: int | None,
    max_speed: float,
    gap_minutes: float,
    idle_minutes: float,
    user: str | None,
    as_json: bool,
    commit: bool,
) -> None:
    """Clean and store a GPX, GeoJSON, CSV or XLSX track; print what cleaning found."""
    from geogrid.trackclean import CleaningRules
    from geogrid.trackfiles import read_track_file
    from geogrid.tracks import store_track

    rules = CleaningRules(
        max_speed_mps=max_speed, max_gap_minutes=gap_minutes, idle_minutes=idle_minutes
    )
    uploads = read_track_file(path, coord_type=coord_type)
    answers = []
    with context.session(commit=commit) as session:
        for fixes in uploads:
            result = store_track(
                session,
                context.settings,
                fixes,
                team_mark=team_mark,
                member_id=member_id,
                uploaded_by=user_name(user),
                rules=rules,
            )
            answers.append((fixes.name, result.as_dict(), result.quality.lines()))
    if as_json:
        echo_json({"dry_run": not commit, "uploads": [answer for _, answer, _ in answers]})
        return
    for name, answer, lines in answers:
        _print_upload(name, answer, lines, commit)
    if not commit:
        click.echo(_DRY_RUN.format("store the tracks"))


def _print_upload(name: str, answer: dict[str, Any], lines: list[str], commit: bool) -> None:
    tracks = answer["tracks"]
    if not commit:
        head = f"would store {name!r} as {len(tracks)} track(s)"
    elif answer["created"]:
        head = f"stored {name!r} as track(s) {', '.join(str(t['id']) for t in tracks)}"
    else:
        head = f"{name!r} was already stored as track(s) {', '.join(str(t['id']) for t in tracks)}"
    click.echo(head)
    for track in tracks:
        click.echo(
            f"  {track['started_at'][:19]} to {track['ended_at'][11:19]}, "
            f"{track['point_count']} fixes"
        )
    for line in lines:
        click.echo(f"  {line}")


@patrols_group.command("tracks")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--team", "team_mark", help="one team's unified mark number")
@click.option("--station", "station_code", help="a station's teams (and its offices')")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def tracks_command(
    context: Context,
    day: datetime,
    team_mark: str | None,
    station_code: str | None,
    as_json: bool,
) -> None:
    """List the tracks of a day (Asia/Shanghai), with what cleaning found."""
    from geogrid.tracks import list_tracks, team_by_mark, track_as_dict

    with context.session(commit=False) as session:
        teams = None if team_mark is None else [team_by_mark(session, team_mark).id]
        rows = list_tracks(session, day=day.date(), station_code=station_code, team_ids=teams)
        answer = [{**track_as_dict(track), "quality": track.quality} for track in rows]
    if as_json:
        echo_json(answer)
        return
    click.echo(f"{len(answer)} tracks on {day.date().isoformat()}")
    for track in answer:
        quality = track["quality"]
        found = ", ".join(
            f"{quality.get(key, 0)} {label}"
            for key, label in (
                ("spikes_count", "spikes"),
                ("jumps_count", "jumps"),
                ("gaps_count", "gaps"),
                ("idle_count", "idle spells"),
                ("outside_fixes", "fixes outside"),
            )
            if quality.get(key)
        )
        click.echo(
            f"  #{track['id']} team {track['team_id']} {track['started_at'][:19]} to "
            f"{track['ended_at'][11:19]}, {track['point_count']} fixes"
            + (f"; {found}" if found else "")
        )


# -- check-ins and leads ---------------------------------------------------------------------


def _point_options(command):
    for option in (
        click.option("--team", "team_mark", required=True, help="the team's unified mark"),
        click.option("--member", "member_id", type=int, help="the member (an id)"),
        click.option("--lon", type=float, required=True),
        click.option("--lat", type=float, required=True),
        click.option("--crs", "coord_type", required=True, help=CRS_HELP),
        click.option("--at", help="ISO 8601; default now; no offset means Asia/Shanghai"),
        click.option("--json", "as_json", is_flag=True),
        click.option("--commit", is_flag=True, help="record it; without it nothing is written"),
    ):
        command = option(command)
    return command


@patrols_group.command("checkin")
@_point_options
@click.option("--note", default="")
@pass_context
def checkin_command(context: Context, at: str | None, as_json: bool, commit: bool, **given):
    """Record a check-in, placed into its grid (dry run by default)."""
    from geogrid.leads import checkin, checkin_as_dict

    with context.session(commit=commit) as session:
        result = checkin(session, context.settings, at=_moment_or_now(at, "at"), **given)
        answer = {**checkin_as_dict(result.checkin), "created": result.created}
    answer.update(warnings=result.warnings, dry_run=not commit)
    if as_json:
        echo_json(answer)
        return
    verb = "would record" if not commit else ("recorded" if result.created else "already had")
    click.echo(
        f"{verb} check-in {answer['id'] if commit else ''} at {answer['at'][:19]} in grid "
        f"{answer['grid_code'] or '- (outside every grid)'} [{answer['placement']}]"
    )
    _finish(result.warnings, commit, "record it")


@patrols_group.command("lead")
@_point_options
@click.option("--category", required=True, help="an incident category code")
@click.option("--note", required=True, help="what was seen")
@click.option("--key", "idempotency_key", help="a retry with the same key returns the first")
@pass_context
def lead_command(context: Context, at: str | None, as_json: bool, commit: bool, **given):
    """File a lead (线索), placed into its grid (dry run by default)."""
    from geogrid.leads import file_lead, lead_as_dict

    with context.session(commit=commit) as session:
        result = file_lead(session, context.settings, at=_moment_or_now(at, "at"), **given)
        answer = {**lead_as_dict(result.lead), "created": result.created}
    answer.update(warnings=result.warnings, dry_run=not commit)
    if as_json:
        echo_json(answer)
        return
    verb = "would file" if not commit else ("filed" if result.created else "already filed as")
    click.echo(
        f"{verb} lead {answer['id'] if commit else ''}: {answer['category']} in grid "
        f"{answer['grid_code'] or '- (outside every grid)'} [{answer['placement']}]"
    )
    _finish(result.warnings, commit, "file it")


def _finish(warnings: list[str], commit: bool, what: str) -> None:
    for warning in warnings:
        click.secho(f"  warning: {warning}", fg="yellow")
    if not commit:
        click.echo(_DRY_RUN.format(what))


@patrols_group.command("leads")
@click.option("--status", type=click.Choice(LEAD_STATUSES))
@click.option("--team", "team_mark", help="one team's unified mark number")
@click.option("--grid", "grid_code", help="a grid code or a prefix of one")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@actor_options
@pass_context
def leads_command(
    context: Context, user: str | None, role: str, scope: str, as_json: bool, **filters
) -> None:
    """List the leads you may see, newest first."""
    from geogrid.leads import lead_as_dict, list_leads

    actor = make_actor(user, role, scope)
    with context.session(commit=False) as session:
        answer = [lead_as_dict(lead) for lead in list_leads(session, actor, **filters)]
    if as_json:
        echo_json(answer)
        return
    click.echo(f"{len(answer)} leads")
    for lead in answer:
        reward = lead["reward"] + (f" {lead['reward_amount']:g}" if lead["reward_amount"] else "")
        click.echo(
            f"  #{lead['id']} {lead['at'][:16]} {lead['category']} in "
            f"{lead['grid_code'] or '-'}: {lead['status']}, reward {reward} — {lead['note']}"
        )


@patrols_group.command("decide-lead")
@click.argument("lead_id", type=int)
@click.option("--status", type=click.Choice(LEAD_STATUSES))
@click.option("--reward", type=click.Choice(("granted", "declined")))
@click.option("--amount", type=float, help="yuan, with --reward granted")
@click.option("--commit", is_flag=True, help="decide; without it nothing is written")
@actor_options
@pass_context
def decide_lead_command(
    context: Context, lead_id: int, user: str | None, role: str, scope: str, commit: bool, **given
) -> None:
    """Move a lead's status and/or decide its reward (station officer or administrator)."""
    from geogrid.leads import decide_lead, lead_as_dict

    actor = make_actor(user, role, scope)
    with context.session(commit=commit) as session:
        lead = lead_as_dict(decide_lead(session, lead_id, actor=actor, **given))
    reward = lead["reward"] + (f" {lead['reward_amount']:g}" if lead["reward_amount"] else "")
    verb = "lead" if commit else "would make lead"
    click.echo(f"{verb} {lead_id}: {lead['status']}, reward {reward} (by {actor.name})")
    if not commit:
        click.echo(_DRY_RUN.format("decide"))


def _moment_or_now(value: str | None, field: str) -> datetime:
    return parse_moment(value, field) or datetime.now(SHANGHAI)
