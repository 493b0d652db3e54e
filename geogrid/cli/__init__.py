"""The ``geogrid`` command line.

Each command parses its arguments, opens one session, calls one library function and
prints the answer. Commands that change data say what they would do and change nothing
unless given ``--commit``; the command owns the transaction. The commands live in one
module per area of work; importing them registers them on :data:`main`.
"""

from geogrid.cli import (  # noqa: F401  (registers)
    alliance,
    assignments,
    boundaries,
    calendar,
    coverage,
    demo,
    geocoding,
    incident_import,
    incidents,
    intake,
    optimiser,
    patrols,
    reports,
    tracks,
    users,
    workflow,
)
from geogrid.cli.base import main

__all__ = ["main"]
