"""What a planner's scope allows over boundary generations; the pages and the CLI obey it.

Planners and administrators import boundary files into the draft, read validation
reports, compare generations and activate or discard the draft (the planner pages,
``geogrid boundaries import``, ``geogrid generations activate|retire``). Administrators
are unscoped; a planner acts over a scope of codes (:class:`geogrid.actors.Actor`):

* Seeing: generations are city-wide versions, so all are listed, but their area counts,
  maps, validation issues, changes and lineage rows show only areas whose code (or, for
  an issue or a lineage row, the other code involved) lies inside the scope. A
  generation's verdict (errors, warnings) is of the whole set, as activation is.
* Importing: every area in the file must have its parent inside the scope (a top-level
  area, its own code), because an import replaces *all* areas of the level under the
  parents present (:func:`geogrid.drafts.load_into_draft`): one community uploaded
  under a township removes that township's other communities. Replacing a whole level
  is for administrators. The caller runs the import in a savepoint and rolls it back
  when these rules say no, so nothing is written.
* Activating or discarding the draft: only when every area the draft adds, redraws or
  removes (compared with the current generation) lies inside the scope. There is one
  draft at a time, so when planners of two counties both imported into it, an
  administrator (or a planner covering both) activates it.

Refusals are :class:`~geogrid.errors.Forbidden` naming the field at fault. Their words
are English ``%(name)s`` templates filled by a :data:`Wording`, so the web can give them
in the page's language. The queries the planner pages draw from, limited to the same
scope, are in :mod:`geogrid.planning_queries`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from geogrid import boundaries, generations
from geogrid.actors import UNSCOPED_ROLES, Actor
from geogrid.codes import CodeScheme
from geogrid.errors import Forbidden
from geogrid.models import Area, Generation
from geogrid.planner_maps import change_frame

#: How a refusal is worded: an English ``%(name)s`` template and its values in, the
#: message out. The web passes its gettext; the CLI keeps the English.
Wording = Callable[..., str]
#: The codes an import refusal lists in its details, at most.
MAX_REFUSED_CODES = 50


def english(message: str, **values: Any) -> str:
    """``message`` as written, with its ``%(name)s`` values filled in."""
    return message % values


# -- scope ---------------------------------------------------------------------------------


def is_scoped(actor: Actor) -> bool:
    """Whether what the actor sees and changes is limited to their scope of codes."""
    return actor.role not in UNSCOPED_ROLES


def scope_prefixes(actor: Actor, area: str | None = None) -> list[str | None]:
    """The code prefixes the actor's queries are limited to (``[None]``: everything).

    ``area``, a code already checked by :func:`require_area_in_scope`, narrows them to it.
    """
    if area is not None:
        return [area]
    return list(actor.scope) if is_scoped(actor) else [None]


def codes_within(
    column: InstrumentedAttribute[str], prefixes: Sequence[str | None]
) -> ColumnElement[bool]:
    """SQL condition: ``column`` starts with one of ``prefixes`` (None among them: any)."""
    if None in prefixes:
        return true()
    inside = [column.startswith(prefix, autoescape=True) for prefix in prefixes]
    return or_(*inside) if inside else false()


def require_area_in_scope(scheme: CodeScheme, actor: Actor, code: str) -> str:
    """The level of ``code``, an area to look into; Forbidden when it is outside the scope."""
    level = scheme.validate(code, field="area")
    if not actor.covers(code):
        raise Forbidden(f"area {code} is outside your scope", field="area")
    return level


def visible_issues(
    issues: Sequence[dict[str, Any]], actor: Actor, area: str | None = None
) -> list[dict[str, Any]]:
    """The validation issues whose area (or related area) the actor sees, under ``area``."""

    def seen(code: str | None) -> bool:
        return code is not None and actor.covers(code) and (area is None or code.startswith(area))

    if not is_scoped(actor) and area is None:
        return list(issues)
    return [i for i in issues if seen(i.get("code")) or seen(i.get("related_code"))]


# -- importing -----------------------------------------------------------------------------


def import_in_scope(
    session: Session,
    actor: Actor,
    path: Path,
    *,
    replace_level: bool = False,
    wording: Wording = english,
    **options: Any,
) -> boundaries.ImportResult:
    """:func:`geogrid.boundaries.import_boundaries` by ``actor``, refused outside the scope.

    ``options`` are the import's own (``level``, ``fields``, ``scheme`` ...). Run it in a
    savepoint and roll that back on a refusal: the scope is known only once the file is read.
    """
    if replace_level and is_scoped(actor):
        message = wording("Replacing a whole level is for administrators.")
        raise Forbidden(message, field="replace_level")
    result = boundaries.import_boundaries(
        session, path, created_by=actor.name, replace_level=replace_level, **options
    )
    if not result.blocked:
        _require_import_in_scope(actor, result, wording=wording)
    return result


def _require_import_in_scope(
    actor: Actor, result: boundaries.ImportResult, *, wording: Wording = english
) -> None:
    """Forbidden, naming the codes, when an import reaches outside the actor's scope.

    The import replaces every area of its level under the parents in the file, so each
    area's parent (a top-level area: its own code) must be in the scope, as must every
    area it added, redrew or removed. The caller rolls the import back on refusal.
    """
    if not is_scoped(actor):
        return
    areas = result.prepared.areas
    outside = [
        code
        for code, parent in zip(areas["code"], areas["parent_code"], strict=True)
        if not actor.covers(parent or code)
    ]
    changes = result.changes
    if changes is not None:
        changed = changes.added + changes.replaced + changes.removed
        outside += [code for code in changed if not actor.covers(code)]
    if outside:
        message = wording(
            "Area %(code)s (or the areas beside it under its parent) is outside your scope "
            "%(scope)s; nothing was imported.",
            code=outside[0],
            scope=", ".join(actor.scope) or "-",
        )
        raise Forbidden(message, field="code", codes=sorted(set(outside))[:MAX_REFUSED_CODES])


# -- the draft -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftChanges:
    """How a draft differs from the current generation, as one actor sees it."""

    #: Areas inside the scope by change: added, redrawn, removed, unchanged.
    counts: dict[str, int]
    #: Codes added, redrawn or removed outside the scope, in code order.
    outside_scope: list[str]


def draft_changes(session: Session, actor: Actor, draft: Generation) -> DraftChanges:
    """What ``draft`` adds, redraws and removes against the current generation, for ``actor``."""
    current = generations.current_generation(session)
    changes = change_frame(area_rows(session, current), area_rows(session, draft))
    seen = changes["code"].map(actor.covers).astype(bool)
    changed = changes["change"] != "unchanged"
    return DraftChanges(
        counts=changes[seen]["change"].value_counts().to_dict(),
        outside_scope=list(changes[changed & ~seen]["code"]),
    )


def require_draft_in_scope(
    session: Session, actor: Actor, draft: Generation, *, wording: Wording = english
) -> None:
    """Forbidden when the draft changes areas outside the scope: it is activated whole.

    Anything but a draft passes, for :mod:`geogrid.generations` to refuse in its own words.
    """
    if draft.status != "draft" or not is_scoped(actor):
        return
    outside = draft_changes(session, actor, draft).outside_scope
    if outside:
        message = wording(
            "Draft %(id)s changes %(n)s areas outside your scope (first %(code)s); "
            "an administrator must activate or discard it.",
            id=draft.id,
            n=len(outside),
            code=outside[0],
        )
        raise Forbidden(message, field="generation")


def area_rows(
    session: Session,
    generation: Generation | None,
    *,
    level: str | None = None,
    prefixes: Sequence[str | None] = (None,),
) -> pd.DataFrame:
    """Code, row id and name of a generation's areas (none for no generation), no shapes."""
    if generation is None:
        return pd.DataFrame({"code": [], "id": [], "name": []})
    query = select(Area.code, Area.id, Area.name).where(
        Area.valid_in(generation.id), codes_within(Area.code, prefixes)
    )
    if level is not None:
        query = query.where(Area.level == level)
    return pd.DataFrame(session.execute(query).all(), columns=["code", "id", "name"])
