"""Boundary sets in and out: import a file into a draft generation, export a level.

An import is all or nothing. Reading, field mapping, code checks and geometry checks
come first; if any record has a problem nothing is written. Otherwise the areas replace
their counterparts in the draft (see :func:`geogrid.drafts.load_into_draft`) and the whole draft is
validated, so the dry run shows exactly what activation would say. Topological problems
(overlaps, gaps, nesting) do not block an import into a draft — a planner may load grids
before micro-grids — but activation refuses a draft that has any.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy.orm import Session

from geogrid.codes import CodeScheme, normalise_code
from geogrid.crs import CoordType, geometry_from_storage, geometry_to_storage
from geogrid.drafts import Changes, load_frame, load_into_draft
from geogrid.errors import CodeError, GeogridError, InputError
from geogrid.files import RecordProblem, read_boundary_file, write_boundary_file
from geogrid.generations import (
    draft_for_import,
    draft_generation,
    generation_areas,
    metric_srid_of,
    resolve_generation,
)
from geogrid.models import STORAGE_SRID, Generation
from geogrid.shapes import as_multipolygon
from geogrid.validate import (
    Issue,
    ValidationReport,
    ValidationRules,
    repair_geometries,
    validate_areas,
)

#: Values accepted in a kind field, as planners write them.
KIND_WORDS = {
    "comprehensive": "comprehensive",
    "综合": "comprehensive",
    "综合网格": "comprehensive",
    "dedicated": "dedicated",
    "专属": "dedicated",
    "专属网格": "dedicated",
    "专项网格": "dedicated",
}

#: Columns of geogrid's exports that describe the export, not the area's attributes.
EXPORT_ATTRIBUTES = "attributes"
EXPORT_ONLY = frozenset({"geometry", "level", "generation", EXPORT_ATTRIBUTES})


AREA_COLUMNS = ["code", "level", "parent_code", "name", "kind", "households", "population"]


@dataclass(frozen=True)
class FieldMap:
    """Which source fields hold what; only ``code`` is required."""

    code: str = "code"
    name: str | None = None
    parent: str | None = None
    households: str | None = None
    population: str | None = None
    kind: str | None = None

    def with_export_columns(self, columns: Sequence[str]) -> FieldMap:
        """Fill unnamed fields from the columns geogrid's own exports write, when present."""
        present = set(columns)
        return FieldMap(
            code=self.code,
            name=self.name or ("name" if "name" in present else None),
            parent=self.parent or ("parent_code" if "parent_code" in present else None),
            households=self.households or ("households" if "households" in present else None),
            population=self.population or ("population" if "population" in present else None),
            kind=self.kind or ("kind" if "kind" in present else None),
        )

    def used(self) -> set[str]:
        """The source fields consumed; every other field becomes a free attribute."""
        return {
            f
            for f in (
                self.code,
                self.name,
                self.parent,
                self.households,
                self.population,
                self.kind,
            )
            if f
        }


@dataclass
class PreparedAreas:
    """Areas read from a file and normalised, with every problem found on the way."""

    areas: gpd.GeoDataFrame
    problems: list[RecordProblem] = field(default_factory=list)
    repairs: list[Issue] = field(default_factory=list)
    source_format: str = ""
    encoding: str | None = None


@dataclass
class ImportResult:
    """The outcome of an import: problems that blocked it, or the changes and the report."""

    level: str
    read: int
    prepared: PreparedAreas
    generation: Generation | None = None
    #: Whether this import opened the draft (a dry run then names no number).
    new_draft: bool = False
    changes: Changes | None = None
    report: ValidationReport | None = None

    @property
    def blocked(self) -> bool:
        """Whether record problems stopped the import before anything was written."""
        return bool(self.prepared.problems)


def import_boundaries(
    session: Session,
    path: Path,
    *,
    level: str,
    fields: FieldMap,
    coord_type: CoordType,
    scheme: CodeScheme,
    rules: ValidationRules,
    created_by: str,
    generation_id: int | None = None,
    replace_level: bool = False,
    repair: bool = False,
    with_parents: bool = False,
    wkt_field: str | None = None,
    progress: bool = False,
) -> ImportResult:
    """Read, check and load a boundary file into a draft; the caller commits or rolls back."""
    scheme.level(level)
    source = read_boundary_file(path, wkt_field=wkt_field, progress=progress)
    prepared = prepare_areas(
        source.frame,
        level=level,
        fields=fields,
        coord_type=coord_type,
        scheme=scheme,
        repair=repair,
        records=source.records,
    )
    prepared.problems[:0] = source.problems
    prepared.source_format, prepared.encoding = source.format, source.encoding
    result = ImportResult(
        level=level, read=len(source.frame) + len(source.problems), prepared=prepared
    )
    if result.blocked:
        return result
    result.new_draft = generation_id is None and draft_generation(session) is None
    draft = draft_for_import(
        session, generation_id, created_by=created_by, description=f"import of {Path(path).name}"
    )
    result.generation = draft
    if with_parents:
        areas = derive_parents(prepared.areas, scheme)
        result.changes = load_frame(session, areas, scheme=scheme, generation=draft)
    else:
        result.changes = load_into_draft(
            session,
            prepared.areas,
            level=level,
            generation=draft,
            scheme=scheme,
            replace_level=replace_level,
        )
    areas = generation_areas(session, draft.id)
    result.report = validate_areas(
        areas, scheme, rules, metric_epsg=metric_srid_of(session, draft), progress=progress
    )
    draft.validation = result.report.as_dict()
    session.flush()
    return result


def prepare_areas(
    frame: gpd.GeoDataFrame,
    *,
    level: str,
    fields: FieldMap,
    coord_type: CoordType,
    scheme: CodeScheme,
    repair: bool = False,
    records: Sequence[int] | None = None,
) -> PreparedAreas:
    """Map source fields to areas, normalise codes, convert to CGCS2000; collect problems."""
    records = list(records) if records is not None else list(range(1, len(frame) + 1))
    problems: list[RecordProblem] = []
    _require_fields(frame, fields)
    fields = fields.with_export_columns(list(frame.columns))
    rows: list[dict[str, Any]] = []
    keep: list[int] = []
    for position, (record, row) in enumerate(
        zip(records, frame.itertuples(index=False), strict=True)
    ):
        values = row._asdict()
        try:
            rows.append(_area_fields(values, level, fields, scheme))
            keep.append(position)
        except GeogridError as exc:
            problems.append(RecordProblem(record, exc.field, exc.message))
    geoms = np.asarray(frame.geometry.values, dtype=object)[keep]
    kept_records = [records[i] for i in keep]
    problems += _duplicate_codes(rows, kept_records)
    problems += _wrong_geometry_types(geoms, rows, kept_records)
    repairs: list[Issue] = []
    if repair:
        geoms, repairs = repair_geometries(geoms, [r["code"] for r in rows])
    # Validity is judged on the stored shape: a conversion can, rarely, break a ring.
    geoms = geometry_to_storage(as_multipolygon(geoms), coord_type) if len(geoms) else geoms
    out_of_range = _out_of_range(geoms, rows, kept_records)
    problems += out_of_range or _invalid_geometries(geoms, rows, kept_records)
    areas = gpd.GeoDataFrame(rows, geometry=list(geoms), crs=f"EPSG:{STORAGE_SRID}")
    if areas.empty:
        areas = gpd.GeoDataFrame(
            columns=[*AREA_COLUMNS, "attributes", "geometry"],
            geometry="geometry",
            crs=f"EPSG:{STORAGE_SRID}",
        )
    if not len(frame) and not problems:
        problems.append(RecordProblem(0, None, "the file holds no features"))
    return PreparedAreas(areas, problems, repairs)


def export_areas(
    session: Session,
    path: Path,
    *,
    level: str,
    fmt: str,
    coord_type: CoordType,
    generation_id: int | None = None,
    within: str | None = None,
) -> int:
    """Write a level of a generation to a file (RFC 7946 GeoJSON, GeoPackage or CSV)."""
    generation = resolve_generation(session, generation_id)
    areas = generation_areas(session, generation.id, level=level, within=within)
    if areas.empty:
        raise InputError(f"generation {generation.id} has no {level} areas", field="level")
    out = areas[AREA_COLUMNS].copy()
    out["attributes"] = [
        json.dumps(a, ensure_ascii=False, sort_keys=True) for a in areas["attributes"]
    ]
    out["generation"] = generation.id
    geoms = geometry_from_storage(np.asarray(areas.geometry.values, dtype=object), coord_type)
    frame = gpd.GeoDataFrame(out, geometry=list(geoms), crs=_export_crs(coord_type))
    write_boundary_file(frame, path, fmt)
    return len(frame)


def areas_frame(
    session: Session,
    *,
    level: str | None = None,
    within: str | None = None,
    generation: int | None = None,
) -> gpd.GeoDataFrame:
    """The areas of a generation (the current one by default) as a GeoDataFrame."""
    return generation_areas(
        session, resolve_generation(session, generation).id, level=level, within=within
    )


def derive_parents(areas: gpd.GeoDataFrame, scheme: CodeScheme) -> gpd.GeoDataFrame:
    """Build every missing ancestor level by dissolving the areas by code prefix.

    For boundary sets published only at the finest level (Chicago's police beats come
    without district or sector outlines), so that the hierarchy is complete. A derived
    area is named by its code and carries the sum of its children's households.
    """
    levels = sorted(set(areas["level"]), key=scheme.depth)
    frames = [areas]
    children = areas
    level = levels[0]
    while (parent := scheme.parent_level(level)) is not None:
        groups = children.groupby(children["code"].str[: parent.length], sort=True)
        rows = []
        for code, group in groups:
            households = group["households"].dropna()
            rows.append(
                {
                    "code": code,
                    "level": parent.name,
                    "parent_code": scheme.parent_of(code),
                    "name": code,
                    "kind": "comprehensive",
                    "households": int(households.sum()) if len(households) else None,
                    "population": None,
                    "attributes": {"derived_from": level},
                    "geometry": shapely.MultiPolygon(
                        shapely.get_parts(
                            shapely.union_all(np.asarray(group.geometry.values, dtype=object))
                        )
                    ),
                }
            )
        children = gpd.GeoDataFrame(rows, geometry="geometry", crs=areas.crs)
        frames.insert(0, children)
        level = parent.name
    return gpd.GeoDataFrame(
        pd.concat(frames, ignore_index=True), geometry="geometry", crs=areas.crs
    )


# -- field mapping -------------------------------------------------------------------


def _require_fields(frame: pd.DataFrame, fields: FieldMap) -> None:
    missing = [f for f in sorted(fields.used()) if f not in frame.columns]
    if missing:
        present = ", ".join(c for c in frame.columns if c != frame.geometry.name) or "none"
        raise InputError(
            f"the file has no field {', '.join(repr(m) for m in missing)}; "
            f"its fields are {present}",
            field=missing[0],
        )


def _area_fields(
    values: dict[str, Any], level: str, fields: FieldMap, scheme: CodeScheme
) -> dict[str, Any]:
    code = normalise_code(values[fields.code], field=fields.code)
    scheme.validate(code, level, field=fields.code)
    parent = scheme.parent_of(code)
    if fields.parent:
        given = _text(values[fields.parent])
        given = normalise_code(given, field=fields.parent) if given else None
        if given != parent:
            raise CodeError(
                f"parent code {given!r} does not match code {code!r}, whose parent is {parent!r}",
                field=fields.parent,
            )
    attributes = _exported_attributes(values.get(EXPORT_ATTRIBUTES))
    attributes.update(
        {
            k: _json_value(v)
            for k, v in values.items()
            if k not in fields.used() and k not in EXPORT_ONLY and _json_value(v) is not None
        }
    )
    return {
        "code": code,
        "level": level,
        "parent_code": parent,
        "name": _text(values[fields.name]) if fields.name else "",
        "kind": _kind(values[fields.kind], fields.kind) if fields.kind else "comprehensive",
        "households": _count(values[fields.households], fields.households)
        if fields.households
        else None,
        "population": _count(values[fields.population], fields.population)
        if fields.population
        else None,
        "attributes": attributes,
    }


def _exported_attributes(value: Any) -> dict[str, Any]:
    """The free attributes of a geogrid export, written as one JSON column."""
    if isinstance(value, dict):  # GDAL and QGIS turn a JSON string back into an object
        return value
    text = _text(value)
    if not text:
        return {}
    try:
        decoded = json.loads(text)
    except ValueError:
        raise InputError(
            f"{EXPORT_ATTRIBUTES} is not JSON: {text[:60]!r}", field=EXPORT_ATTRIBUTES
        ) from None
    if not isinstance(decoded, dict):
        raise InputError(f"{EXPORT_ATTRIBUTES} is not a JSON object", field=EXPORT_ATTRIBUTES)
    return decoded


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _kind(value: Any, field_name: str) -> str:
    text = _text(value)
    if not text:
        return "comprehensive"
    kind = KIND_WORDS.get(text.lower())
    if kind is None:
        raise InputError(
            f"kind {text!r} is not one of {', '.join(sorted(KIND_WORDS))}", field=field_name
        )
    return kind


def _count(value: Any, field_name: str) -> int | None:
    text = _text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{text!r} is not a number", field=field_name) from None
    if number < 0 or not number.is_integer():
        raise InputError(f"{text!r} is not a whole number of 0 or more", field=field_name)
    return int(number)


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _duplicate_codes(rows: list[dict[str, Any]], records: list[int]) -> list[RecordProblem]:
    first: dict[str, int] = {}
    problems = []
    for row, record in zip(rows, records, strict=True):
        if row["code"] in first:
            problems.append(
                RecordProblem(
                    record, "code", f"code {row['code']} repeats record {first[row['code']]}"
                )
            )
        else:
            first[row["code"]] = record
    return problems


def _wrong_geometry_types(
    geoms: np.ndarray, rows: list[dict[str, Any]], records: list[int]
) -> list[RecordProblem]:
    problems = []
    for geom, row, record in zip(geoms, rows, records, strict=True):
        if geom is None or shapely.is_empty(geom):
            problems.append(
                RecordProblem(record, "geometry", f"area {row['code']} has no geometry")
            )
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(
                RecordProblem(
                    record, "geometry", f"area {row['code']} is a {geom.geom_type}, not a polygon"
                )
            )
    return problems


def _out_of_range(
    geoms: np.ndarray, rows: list[dict[str, Any]], records: list[int]
) -> list[RecordProblem]:
    """Areas whose stored coordinates are not lon/lat at all: swapped axes or a wrong --crs."""
    problems = []
    for geom, row, record in zip(geoms, rows, records, strict=True):
        if geom is None or shapely.is_empty(geom):
            continue
        x0, y0, x1, y1 = shapely.bounds(geom)
        if (
            all(map(math.isfinite, (x0, y0, x1, y1)))
            and -180 <= x0 <= x1 <= 180
            and -90 <= y0 <= y1 <= 90
        ):
            continue
        hint = (
            "; lat and lon look swapped (x holds latitudes, y longitudes)"
            if -90 <= x0 <= x1 <= 90 and (abs(y0) > 90 or abs(y1) > 90)
            else "; check --crs"
        )
        problems.append(
            RecordProblem(
                record,
                "geometry",
                f"area {row['code']} has coordinates outside lon ±180 / lat ±90 "
                f"(x {x0:.6g}..{x1:.6g}, y {y0:.6g}..{y1:.6g}){hint}",
            )
        )
    return problems


def _invalid_geometries(
    geoms: np.ndarray, rows: list[dict[str, Any]], records: list[int]
) -> list[RecordProblem]:
    polygonal = np.array(
        [g is not None and g.geom_type in ("Polygon", "MultiPolygon") for g in geoms], dtype=bool
    )
    problems = []
    if not polygonal.any():
        return problems
    reasons = shapely.is_valid_reason(geoms[polygonal])
    for index, reason in zip(np.flatnonzero(polygonal), reasons, strict=True):
        if reason != "Valid Geometry":
            problems.append(
                RecordProblem(
                    records[index],
                    "geometry",
                    f"area {rows[index]['code']} is not a valid polygon: {reason} "
                    "(fix it in the source, or import with --repair to apply make_valid)",
                )
            )
    return problems


def _export_crs(coord_type: CoordType) -> str | None:
    epsg = coord_type.epsg
    return f"EPSG:{epsg}" if epsg else None
