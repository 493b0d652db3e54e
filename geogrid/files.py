"""Boundary files and tables in and out: GeoJSON, GeoPackage, Shapefile, CSV and XLSX.

Readers never guess a coordinate system (the caller declares the coordinate type) and
never drop a record silently: a record that cannot be read is left out of the frame and
listed as a :class:`RecordProblem` with its number: the 1-based feature number, the line
number in a CSV file (the header is line 1), or the row number in an Excel sheet.

Text is decoded as UTF-8 (with or without a byte order mark) or, failing that, as
GB18030, the superset of GBK that Chinese Excel writes; anything else is refused. CSV and
XLSX cells are read as text, so ``0111`` stays ``0111``; GeoJSON numbers stay numbers.
Normalising codes is the caller's job (:func:`geogrid.codes.normalise_code`).
The writers live in :mod:`geogrid.filewriters` and are re-exported from here.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import shapely
from openpyxl.utils.exceptions import InvalidFileException
from shapely.errors import ShapelyError
from shapely.geometry import shape
from tqdm import tqdm

from geogrid.errors import FileFormatError, InputError
from geogrid.filewriters import _OGR_ERRORS, _SUFFIXES, TABLE_FORMATS, _say
from geogrid.filewriters import BoundaryFormat as BoundaryFormat
from geogrid.filewriters import write_boundary_file as write_boundary_file
from geogrid.filewriters import write_table as write_table

BOUNDARY_FORMATS = (
    "GeoJSON (.geojson, .json), GeoPackage (.gpkg), zipped Shapefile (.zip), "
    "Shapefile (.shp), CSV with a WKT column (.csv)"
)
#: Column names taken as the WKT geometry of a CSV file, compared without case.
WKT_FIELDS = ("wkt", "geometry", "geom", "the_geom")

_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass(frozen=True)
class RecordProblem:
    """A record that could not be read: its number, the field at fault and why."""

    record: int
    field: str | None
    message: str


@dataclass
class BoundaryFile:
    """The readable features of a boundary file, and the problems of the others.

    ``frame`` has no CRS unless the file declares one (GeoPackage, a Shapefile's .prj);
    ``records[i]`` is the feature or line number of row ``i`` of ``frame``.
    """

    path: Path
    frame: gpd.GeoDataFrame
    format: str
    encoding: str
    records: list[int]
    problems: list[RecordProblem] = field(default_factory=list)


@dataclass
class Table:
    """The readable rows of a table file; the frame's index (``line``) numbers them."""

    path: Path
    frame: pd.DataFrame
    format: str
    encoding: str
    problems: list[RecordProblem] = field(default_factory=list)

    @property
    def lines(self) -> list[int]:
        """The source line (or feature) number of each row of ``frame``."""
        return [int(line) for line in self.frame.index]


class _Unreadable(Exception):
    """One record cannot be read; it becomes a RecordProblem and never leaves the module."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- reading boundaries ---------------------------------------------------------------


def read_boundary_file(
    path: str | Path,
    *,
    wkt_field: str | None = None,
    layer: str | None = None,
    progress: bool = False,
) -> BoundaryFile:
    """Read the features of a GeoJSON, GeoPackage, Shapefile or WKT CSV file."""
    path = _existing(path)
    fmt = _file_format(path, ("geojson", "gpkg", "shapefile", "csv"), BOUNDARY_FORMATS)
    if wkt_field is not None and fmt != "csv":
        raise InputError(f"wkt_field is for CSV files; {path.name} is {fmt}", field="wkt_field")
    if layer is not None and fmt not in ("gpkg", "shapefile"):
        raise InputError(
            f"layer is for GeoPackage and zip files; {path.name} is {fmt}", field="layer"
        )
    if fmt == "geojson":
        return _geojson_boundaries(path, progress)
    if fmt == "csv":
        return _csv_boundaries(path, wkt_field, progress)
    return _ogr_boundaries(path, fmt, layer, progress)


def _geojson_boundaries(path: Path, progress: bool) -> BoundaryFile:
    features, encoding = _geojson_features(path)
    properties, geoms, records, problems = [], [], [], []
    for number, feature in enumerate(_bar(features, progress, path, "feature"), start=1):
        try:
            props, geometry = _feature_parts(feature)
            geoms.append(_geometry_from_geojson(geometry))
        except _Unreadable as exc:
            problems.append(RecordProblem(number, exc.field, exc.message))
            continue
        properties.append(props)
        records.append(number)
    frame = _geoframe(_columns(properties, path, records), geoms)
    return BoundaryFile(path, frame, "geojson", encoding, records, problems)


def _geometry_from_geojson(geometry: Any) -> shapely.Geometry:
    if geometry is None:
        raise _Unreadable("geometry", "the feature has no geometry (null)")
    try:
        geom = shape(geometry)
    except (ShapelyError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _Unreadable("geometry", f"the geometry cannot be read: {_say(exc)}") from None
    return _non_empty(geom)


def _csv_boundaries(path: Path, wkt_field: str | None, progress: bool) -> BoundaryFile:
    sheet = _read_csv(path, progress)
    wkt = _wkt_column(sheet.header, wkt_field, path)
    if wkt != "geometry" and "geometry" in sheet.header:
        message = f"{path.name}: a column 'geometry' besides the WKT column {wkt!r}; rename it"
        raise FileFormatError(message, field="geometry", file=str(path))
    at = sheet.header.index(wkt)
    texts = np.array([row[at] or "" for row in sheet.rows], dtype=object)
    # Parse all at once; only the values GEOS refuses are parsed again, to say why.
    parsed = shapely.from_wkt(texts, on_invalid="ignore")
    keep, geoms, problems = [], [], list(sheet.problems)
    for position, geom in enumerate(parsed):
        try:
            geoms.append(
                _non_empty(geom, wkt) if geom is not None else _wkt_problem(texts[position], wkt)
            )
            keep.append(position)
        except _Unreadable as exc:
            problems.append(RecordProblem(sheet.lines[position], exc.field, exc.message))
    columns = {
        name: _column([sheet.rows[i][column] for i in keep])
        for column, name in enumerate(sheet.header)
        if name != wkt
    }
    records = [sheet.lines[i] for i in keep]
    problems.sort(key=lambda problem: problem.record)
    return BoundaryFile(path, _geoframe(columns, geoms), "csv", sheet.encoding, records, problems)


def _wkt_column(header: list[str], wkt_field: str | None, path: Path) -> str:
    if wkt_field is not None:
        if wkt_field not in header:
            message = f"{path.name} has no column {wkt_field!r}; it has {', '.join(header)}"
            raise FileFormatError(message, field=wkt_field, file=str(path))
        return wkt_field
    found = [name for name in header if name.lower() in WKT_FIELDS]
    if len(found) != 1:
        which = f"several geometry columns ({', '.join(found)})" if found else "no geometry column"
        message = (
            f"{path.name} has {which}; name the WKT column (looked for {', '.join(WKT_FIELDS)})"
        )
        raise FileFormatError(message, field="wkt_field", file=str(path), columns=header)
    return found[0]


def _wkt_problem(text: str, wkt: str) -> shapely.Geometry:
    """Explain why GEOS refused a WKT value (it always raises)."""
    if not text.strip():
        raise _Unreadable(wkt, "the WKT value is empty")
    start = text if len(text) <= 40 else text[:40] + "…"
    try:
        shapely.from_wkt(text)
    except (ShapelyError, ValueError) as exc:
        raise _Unreadable(wkt, f"the WKT {start!r} cannot be parsed: {_say(exc)}") from None
    raise _Unreadable(wkt, f"the WKT {start!r} cannot be parsed")


def _ogr_boundaries(path: Path, fmt: str, layer: str | None, progress: bool) -> BoundaryFile:
    if fmt == "gpkg":
        source, encoding, layer, dbf_encoding = str(path), "utf-8", _gpkg_layer(path, layer), None
    else:
        source, encoding = _shapefile_source(path, layer)
        layer, dbf_encoding = None, encoding
    try:
        frame = pyogrio.read_dataframe(source, layer=layer, encoding=dbf_encoding)
    except _OGR_ERRORS as exc:
        raise FileFormatError(f"{path.name} cannot be read: {exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        message = (
            f"{path.name}: the attributes are not {encoding} text (byte {exc.start}); fix the .cpg"
        )
        raise FileFormatError(message, file=str(path), encoding=encoding) from None
    keep, problems = [], []
    for position, geom in enumerate(_bar(frame.geometry.values, progress, path, "feature")):
        try:
            if geom is None:
                raise _Unreadable(
                    "geometry", "the feature has no geometry, or one GDAL cannot read"
                )
            _non_empty(geom)
            keep.append(position)
        except _Unreadable as exc:
            problems.append(RecordProblem(position + 1, exc.field, exc.message))
    frame = frame.iloc[keep].reset_index(drop=True)
    return BoundaryFile(path, frame, fmt, encoding, [p + 1 for p in keep], problems)


def _gpkg_layer(path: Path, layer: str | None) -> str:
    try:
        layers = pyogrio.list_layers(path)
    except _OGR_ERRORS as exc:
        raise FileFormatError(
            f"{path.name} is not a readable GeoPackage: {exc}", file=str(path)
        ) from None
    spatial = [str(name) for name, kind in layers if kind is not None]
    if layer is not None and layer not in spatial:
        message = f"{path.name} has no layer {layer!r} with geometries; it has {', '.join(spatial)}"
        raise FileFormatError(message, field="layer", file=str(path), layers=spatial)
    if layer is None and len(spatial) != 1:
        which = (
            f"several layers ({', '.join(spatial)}); name one" if spatial else "no geometry layer"
        )
        raise FileFormatError(
            f"{path.name} has {which}", field="layer", file=str(path), layers=spatial
        )
    return layer or spatial[0]


def _shapefile_source(path: Path, layer: str | None) -> tuple[str, str]:
    """The GDAL path of a plain or zipped shapefile, and the encoding of its .dbf text."""
    if path.suffix.lower() == ".shp":
        parts = {p.suffix.lower(): p for p in path.parent.glob(path.stem + ".*")}
        _require_parts(path.name, parts)
        cpg = parts[".cpg"].read_bytes() if ".cpg" in parts else None
        return str(path), _dbf_encoding(path.name, cpg, parts[".dbf"].read_bytes())
    with zipfile.ZipFile(path) as archive:
        # Zips made on a Mac carry "__MACOSX/._grids.shp" resource forks: not shapefiles.
        names = [n for n in archive.namelist() if not Path(n).name.startswith("._")]
        shps = [n for n in names if n.lower().endswith(".shp") and layer in (None, Path(n).stem)]
        if len(shps) != 1:
            found = ", ".join(Path(name).stem for name in shps)
            which = f"several shapefiles ({found}); name one as the layer" if shps else "no .shp"
            raise FileFormatError(f"{path.name} holds {which}", field="layer", file=str(path))
        stem = shps[0][:-4]
        by_suffix = {name[len(stem) :].lower(): name for name in names if name[:-4] == stem}
        _require_parts(path.name, by_suffix)
        cpg = archive.read(by_suffix[".cpg"]) if ".cpg" in by_suffix else None
        encoding = _dbf_encoding(path.name, cpg, archive.read(by_suffix[".dbf"]))
    return f"/vsizip/{path.resolve()}/{shps[0]}", encoding


def _require_parts(name: str, parts: dict[str, Any]) -> None:
    missing = [suffix for suffix in (".shp", ".shx", ".dbf") if suffix not in parts]
    if missing:
        raise FileFormatError(f"{name}: the shapefile has no {', '.join(missing)} file", file=name)


def _dbf_encoding(name: str, cpg: bytes | None, dbf: bytes) -> str:
    """The encoding a .cpg names; without one, whichever of UTF-8 and GB18030 fits."""
    if cpg is not None:
        declared = cpg.decode("ascii", "replace").strip()
        words = declared.split()  # "UTF-8", "GBK", "936", "ANSI 936"
        try:
            codec = codecs.lookup("cp" + words[-1] if words and words[-1].isdigit() else declared)
        except LookupError:
            message = f"{name}: the .cpg file names an unknown encoding {declared!r}"
            raise FileFormatError(message, file=name) from None
        # GB2312 and GBK files routinely hold characters only their superset GB18030 has.
        return "gb18030" if codec.name in ("gb2312", "gbk") else codec.name
    # Chinese shapefiles are often GBK with no .cpg. A .dbf record is all text, so decode it.
    header_length = int.from_bytes(dbf[8:10], "little")
    _text, encoding = _decode(dbf[header_length:].rstrip(b"\x1a"), f"{name} (.dbf)")
    return "utf-8" if encoding == "utf-8-sig" else encoding


# -- reading tables -------------------------------------------------------------------


def read_table(path: str | Path, *, sheet: str | None = None, progress: bool = False) -> Table:
    """Read the rows of a CSV, XLSX (first sheet, or ``sheet``) or GeoJSON file."""
    path = _existing(path)
    fmt = _file_format(path, ("csv", "xlsx", "geojson"), TABLE_FORMATS)
    if sheet is not None and fmt != "xlsx":
        raise InputError(f"sheet is for Excel files; {path.name} is {fmt}", field="sheet")
    if fmt == "geojson":
        return _geojson_table(path, progress)
    text = _read_csv(path, progress) if fmt == "csv" else _read_xlsx(path, sheet, progress)
    columns = {name: [row[i] for row in text.rows] for i, name in enumerate(text.header)}
    index = pd.Index(text.lines, name="line", dtype="int64")
    frame = pd.DataFrame({name: _column(values, index) for name, values in columns.items()}, index)
    return Table(path, frame, fmt, text.encoding, text.problems)


def _geojson_table(path: Path, progress: bool) -> Table:
    features, encoding = _geojson_features(path)
    rows, lines, problems = [], [], []
    for number, feature in enumerate(_bar(features, progress, path, "feature"), start=1):
        try:
            props, geometry = _feature_parts(feature)
            rows.append({**props, **_point_lonlat(geometry, props)})
            lines.append(number)
        except _Unreadable as exc:
            problems.append(RecordProblem(number, exc.field, exc.message))
    index = pd.Index(lines, name="line", dtype="int64")
    frame = pd.DataFrame(_columns(rows, path, lines, index), index=index)
    return Table(path, frame, "geojson", encoding, problems)


def _point_lonlat(geometry: Any, props: dict[str, Any]) -> dict[str, Any]:
    """``lon`` and ``lat`` of a Point geometry; other geometries give none."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return {"lon": props.get("lon"), "lat": props.get("lat")}
    if "lon" in props or "lat" in props:
        message = "a 'lon' or 'lat' property beside a Point geometry; rename the property"
        raise _Unreadable("lon" if "lon" in props else "lat", message)
    coordinates = geometry.get("coordinates")
    if not (isinstance(coordinates, list) and len(coordinates) >= 2):
        coordinates = None
    if coordinates is None or not all(_is_number(c) for c in coordinates[:2]):
        raise _Unreadable("geometry", f"the Point coordinates {coordinates!r} are not [lon, lat]")
    return {"lon": coordinates[0], "lat": coordinates[1]}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Text:
    """Rows of text cells (None where empty) with their line numbers."""

    encoding: str
    header: list[str]
    rows: list[list[str | None]]
    lines: list[int]
    problems: list[RecordProblem]


def _read_csv(path: Path, progress: bool) -> _Text:
    text, encoding = _decode(path.read_bytes(), path.name)
    # A WKT polygon easily passes csv's 128 KiB field limit. The limit is process-wide,
    # so it is only ever raised, and never past the length of this text.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows, lines, problems = [], [], []
    line = 1
    try:
        for cells in _bar(
            reader, progress, path, "line", text.count("\n") + (not text.endswith("\n"))
        ):
            if header is None and cells:
                header = _header_names(cells, path, line)
            elif cells and len(cells) != len(header):
                message = f"{len(cells)} fields where the header has {len(header)}; check quotes"
                problems.append(RecordProblem(line, None, message))
            elif cells:
                rows.append([cell if cell != "" else None for cell in cells])
                lines.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FileFormatError(
            f"{path.name}, line {line}: {exc}", file=str(path), line=line
        ) from None
    if header is None:
        raise FileFormatError(f"{path.name} is empty: it has no header line", file=str(path))
    return _Text(encoding, header, rows, lines, problems)


def _read_xlsx(path: Path, sheet: str | None, progress: bool) -> _Text:
    # openpyxl directly rather than through pandas: the row numbers are then exactly the
    # ones Excel shows, and no cell is converted to a number behind the caller's back.
    # data_only: a formula cell gives the value Excel last computed, not the formula.
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        message = f"{path.name} is not a readable Excel .xlsx file: {_say(exc)}"
        raise FileFormatError(message, file=str(path)) from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            message = f"{path.name} has no sheet {sheet!r}; it has {', '.join(workbook.sheetnames)}"
            raise FileFormatError(message, field="sheet", file=str(path))
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        rows: list[tuple[int, list[str | None]]] = []
        for cells in _bar(worksheet.iter_rows(), progress, path, "row", worksheet.max_row):
            values = [_excel_text(cell.value) for cell in cells]
            while values and values[-1] is None:  # formatted but empty cells
                values.pop()
            if values:
                # Read-only sheets pad gaps with EmptyCell, which has no row number.
                rows.append((next(c.row for c in cells if hasattr(c, "row")), values))
    finally:
        workbook.close()
    if not rows:
        raise FileFormatError(f"{path.name}: sheet {worksheet.title!r} is empty", file=str(path))
    width = max(len(values) for _line, values in rows)
    (header_line, header), *data = [(line, v + [None] * (width - len(v))) for line, v in rows]
    names = _header_names(header, path, header_line)
    return _Text("utf-8", names, [v for _line, v in data], [line for line, _v in data], [])


def _excel_text(value: Any) -> str | None:
    """A cell value as the text Excel shows (numbers to 15 significant digits)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format(value, ".15g")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _header_names(cells: Sequence[str | None], path: Path, line: int) -> list[str]:
    names = [(cell or "").strip() or f"column_{i}" for i, cell in enumerate(cells, start=1)]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        message = f"{path.name}, line {line}: the header names {', '.join(twice)} more than once"
        raise FileFormatError(message, field=twice[0], file=str(path), line=line)
    return names


# -- shared reading helpers -----------------------------------------------------------


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """Text and encoding: UTF-8 (BOM or not) first, then GB18030; anything else is refused."""
    failures = []
    for encoding in _ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            failures.append((encoding, exc.start))
            continue
        if encoding == "utf-8-sig" and not data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8"
        return text.removeprefix("\ufeff"), encoding
    where = "; ".join(f"byte {at} (0x{data[at]:02x}) is not valid {enc}" for enc, at in failures)
    utf16 = data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    hint = " It looks like UTF-16 (Excel's 'Unicode text')." if utf16 else ""
    message = f"{name} is neither UTF-8 nor GBK/GB18030 text: {where}.{hint} Save it as UTF-8."
    raise FileFormatError(
        message, file=name, offset=failures[0][1], encodings_tried=list(_ENCODINGS)
    )


def _geojson_features(path: Path) -> tuple[list[Any], str]:
    """The features of a FeatureCollection or of a bare JSON array of Features."""
    text, encoding = _decode(path.read_bytes(), path.name)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{path.name} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise FileFormatError(message, file=str(path), line=exc.lineno) from None
    if isinstance(document, list):
        return document, encoding
    features = document.get("features") if isinstance(document, dict) else None
    if isinstance(features, list) and document.get("type") == "FeatureCollection":
        return features, encoding
    message = f"{path.name} is JSON but neither a FeatureCollection nor an array of Features"
    raise FileFormatError(message, file=str(path))


def _feature_parts(feature: Any) -> tuple[dict[str, Any], Any]:
    """A Feature's properties and its raw geometry member."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        found = feature.get("type") if isinstance(feature, dict) else type(feature).__name__
        raise _Unreadable(None, f"the entry is not a GeoJSON Feature (found {found!r})")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise _Unreadable("properties", f"properties is a {type(props).__name__}, not an object")
    return props, feature.get("geometry")


def _columns(
    rows: list[dict[str, Any]], path: Path, records: list[int], index: pd.Index | None = None
) -> dict[str, pd.Series]:
    """Property objects as columns, in the order their names first appear."""
    names: dict[str, None] = {}
    for row, record in zip(rows, records, strict=True):
        if "geometry" in row:
            message = f"{path.name}, feature {record}: rename the property 'geometry'"
            raise FileFormatError(message, field="geometry", file=str(path), record=record)
        names.update(dict.fromkeys(row))
    return {name: _column([row.get(name) for row in rows], index) for name in names}


def _column(values: list[Any], index: pd.Index | None = None) -> pd.Series:
    """A column that keeps values as given: text stays text and numbers stay exact.

    pandas would turn whole numbers with a gap into floats, silently changing a 17-digit
    code, so mixed columns stay Python objects.
    """
    kinds = {type(value) for value in values}
    if kinds <= {str, type(None)}:
        return pd.Series(values, dtype="str", index=index)
    if len(kinds) == 1 and kinds <= {int, float, bool}:
        return pd.Series(values, index=index)
    return pd.Series(values, dtype=object, index=index)


def _geoframe(columns: dict[str, pd.Series], geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, dtype="geometry"))


def _non_empty(geom: shapely.Geometry, field: str = "geometry") -> shapely.Geometry:
    if geom.is_empty:
        raise _Unreadable(field, f"the geometry is an empty {geom.geom_type}")
    return geom


def _file_format(path: Path, allowed: Sequence[str], supported: str) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt not in allowed:
        old_excel = " (save an .xls workbook as .xlsx)" if path.suffix.lower() == ".xls" else ""
        message = f"{path.name}: unsupported format{old_excel}; supported: {supported}"
        raise FileFormatError(message, file=str(path))
    return fmt


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", field="path")
    return path


def _bar(
    items: Iterable[Any], enabled: bool, path: Path, unit: str, total: int | None = None
) -> Iterator[Any]:
    """The items, with a progress bar on stderr when asked (a city's file takes a while)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    bar = tqdm(items, total=total, disable=not enabled, file=sys.stderr, desc=path.name, unit=unit)
    return iter(bar)
