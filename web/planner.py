"""Planner pages: generations, their validation on the map, comparison, import, activation.

Thin views over :mod:`geogrid.generations` and :mod:`geogrid.boundaries` (the same calls
as ``geogrid boundaries import`` and ``geogrid generations activate|retire``), drawn by
:mod:`geogrid.planner_maps`. For planners and administrators.

What a planner's scope allows (administrators are unscoped):

* Seeing: generations are city-wide versions, so all are listed, but their area counts,
  maps, validation issues, changes and lineage rows show only areas whose code (or, for
  an issue or a lineage row, the other code involved) lies inside the scope. A
  generation's verdict (errors, warnings) is of the whole set, as activation is.
* Importing: every area in the file must have its parent inside the scope (a top-level
  area, its own code), because an import replaces *all* areas of the level under the
  parents present (:func:`geogrid.drafts.load_into_draft`): one community uploaded
  under a township removes that township's other communities. Replacing a whole level
  is for administrators. The import runs in a savepoint that is rolled back when the
  file, the codes or the scope say no, so nothing is written.
* Activating or discarding the draft: only when every area the draft adds, redraws or
  removes (compared with the current generation) lies inside the scope. There is one
  draft at a time, so when planners of two counties both imported into it, an
  administrator (or a planner covering both) activates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from tempfile import TemporaryDirectory
from typing import Any

import geopandas as gpd
import pandas as pd
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from geogrid import boundaries, generations
from geogrid.actors import ADMINISTRATOR, PLANNER, UNSCOPED_ROLES, Actor
from geogrid.crs import parse_coord_type
from geogrid.errors import (
    CodeError,
    Forbidden,
    GeogridError,
    InputError,
    NotFound,
    ValidationFailed,
)
from geogrid.maps import label, levels_to_draw, map_parts, offline
from geogrid.models import Area, Generation
from geogrid.planner_maps import (
    NEW_SIDE,
    OLD_SIDE,
    change_frame,
    comparison_map,
    generation_map,
    planner_label,
    side_by_side,
    validation_layer,
)
from geogrid.validate import ValidationRules
from geogrid.workdays import SHANGHAI
from web.auth import page_actor
from web.db import get_session, get_settings
from web.errors import status_for
from web.i18n import current_language, gettext
from web.vendor import asset_url

bp = Blueprint("planner", __name__)

ROLES = (ADMINISTRATOR, PLANNER)
#: Issues listed in a report's table; the rest are counted.
MAX_LISTED_ISSUES = 500
#: What the import reads (geogrid.files); a bare .shp needs its sidecar files.
UPLOAD_SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".csv")
COORD_TYPES = ("cgcs2000", "wgs84", "gcj02", "bd09")
FIELD_NAMES = ("code", "name", "parent", "households", "population", "kind")
#: Past this many areas a side of a comparison fetches them from the layers endpoint
#: (simplified per zoom) instead of carrying them in the page: inline areas cost about
#: 1.5 s per thousand to serialise, and the page grows by ~0.6 MB per thousand.
INLINE_AREAS = 500
#: Generation numbers are PostgreSQL integers: a larger number names none.
MAX_GENERATION_ID = 2**31 - 1


@bp.get("/planner", endpoint="generations")
def generations_list() -> str:
    """Every generation with its status, author, area counts in scope and validation verdict."""
    actor = page_actor(*ROLES)
    session = get_session()
    rows = [
        {
            "generation": g,
            "counts": _level_counts(session, g.id, actor),
            "validation": g.validation or {},
            "discarded": generations.is_discarded(g),
        }
        for g in generations.list_generations(session)
    ]
    return render_template(
        "planner_generations.html", rows=rows, **_page_helpers(), draft=_draft_of(rows)
    )


@bp.get("/planner/generations/<int:generation_id>")
def generation(generation_id: int) -> str:
    """A generation's validation report, its issues drawn over its areas, and its actions."""
    actor = page_actor(*ROLES)
    settings, session, language = get_settings(), get_session(), current_language()
    generation = _generation(session, generation_id)
    area, area_level = _area_param(actor)
    report = generation.validation or {}
    in_scope = _visible_issues(report.get("issues", []), actor, None)
    issues = _visible_issues(in_scope, actor, area)
    levels = _levels(actor, area_level)
    discarded = generations.is_discarded(generation)
    areas = _empty_areas() if discarded else _areas(session, generation.id, levels, actor, area)
    m = generation_map(
        areas,
        levels=levels,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
        language=language,
    )
    if issues and not discarded:
        named = _issue_areas(session, generation.id, issues, actor, area)
        validation_layer(issues, named, m=m, language=language, fit=areas.empty)
    current = generations.current_generation(session)
    changes = None
    if generation.status == "draft":
        changes = _changes(session, current, generation)
    return render_template(
        "planner_generation.html",
        generation=generation,
        counts=_level_counts(session, generation.id, actor),
        report=report,
        issues=issues[:MAX_LISTED_ISSUES],
        issues_total=len(issues),
        hidden_issues=len(report.get("issues", [])) - len(in_scope),
        area=area,
        below=_below(areas, levels),
        current=current,
        change_counts=_change_counts(changes, actor),
        outside_scope=_outside_scope(changes, actor),
        discarded=discarded,
        map=map_parts(offline(m, asset_url)),
        map_name=m.get_name(),
        level_of=_level_of,
        **_page_helpers(),
    )


@bp.post("/planner/generations/<int:generation_id>/activate")
def activate(generation_id: int) -> Response:
    """Validate a draft and make it current, as ``geogrid generations activate --commit``."""
    actor = page_actor(*ROLES)
    _require_confirmation()
    settings, session = get_settings(), get_session()
    draft = _generation(session, generation_id)
    _require_draft_in_scope(session, actor, draft)
    try:
        done = generations.activate(
            session,
            generation_id,
            settings.scheme,
            ValidationRules.from_settings(settings),
            activated_by=actor.name,
        )
    except ValidationFailed:
        # A success status commits the report the activation stored on the draft.
        errors = (draft.validation or {}).get("errors", 0)
        message = "Generation %(id)s was not activated: %(n)s validation errors."
        flash(gettext(message, id=generation_id, n=errors), "error")
        return redirect(url_for("planner.generation", generation_id=generation_id), 303)
    message = "Generation %(id)s is now active; %(n)s lineage rows recorded."
    flash(gettext(message, id=generation_id, n=done.lineage_rows), "ok")
    if done.superseded is None:
        return redirect(url_for("planner.generation", generation_id=generation_id), 303)
    return redirect(url_for("planner.compare", a=done.superseded.id, b=generation_id), 303)


@bp.post("/planner/generations/<int:generation_id>/retire")
def retire(generation_id: int) -> Response:
    """Discard a draft, as ``geogrid generations retire --commit``."""
    actor = page_actor(*ROLES)
    _require_confirmation()
    session = get_session()
    draft = _generation(session, generation_id)
    _require_draft_in_scope(session, actor, draft)
    reason = request.form.get("reason", "").strip()
    generations.retire(session, generation_id, retired_by=actor.name, reason=reason)
    flash(gettext("Draft generation %(id)s was discarded.", id=generation_id), "ok")
    return redirect(url_for("planner.generations"), 303)


@bp.get("/planner/compare")
def compare() -> str:
    """Two generations side by side, changed areas coloured, with the lineage between them."""
    actor = page_actor(*ROLES)
    settings, session, language = get_settings(), get_session(), current_language()
    choices = [g for g in generations.list_generations(session) if not generations.is_discarded(g)]
    old_id, new_id = _compared(choices)
    old = generations.resolve_generation(session, old_id)
    new = generations.resolve_generation(session, new_id)
    level = request.args.get("level") or settings.scheme.default_geocode_level
    settings.scheme.level(level)
    area, _area_level = _area_param(actor)
    before, old_rows, old_bounds = _side(session, old, level, actor, area)
    after, new_rows, new_bounds = _side(session, new, level, actor, area)
    changes = change_frame(old_rows, new_rows)
    bounds = _union(old_bounds, new_bounds)
    options = {
        "bounds": bounds,
        "tiles": settings.tiles,
        "attribution": settings.tiles_attribution,
        "language": language,
    }
    left = comparison_map(before, changes, title=_title(old), side=OLD_SIDE, **options)
    right = comparison_map(after, changes, title=_title(new), side=NEW_SIDE, **options)
    side_by_side(left, right)
    lineage = _lineage(session, choices, old.id, new.id, level, actor, area)
    moved = sum(row.households_moved or 0 for row in lineage if row.old_code != row.new_code)
    return render_template(
        "planner_compare.html",
        old=old,
        new=new,
        choices=choices,
        level=level,
        levels=settings.scheme.level_names,
        area=area,
        change_counts=changes["change"].value_counts().to_dict(),
        lineage=lineage,
        names={**_names(old_rows), **_names(new_rows)},
        households_moved=moved,
        map=map_parts(offline(left, asset_url)),
        **_page_helpers(),
    )


@bp.route("/planner/import", methods=["GET", "POST"])
def import_file() -> str | Response | tuple[str, int]:
    """A boundary file into the draft through the library's import; then its report."""
    actor = page_actor(*ROLES)
    form = _import_form()
    if request.method == "GET":
        return _import_page(actor, form)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        missing = InputError(gettext("Choose a file to upload."), field="file")
        return _import_page(actor, form, missing)
    session = get_session()
    with TemporaryDirectory(prefix="geogrid-upload-") as folder:
        savepoint = session.begin_nested()
        try:
            path = Path(folder) / _upload_name(upload.filename)
            upload.save(path)
            result = _import(session, actor, path, form)
        except GeogridError as error:
            savepoint.rollback()
            return _import_page(actor, form, error)
        if result.blocked:
            savepoint.rollback()
            problems = result.prepared.problems
            return _import_page(actor, form, problems=problems, read=result.read)
        savepoint.commit()
    changes, report = result.changes, result.report
    assert changes is not None and report is not None and result.generation is not None
    flash(
        gettext(
            "Imported %(file)s into draft generation %(id)s: %(added)s added, %(replaced)s "
            "replaced, %(unchanged)s unchanged, %(removed)s removed.",
            file=path.name,
            id=result.generation.id,
            added=len(changes.added),
            replaced=len(changes.replaced),
            unchanged=len(changes.unchanged),
            removed=len(changes.removed),
        ),
        "ok",
    )
    return redirect(url_for("planner.generation", generation_id=result.generation.id), 303)


# -- import ------------------------------------------------------------------------------


def _import_form() -> dict[str, Any]:
    values = request.form if request.method == "POST" else request.args
    scheme = get_settings().scheme
    form = {
        "level": values.get("level") or scheme.default_geocode_level,
        "crs": values.get("crs") or "cgcs2000",
        "repair": values.get("repair") == "yes",
        "replace_level": values.get("replace_level") == "yes",
    }
    for name in FIELD_NAMES:
        form[f"{name}_field"] = (values.get(f"{name}_field") or "").strip()
    form["code_field"] = form["code_field"] or "code"
    return form


def _import(
    session: Session, actor: Actor, path: Path, form: dict[str, Any]
) -> boundaries.ImportResult:
    settings = get_settings()
    settings.scheme.level(form["level"])
    if form["replace_level"] and _scoped(actor):
        raise Forbidden(
            gettext("Replacing a whole level is for administrators."), field="replace_level"
        )
    fields = boundaries.FieldMap(*(form[f"{name}_field"] or None for name in FIELD_NAMES))
    result = boundaries.import_boundaries(
        session,
        path,
        level=form["level"],
        fields=fields,
        coord_type=parse_coord_type(form["crs"]),
        scheme=settings.scheme,
        rules=ValidationRules.from_settings(settings),
        created_by=actor.name,
        replace_level=form["replace_level"],
        repair=form["repair"],
    )
    if not result.blocked:
        _require_import_in_scope(actor, result)
    return result


def _require_import_in_scope(actor: Actor, result: boundaries.ImportResult) -> None:
    if not _scoped(actor):
        return
    areas = result.prepared.areas
    # The import replaces every area of the level under the parents in the file.
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
        raise Forbidden(
            gettext(
                "Area %(code)s (or the areas beside it under its parent) is outside your "
                "scope %(scope)s; nothing was imported.",
                code=outside[0],
                scope=", ".join(actor.scope) or "-",
            ),
            field="code",
            codes=sorted(set(outside))[:50],
        )


def _upload_name(filename: str) -> str:
    """The uploaded file's own name, without any folder, checked to be a readable kind."""
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    suffix = PurePosixPath(name).suffix.lower()
    if not name or name.startswith(".") or suffix not in UPLOAD_SUFFIXES:
        raise InputError(
            gettext("Upload a GeoPackage, GeoJSON, zipped Shapefile or CSV file."), field="file"
        )
    return name[-120:]


def _import_page(
    actor: Actor,
    form: dict[str, Any],
    error: GeogridError | None = None,
    *,
    problems: list[Any] | None = None,
    read: int = 0,
) -> str | tuple[str, int]:
    page = render_template(
        "planner_import.html",
        form=form,
        error=error,
        problems=problems or [],
        read=read,
        levels=get_settings().scheme.level_names,
        coord_types=COORD_TYPES,
        scoped=_scoped(actor),
        draft=generations.draft_generation(get_session()),
        **_page_helpers(),
    )
    if error is not None:
        return page, status_for(error)
    return (page, 422) if problems else page


# -- scope -----------------------------------------------------------------------------


def _scoped(actor: Actor) -> bool:
    return actor.role not in UNSCOPED_ROLES


def _prefixes(actor: Actor, area: str | None) -> list[str | None]:
    """The code prefixes an actor's query is limited to (None: everything)."""
    if area is not None:
        return [area]
    return list(actor.scope) if _scoped(actor) else [None]


def _area_param(actor: Actor) -> tuple[str | None, str | None]:
    """``?area=``: a code inside the actor's scope, and its level."""
    code = request.args.get("area", "").strip() or None
    if code is None:
        return None, None
    level = get_settings().scheme.validate(code, field="area")
    if not actor.covers(code):
        raise Forbidden(f"area {code} is outside your scope", field="area")
    return code, level


def _require_draft_in_scope(session: Session, actor: Actor, draft: Generation) -> None:
    if draft.status != "draft" or not _scoped(actor):
        return  # the library refuses anything but a draft, with its own words
    changes = _changes(session, generations.current_generation(session), draft)
    outside = _outside_scope(changes, actor)
    if outside:
        raise Forbidden(
            gettext(
                "Draft %(id)s changes %(n)s areas outside your scope (first %(code)s); "
                "an administrator must activate or discard it.",
                id=draft.id,
                n=len(outside),
                code=outside[0],
            ),
            field="generation",
        )


def _outside_scope(changes: pd.DataFrame | None, actor: Actor) -> list[str]:
    if changes is None:
        return []
    changed = changes[changes["change"] != "unchanged"]["code"]
    return [code for code in changed if not actor.covers(code)]


def _visible_issues(
    issues: list[dict[str, Any]], actor: Actor, area: str | None
) -> list[dict[str, Any]]:
    def seen(code: str | None) -> bool:
        return code is not None and actor.covers(code) and (area is None or code.startswith(area))

    if not _scoped(actor) and area is None:
        return list(issues)
    return [i for i in issues if seen(i.get("code")) or seen(i.get("related_code"))]


# -- queries -----------------------------------------------------------------------------


def _levels(actor: Actor, area_level: str | None) -> list[str]:
    """The levels a generation's map draws: below the area asked for, or the actor's scope."""
    scheme = get_settings().scheme
    if area_level is None and _scoped(actor) and actor.scope:
        area_level = min((scheme.level_of(c) for c in actor.scope), key=scheme.depth)
    return levels_to_draw(scheme.level_names, area_level)


def _areas(
    session: Session, generation_id: int, levels: list[str], actor: Actor, area: str | None
) -> gpd.GeoDataFrame:
    frames = [
        generations.generation_areas(session, generation_id, level=level, within=prefix)
        for level in levels
        for prefix in _prefixes(actor, area)
    ]
    if not frames:
        return _empty_areas()
    areas = pd.concat(frames, ignore_index=True).drop_duplicates("code")
    return gpd.GeoDataFrame(areas, geometry="geometry", crs=frames[0].crs)


def _empty_areas() -> gpd.GeoDataFrame:
    columns = ["id", "code", "level", "parent_code", "name", "geometry"]
    return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs="EPSG:4490")


def _issue_areas(
    session: Session,
    generation_id: int,
    issues: list[dict[str, Any]],
    actor: Actor,
    area: str | None,
) -> gpd.GeoDataFrame:
    """The areas the issues name, fetched a level at a time."""
    codes = {c for i in issues for c in (i.get("code"), i.get("related_code")) if c}
    levels = sorted({lv for lv in map(_level_of, codes) if lv}, key=get_settings().scheme.depth)
    areas = _areas(session, generation_id, levels, actor, area)
    return areas[areas["code"].isin(codes)]


def _below(areas: gpd.GeoDataFrame, levels: list[str]) -> list[tuple[str, str]]:
    """Code and name of the areas one level below the top of the map, to zoom into."""
    if len(levels) < 2:
        return []
    below = areas[areas["level"] == levels[1]].sort_values("code")
    return list(zip(below["code"], below["name"].fillna(""), strict=True))


def _level_of(code: str | None) -> str:
    try:
        return get_settings().scheme.level_of(code) if code else ""
    except CodeError:
        return ""


def _level_counts(session: Session, generation_id: int, actor: Actor) -> dict[str, int]:
    query = select(Area.level, func.count()).where(
        Area.valid_in(generation_id), _within(_prefixes(actor, None))
    )
    # Coarsest level first.
    query = query.group_by(Area.level).order_by(func.min(func.length(Area.code)))
    return {level: count for level, count in session.execute(query)}


def _changes(session: Session, current: Generation | None, generation: Generation) -> pd.DataFrame:
    """How each area of a draft differs from the current generation (all levels)."""
    return change_frame(_area_rows(session, current), _area_rows(session, generation))


def _area_rows(
    session: Session,
    generation: Generation | None,
    *,
    level: str | None = None,
    prefixes: Sequence[str | None] = (None,),
) -> pd.DataFrame:
    """Code, row id and name of a generation's areas, without their shapes."""
    if generation is None:
        return pd.DataFrame({"code": [], "id": [], "name": []})
    query = select(Area.code, Area.id, Area.name).where(
        Area.valid_in(generation.id), _within(prefixes)
    )
    if level is not None:
        query = query.where(Area.level == level)
    return pd.DataFrame(session.execute(query).all(), columns=["code", "id", "name"])


def _within(prefixes: Sequence[str | None]) -> ColumnElement[bool]:
    if None in prefixes:
        return true()
    inside = [Area.code.startswith(prefix, autoescape=True) for prefix in prefixes]
    return or_(*inside) if inside else false()


def _side(
    session: Session, generation: Generation, level: str, actor: Actor, area: str | None
) -> tuple[gpd.GeoDataFrame | str, pd.DataFrame, tuple[float, ...] | None]:
    """One side of a comparison: its areas (inline, or the layers URL when many), rows, bounds."""
    prefixes = _prefixes(actor, area)
    rows = _area_rows(session, generation, level=level, prefixes=prefixes)
    if len(rows) > INLINE_AREAS and len(prefixes) == 1 and _has_layers_endpoint():
        from web.layers import layer_url  # registered only when the layers module is present

        return (
            layer_url(generation.id, level, within=prefixes[0]),
            rows,
            _extent(session, generation, level, prefixes),
        )
    areas = _areas(session, generation.id, [level], actor, area)
    return areas, rows, tuple(areas.total_bounds) if len(areas) else None


def _has_layers_endpoint() -> bool:
    return "layers.areas" in current_app.view_functions


def _extent(
    session: Session, generation: Generation, level: str, prefixes: Sequence[str | None]
) -> tuple[float, ...] | None:
    query = select(
        func.min(func.ST_XMin(Area.geom)),
        func.min(func.ST_YMin(Area.geom)),
        func.max(func.ST_XMax(Area.geom)),
        func.max(func.ST_YMax(Area.geom)),
    ).where(Area.valid_in(generation.id), Area.level == level, _within(prefixes))
    bounds = session.execute(query).one()
    return None if bounds[0] is None else tuple(float(b) for b in bounds)


def _union(*bounds: tuple[float, ...] | None) -> tuple[float, ...] | None:
    known = [b for b in bounds if b is not None]
    if not known:
        return None
    west, south, east, north = zip(*known, strict=True)
    return min(west), min(south), max(east), max(north)


def _change_counts(changes: pd.DataFrame | None, actor: Actor) -> dict[str, int]:
    if changes is None:
        return {}
    seen = changes[[actor.covers(code) for code in changes["code"]]]
    return seen["change"].value_counts().to_dict()


def _compared(choices: list[Generation]) -> tuple[int | None, int | None]:
    """``?a=&b=``, older first; by default the draft (or the current one) and its predecessor."""
    a, b = _id_param("a"), _id_param("b")
    if b is None:
        newest = next((g for g in choices if g.status in ("draft", "active")), None)
        b = newest.id if newest else None
    if a is None and b is not None:
        before = [g.id for g in choices if g.id < b and g.activated_at is not None]
        a = before[0] if before else b  # choices are newest first
    if a is not None and b is not None and a > b:
        a, b = b, a
    return a, b


def _lineage(
    session: Session,
    choices: list[Generation],
    old_id: int,
    new_id: int,
    level: str,
    actor: Actor,
    area: str | None,
) -> list[Any]:
    """Lineage recorded by the activations after ``old_id`` up to ``new_id``, in scope."""
    activated = sorted(g.id for g in choices if old_id < g.id <= new_id and g.activated_at)
    rows = [row for gid in activated for row in generations.lineage_of(session, gid)]

    def seen(code: str) -> bool:
        return actor.covers(code) and (area is None or code.startswith(area))

    return [r for r in rows if r.level == level and (seen(r.old_code) or seen(r.new_code))]


# -- page helpers ------------------------------------------------------------------------


def _generation(session: Session, generation_id: int) -> Generation:
    """The generation a URL names; NotFound for a number no generation can have."""
    if not 0 < generation_id <= MAX_GENERATION_ID:
        raise NotFound(f"there is no generation {generation_id}", field="generation")
    return generations.get_generation(session, generation_id)


def _id_param(name: str) -> int | None:
    """A generation number from the query string, checked before the database sees it."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise InputError(f"{name} must be a generation number, not {raw!r}", field=name)
    if not 0 < int(raw) <= MAX_GENERATION_ID:
        raise NotFound(f"there is no generation {raw}", field=name)
    return int(raw)


def _require_confirmation() -> None:
    if request.form.get("confirm") != "yes":
        raise InputError(gettext("Tick the box to confirm."), field="confirm")


def _draft_of(rows: list[dict[str, Any]]) -> Generation | None:
    return next((r["generation"] for r in rows if r["generation"].status == "draft"), None)


def _title(generation: Generation) -> str:
    status = gettext(generation.status)
    return gettext("Generation %(id)s", id=generation.id) + f" · {status}"


def _names(rows: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rows["code"], rows["name"].fillna(""), strict=True))


def _local_time(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


def _page_helpers() -> dict[str, Any]:
    language = current_language()
    return {
        "local_time": _local_time,
        "level_label": lambda level: label(level, language),
        "check_label": lambda check: planner_label(check, language),
        "change_label": lambda change: planner_label(change, language),
    }
