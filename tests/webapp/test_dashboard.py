"""The officials' dashboard on the tiny city: its map layers, figures, lists, scope and export."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

import openpyxl
import pandas as pd
import pytest
from factories import add_incident

from geogrid.workdays import SHANGHAI

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
T1, T2 = "370705001", "370705002"
C1, C2 = "370705001001", "370705002001"
COUNTY = "370705"
OCTOBER = "period=month&month=2026-10"


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=SHANGHAI)


@pytest.fixture
def october(db, city):
    """October 2026: six incidents in G1 (one overdue for acceptance), two overdue in G3."""
    made = {}
    for day in (2, 5, 8, 12, 15):
        reported = at(day)
        made[day] = add_incident(
            db,
            grid_code=G1,
            reported_at=reported,
            state="evaluated",
            satisfaction="satisfied",
            accept_due_at=reported + timedelta(days=1),
            resolve_due_at=reported + timedelta(days=3),
            accepted_at=reported + timedelta(hours=1),
            resolved_at=reported + timedelta(days=1),
        )
    made["overdue"] = add_incident(
        db,
        grid_code=G1,
        reported_at=at(20),
        category="noise",
        accept_due_at=at(21),
        resolve_due_at=at(23),
    )
    for day in (3, 9):
        made[f"g3-{day}"] = add_incident(
            db, grid_code=G3, reported_at=at(day), accept_due_at=at(day + 1)
        )
    return made


def js(text: str) -> str:
    """Text as the map's script holds it: JSON, non-ASCII letters escaped."""
    return json.dumps(text)[1:-1]


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_an_official_sees_the_map_layers_figures_league_and_overdue_list(login_as, october):
    official = login_as("official", COUNTY)
    html = page(official, f"/dashboard?{OCTOBER}")
    assert '<html lang="zh-CN">' in html
    # The four layers, each with its legend, and the layer control listing them.
    for layer in ("事件热力图", "事件数与发生率", "热点与冷点 (Gi*)", "时空热点趋势"):
        assert js(layer) in html, layer
    assert "L.heatLayer" in html and "L.control.layers" in html
    assert js("每千户事件数") in html  # every tiny-city grid has households
    # Deadline figures of the county for October: 8 received, 5 accepted on time.
    figures = html[html.index('id="figures"') : html.index('id="league"')]
    assert re.search(r"收件数</dt><dd>8</dd>", figures)
    assert re.search(r"按时受理</dt><dd>5 / ", figures)
    # The league table ranks the townships below the county.
    league = html[html.index('id="league"') : html.index('id="overdue"')]
    assert "东关街道" in league and "大虞街道" in league
    assert "/dashboard/league.xlsx?" in league
    # Overdue now: the noise incident waiting since 21 October, and the two in G3.
    overdue = html[html.index('id="overdue"') :]
    assert f"#{october['overdue'].id}" in overdue
    assert f'/incidents/{october["overdue"].id}"' in overdue  # its page (or API answer)
    assert f"#{october['g3-3'].id}" in overdue
    assert f"#{october[2].id}<" not in overdue  # resolved in time


def test_the_default_area_is_the_officials_scope_and_nothing_beyond_it(login_as, october):
    street = login_as("official", T1)
    html = page(street, f"/dashboard?{OCTOBER}")
    assert "<h1>东关街道</h1>" in html
    league = html[html.index('id="league"') : html.index('id="overdue"')]
    assert "东关第1社区" in league and "大虞" not in league
    overdue = html[html.index('id="overdue"') :]
    assert f"#{october['overdue'].id}" in overdue
    assert f"#{october['g3-3'].id}" not in overdue  # another street's grid
    script = html[html.index("L.map(") :]
    assert G3 not in script and G4 not in script


@pytest.mark.parametrize("area", [T2, COUNTY, G3])
def test_an_area_outside_the_scope_is_refused(login_as, october, area):
    street = login_as("official", T1)
    response = street.get(f"/dashboard?area={area}&{OCTOBER}")
    assert response.status_code == 403
    assert "area" in response.get_data(as_text=True)
    assert street.get(f"/dashboard/league.xlsx?area={area}&{OCTOBER}").status_code == 403


def test_an_area_inside_the_scope_narrows_everything(login_as, october):
    official = login_as("official", COUNTY)
    html = page(official, f"/dashboard?area={C2}&{OCTOBER}&level=grid")
    assert "<h1>大虞第1社区</h1>" in html
    figures = html[html.index('id="figures"') : html.index('id="league"')]
    assert re.search(r"收件数</dt><dd>2</dd>", figures)
    league = html[html.index('id="league"') : html.index('id="overdue"')]
    assert "大虞第1网格" in league and "东关" not in league


@pytest.mark.parametrize("role", ["grid_worker", "patrol_member", "planner", "station_officer"])
def test_only_officials_and_administrators_open_it(login_as, city, role):
    assert login_as(role, COUNTY).get("/dashboard").status_code == 403


def test_visitors_are_sent_to_sign_in(client, city):
    response = client.get("/dashboard")
    assert response.status_code == 302 and "/login?next=" in response.location


def test_an_administrator_sees_the_whole_city(login_as, october):
    html = page(login_as("administrator"), f"/dashboard?{OCTOBER}")
    assert "<h1>奎文区</h1>" in html


def test_english_on_request(login_as, october):
    html = page(login_as("official", COUNTY), f"/dashboard?{OCTOBER}&lang=en")
    assert '<html lang="en">' in html
    for text in (
        "Deadline figures",
        "League table",
        "Overdue now",
        "Incident heat map",
        "Hotspots and coldspots (Gi*)",
        "Incidents per 1,000 households",
    ):
        assert text in html, text
    assert "领导驾驶舱" not in html


def test_the_category_filter_narrows_the_map_and_the_overdue_list(login_as, october):
    html = page(login_as("official", COUNTY), f"/dashboard?{OCTOBER}&category=noise")
    overdue = html[html.index('id="overdue"') :]
    assert f"#{october['overdue'].id}" in overdue
    assert f"#{october['g3-3'].id}" not in overdue
    assert js("1 件事件") in html  # the heat map's legend counts the noise incident only


def league_received(html: str) -> dict[str, int]:
    """The league table's received count per unit name."""
    league = html[html.index('id="league"') : html.index('id="overdue"')]
    rows = re.findall(r'title="\d+">([^<]+)</a></td>\s*<td>(\d+)</td>', league)
    return {name: int(received) for name, received in rows}


def test_the_category_filter_narrows_the_figures_and_the_league_table(login_as, october):
    official = login_as("official", COUNTY)
    everything = page(official, f"/dashboard?{OCTOBER}")
    assert league_received(everything) == {"东关街道": 6, "大虞街道": 2}
    assert re.search(r"当前超期</dt><dd>3</dd>", everything)
    # The noise incident alone: received, not accepted by its deadline, overdue now.
    html = page(official, f"/dashboard?{OCTOBER}&category=noise")
    figures = html[html.index('id="figures"') : html.index('id="league"')]
    assert "<h2>时限指标 · 噪音扰民</h2>" in figures
    assert re.search(r"收件数</dt><dd>1</dd>", figures)
    assert re.search(r"按时受理</dt><dd>0 / 1 <small>0.0%</small>", figures)
    assert re.search(r"当前超期</dt><dd>1</dd>", figures)
    assert league_received(html) == {"东关街道": 1, "大虞街道": 0}
    assert re.search(r"<h2>评比排名 · [^<]+ · 噪音扰民</h2>", html)
    environment = page(official, f"/dashboard?{OCTOBER}&category=environment&lang=en")
    assert "<h2>Deadline figures · Environment and sanitation</h2>" in environment
    assert league_received(environment) == {"东关街道": 5, "大虞街道": 2}


def test_weeks_and_ranges(login_as, october):
    official = login_as("official", COUNTY)
    week = page(official, "/dashboard?period=week&week=2026-W41")  # 5-11 October
    assert "2026-W41" in week
    assert re.search(r"收件数</dt><dd>3</dd>", week)  # G1 on the 5th and 8th, G3 on the 9th
    ranged = page(official, "/dashboard?period=range&from=2026-10-01&to=2026-10-10&slice=week")
    assert "2026-10-01 – 2026-10-10" in ranged
    assert re.search(r"收件数</dt><dd>5</dd>", ranged)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=range&from=2026-10-01", "to"),
        ("period=range&from=2026-10-09&to=2026-10-01", "to"),
        ("period=year", "period"),
        ("month=2026-13", "period"),
        ("category=nonsense", "category"),
        ("category=%00", "category"),
        ("slice=day", "slice"),
        ("area=37", "area"),
    ],
)
def test_bad_filters_are_explained(login_as, city, query, field):
    response = login_as("official", COUNTY).get(f"/dashboard?{query}")
    assert response.status_code == 400
    assert f"字段：{field}" in response.get_data(as_text=True)


def test_the_league_table_exports_as_xlsx_with_chinese_headers(login_as, october):
    official = login_as("official", COUNTY)
    response = official.get(f"/dashboard/league.xlsx?{OCTOBER}")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert (
        'filename="league-370705-2026-10-township.xlsx"' in response.headers["Content-Disposition"]
    )
    assert response.headers["Cache-Control"] == "private, no-store"
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0].startswith("月报(月评比) 2026-10")
    headers = rows[1]
    assert headers[:3] == ("单位编码", "名称", "收件数") and "排名" in headers and "得分" in headers
    by_code = {row[0]: dict(zip(headers, row, strict=True)) for row in rows[2:]}
    assert by_code[T1]["收件数"] == 6 and by_code[T2]["收件数"] == 2
    assert by_code["合计"]["收件数"] == 8


def test_the_export_keeps_to_the_scope_and_the_range(login_as, october):
    street = login_as("official", T1)
    response = street.get("/dashboard/league.xlsx?period=range&from=2026-10-01&to=2026-10-10")
    assert response.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(response.data)).worksheets[0].values)
    assert rows[0][0].startswith("自定义时段 2026-10-01/2026-10-10")
    assert [row[0] for row in rows[2:]] == [C1, "合计"]
    assert rows[2][2] == 3  # G1 on the 2nd, 5th and 8th


def test_the_export_counts_the_chosen_category(login_as, october):
    response = login_as("official", COUNTY).get(f"/dashboard/league.xlsx?{OCTOBER}&category=noise")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert 'filename="league-370705-2026-10-township-noise.xlsx"' in disposition
    rows = list(openpyxl.load_workbook(io.BytesIO(response.data)).worksheets[0].values)
    assert "类别 噪音扰民" in rows[0][0]
    assert {row[0]: row[2] for row in rows[2:]} == {T1: 1, T2: 0, "合计": 1}


def test_english_export_headers(login_as, october):
    response = login_as("official", COUNTY).get(f"/dashboard/league.xlsx?{OCTOBER}&lang=en")
    rows = list(openpyxl.load_workbook(io.BytesIO(response.data)).worksheets[0].values)
    assert rows[1][:3] == ("Code", "Name", "Received")


def test_emerging_hotspots_are_fetched_by_the_page_and_keep_to_the_scope(login_as, october):
    street = login_as("official", T1)
    html = page(street, f"/dashboard?{OCTOBER}&slice=week")
    found = re.search(r'"valuesUrl": "([^"]+)"', html)
    assert found and "/dashboard/emerging.json?" in found.group(1)
    values_url = found.group(1).replace("\\u0026", "&")
    response = street.get(values_url)
    assert response.status_code == 200
    values = response.get_json()
    assert set(values) == {G1, G2}  # the street's grids only
    assert values[G1]["category_code"] in {"new", "no pattern", "consecutive", "sporadic"}
    assert street.get(f"/dashboard/emerging.json?area={T2}&{OCTOBER}").status_code == 403


def test_a_period_without_incidents_still_draws_every_layer(login_as, october):
    html = page(login_as("official", COUNTY), "/dashboard?period=month&month=2026-05")
    assert re.search(r"收件数</dt><dd>0</dd>", html)
    assert js("0 件事件") in html
    assert js("不显著 (4)") in html  # nothing to test: every grid not significant
    for layer in ("事件数与发生率", "热点与冷点 (Gi*)", "时空热点趋势"):
        assert js(layer) in html, layer


def test_a_single_grid_can_be_looked_at(login_as, october):
    html = page(login_as("official", COUNTY), f"/dashboard?area={G1}&{OCTOBER}")
    assert "<h1>东关第1网格</h1>" in html
    assert re.search(r"收件数</dt><dd>6</dd>", html)


def test_rates_per_thousand_households_else_per_square_kilometre(db, city):
    from geogrid.dashboard import incident_rates, unit_areas

    units = unit_areas(db, city, "grid", T1, simplify=0.0)
    assert list(units["code"]) == [G1, G2] and units.crs.to_epsg() == 4490
    # 0.01° x 0.02° at 36.7°N: about 0.89 km x 2.22 km.
    assert units["area_km2"].to_list() == pytest.approx([1.99, 1.99], abs=0.02)
    counts = pd.Series({G1: 6, G2: 0})
    rates, basis = incident_rates(counts, units)
    assert basis == "households"
    assert rates.loc[G1, "rate"] == pytest.approx(6 / 300 * 1000)
    unknown = units.assign(households=[300, None])
    rates, basis = incident_rates(counts, unknown)
    assert basis == "area"
    assert rates.loc[G1, "rate"] == pytest.approx(6 / units["area_km2"].iloc[0])
    outlines_left_out = unit_areas(db, city, "grid", T1)
    assert "geometry" not in outlines_left_out.columns
