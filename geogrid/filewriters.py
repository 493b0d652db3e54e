"""Boundary files and tables out: RFC 7946 GeoJSON, GeoPackage, CSV and XLSX.

The writing half of :mod:`geogrid.files`, which re-exports :func:`write_boundary_file` and
:func:`write_table`. CSV is UTF-8 with a BOM, so Excel shows Chinese names; XLSX cells
keep text as text, and text that starts like a formula is stored so it never runs. The
suffix table and OGR errors live here so the readers can import them without a cycle.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import shapely
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

from geogrid.errors import InputError

BoundaryFormat = Literal["geojson", "gpkg", "csv"]

TABLE_FORMATS = "CSV (.csv), Excel (.xlsx), GeoJSON (.geojson, .json)"

_SUFFIXES = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "shapefile",
    ".shp": "shapefile",
    ".csv": "csv",
    ".xlsx": "xlsx",
}
# GEOS writes the shortest digits that read back to the same double, cut at this many
# decimals; from 1e-4 upwards that needs at most 21 (smaller values switch to exponent
# notation). rounding_precision=-1 means 16 significant digits, which is not exact.
_WKT_DECIMALS = 25
# Spreadsheet programs evaluate a text cell starting with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@")
_EXCEL_CELL_LIMIT = 32_767
_OGR_ERRORS = (DataSourceError, DataLayerError, FieldError, GeometryError)


def _say(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def write_boundary_file(
    frame: gpd.GeoDataFrame,
    path: str | Path,
    fmt: BoundaryFormat,
    *,
    epsg: int | None = None,
    layer: str | None = None,
) -> None:
    """Write features as RFC 7946 GeoJSON, a GeoPackage layer, or CSV with a ``wkt`` column.

    An existing file at ``path`` is replaced. ``epsg`` labels the GeoPackage layer (by
    default the frame's CRS); GeoJSON and CSV carry no CRS: the caller knows what it wrote.
    """
    path = Path(path)
    names = [str(name) for name in frame.columns if name != frame.geometry.name]
    rows = frame.drop(columns=frame.geometry.name).itertuples(index=False, name=None)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if fmt == "geojson":
        if frame.crs is not None and not frame.crs.is_geographic:
            message = f"GeoJSON holds lon/lat, but the frame is in {frame.crs.name}; convert it"
            raise InputError(message, field="crs")
        # RFC 7946 rings follow the right-hand rule: exteriors counter-clockwise.
        oriented = shapely.orient_polygons(geoms, exterior_cw=False)
        _write_geojson(
            path, names, rows, [None if g is None else g.__geo_interface__ for g in oriented]
        )
    elif fmt == "gpkg":
        _write_gpkg(path, frame, epsg, layer)
    elif fmt == "csv":
        if "wkt" in names:
            raise InputError(
                "the frame has a column 'wkt'; CSV puts the geometry there", field="wkt"
            )
        wkt = shapely.to_wkt(geoms, rounding_precision=_WKT_DECIMALS, trim=True)
        _write_csv(
            path, [*names, "wkt"], ([*row, text] for row, text in zip(rows, wkt, strict=True))
        )
    else:
        raise InputError(f"unknown boundary format {fmt!r}; use geojson, gpkg or csv", field="fmt")


def write_table(
    frame: pd.DataFrame, path: str | Path, *, lon_field: str = "lon", lat_field: str = "lat"
) -> None:
    """Write rows as CSV (UTF-8 with BOM), XLSX (text stays text) or GeoJSON points.

    The frame's index is not written. For GeoJSON, each point is made from ``lon_field``
    and ``lat_field``; a row without two finite numbers there gets a null geometry and
    keeps both values as properties.
    """
    path = Path(path)
    names = [str(name) for name in frame.columns]
    rows = frame.itertuples(index=False, name=None)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt == "csv":
        _write_csv(path, names, rows)
    elif fmt == "xlsx":
        _write_xlsx(path, names, rows)
    elif fmt == "geojson":
        for name in (lon_field, lat_field):
            if name not in names:
                raise InputError(f"GeoJSON points need a {name!r} column", field=name)
        rows = list(rows)
        points = [_point(row[names.index(lon_field)], row[names.index(lat_field)]) for row in rows]
        _write_geojson(path, names, rows, points, drop=(lon_field, lat_field))
    else:
        raise InputError(f"{path.name}: tables are written as {TABLE_FORMATS}", field="path")


def _point(lon: Any, lat: Any) -> dict[str, Any] | None:
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        return None
    finite = math.isfinite(x) and math.isfinite(y)
    return {"type": "Point", "coordinates": [x, y]} if finite else None


def _write_geojson(
    path: Path,
    names: list[str],
    rows: Iterable[Sequence[Any]],
    geometries: Sequence[dict[str, Any] | None],
    drop: tuple[str, ...] = (),
) -> None:
    """A FeatureCollection with no "crs" member, in UTF-8 without a BOM (RFC 7946)."""
    features = []
    for row, geometry in zip(rows, geometries, strict=True):
        props = {name: _plain(value) for name, value in zip(names, row, strict=True)}
        if geometry is not None:
            props = {name: value for name, value in props.items() if name not in drop}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    collection = {"type": "FeatureCollection", "features": features}
    try:
        # json writes floats with repr: the shortest digits that read back to the same double.
        text = json.dumps(collection, ensure_ascii=False, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{path.name}: the features cannot be written as JSON: {_say(exc)}"
        ) from None
    path.write_text(text, encoding="utf-8")


def _write_gpkg(path: Path, frame: gpd.GeoDataFrame, epsg: int | None, layer: str | None) -> None:
    if epsg is not None:
        if frame.crs is not None and frame.crs.to_epsg() != epsg:
            message = f"the frame is in {frame.crs.name}, not EPSG:{epsg}; convert it first"
            raise InputError(message, field="epsg")
        frame = frame.set_crs(epsg, allow_override=True)
    path.unlink(missing_ok=True)
    try:
        with warnings.catch_warnings():
            # GCJ-02 and BD-09 have no EPSG code, so a layer without a CRS is deliberate.
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            # promote_to_multi=False keeps each geometry's type, so a read gives it back.
            pyogrio.write_dataframe(
                frame, path, driver="GPKG", layer=layer or path.stem, promote_to_multi=False
            )
    except (*_OGR_ERRORS, ValueError, TypeError) as exc:
        raise InputError(f"{path.name} cannot be written: {_say(exc)}") from None


def _write_csv(path: Path, header: list[str], rows: Iterable[Sequence[Any]]) -> None:
    # UTF-8 with a BOM: without it Excel takes a CSV for the local code page (GBK in China)
    # and shows Chinese names garbled. Our reader accepts either.
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows([_cell_text(value) for value in row] for row in rows)


def _write_xlsx(path: Path, header: list[str], rows: Iterable[Sequence[Any]]) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet("Sheet1")
    worksheet.append([_excel_cell(worksheet, name, 1, name) for name in header])
    for line, row in enumerate(rows, start=2):
        worksheet.append(
            [_excel_cell(worksheet, v, line, n) for v, n in zip(row, header, strict=True)]
        )
    workbook.save(path)


def _excel_cell(worksheet: Any, value: Any, line: int, name: str) -> Any:
    """A value for openpyxl; text that starts like a formula goes in a cell typed as text.

    openpyxl stores a string starting with "=" as a formula, so "=HYPERLINK(...)" typed by
    a resident would run in Excel. A cell of type "s" keeps the exact text, where a "'"
    prefix would change the value read back. "+", "-" and "@" are typed likewise.
    """
    value = _plain(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        return value
    where = f"row {line}, column {name!r}"
    if ILLEGAL_CHARACTERS_RE.search(value):
        raise InputError(f"{where}: a control character Excel cannot store", field=name, line=line)
    if len(value) > _EXCEL_CELL_LIMIT:
        message = f"{where}: {len(value)} characters, more than an Excel cell holds; write CSV"
        raise InputError(message, field=name, line=line)
    if not value.startswith(_FORMULA_PREFIXES):
        return value
    cell = WriteOnlyCell(worksheet, value=value)
    cell.data_type = "s"
    return cell


def _plain(value: Any) -> Any:
    """A plain Python value for writing; every kind of missing value becomes None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _cell_text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} values cannot be written to GeoJSON")
