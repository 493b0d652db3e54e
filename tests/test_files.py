"""Reading and writing boundary files and tables (pure: no database)."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from geometries import NE, NW, SE, SW, lonlat
from shapely import MultiPolygon, Polygon

from geogrid.errors import FileFormatError, InputError
from geogrid.files import (
    RecordProblem,
    read_boundary_file,
    read_table,
    write_boundary_file,
    write_table,
)

#: A clockwise square with a clockwise hole: both rings wrong for RFC 7946.
HOLED = Polygon(
    [(0, 0), (0, 100), (100, 100), (100, 0)], [[(40, 40), (40, 60), (60, 60), (60, 40)]]
)
SQUARE_WKT = "POLYGON ((119 36, 119.1 36, 119.1 36.1, 119 36.1, 119 36))"


def grids() -> gpd.GeoDataFrame:
    """Three grids in lon/lat with awkward coordinates, codes as text, Chinese names."""
    return gpd.GeoDataFrame(
        {
            "code": ["370705007001001", "370705007001002", "0111"],
            "name": ["广文街道一网格", "北海社区", "=SUM(A1)"],
            "households": [301, 288, 0],
            "area_km2": [0.1, 1 / 3, 2.5e-7],
        },
        geometry=[lonlat(HOLED), MultiPolygon([lonlat(SE), lonlat(NE)]), lonlat(NW)],
    )


def feature(geometry: dict | None, **properties) -> dict:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def square(x: float = 119.0) -> dict:
    ring = [[x, 36.0], [x + 0.1, 36.0], [x + 0.1, 36.1], [x, 36.1], [x, 36.0]]
    return {"type": "Polygon", "coordinates": [ring]}


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
def test_a_written_boundary_file_reads_back_exactly(tmp_path, fmt):
    original = grids()
    path = tmp_path / f"grids.{fmt}"
    write_boundary_file(original, path, fmt, epsg=4490 if fmt == "gpkg" else None)
    source = read_boundary_file(path)
    assert source.problems == []
    assert source.records == [1, 2, 3] if fmt != "csv" else source.records == [2, 3, 4]
    expected = original.geometry.values
    if fmt == "geojson":  # written with RFC 7946 winding, so compare with the oriented shapes
        expected = shapely.orient_polygons(expected, exterior_cw=False)
    assert shapely.equals_exact(source.frame.geometry.values, expected, tolerance=0).all()
    as_text = fmt == "csv"  # CSV holds text; the caller converts
    for column in ["code", "name", "households", "area_km2"]:
        want = [str(v) for v in original[column]] if as_text else list(original[column])
        assert list(source.frame[column]) == want, column
    assert source.frame.crs == ("EPSG:4490" if fmt == "gpkg" else None)


@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_text_formats_keep_every_bit_of_a_coordinate(tmp_path, fmt):
    # Each needs 17 significant digits, or sits where GEOS switches to exponent notation.
    values = [
        math.nextafter(119.1, 180),
        math.nextafter(36.7, 0),
        0.12636320106664156,
        -0.00012345678901234567,
        1.2345678901234567e-5,
        1e-20,
        1e300,
    ]
    frame = gpd.GeoDataFrame(
        {"n": range(len(values))}, geometry=shapely.points(values, values[::-1])
    )
    write_boundary_file(frame, tmp_path / f"points.{fmt}", fmt)
    back = read_boundary_file(tmp_path / f"points.{fmt}").frame
    assert shapely.equals_exact(back.geometry.values, frame.geometry.values, tolerance=0).all()


def test_written_geojson_follows_rfc_7946(tmp_path):
    path = tmp_path / "grids.geojson"
    write_boundary_file(grids(), path, "geojson")
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert "广文街道一网格".encode() in raw  # readable, not \u escapes
    document = json.loads(raw)
    assert "crs" not in document
    holed = shapely.geometry.shape(document["features"][0]["geometry"])
    assert holed.exterior.is_ccw and not holed.interiors[0].is_ccw
    first = document["features"][0]["geometry"]["coordinates"][0][0]
    assert first[0] in shapely.get_coordinates(lonlat(HOLED))[:, 0]  # repr, not rounded


def test_geojson_refuses_projected_coordinates(tmp_path):
    frame = gpd.GeoDataFrame({"code": ["1"]}, geometry=[SW], crs="EPSG:4549")
    with pytest.raises(InputError, match="lon/lat"):
        write_boundary_file(frame, tmp_path / "x.geojson", "geojson")


def test_written_csv_has_a_bom_for_excel(tmp_path):
    path = tmp_path / "grids.csv"
    write_boundary_file(grids(), path, "csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfcode,name,households,area_km2,wkt\r\n")


# -- GeoJSON --------------------------------------------------------------------------


def test_a_bare_array_of_features_is_read(tmp_path):
    path = write_json(tmp_path / "grids.json", [feature(square(), code="1"), feature(square(120))])
    source = read_boundary_file(path)
    assert source.format == "geojson" and source.encoding == "utf-8"
    assert len(source.frame) == 2 and source.frame.crs is None
    assert source.frame["code"].iloc[0] == "1" and pd.isna(source.frame["code"].iloc[1])


def test_each_broken_feature_is_reported_by_number(tmp_path):
    two_points = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}
    features = [
        feature(square(), code="a"),
        feature(two_points, code="b"),
        feature(None, code="c"),
        {"type": "Polygon", "coordinates": []},
        feature({"type": "Polygon", "coordinates": []}, code="e"),
        feature({"type": "Polygonn", "coordinates": []}, code="f"),
        feature(square(), code="g"),
    ]
    path = write_json(
        tmp_path / "grids.geojson", {"type": "FeatureCollection", "features": features}
    )
    source = read_boundary_file(path)
    assert list(source.frame["code"]) == ["a", "g"]
    assert source.records == [1, 7]
    assert [(p.record, p.field) for p in source.problems] == [
        (2, "geometry"),
        (3, "geometry"),
        (4, None),
        (5, "geometry"),
        (6, "geometry"),
    ]
    assert "4 coordinates" in source.problems[0].message
    assert "empty" in source.problems[3].message


def test_geojson_numbers_stay_numbers(tmp_path):
    path = write_json(
        tmp_path / "grids.geojson",
        [feature(square(), code=370705001, ratio=0.5), feature(square(), code=37070500700100302)],
    )
    frame = read_boundary_file(path).frame
    assert list(frame["code"]) == [370705001, 37070500700100302]
    assert frame["ratio"].iloc[0] == 0.5 and frame["ratio"].iloc[1] is None  # not NaN-coerced


def test_json_that_is_not_geojson_is_refused(tmp_path):
    path = write_json(tmp_path / "x.geojson", {"type": "Topology"})
    with pytest.raises(FileFormatError, match="x.geojson"):
        read_boundary_file(path)
    (tmp_path / "y.geojson").write_text('{"type": "FeatureCollection", ', encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"y.geojson is not JSON: .* line 1"):
        read_boundary_file(tmp_path / "y.geojson")


# -- CSV and encodings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "reported"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030")]
)
def test_csv_in_utf8_with_or_without_bom_and_gbk(tmp_path, encoding, reported):
    path = tmp_path / "grids.csv"
    text = f'code,name,wkt\n370705001,广文街道,"{SQUARE_WKT}"\n0111,北海路,"{SQUARE_WKT}"\n'
    path.write_bytes(text.encode(encoding))
    source = read_boundary_file(path)
    assert source.encoding == reported
    assert list(source.frame["name"]) == ["广文街道", "北海路"]
    assert list(source.frame["code"]) == ["370705001", "0111"]
    table = read_table(path)
    assert table.encoding == reported and list(table.frame["name"]) == ["广文街道", "北海路"]


def test_an_undecodable_file_names_the_byte_and_the_encodings_tried(tmp_path):
    path = tmp_path / "grids.csv"
    path.write_bytes("code,name\n1,广文\n".encode("utf-16"))
    with pytest.raises(FileFormatError) as caught:
        read_table(path)
    assert "grids.csv" in caught.value.message and "byte 0" in caught.value.message
    assert "UTF-16" in caught.value.message
    assert caught.value.details["offset"] == 0
    assert caught.value.details["encodings_tried"] == ["utf-8-sig", "gb18030"]


def test_a_broken_wkt_row_is_reported_by_line_while_the_others_load(tmp_path):
    path = tmp_path / "grids.csv"
    path.write_text(
        "code,name,WKT\n"
        f'1,"two-line\nname","{SQUARE_WKT}"\n'  # lines 2 and 3
        '2,broken,"POLYGON ((119 36, 119.1"\n'  # line 4
        "3,empty,\n"  # line 5
        "4,nothing,POINT EMPTY\n"  # line 6
        f'5,fine,"{SQUARE_WKT}"\n',  # line 7
        encoding="utf-8",
    )
    source = read_boundary_file(path)
    assert list(source.frame["code"]) == ["1", "5"]
    assert source.records == [2, 7]
    assert [(p.record, p.field) for p in source.problems] == [(4, "WKT"), (5, "WKT"), (6, "WKT")]
    assert "POLYGON ((119 36, 119.1" in source.problems[0].message
    assert "WKT" not in source.frame.columns


def test_the_wkt_column_is_found_or_named(tmp_path):
    path = tmp_path / "grids.csv"
    path.write_text(f'code,the_geom,shape\n1,"{SQUARE_WKT}","{SQUARE_WKT}"\n', encoding="utf-8")
    assert list(read_boundary_file(path).frame.columns) == ["code", "shape", "geometry"]
    assert list(read_boundary_file(path, wkt_field="shape").frame.columns) == [
        "code",
        "the_geom",
        "geometry",
    ]
    path.write_text("code,name\n1,a\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="no geometry column"):
        read_boundary_file(path)


def test_csv_cells_are_read_as_written(tmp_path):
    path = tmp_path / "points.csv"
    text = "code,lon,lat,note\n370705001,119.1,36.7,\n0111,119.2,36.8,x\n"
    path.write_text(text, encoding="utf-8")
    table = read_table(path)
    assert list(table.frame["code"]) == ["370705001", "0111"]
    assert list(table.frame["lon"]) == ["119.1", "119.2"]
    assert pd.isna(table.frame["note"].iloc[0])
    assert table.lines == [2, 3]


def test_a_row_with_the_wrong_number_of_fields_is_reported(tmp_path):
    path = tmp_path / "points.csv"
    lines = ["code,lon,lat", "1,119.1,36.7", "2,119,2,36.8", "", "3,119.3", "4,119.4,36.9"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = read_table(path)
    assert table.lines == [2, 6]
    assert [(p.record, p.field) for p in table.problems] == [(3, None), (5, None)]
    assert "4 fields" in table.problems[0].message


def test_a_progress_bar_goes_to_stderr_when_asked(tmp_path, capsys):
    path = tmp_path / "points.csv"
    path.write_text("code\n1\n2\n", encoding="utf-8")
    read_table(path)
    assert capsys.readouterr().err == ""
    read_table(path, progress=True)
    assert "points.csv" in capsys.readouterr().err


def test_unknown_formats_list_the_supported_ones(tmp_path):
    path = tmp_path / "grids.kml"
    path.write_text("<kml/>", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"grids.kml.*GeoPackage \(.gpkg\)"):
        read_boundary_file(path)
    with pytest.raises(FileFormatError, match=r"Excel \(.xlsx\)"):
        read_table(path)


# -- GeoPackage and Shapefile ---------------------------------------------------------


def shapefile_parts(tmp_path: Path, encoding: str) -> dict[str, bytes]:
    """The files of a shapefile of two Chinese-named grids, written in ``encoding``."""
    frame = gpd.GeoDataFrame(
        {"code": ["370705001", "0111"], "name": ["广文街道", "北海"]},
        geometry=[lonlat(SW), lonlat(SE)],
        crs="EPSG:4490",
    )
    folder = tmp_path / encoding
    folder.mkdir()
    pyogrio.write_dataframe(frame, folder / "grids.shp", encoding=encoding)
    return {path.suffix: path.read_bytes() for path in folder.iterdir()}


def zipped(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for suffix, data in parts.items():
            archive.writestr(f"grids{suffix}", data)
            archive.writestr(f"__MACOSX/._grids{suffix}", b"\x00\x05\x16\x07")  # a Mac zip
    return path


def test_a_zipped_shapefile_honours_its_cpg(tmp_path):
    parts = shapefile_parts(tmp_path, "UTF-8")
    assert parts[".cpg"].strip() == b"UTF-8"
    source = read_boundary_file(zipped(tmp_path / "grids.zip", parts))
    assert (source.format, source.encoding) == ("shapefile", "utf-8")
    assert list(source.frame["name"]) == ["广文街道", "北海"]
    assert list(source.frame["code"]) == ["370705001", "0111"]
    assert source.records == [1, 2] and source.frame.crs == "EPSG:4490"


def test_a_gbk_shapefile_without_cpg_is_detected(tmp_path):
    parts = shapefile_parts(tmp_path, "GBK")
    del parts[".cpg"]
    source = read_boundary_file(zipped(tmp_path / "grids.zip", parts))
    assert source.encoding == "gb18030"
    assert list(source.frame["name"]) == ["广文街道", "北海"]
    for suffix, data in parts.items():
        (tmp_path / f"plain{suffix}").write_bytes(data)
    assert list(read_boundary_file(tmp_path / "plain.shp").frame["name"]) == ["广文街道", "北海"]


def test_a_zip_without_a_complete_shapefile_is_refused(tmp_path):
    parts = shapefile_parts(tmp_path, "UTF-8")
    del parts[".dbf"]
    with pytest.raises(FileFormatError, match=r"grids.zip: the shapefile has no .dbf"):
        read_boundary_file(zipped(tmp_path / "grids.zip", parts))


def test_a_geopackage_with_several_layers_needs_a_layer_name(tmp_path):
    path = tmp_path / "city.gpkg"
    frame = gpd.GeoDataFrame({"code": ["1"]}, geometry=[lonlat(SW)], crs="EPSG:4490")
    pyogrio.write_dataframe(frame, path, layer="grids")
    pyogrio.write_dataframe(frame.assign(code="2"), path, layer="communities", append=True)
    with pytest.raises(FileFormatError, match="several layers"):
        read_boundary_file(path)
    assert list(read_boundary_file(path, layer="communities").frame["code"]) == ["2"]


def test_empty_geometries_in_a_geopackage_are_reported(tmp_path):
    path = tmp_path / "grids.gpkg"
    frame = gpd.GeoDataFrame(
        {"code": ["1", "2", "3"]}, geometry=[lonlat(SW), None, Polygon()], crs="EPSG:4490"
    )
    pyogrio.write_dataframe(frame, path)
    source = read_boundary_file(path)
    assert list(source.frame["code"]) == ["1"] and source.records == [1]
    assert [(p.record, p.field) for p in source.problems] == [(2, "geometry"), (3, "geometry")]


# -- tables ---------------------------------------------------------------------------


def test_xlsx_cells_are_read_as_text_with_excel_row_numbers(tmp_path):
    path = tmp_path / "points.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in [["code", "lon", "name"], ["0111", 119.1, "广文"], [], [370705001, 119, None]]:
        sheet.append(row)
    workbook.create_sheet("other").append(["x"])
    workbook.save(path)
    table = read_table(path)
    assert table.lines == [2, 4]
    assert list(table.frame["code"]) == ["0111", "370705001"]
    assert list(table.frame["lon"]) == ["119.1", "119"]
    assert table.frame["name"].iloc[0] == "广文" and pd.isna(table.frame["name"].iloc[1])
    assert list(read_table(path, sheet="other").frame.columns) == ["x"]


def test_xlsx_text_that_looks_like_a_formula_stays_text(tmp_path):
    path = tmp_path / "out.xlsx"
    texts = ["=1+1", "+8613800000000", "-1", "@SUM(A1)", "0111"]
    write_table(pd.DataFrame({"note": texts, "count": range(5)}), path)
    sheet = openpyxl.load_workbook(path).active
    cells = [sheet.cell(row=row, column=1) for row in range(2, 7)]
    assert [(c.value, c.data_type) for c in cells] == [(t, "s") for t in texts]
    assert sheet.cell(row=2, column=2).data_type == "n"
    assert list(read_table(path).frame["note"]) == texts


def test_a_table_round_trips_through_csv(tmp_path):
    frame = pd.DataFrame({"code": ["0111", "370705001"], "name": ["广文", None], "n": [1, 2]})
    path = tmp_path / "out.csv"
    write_table(frame, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    back = read_table(path).frame
    assert list(back.columns) == ["code", "name", "n"]
    assert list(back["code"]) == ["0111", "370705001"] and list(back["n"]) == ["1", "2"]
    assert back["name"].iloc[0] == "广文" and pd.isna(back["name"].iloc[1])


def test_geojson_tables_give_lon_lat_of_points(tmp_path):
    point = {"type": "Point", "coordinates": [119.123456789012345, 36.7]}
    bad_point = {"type": "Point", "coordinates": ["119", 36.7]}
    path = write_json(
        tmp_path / "points.geojson",
        [feature(point, code="0111"), feature(square(), code="2"), feature(bad_point, code="3")],
    )
    table = read_table(path)
    assert table.lines == [1, 2]
    assert table.frame["lon"].iloc[0] == 119.123456789012345 and table.frame["lat"].iloc[0] == 36.7
    assert table.frame["lon"].iloc[1] is None
    assert table.problems == [RecordProblem(3, "geometry", table.problems[0].message)]
    out = tmp_path / "out.geojson"
    write_table(table.frame, out)
    again = read_table(out).frame
    assert again["lon"].iloc[0] == 119.123456789012345 and list(again["code"]) == ["0111", "2"]
