"""Commands to file, read, merge and place incidents, and to edit their categories."""

from __future__ import annotations

from typing import Any

import click

from geogrid.cli.base import CRS_HELP, Context, echo_json, parse_moment, pass_context
from geogrid.cli.incidents import actor_options, incidents_group, make_actor
from geogrid.models import CHANNELS, INCIDENT_STATES

_DRY_RUN = "dry run: nothing was written (add --commit to {})"


def _short(text: str | None) -> str:
    """An ISO time as minutes, for tables."""
    return text[:16].replace("T", " ") if text else "-"


# -- filing -------------------------------------------------------------------------------


@incidents_group.command("file")
@click.option("--category", required=True, help="a category code (see `incidents categories`)")
@click.option("--description", required=True)
@click.option("--lon", type=float, help="longitude (with --lat and --crs)")
@click.option("--lat", type=float, help="latitude")
@click.option("--crs", "coord_type", help=CRS_HELP)
@click.option("--grid-code", help="instead of a point: a grid in your scope")
@click.option("--channel", type=click.Choice(CHANNELS), help="default: from your role")
@click.option("--reported-at", help="ISO 8601; default now; no offset means Asia/Shanghai")
@click.option("--address", default="")
@click.option("--photo", "photos", multiple=True, help="a photo's URL or key (repeatable)")
@click.option("--complex", "complex_", is_flag=True, help="give it the longer deadline")
@click.option("--contact-name", default="")
@click.option("--contact-phone", default="")
@click.option("--idempotency-key", help="a retry with the same key returns the first incident")
@click.option("--json", "as_json", is_flag=True)
@click.option("--commit", is_flag=True, help="file it; without it nothing is written")
@actor_options
@pass_context
def file_command(
    context: Context,
    as_json: bool,
    commit: bool,
    idempotency_key: str | None,
    user: str | None,
    role: str,
    scope: str,
    reported_at: str | None,
    complex_: bool,
    photos: tuple[str, ...],
    **fields: Any,
) -> None:
    """File an incident: show its grid, deadlines and possible duplicates (dry run by default)."""
    from geogrid.intake import file_incident

    actor = make_actor(user, role, scope)
    moment = parse_moment(reported_at, "reported_at")
    data = {name: value for name, value in fields.items() if value not in (None, "")}
    data.update(photos=list(photos), complex=complex_)
    if moment is not None:
        data["reported_at"] = moment.isoformat()
    with context.session(commit=commit) as session:
        result = file_incident(
            session, context.settings, data, actor, idempotency_key=idempotency_key
        )
        answer = result.as_dict(session, actor)
    if not commit:
        answer["incident"]["id"] = None  # the number of a rolled-back row means nothing
    answer["dry_run"] = not commit
    if as_json:
        echo_json(answer)
        return
    _print_filed(answer, commit)


def _print_filed(answer: dict[str, Any], commit: bool) -> None:
    incident = answer["incident"]
    if not commit:
        head = "would file"
    elif answer["created"]:
        head = f"filed incident {incident['id']}"
    else:
        head = f"incident {incident['id']} was already filed with this key"
    click.echo(
        f"{head}: {incident['category']} ({incident['category_name']}) in grid "
        f"{incident['grid_code'] or '- (outside every grid)'} "
        f"[{incident['placement']}, generation {incident['generation']}]"
    )
    click.echo(
        f"  reported {_short(incident['reported_at'])} via {incident['channel']}; "
        f"department {incident['department'] or '-'}"
    )
    click.echo(
        f"  accept by {_short(incident['accept_due_at'])}, "
        f"resolve by {_short(incident['resolve_due_at'])}"
    )
    for candidate in answer["duplicates"]:
        distance = candidate["distance_m"]
        where = f"{distance:.0f} m" if distance is not None else "same grid"
        click.echo(
            f"  possible duplicate: incident {candidate['incident_id']} ({where}, "
            f"{candidate['hours_apart']:g} h apart, {candidate['state']})"
        )
    for warning in answer["warnings"]:
        click.secho(f"  warning: {warning}", fg="yellow")
    if not commit:
        click.echo(_DRY_RUN.format("file it"))


# -- reading ------------------------------------------------------------------------------


@incidents_group.command("show")
@click.argument("incident_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True)
@actor_options
@pass_context
def show_command(
    context: Context, incident_id: int, as_json: bool, user: str | None, role: str, scope: str
) -> None:
    """Show one incident and its history, as your role may see it."""
    from geogrid.incidents import get_incident, incident_as_dict

    actor = make_actor(user, role, scope)
    with context.session(commit=False) as session:
        incident = get_incident(session, incident_id, actor)
        body = incident_as_dict(session, incident, actor, with_events=True)
    if as_json:
        echo_json(body)
        return
    click.echo(
        f"incident {body['id']}: {body['category']} ({body['category_name']}), {body['state']}"
        f" at level {body['level']}"
    )
    click.echo(f"  {body['description']}")
    click.echo(
        f"  grid {body['grid_code'] or '-'} [{body['placement']}, generation "
        f"{body['generation']}]; department {body['department'] or '-'}; "
        f"assignee {body['assignee'] or '-'}"
    )
    late = [name for name in ("accept", "resolve") if body[f"{name}_overdue"]]
    click.echo(
        f"  reported {_short(body['reported_at'])}; accept by {_short(body['accept_due_at'])}, "
        f"resolve by {_short(body['resolve_due_at'])}"
        + (f"  OVERDUE ({', '.join(late)})" if late else "")
    )
    if body["deadline_alert"]:
        click.secho(f"  alert: {body['deadline_alert']}", fg="yellow")
    if body["duplicate_of"]:
        click.echo(f"  merged into incident {body['duplicate_of']}")
    if body["merged_from"]:
        click.echo(f"  merged from: {', '.join(str(i) for i in body['merged_from'])}")
    if body.get("contact"):
        click.echo(f"  contact: {body['contact']['name']} {body['contact']['phone']}")
    for event in body["events"]:
        note = f" — {event['note']}" if event["note"] else ""
        click.echo(
            f"  {_short(event['at'])}  {event['action']:<12} {event['from_state'] or '-'} -> "
            f"{event['to_state']}  by {event['actor']} ({event['role']}){note}"
        )


@incidents_group.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(INCIDENT_STATES))
@click.option("--category")
@click.option("--grid", "grid_prefix", help="a code prefix: a grid, community, township ...")
@click.option("--since", help="reported at or after (date or date-time, Asia/Shanghai)")
@click.option("--until", help="reported before")
@click.option("--overdue/--not-overdue", default=None, help="only (or no) overdue incidents")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0)
@click.option("--json", "as_json", is_flag=True)
@actor_options
@pass_context
def list_command(
    context: Context,
    states: tuple[str, ...],
    since: str | None,
    until: str | None,
    as_json: bool,
    user: str | None,
    role: str,
    scope: str,
    **filters: Any,
) -> None:
    """List incidents in your scope, newest report first."""
    from geogrid.incidents import count_incidents, incident_as_dict, list_incidents

    actor = make_actor(user, role, scope)
    filters.update(
        state=list(states) or None,
        since=parse_moment(since, "since"),
        until=parse_moment(until, "until"),
    )
    with context.session(commit=False) as session:
        page = list_incidents(session, actor, **filters)
        rows = [incident_as_dict(session, incident, actor) for incident in page]
        paging = {k: filters.pop(k) for k in ("limit", "offset")}
        total = count_incidents(session, actor, **filters)
    if as_json:
        echo_json({"total": total, **paging, "incidents": rows})
        return
    for row in rows:
        late = "OVERDUE" if row["accept_overdue"] or row["resolve_overdue"] else ""
        click.echo(
            f"{row['id']:>8}  {_short(row['reported_at'])}  {row['category']:<16} "
            f"{row['state']:<12} {row['grid_code'] or '-':<17} {row['placement']:<9} {late}"
        )
    click.echo(f"{len(rows)} of {total} incidents")


# -- categories ---------------------------------------------------------------------------


@incidents_group.command("categories")
@click.option("--all", "include_retired", is_flag=True, help="include retired categories")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def categories_command(context: Context, include_retired: bool, as_json: bool) -> None:
    """List the incident categories with their deadlines (working days) and departments."""
    from geogrid.categories import EDITABLE_FIELDS, list_categories

    with context.session(commit=False) as session:
        rows = [
            {"code": c.code, **{name: getattr(c, name) for name in EDITABLE_FIELDS}}
            for c in list_categories(session, include_retired)
        ]
    if as_json:
        echo_json(rows)
        return
    click.echo("code              accept resolve complex weight  department  name")
    for row in rows:
        retired = "" if row["active"] else "  (retired)"
        click.echo(
            f"{row['code']:<17} {row['accept_days']:>6} {row['resolve_days']:>7} "
            f"{row['complex_days']:>7} {row['risk_weight']:>6g}  {row['department'] or '-'}  "
            f"{row['name_zh']} / {row['name_en']}{retired}"
        )


@incidents_group.command("category-set")
@click.argument("code")
@click.option("--name-zh")
@click.option("--name-en")
@click.option("--department")
@click.option("--accept-days", type=int)
@click.option("--resolve-days", type=int)
@click.option("--complex-days", type=int)
@click.option("--risk-weight", type=float)
@click.option("--active/--retired", default=None, help="retire a category, or bring it back")
@click.option("--commit", is_flag=True, help="save it; without it nothing is changed")
@actor_options
@pass_context
def category_set_command(
    context: Context,
    code: str,
    commit: bool,
    user: str | None,
    role: str,
    scope: str,
    **fields: Any,
) -> None:
    """Create category CODE or change its names, department, deadlines, weight or status."""
    from geogrid.categories import set_category
    from geogrid.models import IncidentCategory

    changes = {name: value for name, value in fields.items() if value is not None}
    actor = make_actor(user, role, scope)
    with context.session(commit=commit) as session:
        existed = session.get(IncidentCategory, code) is not None
        category = set_category(session, code, actor=actor, **changes)
        summary = (
            f"{category.code}: accept {category.accept_days}, resolve {category.resolve_days}, "
            f"complex {category.complex_days} working days; department "
            f"{category.department or '-'}; {'active' if category.active else 'retired'}"
        )
    verb = ("updated" if existed else "created") if commit else "would be"
    click.echo(f"{verb} {summary}")
    if not commit:
        click.echo(_DRY_RUN.format("save it"))


# -- merging and placing ------------------------------------------------------------------


@incidents_group.command("merge")
@click.argument("incident_id", metavar="ID", type=int)
@click.option("--into", "into_id", type=int, required=True, help="the incident it duplicates")
@click.option("--note", default="")
@click.option("--commit", is_flag=True, help="merge; without it nothing is changed")
@actor_options
@pass_context
def merge_command(
    context: Context,
    incident_id: int,
    into_id: int,
    note: str,
    commit: bool,
    user: str | None,
    role: str,
    scope: str,
) -> None:
    """Merge incident ID into the incident it duplicates; both keep their history."""
    from geogrid.duplicates import merge

    with context.session(commit=commit) as session:
        merge(session, incident_id, into_id, make_actor(user, role, scope), note=note)
    verb = "merged" if commit else "would merge"
    click.echo(f"{verb} incident {incident_id} into incident {into_id}")
    if not commit:
        click.echo(_DRY_RUN.format("merge"))


@incidents_group.command("place")
@click.argument("incident_id", metavar="ID", type=int)
@click.argument("grid_code")
@click.option("--note", default="", help="why it belongs there")
@click.option("--commit", is_flag=True, help="place it; without it nothing is changed")
@actor_options
@pass_context
def place_command(
    context: Context,
    incident_id: int,
    grid_code: str,
    note: str,
    commit: bool,
    user: str | None,
    role: str,
    scope: str,
) -> None:
    """Put incident ID into GRID_CODE by hand (one that fell outside every grid, or a wrong one)."""
    from geogrid.incidents import place

    with context.session(commit=commit) as session:
        incident = place(session, incident_id, grid_code, make_actor(user, role, scope), note)
        before = incident.placement_detail.get("placed_from", {}).get("grid_code")
    verb = "placed" if commit else "would place"
    click.echo(f"{verb} incident {incident_id} in grid {grid_code} (was {before or 'outside'})")
    if not commit:
        click.echo(_DRY_RUN.format("place it"))
