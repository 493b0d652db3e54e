"""Loading the generated demo city: one draft, every level, validated and activated."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from geogrid.codes import DEFAULT_SCHEME
from geogrid.demo_incidents import DemoIncidentsLoad, load_demo_incidents
from geogrid.demo_patrols import DemoPatrols, build_demo_patrols
from geogrid.drafts import Changes, load_frame
from geogrid.errors import ConfigError
from geogrid.generations import Activation, activate, create_draft
from geogrid.settings import Settings
from geogrid.validate import ValidationRules
from geogrid.workdays import SHANGHAI


@dataclass
class DemoLoad:
    """What loading the demo did, and how long each step took."""

    place: str
    counts: dict[str, int]
    changes: Changes
    activation: Activation
    seconds: dict[str, float] = field(default_factory=dict)
    #: The demo incidents, when they were asked for.
    incidents: DemoIncidentsLoad | None = None
    #: The demo 平安联盟 (stations, teams, assignments, a week of tracks), when asked for.
    patrols: DemoPatrols | None = None

    def lines(self) -> list[str]:
        """A printable account of the load."""
        counts = ", ".join(f"{n} {level}" for level, n in self.counts.items())
        timing = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        lines = [
            f"demo city {self.place}: {counts}",
            f"generation {self.activation.generation.id} active ({timing})",
        ]
        for part in (self.incidents, self.patrols):
            if part is not None:
                lines += part.lines()
        return lines


def build_and_load(
    session: Session,
    settings: Settings,
    *,
    county: str | None = None,
    city: str | None = None,
    seed: int = 7,
    created_by: str,
    progress: bool = False,
    incidents: bool = False,
    incidents_per_year: int | None = None,
    patrols: bool = False,
    now: datetime | None = None,
) -> DemoLoad:
    """Generate the demo city, load it into a new draft and activate it.

    With ``incidents``, a year of incidents up to ``now`` follows
    (:mod:`geogrid.demo_incidents`; ``incidents_per_year`` defaults to 15 per grid).
    With ``patrols``, the 平安联盟 and the week of patrols before ``now``
    (:mod:`geogrid.demo_patrols`).
    """
    from geogrid.demo import build_demo_city

    if settings.code_scheme != DEFAULT_SCHEME:
        raise ConfigError(
            f"the demo city uses the default code scheme {DEFAULT_SCHEME!r}",
            field="GEOGRID_CODE_SCHEME",
        )
    place = city or county or "370705"
    started = time.perf_counter()
    areas = build_demo_city(
        county=None if city else place,
        city=city,
        seed=seed,
        scheme=settings.scheme,
        progress=progress,
    )
    built = time.perf_counter()
    draft = create_draft(
        session, created_by=created_by, description=f"demo city {place}, seed {seed}"
    )
    changes = load_frame(session, areas, scheme=settings.scheme, generation=draft)
    loaded = time.perf_counter()
    activation = activate(
        session,
        draft.id,
        settings.scheme,
        ValidationRules.from_settings(settings),
        activated_by=created_by,
        progress=progress,
    )
    done = time.perf_counter()
    counts = areas.groupby("level").size().to_dict()
    ordered = {
        level: int(counts[level]) for level in settings.scheme.level_names if level in counts
    }
    load = DemoLoad(
        place,
        ordered,
        changes,
        activation,
        {"generate": built - started, "load": loaded - built, "validate+activate": done - loaded},
    )
    if incidents:
        load.incidents = load_demo_incidents(
            session, settings, seed=seed, count=incidents_per_year, now=now
        )
    if patrols:
        week_start = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()
        load.patrols = build_demo_patrols(
            session, settings, seed=seed, week_start=week_start, progress=progress
        )
    return load
