"""Commands that build the demo city and serve the web app."""

from __future__ import annotations

import click

from geogrid import generations, users
from geogrid.cli.base import (
    Context,
    main,
    pass_context,
    user_name,
)

# -- demo and serving ----------------------------------------------------------------


@main.group("demo")
def demo_group() -> None:
    """The demo city."""


@demo_group.command("build")
@click.option("--county", help="a county code (default 370705, 奎文区)")
@click.option("--city", help="a city code: 3707 builds all of Weifang (~15,000 grids)")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when a generation is already active")
@click.option(
    "--incidents/--no-incidents",
    default=True,
    show_default=True,
    help="also a year of incidents (小红哨), with their workflow and events",
)
@click.option("--incidents-per-year", type=click.IntRange(min=0), help="default: 15 per grid")
@click.option(
    "--patrols/--no-patrols",
    default=True,
    show_default=True,
    help="also the 平安联盟: stations, teams, members, assignments, a week of tracks, leads",
)
@click.option("--commit", is_flag=True, help="load and activate it; without it nothing is changed")
@pass_context
def demo_build(
    context: Context,
    county: str | None,
    city: str | None,
    seed: int,
    if_empty: bool,
    incidents: bool,
    incidents_per_year: int | None,
    patrols: bool,
    commit: bool,
) -> None:
    """Generate the demo city inside the real district outlines, load and activate it."""
    from geogrid.demo_load import build_and_load

    if county and city:
        raise click.UsageError("give --county or --city, not both")
    with context.session(commit=commit) as session:
        if if_empty and generations.current_generation(session) is not None:
            click.echo("a generation is already active; leaving the demo as it is")
            return
        result = build_and_load(
            session,
            context.settings,
            county=county,
            city=city,
            seed=seed,
            created_by=user_name(None),
            progress=True,
            incidents=incidents,
            incidents_per_year=incidents_per_year,
            patrols=patrols,
        )
        for line in result.lines():
            click.echo(line)
        if not commit:
            click.echo("dry run: nothing was written (add --commit to load it)")


@demo_group.command("incidents")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--per-year", type=click.IntRange(min=0), help="default: 15 per grid")
@click.option("--commit", is_flag=True, help="write them; without it nothing is changed")
@pass_context
def demo_incidents(context: Context, seed: int, per_year: int | None, commit: bool) -> None:
    """Add a year of demo incidents to the current generation (again: nothing new)."""
    from geogrid.demo_incidents import load_demo_incidents

    with context.session(commit=commit) as session:
        result = load_demo_incidents(session, context.settings, seed=seed, count=per_year)
    for line in result.lines():
        click.echo(line)
    if not commit:
        click.echo("dry run: nothing was written (add --commit to write them)")


@demo_group.command("users")
@click.option("--county", help="the demo county (default: the one with the most incidents)")
@click.option("--commit", is_flag=True, help="create and reset them; without it nothing changes")
@pass_context
def demo_users(context: Context, county: str | None, commit: bool) -> None:
    """One demo user per role on the demo city, each with a fresh password (printed)."""
    from geogrid.demo_users import ensure_demo_users, plan_demo_users

    with context.session(commit=commit) as session:
        plans = plan_demo_users(session, county=county)
        existing = {user.name for user in users.list_users(session)}
        if not commit:
            for plan in plans:
                verb = "would reset" if plan.name in existing else "would create"
                click.echo(f"{verb} {_described(plan)}")
            click.echo("dry run: nothing was written (add --commit to set them up with passwords)")
            return
        logins = ensure_demo_users(session, plans, created_by=user_name(None))
    click.echo(f"{'user':<22} {'role':<16} {'password':<18} scope")
    for login in logins:
        plan = login.user
        click.echo(
            f"{plan.name:<22} {plan.role:<16} {login.password:<18} "
            f"{','.join(plan.scope) or 'everywhere'}  ({plan.note})"
        )
    created = sum(login.created for login in logins)
    click.echo(
        f"{created} created, {len(logins) - created} given new passwords; "
        f"sign in at {_address(context.settings)}login"
    )


def _described(plan) -> str:
    return f"{plan.name} ({plan.role}; scope {','.join(plan.scope) or 'everywhere'}; {plan.note})"


def _address(settings) -> str:
    """The address a browser on this machine opens for ``geogrid serve``."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{settings.port}/" if ":" in host else f"http://{host}:{settings.port}/"


@main.command("serve")
@click.option("--host", help="default: GEOGRID_HOST or 127.0.0.1")
@click.option("--port", type=int, help="default: GEOGRID_PORT or 8000")
@pass_context
def serve(context: Context, host: str | None, port: int | None) -> None:
    """Serve the web app with a production WSGI server (gunicorn)."""
    # The one place the CLI reaches the web layer; the library never imports Flask.
    from web.server import serve as run_server

    settings = context.settings.with_(
        host=host or context.settings.host, port=port or context.settings.port
    )
    run_server(settings)
