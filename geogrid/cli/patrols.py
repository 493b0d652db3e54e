"""The ``geogrid patrols`` group; its commands live in the modules that register on it."""

from __future__ import annotations

from geogrid.cli.base import main


@main.group("patrols")
def patrols_group() -> None:
    """平安联盟 patrols: organisations, teams, assignments, tracks, coverage and gaps."""
