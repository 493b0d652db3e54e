"""Planner pages: generations, their validation on the map, comparison, import, activation.

Thin views over :mod:`geogrid.generations` and :mod:`geogrid.boundaries` (the same calls
as ``geogrid boundaries import`` and ``geogrid generations activate|retire``), drawn by
:mod:`geogrid.planner_maps`. For planners and administrators, under the scope rules of
:mod:`geogrid.planning`, which also answers the pages' queries within the scope
(:mod:`geogrid.planning_queries`).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path, PurePosixPath
from tempfile import TemporaryDirectory
from typing import Any

import geopandas as gpd
import pandas as pd
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from geogrid import boundaries, generations, planning
from geogrid import planning_queries as queries
from geogrid.actors import ADMINISTRATOR, PLANNER, Actor
from geogrid.crs import parse_coord_type
from geogrid.errors import GeogridError, InputError, NotFound, ValidationFailed
from geogrid.maps import label, map_parts, offline
from geogrid.models import Generation
from geogrid.planner_maps import (
    NEW_SIDE,
    OLD_SIDE,
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
            "counts": queries.level_counts(session, actor, g.id),
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
    scheme = settings.scheme
    generation = _generation(session, generation_id)
    area, area_level = _area_param(actor)
    report = generation.validation or {}
    in_scope = planning.visible_issues(report.get("issues", []), actor)
    issues = planning.visible_issues(in_scope, actor, area)
    levels = queries.map_levels(scheme, actor, area_level)
    discarded = generations.is_discarded(generation)
    areas = (
        queries.empty_areas()
        if discarded
        else queries.areas_in_scope(session, actor, generation.id, levels, area=area)
    )
    m = generation_map(
        areas,
        levels=levels,
        tiles=settings.tiles,
        attribution=settings.tiles_attribution,
        language=language,
    )
    if issues and not discarded:
        named = queries.issue_areas(session, actor, scheme, generation.id, issues, area=area)
        validation_layer(issues, named, m=m, language=language, fit=areas.empty)
    changes = None
    if generation.status == "draft":
        changes = planning.draft_changes(session, actor, generation)
    return render_template(
        "planner_generation.html",
        generation=generation,
        counts=queries.level_counts(session, actor, generation.id),
        report=report,
        issues=issues[:MAX_LISTED_ISSUES],
        issues_total=len(issues),
        hidden_issues=len(report.get("issues", [])) - len(in_scope),
        area=area,
        below=_below(areas, levels),
        current=generations.current_generation(session),
        change_counts=changes.counts if changes else {},
        outside_scope=changes.outside_scope if changes else [],
        discarded=discarded,
        map=map_parts(offline(m, asset_url)),
        map_name=m.get_name(),
        level_of=partial(queries.issue_level, scheme),
        **_page_helpers(),
    )


@bp.post("/planner/generations/<int:generation_id>/activate")
def activate(generation_id: int) -> Response:
    """Validate a draft and make it current, as ``geogrid generations activate --commit``."""
    actor = page_actor(*ROLES)
    _require_confirmation()
    settings, session = get_settings(), get_session()
    draft = _generation(session, generation_id)
    planning.require_draft_in_scope(session, actor, draft, wording=gettext)
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
    planning.require_draft_in_scope(session, actor, draft, wording=gettext)
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
    old_id, new_id = queries.compared_ids(choices, _id_param("a"), _id_param("b"))
    old = generations.resolve_generation(session, old_id)
    new = generations.resolve_generation(session, new_id)
    level = request.args.get("level") or settings.scheme.default_geocode_level
    settings.scheme.level(level)
    area, _area_level = _area_param(actor)
    comparison = queries.compare_generations(session, actor, old, new, level, area=area)
    before, old_bounds = _side(session, old, comparison.old_rows, level, actor, area)
    after, new_bounds = _side(session, new, comparison.new_rows, level, actor, area)
    options = {
        "bounds": _union(old_bounds, new_bounds),
        "tiles": settings.tiles,
        "attribution": settings.tiles_attribution,
        "language": language,
    }
    changes = comparison.changes
    left = comparison_map(before, changes, title=_title(old), side=OLD_SIDE, **options)
    right = comparison_map(after, changes, title=_title(new), side=NEW_SIDE, **options)
    side_by_side(left, right)
    return render_template(
        "planner_compare.html",
        old=old,
        new=new,
        choices=choices,
        level=level,
        levels=settings.scheme.level_names,
        area=area,
        change_counts=comparison.change_counts,
        lineage=comparison.lineage,
        names=comparison.names,
        households_moved=comparison.households_moved,
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
    return planning.import_in_scope(
        session,
        actor,
        path,
        replace_level=form["replace_level"],
        wording=gettext,
        level=form["level"],
        fields=boundaries.FieldMap(*(form[f"{name}_field"] or None for name in FIELD_NAMES)),
        coord_type=parse_coord_type(form["crs"]),
        scheme=settings.scheme,
        rules=ValidationRules.from_settings(settings),
        repair=form["repair"],
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
        scoped=planning.is_scoped(actor),
        draft=generations.draft_generation(get_session()),
        **_page_helpers(),
    )
    if error is not None:
        return page, status_for(error)
    return (page, 422) if problems else page


# -- parameters and page parts ---------------------------------------------------------


def _area_param(actor: Actor) -> tuple[str | None, str | None]:
    """``?area=``: a code inside the actor's scope, and its level."""
    code = request.args.get("area", "").strip() or None
    if code is None:
        return None, None
    return code, planning.require_area_in_scope(get_settings().scheme, actor, code)


def _below(areas: gpd.GeoDataFrame, levels: list[str]) -> list[tuple[str, str]]:
    """Code and name of the areas one level below the top of the map, to zoom into."""
    if len(levels) < 2:
        return []
    below = areas[areas["level"] == levels[1]].sort_values("code")
    return list(zip(below["code"], below["name"].fillna(""), strict=True))


def _side(
    session: Session,
    generation: Generation,
    rows: pd.DataFrame,
    level: str,
    actor: Actor,
    area: str | None,
) -> tuple[gpd.GeoDataFrame | str, tuple[float, ...] | None]:
    """One side of a comparison: its areas (inline, or the layers URL when many), its bounds."""
    prefixes = planning.scope_prefixes(actor, area)
    if len(rows) > INLINE_AREAS and len(prefixes) == 1 and _has_layers_endpoint():
        from web.layers import layer_url  # registered only when the layers module is present

        url = layer_url(generation.id, level, within=prefixes[0])
        return url, queries.level_extent(session, actor, generation, level, area=area)
    areas = queries.areas_in_scope(session, actor, generation.id, [level], area=area)
    return areas, tuple(areas.total_bounds) if len(areas) else None


def _has_layers_endpoint() -> bool:
    return "layers.areas" in current_app.view_functions


def _union(*bounds: tuple[float, ...] | None) -> tuple[float, ...] | None:
    known = [b for b in bounds if b is not None]
    if not known:
        return None
    west, south, east, north = zip(*known, strict=True)
    return min(west), min(south), max(east), max(north)


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
