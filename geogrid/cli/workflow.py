"""Commands that move incidents through the workflow, show their log, and chase deadlines."""

from __future__ import annotations

from datetime import datetime

import click

from geogrid import escalation, incidents, workflow
from geogrid.cli.base import Context, echo_json, parse_moment, pass_context
from geogrid.cli.incidents import actor_options, incidents_group, make_actor
from geogrid.models import Incident
from geogrid.sla import DEADLINES, Overdue
from geogrid.workdays import SHANGHAI

_TIME = "%Y-%m-%d %H:%M"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None


def _local(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime(_TIME) if moment is not None else "-"


@incidents_group.command("act")
@click.argument("incident_id", type=int, metavar="ID")
@click.argument("action", metavar="ACTION")
@click.option("--note", default="", help="the reason (reject, suspend, escalate) or what was done")
@click.option("--assignee", help="dispatch: the grid worker's user name (or a department)")
@click.option("--days", type=int, help="request_extension, approve_extension: working days")
@click.option("--satisfied/--unsatisfied", default=None, help="evaluate: the resident's verdict")
@click.option(
    "--complex", "complex_", is_flag=True, help="accept: mark it complex (longer deadline)"
)
@click.option(
    "--department",
    default="",
    help="the department you act for (department staff, report_in); "
    "for dispatch, the department it is sent to",
)
@click.option("--now", "now_text", help="act as of this time (ISO; default: now)")
@actor_options
@click.option("--commit", is_flag=True, help="make the change; without it nothing is written")
@pass_context
def incidents_act(
    context: Context,
    incident_id: int,
    action: str,
    note: str,
    assignee: str | None,
    days: int | None,
    satisfied: bool | None,
    complex_: bool,
    department: str,
    now_text: str | None,
    user: str | None,
    role: str,
    scope: str,
    commit: bool,
) -> None:
    """Take ACTION on incident ID: accept, reject, dispatch, start, resolve, evaluate, ...

    The actions, who may take them and from which states are listed in
    ``geogrid.workflow``; `geogrid incidents events ID` shows what was done so far.
    """
    transition = workflow.transition_of(action)
    dispatching = transition.name == "dispatch"
    actor = make_actor(user, role, scope, "" if dispatching else department)
    given = {
        "assignee": assignee,
        "days": days,
        "satisfied": satisfied,
        "complex": complex_ or None,
        "department": department if dispatching and department else None,
    }
    params = {name: value for name, value in given.items() if value is not None}
    with context.session(commit=commit) as session:
        before = session.get(Incident, incident_id)
        from_state = before.state if before is not None else None
        incident = workflow.act(
            session,
            context.settings,
            incident_id,
            transition.name,
            actor,
            note=note,
            now=parse_moment(now_text, "now"),
            **params,
        )
        lines = _act_lines(incident)
        allowed = workflow.allowed_actions(incident, actor, scheme=context.settings.scheme)
    verb = "" if commit else "would go "
    click.echo(
        f"incident {incident_id}: {verb}{from_state} → {lines[0]} ({action} by {actor.name})"
    )
    for line in lines[1:]:
        click.echo(f"  {line}")
    click.echo(f"  next for {actor.name}: {', '.join(allowed) or 'nothing'}")
    if not commit:
        click.echo("dry run: nothing was written (add --commit to do it)")


def _act_lines(incident: Incident) -> list[str]:
    lines = [f"{incident.state}, level {incident.level}"]
    if incident.assignee:
        lines.append(f"assignee: {incident.assignee}")
    due = f"accept due {_local(incident.accept_due_at)}, "
    if incident.report_in_due_at is not None:
        due += f"report in due {_local(incident.report_in_due_at)}, "
    lines.append(due + f"resolve due {_local(incident.resolve_due_at)}")
    if incident.deadline_alert:
        lines.append(f"alert: {incident.deadline_alert}")
    return lines


@incidents_group.command("events")
@click.argument("incident_id", type=int, metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="print the log as JSON")
@actor_options
@pass_context
def incidents_events(
    context: Context, incident_id: int, as_json: bool, user: str | None, role: str, scope: str
) -> None:
    """Print incident ID's log: every step, who took it, when, from which state to which."""
    actor = make_actor(user, role, scope)
    with context.session(commit=False) as session:
        incident = incidents.get_incident(session, incident_id, actor)
        shown = incidents.may_see_contact(actor, incident)
        events = [
            incidents.event_as_dict(event, show_resident=shown)
            for event in incidents.events_of(session, incident_id)
        ]
    if as_json:
        echo_json(events)
        return
    for event in events:
        at = _local(datetime.fromisoformat(event["at"]))
        step = f"{event['from_state'] or '-'} → {event['to_state']}"
        who = f"{event['actor']} ({event['role']})"
        note = f": {event['note']}" if event["note"] else ""
        click.echo(f"{at}  {event['action']:<18} {step:<26} {event['level']:<9} {who}{note}")


@incidents_group.command("escalate-overdue")
@click.option("--now", "now_text", help="as of this time (ISO; default: now)")
@click.option("--commit", is_flag=True, help="escalate; without it nothing is written")
@pass_context
def incidents_escalate_overdue(context: Context, now_text: str | None, commit: bool) -> None:
    """Escalate every missed deadline one level (吹哨), once per breach; safe to run often."""
    with context.session(commit=commit) as session:
        run = escalation.escalate_overdue(
            session, context.settings, now=parse_moment(now_text, "now")
        )
    verb = "escalated" if commit else "would escalate"
    for item in run.escalated:
        click.echo(
            f"incident {item.incident_id}: missed the {item.deadline} deadline "
            f"(due {_local(item.due_at)}); {verb} to {item.level}"
        )
    click.echo(run.summary())
    if not commit:
        click.echo("dry run: nothing was written (add --commit to escalate)")


@incidents_group.command("overdue")
@click.option("--now", "now_text", help="as of this time (ISO; default: now)")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the list as JSON")
@actor_options
@pass_context
def incidents_overdue(
    context: Context,
    now_text: str | None,
    limit: int,
    as_json: bool,
    user: str | None,
    role: str,
    scope: str,
) -> None:
    """List the incidents past a deadline now, with how many working hours late."""
    actor = make_actor(user, role, scope)
    with context.session(commit=False) as session:
        rows = escalation.overdue_incidents(
            session, actor, now=parse_moment(now_text, "now"), limit=limit
        )
        listed = [_overdue_row(incident, status) for incident, status in rows]
    if as_json:
        echo_json(listed)
        return
    for row in listed:
        late = ", ".join(
            f"{deadline} {row[f'{deadline}_overdue_h']:.1f} working h late"
            for deadline in DEADLINES
            if row[f"{deadline}_overdue"]
        )
        click.echo(
            f"incident {row['id']} [{row['grid_code'] or 'outside'}] {row['state']}, "
            f"level {row['level']}: {late}"
        )
    click.echo(f"{len(listed)} incidents overdue")


def _overdue_row(incident: Incident, status: Overdue) -> dict[str, object]:
    return {
        "id": incident.id,
        "category": incident.category,
        "grid_code": incident.grid_code,
        "state": incident.state,
        "level": incident.level,
        "assignee": incident.assignee,
        "accept_due_at": _iso(incident.accept_due_at),
        "report_in_due_at": _iso(incident.report_in_due_at),
        "resolve_due_at": _iso(incident.resolve_due_at),
        **status.as_dict(),
    }
