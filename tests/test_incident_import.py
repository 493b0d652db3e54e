"""Importing historic incidents: placements, all-or-nothing, idempotency, encodings, deadlines.

Files are real files in ``tmp_path``; the tiny city (tests/factories.py) is the place:
four 0.01-degree grids in a row over lon 119.00-119.04, lat 36.70-36.72.
"""

from __future__ import annotations

import csv
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select

from geogrid import sla
from geogrid.crs import wgs84_to_gcj02
from geogrid.errors import FileFormatError, InputError
from geogrid.incident_deadlines import deadlines_many
from geogrid.incident_import import FieldMap, import_incidents
from geogrid.models import Incident, IncidentCategory, IncidentContact, IncidentEvent
from geogrid.pointindex import GridIndex
from geogrid.workdays import SHANGHAI, WorkCalendar
from tests.factories import load_tiny_city

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=SHANGHAI)
G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
HEADER = [
    "client_id", "category", "description", "reported_at", "lon", "lat", "coord_type",
    "grid_code", "state", "accepted_at", "resolved_at", "evaluated_at", "satisfaction",
    "contact_name", "contact_phone",
]  # fmt: skip


def row(client_id, lon="", lat="", coord_type="cgcs2000", **fields) -> dict:
    values = {
        "client_id": client_id,
        "category": "environment",
        "description": "垃圾堆放 rubbish piled up",
        "reported_at": "2026-09-30 10:00",
        "lon": lon,
        "lat": lat,
        "coord_type": coord_type if lon != "" else "",
    }
    return values | fields


def write_csv(path, rows, *, encoding="utf-8", header=HEADER):
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def gcj_of(lon, lat):
    return (f"{v:.12f}" for v in wgs84_to_gcj02(lon, lat))


def known_rows():
    gcj_lon, gcj_lat = gcj_of(119.015, 36.71)
    return [
        row("A1", "119.005", "36.71", contact_name="王先生", contact_phone="13800000001"),
        row("A2", "119.035", "36.705", state="resolved", accepted_at="2026-09-30T03:00:00Z",
            resolved_at="2026-10-09 09:00"),
        row("A3", "119.01", "36.71"),  # on the shared edge: the smallest code
        row("A4", "119.0101", "36.71"),  # 9 m from the edge
        row("A5", "118.99", "36.71"),  # outside every grid: kept, flagged
        row("A6", grid_code=G3, category="矛盾纠纷", state="evaluated",
            accepted_at="2026-09-30T10:30:00+08:00", resolved_at="2026-10-01 08:00",
            evaluated_at="2026/10/02 09:00", satisfaction="满意"),
        row("A7", gcj_lon, gcj_lat, coord_type="gcj02", reported_at="2026-10-01 09:00"),
    ]  # fmt: skip


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)


def run(db, settings, path, **options):
    options.setdefault("created_by", "importer")
    options.setdefault("now", NOW)
    return import_incidents(db, settings, path, **options)


def stored(db):
    incidents = db.scalars(select(Incident).order_by(Incident.idempotency_key)).all()
    return {i.idempotency_key.removeprefix("import:"): i for i in incidents}


def test_csv_import_places_every_row_and_writes_events_contacts_deadlines(
    db, settings, city, tmp_path
):
    path = write_csv(tmp_path / "history.csv", known_rows())
    result = run(db, settings, path)
    assert result.ok, result.lines()
    assert (result.rows, result.inserted, result.already_imported) == (7, 7, 0)
    assert result.placements == {
        "inside": 3, "near_edge": 1, "edge": 1, "outside": 1, "by_code": 1
    }  # fmt: skip
    rows = stored(db)
    assert {k: (i.grid_code, i.placement) for k, i in rows.items()} == {
        "A1": (G1, "inside"),
        "A2": (G4, "inside"),
        "A3": (G1, "edge"),
        "A4": (G2, "near_edge"),
        "A5": (None, "outside"),
        "A6": (G3, "by_code"),
        "A7": (G2, "inside"),
    }
    assert rows["A3"].placement_detail["candidates"] == [G2]
    assert rows["A4"].placement_detail["candidates"] == [G1]
    assert rows["A5"].placement_detail["nearest"]["code"] == G1
    assert 880 < rows["A5"].placement_detail["nearest"]["distance_m"] < 900
    assert rows["A6"].geom is None and rows["A6"].category == "dispute"
    # GCJ-02 is converted before anything else; the given numbers are kept too.
    a7 = to_shape(rows["A7"].geom)
    assert abs(a7.x - 119.015) < 1e-9 and abs(a7.y - 36.71) < 1e-9
    assert rows["A7"].coord_type == "gcj02" and rows["A7"].given_lon != 119.015
    assert to_shape(rows["A1"].geom).equals(shapely.Point(119.005, 36.71))
    # History kept as given, with satisfaction words and an offset understood.
    assert rows["A6"].state == "evaluated" and rows["A6"].satisfaction == "satisfied"
    assert rows["A6"].accepted_at == datetime(2026, 9, 30, 10, 30, tzinfo=SHANGHAI)
    assert rows["A2"].accepted_at == datetime(2026, 9, 30, 11, 0, tzinfo=SHANGHAI)
    assert rows["A2"].state == "resolved" and rows["A1"].state == "reported"
    assert all(i.channel == "import" and i.generation == result.generation for i in rows.values())
    # Deadlines from the report: 2026-09-30 10:00 + 1 and + 3 working days across National Day.
    assert rows["A1"].accept_due_at == datetime(2026, 10, 8, 10, 0, tzinfo=SHANGHAI)
    assert rows["A1"].resolve_due_at == datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)
    events = db.scalars(select(IncidentEvent).where(IncidentEvent.action == "import")).all()
    assert len(events) == 7 and result.events == 7
    a6_event = next(e for e in events if e.incident_id == rows["A6"].id)
    assert a6_event.to_state == "evaluated" and a6_event.from_state is None
    assert a6_event.data["client_id"] == "A6" and a6_event.data["line"] == 7
    assert a6_event.data["evaluated_at"] == "2026-10-02T09:00:00+08:00"
    assert a6_event.actor == "importer" and a6_event.at == NOW
    contact = db.get(IncidentContact, rows["A1"].id)
    assert (contact.name, contact.phone) == ("王先生", "13800000001")
    assert db.scalar(select(func.count()).select_from(IncidentContact)) == 1


def test_the_index_agrees_with_postgis_on_the_stored_points(db, settings, city, tmp_path):
    result = run(db, settings, write_csv(tmp_path / "h.csv", known_rows()))
    assert result.ok
    from geogrid.geocode import locate

    for incident in stored(db).values():
        if incident.geom is None:
            continue
        point = to_shape(incident.geom)
        location = locate(db, settings, point.x, point.y, "cgcs2000")
        assert (location.grid_code, location.status) == (incident.grid_code, incident.placement)


def test_xlsx_import_with_chinese_headers_and_numbers(db, settings, city, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["编号", "类别", "描述", "上报时间", "经度", "纬度", "坐标系", "状态", "受理时间"])
    sheet.append([1001, "噪音扰民", "夜间施工", datetime(2026, 10, 12, 22, 30), 119.025, 36.715,
                  "wgs84", "已受理", datetime(2026, 10, 13, 8, 0)])  # fmt: skip
    sheet.append([1002, "environment", "落叶", datetime(2026, 10, 13), 119.005, 36.701, "WGS84"])
    path = tmp_path / "历史事件.xlsx"
    workbook.save(path)
    result = run(db, settings, path)
    assert result.ok, result.lines()
    rows = stored(db)
    assert rows["1001"].grid_code == G3 and rows["1001"].category == "noise"
    assert rows["1001"].state == "accepted"
    assert rows["1001"].reported_at == datetime(2026, 10, 12, 22, 30, tzinfo=SHANGHAI)
    assert rows["1002"].grid_code == G1 and rows["1002"].state == "reported"


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_gbk_and_utf8_files_with_or_without_bom(db, settings, city, tmp_path, encoding):
    path = write_csv(tmp_path / "gbk.csv", known_rows()[:2], encoding=encoding)
    result = run(db, settings, path)
    assert result.ok and result.inserted == 2
    assert stored(db)["A1"].description == "垃圾堆放 rubbish piled up"
    assert db.get(IncidentContact, stored(db)["A1"].id).name == "王先生"
    assert result.encoding == {"gbk": "gb18030", "utf-8-sig": "utf-8-sig"}.get(encoding, "utf-8")


def test_a_declared_encoding_that_does_not_fit_is_a_file_format_error(db, settings, city, tmp_path):
    path = write_csv(tmp_path / "gbk.csv", known_rows()[:2], encoding="gbk")
    with pytest.raises(FileFormatError) as caught:
        run(db, settings, path, encoding="utf-8")
    assert caught.value.field == "encoding" and "gbk.csv is not utf-8" in caught.value.message
    # Told GBK, it reads it as GB18030 (its superset).
    assert run(db, settings, path, encoding="gbk").inserted == 2
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(path.read_bytes().decode("gb18030").encode("utf-16"))
    with pytest.raises(FileFormatError, match="UTF-16"):
        run(db, settings, utf16)


def test_reimporting_the_same_file_inserts_nothing_new(db, settings, city, tmp_path):
    path = write_csv(tmp_path / "h.csv", known_rows())
    assert run(db, settings, path).inserted == 7
    again = run(db, settings, path)
    assert (again.inserted, again.already_imported, again.events) == (0, 7, 0)
    more = write_csv(tmp_path / "more.csv", [*known_rows(), row("A8", "119.005", "36.715")])
    third = run(db, settings, more)
    assert (third.inserted, third.already_imported) == (1, 7)
    assert db.scalar(select(func.count()).select_from(Incident)) == 8
    assert db.scalar(select(func.count()).select_from(IncidentEvent)) == 8


def test_malformed_rows_are_listed_by_line_and_field_and_nothing_is_written(
    db, settings, city, tmp_path
):
    bad_rows = [
        row("B1", "119.005", "36.71"),  # fine, line 2
        row("B2", "119.005", "36.71", category="fireworks"),
        row("B3", "119.005", "36.71", coord_type=""),
        row("B4", "119.005", "36.71", coord_type="mars2000"),
        row("B5", "nan", "36.71"),
        row("B6", "119.005", "136.71"),
        row("B7", "119.005", "36.71", reported_at="30/09/2026"),
        row("B8", "119.005", "36.71", state="resolved", accepted_at="2026-09-30 11:00",
            resolved_at="2026-09-29 09:00"),
        row("B9", grid_code="370705009009009"),
        row("B1", "119.005", "36.71"),
        row("B11", "119.005", "36.71", state="reported", resolved_at="2026-10-01 09:00"),
        row("B12", "119.005", "36.71", state="teleported"),
        row("B13", "119.005", "36.71", reported_at="2027-01-01 09:00"),
        row("B14", "36.71", "119.005"),
        row("B15", "119.005", "36.71", description="  "),
        row("B16", "119.005", ""),
        row("B17", "36.71", "119.005", category="fireworks"),  # two problems, both listed
    ]  # fmt: skip
    path = write_csv(tmp_path / "bad.csv", bad_rows)
    result = run(db, settings, path)
    problems = {(p.line, p.field) for p in result.problems}
    assert problems == {
        (3, "category"),
        (4, "coord_type"),
        (5, "coord_type"),
        (6, "lon"),
        (7, "lat"),
        (8, "reported_at"),
        (9, "resolved_at"),
        (10, "grid_code"),
        (11, "client_id"),
        (12, "resolved_at"),
        (13, "state"),
        (14, "reported_at"),
        (15, "lat"),
        (16, "description"),
        (17, "lat"),
        (18, "category"),
        (18, "lat"),
    }
    messages = {(p.line, p.field): p.message for p in result.problems}
    assert "fireworks" in messages[(3, "category")]
    assert "swapped" in messages[(15, "lat")]
    assert "also on line 2" in messages[(11, "client_id")]
    assert "before accepted_at" in messages[(9, "resolved_at")]
    assert "in the future" in messages[(14, "reported_at")]
    assert result.inserted == 0 and not result.ok
    assert db.scalar(select(func.count()).select_from(Incident)) == 0
    assert db.scalar(select(func.count()).select_from(IncidentEvent)) == 0
    assert "nothing was written" in result.lines()[1]


def test_the_problem_list_is_capped_but_every_problem_counted(db, settings, city, tmp_path):
    rows = [row(f"C{n}", "119.005", "36.71", category="fireworks") for n in range(30)]
    result = run(db, settings, write_csv(tmp_path / "bad.csv", rows), max_problems=10)
    assert result.problem_count == 30 and len(result.problems) == 10
    assert result.problems_by_field == {"category": 30}
    assert [p.line for p in result.problems] == list(range(2, 12))
    assert result.lines()[-1] == "  ... and 20 more"


def test_a_line_with_too_many_fields_is_a_problem_of_its_own(db, settings, city, tmp_path):
    path = write_csv(tmp_path / "h.csv", known_rows()[:2])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("A9,environment,x,2026-10-01 09:00,119.005,36.71,wgs84,,,,,,,,,extra\n")
    result = run(db, settings, path)
    assert [(p.line, p.field) for p in result.problems] == [(4, None)]
    assert result.rows == 3 and result.inserted == 0


def test_missing_columns_and_field_maps(db, settings, city, tmp_path):
    rows = [{"id": "D1", "kind": "noise", "what": "x", "when": "2026-10-01 09:00",
             "x": "119.005", "y": "36.71"}]  # fmt: skip
    path = write_csv(tmp_path / "own.csv", rows, header=list(rows[0]))
    with pytest.raises(FileFormatError) as caught:
        run(db, settings, path, crs="wgs84")
    assert caught.value.field == "client_id"
    fields = FieldMap.parse(
        ["client_id=id", "category=kind", "description=what", "reported_at=when", "lon=x", "lat=y"]
    )
    result = run(db, settings, path, fields=fields, crs="wgs84")
    assert result.ok and stored(db)["D1"].grid_code == G1
    with pytest.raises(FileFormatError) as caught:
        run(db, settings, path, fields=FieldMap(lon="longitude"))
    assert caught.value.field == "lon"
    with pytest.raises(InputError):
        FieldMap.parse(["colour=red"])


def test_swapped_points_are_found_with_the_index():
    """A point outside that falls inside with lat and lon exchanged (both under 90)."""
    from geogrid.incident_import import _place
    from geogrid.incident_rows import parse_rows

    box = shapely.box(30.0, 31.0, 31.0, 32.0)  # lon 30-31, lat 31-32
    index = GridIndex.build(["1"], [box], metric_epsg=32636)
    frame = pd.DataFrame(
        {
            "client_id": ["s1", "s2"],
            "category": ["environment", "environment"],
            "description": ["x", "y"],
            "reported_at": ["2026-10-01 09:00"] * 2,
            "lon": ["31.5", "30.5"],
            "lat": ["30.5", "31.5"],
        },
        index=pd.Index([2, 3], name="line"),
    )
    columns = FieldMap().resolve(frame.columns)
    categories = {"environment": SimpleNamespace(name_zh="环境卫生", name_en="Environment")}
    rows = parse_rows(frame, columns, categories, crs="wgs84", now=NOW, limit=10)
    placement = _place(rows, index, None)
    assert [(p.line, p.field) for p in rows.problems.listed()] == [(2, "lat")]
    assert "falls in grid 1" in rows.problems.listed()[0].message
    assert placement.grid_code[1] == "1"


# -- deadlines, all at once ------------------------------------------------------------------


def _times_around_national_day_and_weekends():
    rng = np.random.default_rng(3)
    base = pd.Timestamp("2026-09-24", tz=SHANGHAI)
    minutes = rng.integers(0, 24 * 60 * 24, 600)  # 24 days from 09-24: National Day inside
    times = list(base + pd.to_timedelta(minutes, unit="min"))
    times += [
        pd.Timestamp("2026-09-30 10:00", tz=SHANGHAI),  # the worked example: + 3 → 10-10
        pd.Timestamp("2026-10-10 00:00", tz=SHANGHAI),  # a swapped working Saturday, midnight
        pd.Timestamp("2026-10-03 15:00", tz=SHANGHAI),  # inside the holiday
        pd.Timestamp("2026-11-28 09:00", tz=SHANGHAI),  # a Saturday
        pd.Timestamp("2026-11-29 23:59:59.999999", tz=SHANGHAI),  # a Sunday's last moment
        pd.Timestamp("2026-12-30 16:00", tz=SHANGHAI),  # runs into 2027, not covered
        pd.Timestamp("2027-01-04 09:00", tz=SHANGHAI),  # not covered at all
        pd.Timestamp("2026-10-09 12:00", tz="UTC"),  # another zone given
    ]
    return pd.Series(times)


def test_vectorised_deadlines_equal_sla_deadlines_on_every_row():
    calendar = WorkCalendar.from_package()
    categories = {
        "environment": IncidentCategory(code="environment", accept_days=1, resolve_days=3,
                                        complex_days=5),
        "public_order": IncidentCategory(code="public_order", accept_days=1, resolve_days=1,
                                         complex_days=3),
        "livelihood": IncidentCategory(code="livelihood", accept_days=0, resolve_days=5,
                                       complex_days=10),
    }  # fmt: skip
    times = _times_around_national_day_and_weekends()
    rng = np.random.default_rng(4)
    codes = rng.choice(list(categories), len(times))
    complex_ = rng.random(len(times)) < 0.3
    due = deadlines_many(calendar, categories, codes, times, complex_)
    for i, moment in enumerate(times):
        expected = sla.deadlines(
            calendar, categories[codes[i]], moment.to_pydatetime(), complex_=bool(complex_[i])
        )
        for got, want in (
            (due.accept_due_at[i], expected.accept_due_at),
            (due.resolve_due_at[i], expected.resolve_due_at),
        ):
            assert (pd.isna(got) and want is None) or got == pd.Timestamp(want), (moment, i)
        assert due.alert[i] == expected.alert, (moment, i)
    uncovered = times.index[times == pd.Timestamp("2027-01-04 09:00", tz=SHANGHAI)][0]
    assert "2027" in due.alert[uncovered] and pd.isna(due.resolve_due_at[uncovered])
    worked = times.index[times == pd.Timestamp("2026-09-30 10:00", tz=SHANGHAI)][0]
    example = calendar.add_working_days(times[worked].to_pydatetime(), 3)
    assert example == datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)


def test_imported_deadlines_alert_for_a_year_the_calendar_does_not_cover(
    db, settings, city, tmp_path
):
    path = write_csv(tmp_path / "h.csv", [row("E1", "119.005", "36.71",
                                              reported_at="2026-12-30 16:00")])  # fmt: skip
    result = run(db, settings, path, now=datetime(2027, 1, 2, tzinfo=SHANGHAI))
    incident = stored(db)["E1"]
    assert result.ok and incident.accept_due_at is not None
    assert incident.resolve_due_at is None and "2027" in incident.deadline_alert
    assert list(result.deadline_alerts.values()) == [1]


# -- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(make_database, base_settings, tmp_path_factory):
    """``geogrid`` on a database of this module's own, holding the tiny city (committed)."""
    from click.testing import CliRunner

    from geogrid.cli import main
    from geogrid.db import make_sessionmaker, session_scope

    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    with session_scope(make_sessionmaker(engine)) as session:
        load_tiny_city(session, settings, tmp_path_factory.mktemp("city"))
    env = {"GEOGRID_DATABASE_URL": settings.database_url}

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    invoke.engine = engine
    return invoke


def count_incidents(engine) -> int:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Incident))


def test_cli_import_is_a_dry_run_then_imports_once(cli, tmp_path):
    path = write_csv(tmp_path / "history.csv", known_rows(), encoding="gbk")
    dry = cli("incidents", "import", str(path)).output
    assert "history.csv (csv, gb18030): 7 rows" in dry
    assert "would insert 7 incidents" in dry and "0 already imported" in dry
    assert "placed: 3 inside, 1 near_edge, 1 edge, 1 outside, 1 by_code" in dry
    assert "dry run: nothing was written" in dry
    assert count_incidents(cli.engine) == 0
    done = cli("incidents", "import", str(path), "--commit", "--user", "li").output
    assert "inserted 7 incidents" in done and "dry run" not in done
    again = cli("incidents", "import", str(path), "--commit").output
    assert "inserted 0 incidents" in again and "7 already imported" in again
    assert count_incidents(cli.engine) == 7


def test_cli_lists_every_problem_and_fails(cli, tmp_path):
    rows = [row("F1", "119.005", "36.71", category="fireworks"), row("F2", "36.71", "119.005")]
    path = write_csv(tmp_path / "bad.csv", rows)
    out = cli("incidents", "import", str(path), "--commit", code=1).output
    assert "2 problems (1 category, 1 lat); nothing was written" in out
    assert "line 2 [category]: unknown category 'fireworks'" in out
    assert "line 3 [lat]: lat/lon look swapped" in out


def test_cli_field_map_crs_and_encoding(cli, tmp_path):
    rows = [{"id": "G1", "kind": "noise", "what": "夜间施工", "when": "2026-10-01 09:00",
             "x": "119.005", "y": "36.71"}]  # fmt: skip
    path = write_csv(tmp_path / "own.csv", rows, header=list(rows[0]), encoding="gbk")
    fields = ["--field", "client_id=id", "--field", "category=kind", "--field", "description=what",
              "--field", "reported_at=when", "--field", "lon=x", "--field", "lat=y"]  # fmt: skip
    out = cli("incidents", "import", str(path), *fields, "--crs", "wgs84", "--encoding", "gbk")
    assert "would insert 1 incidents" in out.output
    wrong = cli("incidents", "import", str(path), *fields, "--crs", "wgs84", "--encoding", "utf-8",
                code=1)  # fmt: skip
    assert "error [encoding]: own.csv is not utf-8 text" in wrong.output
    unknown = cli("incidents", "import", str(path), "--field", "colour=red", code=1)
    assert "error [field]" in unknown.output
