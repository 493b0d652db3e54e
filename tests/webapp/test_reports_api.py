"""Reports over the API: JSON for officials in their scope, XLSX and CSV attachments."""

from __future__ import annotations

import io
from datetime import datetime

import openpyxl
import pytest
from factories import add_incident

from geogrid.workdays import SHANGHAI

G1, G3 = "370705001001001", "370705002001001"
C1, C2 = "370705001001", "370705002001"
COUNTY = "370705"


@pytest.fixture
def october(db, city):
    """Three incidents in October 2026 (two in community C1, one in C2), one in November."""
    for day, grid_code in ((5, G1), (12, G1), (20, G3)):
        add_incident(
            db, grid_code=grid_code, reported_at=datetime(2026, 10, day, 9, tzinfo=SHANGHAI)
        )
    add_incident(db, grid_code=G1, reported_at=datetime(2026, 11, 2, 9, tzinfo=SHANGHAI))


def test_an_official_reads_a_monthly_report_as_json(client, october, auth_headers):
    official = auth_headers("zhao", "official", COUNTY)
    response = client.get("/api/reports/monthly?period=2026-10&level=community", headers=official)
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert (report["kind"], report["period"], report["level"]) == (
        "monthly",
        "2026-10",
        "community",
    )
    received = {row["code"]: row["received"] for row in report["rows"]}
    assert received == {C1: 2, C2: 1}
    assert report["totals"]["received"] == 3


def test_the_report_covers_the_callers_scope_only(client, october, auth_headers):
    street = auth_headers("sun", "official", "370705001")
    report = client.get(
        "/api/reports/monthly?period=2026-10&level=community", headers=street
    ).get_json()
    assert [row["code"] for row in report["rows"]] == [C1]
    assert report["totals"]["received"] == 2


def test_xlsx_download_opens_with_openpyxl(client, october, auth_headers):
    admin = auth_headers("root", "administrator")
    response = client.get(
        "/api/reports/monthly?period=2026-10&level=community&format=xlsx", headers=admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype.endswith("spreadsheetml.sheet")
    disposition = response.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="report-monthly-2026-10-community.xlsx"'
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    cells = [cell for row in workbook.worksheets[0].iter_rows(values_only=True) for cell in row]
    assert "收件数" in cells and C1 in cells


def test_csv_download_in_english(client, october, auth_headers):
    admin = auth_headers("root", "administrator")
    response = client.get(
        "/api/reports/weekly?period=2026-W41&level=grid&format=csv&lang=en", headers=admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert 'filename="report-weekly-2026-W41-grid.csv"' in response.headers["Content-Disposition"]
    text = response.data.decode("utf-8-sig")
    assert text.startswith("Code,") and G1 in text


def test_a_category_limits_the_report_and_names_its_files(client, db, october, auth_headers):
    add_incident(
        db,
        grid_code=G3,
        reported_at=datetime(2026, 10, 21, 9, tzinfo=SHANGHAI),
        category="dispute",
    )
    official = auth_headers("zhao", "official", COUNTY)
    asked = "/api/reports/monthly?period=2026-10&level=community"
    everything = client.get(asked, headers=official).get_json()
    assert everything["category"] is None and everything["totals"]["received"] == 4
    disputes = client.get(f"{asked}&category=dispute", headers=official).get_json()
    assert disputes["category"] == "dispute"
    assert {row["code"]: row["received"] for row in disputes["rows"]} == {C1: 0, C2: 1}
    environment = client.get(f"{asked}&category=environment", headers=official).get_json()
    assert {row["code"]: row["received"] for row in environment["rows"]} == {C1: 2, C2: 1}
    sheet = client.get(f"{asked}&category=dispute&format=csv", headers=official)
    assert sheet.status_code == 200, sheet.get_data(as_text=True)
    disposition = sheet.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="report-monthly-2026-10-community-dispute.csv"'
    rows = sheet.data.decode("utf-8-sig").splitlines()
    assert rows[-1].startswith("合计,,1,")


def test_without_a_period_the_last_complete_one_is_reported(client, october, auth_headers):
    official = auth_headers("zhao", "official", COUNTY)
    report = client.get("/api/reports/daily", headers=official).get_json()
    today = datetime.now(SHANGHAI).date()
    assert report["period"] < today.isoformat() and report["level"] == "grid"


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/api/reports/yearly", 400, "kind"),
        ("/api/reports/monthly?period=2026-13", 400, "period"),
        ("/api/reports/monthly?level=street", 400, "level"),
        ("/api/reports/monthly?attribution=guessed", 400, "attribution"),
        ("/api/reports/monthly?format=pdf", 400, "format"),
        ("/api/reports/monthly?category=graffiti", 400, "category"),
        ("/api/reports/monthly?category=%00", 400, "category"),
    ],
)
def test_bad_report_parameters_name_the_field(client, october, auth_headers, path, status, field):
    official = auth_headers("zhao", "official", COUNTY)
    response = client.get(path, headers=official)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field


def test_reports_are_for_officials_and_administrators(client, october, auth_headers):
    assert client.get("/api/reports/monthly").status_code == 401
    worker = auth_headers("wang", "grid_worker", G1)
    response = client.get("/api/reports/monthly", headers=worker)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
