"""Loading the generated demo city: one draft, every level, validated and activated."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from geogrid.codes import DEFAULT_SCHEME
from geogrid.drafts import Changes, load_frame
from geogrid.errors import ConfigError
from geogrid.generations import Activation, activate, create_draft
from geogrid.settings import Settings
from geogrid.validate import ValidationRules


@dataclass
class DemoLoad:
    """What loading the demo did, and how long each step took."""

    place: str
    counts: dict[str, int]
    changes: Changes
    activation: Activation
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A printable account of the load."""
        counts = ", ".join(f"{n} {level}" for level, n in self.counts.items())
        timing = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        return [
            f"demo city {self.place}: {counts}",
            f"generation {self.activation.generation.id} active ({timing})",
        ]


def build_and_load(
    session: Session,
    settings: Settings,
    *,
    county: str | None = None,
    city: str | None = None,
    seed: int = 7,
    created_by: str,
    progress: bool = False,
) -> DemoLoad:
    """Generate the demo city, load it into a new draft and activate it."""
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
    return DemoLoad(
        place,
        ordered,
        changes,
        activation,
        {"generate": built - started, "load": loaded - built, "validate+activate": done - loaded},
    )
