"""The ``geogrid incidents`` group; its commands live in the modules that register on it."""

from __future__ import annotations

import click

from geogrid.actors import ROLES, Actor
from geogrid.cli.base import main, user_name


@main.group("incidents")
def incidents_group() -> None:
    """Incidents (小红哨): file, import, move through the workflow, escalate."""


def actor_options(command):
    """Add ``--user``, ``--role`` and ``--scope`` to a command that acts on incidents."""
    command = click.option(
        "--scope",
        default="",
        help="comma-separated codes the actor answers for (e.g. 370705); not needed for"
        " administrator",
    )(command)
    command = click.option(
        "--role",
        type=click.Choice(ROLES),
        default="administrator",
        show_default=True,
        help="the role the user acts in",
    )(command)
    return click.option("--user", help="who is acting (default: your login)")(command)


def make_actor(user: str | None, role: str, scope: str, department: str = "") -> Actor:
    """The actor the options describe."""
    codes = tuple(code.strip() for code in scope.split(",") if code.strip())
    return Actor(name=user_name(user), role=role, scope=codes, department=department)
