"""Track files: GPX, GeoJSON, CSV and XLSX read into fixes; bad files refused clearly."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import openpyxl
import pytest

from geogrid.errors import FileFormatError, InputError
from geogrid.trackfiles import epoch_seconds, read_track_file
from geogrid.workdays import SHANGHAI

GPX11 = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="两步路" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
  <metadata><name>早班巡逻</name><time>2026-03-02T00:00:00Z</time></metadata>
  <wpt lat="36.71" lon="119.01"><name>岗亭</name></wpt>
  <trk>
    <name>早班巡逻</name>
    <trkseg>
      <trkpt lat="36.7050" lon="119.0050"><ele>30</ele><time>2026-03-02T00:00:00Z</time>
        <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>90</gpxtpx:hr>
        </gpxtpx:TrackPointExtension></extensions></trkpt>
      <trkpt lat="36.7051" lon="119.0051"><time>2026-03-02T00:00:05Z</time></trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="36.7052" lon="119.0052"><time>2026-03-02T08:00:10+08:00</time></trkpt>
      <trkpt lat="36.7053" lon="119.0053"><time>2026-03-02T00:00:15.5Z</time></trkpt>
    </trkseg>
  </trk>
</gpx>
"""
T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- GPX -----------------------------------------------------------------------------------


def test_gpx_11_with_namespaces_and_two_segments(tmp_path):
    (track,) = read_track_file(write(tmp_path, "a.gpx", GPX11), coord_type="gcj02")
    assert track.name == "早班巡逻" and track.source_format == "gpx"
    assert track.coord_type.name == "gcj02"
    np.testing.assert_array_equal(track.lon, [119.005, 119.0051, 119.0052, 119.0053])
    np.testing.assert_array_equal(track.lat, [36.705, 36.7051, 36.7052, 36.7053])
    np.testing.assert_array_equal(track.t, T0 + np.array([0, 5, 10, 15.5]))
    assert "2 segments joined in order" in track.notes
    assert "1 waypoints ignored (planned, not recorded)" in track.notes


def test_gpx_10_and_gpx_without_namespace(tmp_path):
    body = (
        '<trk><trkseg><trkpt lat="36.7" lon="119.0"><time>2026-03-02T00:00:00</time></trkpt>'
        '<trkpt lat="36.8" lon="119.1"><time>2026-03-02T00:01:00Z</time></trkpt>'
        "</trkseg></trk><trk><name>second</name><trkseg>"
        '<trkpt lat="36.7" lon="119.0"><time>2026-03-02T01:00:00Z</time></trkpt></trkseg></trk>'
    )
    v10 = f'<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0">{body}</gpx>'
    bare = f"<gpx>{body}</gpx>"
    for name, text in (("v10.gpx", v10), ("bare.gpx", bare)):
        first, second = read_track_file(write(tmp_path, name, text), coord_type="wgs84")
        # A GPX time without a zone is UTC, as the GPX schema says.
        np.testing.assert_array_equal(first.t, [T0, T0 + 60])
        assert (first.name, second.name) == ("v10 #1" if name == "v10.gpx" else "bare #1", "second")


def test_malformed_gpx_names_the_line(tmp_path):
    broken = GPX11.replace("</trkseg>\n    <trkseg>", "</trkseg>\n    <trkseg", 1)
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "b.gpx", broken), coord_type="wgs84")
    assert caught.value.details["line"] == 15  # where the unclosed tag is found wanting
    assert "line 15" in caught.value.message and "not well-formed" in caught.value.message


def test_bad_values_in_gpx_name_the_line(tmp_path):
    bad_lat = GPX11.replace('lat="36.7051"', 'lat="北纬36"')
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "c.gpx", bad_lat), coord_type="wgs84")
    assert (caught.value.field, caught.value.details["line"]) == ("lat", 12)
    bad_time = GPX11.replace("2026-03-02T00:00:05Z", "yesterday")
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "d.gpx", bad_time), coord_type="wgs84")
    assert caught.value.field == "time" and "line 12" in caught.value.message


def test_gpx_without_times_is_refused(tmp_path):
    untimed = re.sub(r"<time>[^<]*</time>", "", GPX11)
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "e.gpx", untimed), coord_type="wgs84")
    assert caught.value.field == "time"
    assert "no timestamps" in caught.value.message


def test_points_without_time_are_left_out_with_a_note(tmp_path):
    partly = GPX11.replace("<time>2026-03-02T00:00:05Z</time>", "")
    (track,) = read_track_file(write(tmp_path, "f.gpx", partly), coord_type="wgs84")
    assert len(track) == 3
    assert "1 points without a <time> left out" in track.notes


def test_a_route_is_not_a_track(tmp_path):
    route = '<gpx><rte><rtept lat="36.7" lon="119.0"/><rtept lat="36.8" lon="119.1"/></rte></gpx>'
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "g.gpx", route), coord_type="wgs84")
    assert "no track" in caught.value.message and "2 route points" in caught.value.message


def test_another_xml_document_is_not_gpx(tmp_path):
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "h.gpx", "<kml><Document/></kml>"), coord_type="wgs84")
    assert "not a GPX file" in caught.value.message


@pytest.mark.parametrize(
    "doctype",
    [
        # Billion laughs: entities expanding to gigabytes.
        '<!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>',
        # An external entity reading a local file.
        '<!DOCTYPE gpx [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
        # A DTD fetched from elsewhere.
        '<!DOCTYPE gpx SYSTEM "http://example.invalid/gpx.dtd">',
    ],
)
def test_doctypes_entity_bombs_and_external_entities_are_refused(tmp_path, doctype):
    text = f'<?xml version="1.0"?>\n{doctype}\n<gpx><trk><name>&d;</name></trk></gpx>'
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "x.gpx", text), coord_type="wgs84")
    assert caught.value.details["refused"] == "doctype"
    assert "DOCTYPE" in caught.value.message


# -- GeoJSON -------------------------------------------------------------------------------


def test_geojson_linestring_with_coord_times(tmp_path):
    feature = {
        "type": "Feature",
        "properties": {
            "name": "夜巡",
            "coordTimes": ["2026-03-02T00:00:00Z", "2026-03-02T08:00:05", 1772409610000],
        },
        "geometry": {
            "type": "LineString",
            "coordinates": [[119.0, 36.7], [119.1, 36.8, 5], [1, 2]],
        },
    }
    path = write(tmp_path, "n.geojson", json.dumps(feature))
    (track,) = read_track_file(path, coord_type="bd09")
    assert track.name == "夜巡" and track.coord_type.name == "bd09"
    # Naive text is Shanghai time; numbers are epoch seconds or milliseconds.
    np.testing.assert_array_equal(track.t, [T0, T0 + 5, 1772409610.0])
    np.testing.assert_array_equal(track.lon, [119.0, 119.1, 1.0])


def test_geojson_points_make_one_track(tmp_path):
    features = [
        {
            "type": "Feature",
            "properties": {"time": f"2026-03-02 08:00:{second:02d}"},
            "geometry": {"type": "Point", "coordinates": [119.0 + second * 1e-5, 36.7]},
        }
        for second in (0, 10, 20)
    ]
    path = write(
        tmp_path, "p.geojson", json.dumps({"type": "FeatureCollection", "features": features})
    )
    (track,) = read_track_file(path, coord_type="wgs84")
    np.testing.assert_array_equal(track.t, T0 + np.array([0, 10, 20]))
    assert track.notes == ["3 timed points made into one track"]


def test_geojson_without_times_is_refused(tmp_path):
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "LineString", "coordinates": [[119.0, 36.7], [119.1, 36.8]]},
    }
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "q.geojson", json.dumps(feature)), coord_type="wgs84")
    assert caught.value.field == "time" and "no timestamps" in caught.value.message
    feature["properties"]["times"] = ["2026-03-02T00:00:00Z"]
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "r.geojson", json.dumps(feature)), coord_type="wgs84")
    assert "2 coordinates but 1 times" in caught.value.message


# -- CSV and XLSX --------------------------------------------------------------------------


def test_csv_with_chinese_headers_in_gbk(tmp_path):
    text = "经度,纬度,时间\n119.005,36.705,2026-03-02 08:00:00\n119.006,36.706,2026/3/2 8:00:10\n"
    text += "119.007,36.707,\n119.008,36.708,2026-03-02T00:00:20Z\n"
    path = write(tmp_path, "s.csv", text.encode("gbk"))
    (track,) = read_track_file(path, coord_type="gcj02")
    assert track.source_format == "csv" and track.name == "s"
    np.testing.assert_array_equal(track.t, T0 + np.array([0, 10, 20]))
    np.testing.assert_array_equal(track.lon, [119.005, 119.006, 119.008])
    assert track.notes == ["1 rows without a time left out"]


def test_csv_track_column_splits_tracks(tmp_path):
    text = (
        "track,lon,lat,time\nA,119.0,36.7,1772409600\nB,119.1,36.8,1772409600\n"
        "A,119.0,36.7,1772409610\n"
    )
    first, second = read_track_file(write(tmp_path, "t.csv", text), coord_type="wgs84")
    assert (first.name, len(first), second.name, len(second)) == ("A", 2, "B", 1)


def test_csv_errors_name_the_column_or_line(tmp_path):
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "u.csv", "lon,lat\n119,36\n"), coord_type="wgs84")
    assert caught.value.field == "time" and "时间" in caught.value.message
    bad = "lon,lat,time\n119.0,36.7,2026-03-02 08:00\n119.0,abc,2026-03-02 08:01\n"
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "v.csv", bad), coord_type="wgs84")
    assert (caught.value.field, caught.value.details["line"]) == ("lat", 3)
    bad = "lon,lat,time\n119.0,36.7,soon\n"
    with pytest.raises(FileFormatError) as caught:
        read_track_file(write(tmp_path, "w.csv", bad), coord_type="wgs84")
    assert "line 2" in caught.value.message and caught.value.field == "time"


def test_xlsx_with_excel_times(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Longitude", "Latitude", "定位时间"])
    sheet.append([119.005, 36.705, datetime(2026, 3, 2, 8, 0, 0)])
    sheet.append([119.006, 36.706, datetime(2026, 3, 2, 8, 0, 30)])
    path = tmp_path / "x.xlsx"
    workbook.save(path)
    (track,) = read_track_file(path, coord_type="wgs84")
    assert track.source_format == "xlsx"
    np.testing.assert_array_equal(track.t, [T0, T0 + 30])


def test_unsupported_files_and_missing_paths(tmp_path):
    with pytest.raises(FileFormatError):
        read_track_file(write(tmp_path, "y.kml", "<kml/>"), coord_type="wgs84")
    with pytest.raises(InputError) as caught:
        read_track_file(tmp_path / "nope.gpx", coord_type="wgs84")
    assert caught.value.field == "path"


def test_epoch_seconds_reads_the_usual_forms():
    assert epoch_seconds("2026-03-02T08:00:00+08:00", naive_zone=UTC) == T0
    assert epoch_seconds("2026-03-02 08:00:00", naive_zone=SHANGHAI) == T0
    assert epoch_seconds("1772409600000", naive_zone=UTC) == T0
    assert epoch_seconds(datetime(2026, 3, 2, 8, tzinfo=SHANGHAI), naive_zone=UTC) == T0
    with pytest.raises(ValueError):
        epoch_seconds("20260302", naive_zone=UTC)
