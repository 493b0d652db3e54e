"""Reports as XLSX and CSV: headers, number formats, no formulas, no contacts; the CLI."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta

import openpyxl
import pytest
from click.testing import CliRunner
from factories import add_incident, load_tiny_city
from sqlalchemy import update
from sqlalchemy.orm import Session

from geogrid.cli import main
from geogrid.errors import InputError
from geogrid.models import Area, IncidentContact
from geogrid.reports import build_report
from geogrid.sheets import title, write_report_csv, write_report_xlsx
from geogrid.workdays import SHANGHAI

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
#: Area names a spreadsheet would run as formulas.
HOSTILE = {
    G1: '=HYPERLINK("http://example.com/x","点我")',
    G2: "+1+1",
    G3: "-2+3",
    G4: "@SUM(A1:A2)",
}
PHONE, CONTACT = "13800138000", "张三"


def incidents(session, *, outside: bool = True) -> None:
    """Six handled incidents in G1 (ranked), one in G3, one late one in G4, one outside."""
    for day in range(5, 11):
        reported = datetime(2026, 10, day, 9, tzinfo=SHANGHAI)
        incident = add_incident(
            session,
            grid_code=G1,
            reported_at=reported,
            state="evaluated",
            accept_due_at=reported + timedelta(days=1),
            resolve_due_at=reported + timedelta(days=3),
            accepted_at=reported + timedelta(hours=1),
            resolved_at=reported + timedelta(days=1),
            satisfaction="satisfied" if day < 10 else "unsatisfied",
        )
    session.add(IncidentContact(incident_id=incident.id, name=CONTACT, phone=PHONE))
    add_incident(session, grid_code=G3, reported_at=datetime(2026, 10, 12, 9, tzinfo=SHANGHAI))
    add_incident(
        session,
        grid_code=G4,
        reported_at=datetime(2026, 10, 13, 9, tzinfo=SHANGHAI),
        accept_due_at=datetime(2026, 10, 14, 9, tzinfo=SHANGHAI),
    )
    if outside:
        add_incident(
            session, grid_code=None, reported_at=datetime(2026, 10, 14, 9, tzinfo=SHANGHAI)
        )
    session.flush()


@pytest.fixture
def report(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    for code, name in HOSTILE.items():
        db.execute(update(Area).where(Area.code == code).values(name=name))
    incidents(db)
    return build_report(db, settings, "monthly", "2026-10", "grid", now=NOW)


def cells(worksheet):
    return [cell for row in worksheet.iter_rows() for cell in row]


def test_xlsx_has_titles_headers_numbers_and_alerts(report, tmp_path):
    path = tmp_path / "report.xlsx"
    write_report_xlsx(report, path)
    workbook = openpyxl.load_workbook(path)
    units, alerts = workbook.worksheets
    assert (units.title, alerts.title) == ("单位", "提醒")
    heading = units["A1"].value
    assert "月报" in heading and "2026-10" in heading and "网格" in heading
    assert "按上报时网格归属" in heading and f"网格版本 {report.generation}" in heading
    header = [cell.value for cell in units[2]]
    assert header[:3] == ["单位编码", "名称", "收件数"] and "按时办结率" in header
    assert units.freeze_panes == "C3"
    assert units.column_dimensions["B"].width >= 12
    first = {h: cell for h, cell in zip(header, units[3], strict=True)}
    assert first["单位编码"].value == G1 and first["单位编码"].data_type == "s"
    assert first["收件数"].value == 6 and first["排名"].value == 1
    assert first["满意率"].value == pytest.approx(5 / 6)
    assert first["满意率"].number_format == "0.0%"
    last = [cell.value for cell in units[units.max_row]]
    assert last[0] == "合计" and last[2] == 8
    kinds = [row[0] for row in alerts.iter_rows(min_row=3, values_only=True)]
    assert "待定位(网格外)" in kinds


def test_xlsx_writes_formula_like_text_as_text(report, tmp_path):
    path = tmp_path / "report.xlsx"
    write_report_xlsx(report, path)
    workbook = openpyxl.load_workbook(path)
    everything = [cell for sheet in workbook.worksheets for cell in cells(sheet)]
    assert not [cell.coordinate for cell in everything if cell.data_type == "f"]
    names = {cell.value: cell for cell in everything if cell.value in HOSTILE.values()}
    assert set(names) == set(HOSTILE.values())  # read back exactly, no quote added
    assert all(cell.quotePrefix and cell.data_type == "s" for cell in names.values())


def test_xlsx_in_english(report, tmp_path):
    path = tmp_path / "report.xlsx"
    write_report_xlsx(report, path, language="en")
    units = openpyxl.load_workbook(path).worksheets[0]
    assert units["A1"].value.startswith("Monthly report 2026-10 · grid · as recorded")
    assert [cell.value for cell in units[2]][:3] == ["Code", "Name", "Received"]
    with pytest.raises(InputError) as info:
        write_report_xlsx(report, path, language="fr")
    assert info.value.field == "language"


def test_a_category_is_named_in_the_titles(db, settings, report, tmp_path):
    assert "类别" not in title(report)  # every category: nothing to say
    limited = build_report(db, settings, "monthly", "2026-10", "grid", now=NOW, category="noise")
    path = tmp_path / "noise.xlsx"
    write_report_xlsx(limited, path)
    units, alerts = openpyxl.load_workbook(path).worksheets
    assert units["A1"].value.startswith("月报(月评比) 2026-10 · 网格 · 类别 噪音扰民 · 按上报时")
    assert alerts["A1"].value == units["A1"].value
    assert units.cell(units.max_row, 3).value == 0  # no noise incident: the total received
    assert title(limited, "en").startswith("Monthly report 2026-10 · grid · category Noise · as")


def test_csv_has_a_bom_and_guards_formulas(report, tmp_path):
    path = tmp_path / "report.csv"
    write_report_csv(report, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:3] == ["单位编码", "名称", "收件数"]
    by_code = {row[0]: row for row in rows[1:]}
    assert by_code[G1][1] == "'" + HOSTILE[G1]
    assert {by_code[code][1] for code in HOSTILE} == {"'" + name for name in HOSTILE.values()}
    satisfaction = rows[0].index("满意率")
    assert by_code[G1][satisfaction] == "83.33%"
    assert by_code[G2][satisfaction] == ""  # no evaluation: no rate
    assert rows[-1][0] == "合计" and rows[-1][2] == "8"


def test_contacts_never_appear(report, tmp_path):
    write_report_xlsx(report, tmp_path / "report.xlsx")
    write_report_csv(report, tmp_path / "report.csv")
    workbook = openpyxl.load_workbook(tmp_path / "report.xlsx")
    texts = [str(c.value) for s in workbook.worksheets for c in cells(s) if c.value is not None]
    texts.append((tmp_path / "report.csv").read_text(encoding="utf-8-sig"))
    texts.append(json.dumps(report.as_dict(), ensure_ascii=False))
    assert not [text for text in texts if PHONE in text or CONTACT in text]


@pytest.fixture(scope="module")
def cli_database(make_database, base_settings, tmp_path_factory):
    """A database of its own with the tiny city and the incidents, committed for the CLI."""
    engine = make_database(base_settings.code_scheme)
    url = engine.url.render_as_string(False)
    with Session(engine) as session:
        folder = tmp_path_factory.mktemp("city")
        load_tiny_city(session, base_settings.with_(database_url=url), folder)
        incidents(session)
        session.commit()
    return {"GEOGRID_DATABASE_URL": url}


def geogrid(env, *args):
    return CliRunner().invoke(main, ["report", *args], env=env, catch_exceptions=False)


def test_the_report_command(cli_database, tmp_path):
    asked = ["monthly", "--period", "2026-10", "--as-of", "2026-11-02T09:00"]
    table = geogrid(cli_database, *asked, "--level", "grid")
    assert table.exit_code == 0, table.output
    assert "Monthly report 2026-10 · grid · as recorded" in table.output
    assert f"   1  {G1}" in table.output
    assert "wait for a person to place them" in table.output
    xlsx = tmp_path / "out.xlsx"
    written = geogrid(cli_database, *asked, "--level", "township", "--xlsx", str(xlsx))
    assert f"wrote 2 units to {xlsx}" in written.output
    assert openpyxl.load_workbook(xlsx).worksheets[0]["A3"].value == "370705001"
    csv_path = tmp_path / "out.csv"
    geogrid(cli_database, *asked, "--csv", str(csv_path), "--language", "en")
    assert csv_path.read_text(encoding="utf-8-sig").startswith("Code,Name,Received")
    data = json.loads(geogrid(cli_database, *asked, "--json", "--level", "community").output)
    assert {row["code"]: row["received"] for row in data["rows"]} == {
        "370705001001": 6,
        "370705002001": 2,
    }
    scoped = geogrid(cli_database, *asked, "--json", "--role", "official", "--scope", "370705002")
    assert [row["code"] for row in json.loads(scoped.output)["rows"]] == [G3, G4]


def test_the_report_command_counts_one_category(cli_database):
    asked = ["monthly", "--period", "2026-10", "--as-of", "2026-11-02T09:00", "--json"]
    environment = json.loads(geogrid(cli_database, *asked, "--category", "environment").output)
    assert environment["category"] == "environment" and environment["totals"]["received"] == 8
    noise = json.loads(geogrid(cli_database, *asked, "--category", "noise").output)
    assert noise["category"] == "noise" and noise["totals"]["received"] == 0
    assert len(noise["rows"]) == 4  # every grid, none with an incident
    table = geogrid(cli_database, "monthly", "--period", "2026-10", "--category", "noise")
    assert "Monthly report 2026-10 · grid · category Noise · as recorded" in table.output
    assert "0 incidents received" in table.output


def test_the_report_command_names_bad_input(cli_database):
    bad = geogrid(cli_database, "weekly", "--period", "2026-11")
    assert bad.exit_code == 1 and "error [period]" in bad.output
    assert "YYYY-Www" in bad.output
    level = geogrid(cli_database, "daily", "--level", "street")
    assert level.exit_code == 1 and "error [level]" in level.output
    both = geogrid(cli_database, "daily", "--xlsx", "a.xlsx", "--csv", "a.csv")
    assert both.exit_code == 2
    unknown = geogrid(cli_database, "daily", "--category", "graffiti")
    assert unknown.exit_code == 1 and "error [category]" in unknown.output
    assert "known categories: " in unknown.output
