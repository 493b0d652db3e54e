"""Reports and league tables over the API: ``GET /api/reports/<daily|weekly|monthly>``.

``?period=`` (``2026-11-28``, ``2026-W48``, ``2026-11``; default the last complete
one), ``level=`` (default the level incidents are placed in),
``attribution=recorded|current``, ``category=`` (an incident category code: count only
its incidents) and ``format=json|xlsx|csv`` (file headers in the request's language,
Chinese by default). For officials and administrators with a token; the report covers
the caller's scope (:func:`geogrid.reports.build_report` with the actor). Files come as
attachments named for the kind, period, level and category.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from flask import Blueprint, Response, jsonify

from geogrid import sheets
from geogrid.actors import ADMINISTRATOR, OFFICIAL
from geogrid.errors import InputError
from geogrid.periods import Period, check_kind, last_complete
from geogrid.reports import build_report
from geogrid.workdays import SHANGHAI
from web.auth import actor_in_role
from web.db import get_session, get_settings
from web.i18n import current_language
from web.incidents import query_text

bp = Blueprint("reports", __name__, url_prefix="/api/reports")

#: Roles that read reports: the people units are judged by.
READERS = (OFFICIAL, ADMINISTRATOR)
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


@bp.get("/<kind>")
def report(kind: str) -> Response:
    """The report as JSON, or as an XLSX or CSV attachment."""
    actor = actor_in_role(*READERS)
    check_kind(kind)
    settings = get_settings()
    file_format = (query_text("format") or "json").lower()
    if file_format not in ("json", *MEDIA_TYPES):
        raise InputError(f"format is json, xlsx or csv, not {file_format!r}", field="format")
    now = datetime.now(SHANGHAI)
    asked = query_text("period")
    period = Period.parse(kind, asked) if asked else last_complete(kind, now)
    level = query_text("level") or settings.scheme.default_geocode_level
    category = query_text("category")
    built = build_report(
        get_session(),
        settings,
        kind,
        period,
        level,
        attribution=query_text("attribution") or "recorded",
        actor=actor,
        now=now,
        category=category,
    )
    if file_format == "json":
        return jsonify(built.as_dict())
    writer = sheets.write_report_xlsx if file_format == "xlsx" else sheets.write_report_csv
    # A CSV has no title row: its name is what says which category it counts.
    only = f"-{category}" if category else ""
    name = f"report-{kind}-{period.label}-{level}{only}.{file_format}"
    with tempfile.TemporaryDirectory(prefix="geogrid-report-") as folder:
        path = Path(folder) / name
        writer(built, path, language=current_language())
        content = path.read_bytes()
    response = Response(content, mimetype=MEDIA_TYPES[file_format])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    # Scoped figures: no shared cache keeps one official's report for another.
    response.headers["Cache-Control"] = "private, no-store"
    return response
