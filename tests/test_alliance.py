"""The alliance: organisations, stations and their grids, teams, members, and file imports."""

from __future__ import annotations

import json
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import func, select

from geogrid import alliance, alliance_import, stations
from geogrid.alliance_values import (
    ORGANISATION_LABELS,
    STATION_LABELS,
    mask_phone,
    normalise_mark,
    organisation_kind,
    station_kind,
)
from geogrid.crs import CGCS2000, GCJ02, WGS84, to_storage
from geogrid.errors import CodeError, Conflict, FileFormatError, InputError, NotFound
from geogrid.models import (
    ORGANISATION_TYPES,
    STATION_KINDS,
    PatrolMember,
    PatrolOrganisation,
    PatrolTeam,
    PatrolTrack,
    PoliceStation,
    StationGrid,
)
from tests.factories import load_tiny_city
from tests.patrol_factories import (
    add_organisation,
    add_station,
    add_team,
    add_track_row,
    fixes_digest,
)

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    return db


def write_csv(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# -- values -----------------------------------------------------------------------------


def test_every_kind_has_a_chinese_label():
    assert set(ORGANISATION_LABELS) == set(ORGANISATION_TYPES)
    assert set(STATION_LABELS) == set(STATION_KINDS)
    assert organisation_kind("物业服务企业") == organisation_kind("物业") == "property_management"
    assert organisation_kind("Taxi") == "taxi"
    assert station_kind("警务室") == "community_office"


def test_an_ambiguous_organisation_word_is_refused():
    with pytest.raises(InputError) as caught:
        organisation_kind("保安")
    assert caught.value.field == "kind"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("13812341234", "138****1234"),
        ("+86 138-1234-1234", "138****1234"),
        ("008613812341234", "138****1234"),
        ("8613812341234", "138****1234"),
        ("138 1234 1234", "138****1234"),
        ("138****1234", "138****1234"),
        ("138**1234", "138****1234"),
        ("0536-8881234", "053****1234"),
        (None, ""),
        ("  ", ""),
    ],
)
def test_phones_keep_only_the_first_three_and_last_four_digits(given, kept):
    assert mask_phone(given) == kept


@pytest.mark.parametrize("given", ["1381234", "phone 13812341234", "1381234123412345"])
def test_a_bad_phone_is_refused_without_repeating_it(given):
    with pytest.raises(InputError) as caught:
        mask_phone(given)
    assert caught.value.field == "phone"
    assert "1381234" not in caught.value.message


def test_marks_are_normalised_and_checked():
    assert normalise_mark("pa3707050042") == "PA-370705-0042"
    assert normalise_mark(" PA-370705-0042 ") == "PA-370705-0042"
    for bad in ("PA-37070-0042", "PB-370705-0042", "PA-370705-42", ""):
        with pytest.raises(InputError) as caught:
            normalise_mark(bad)
        assert caught.value.field == "mark"


# -- organisations, stations, teams, members --------------------------------------------


def test_organisations_are_added_updated_and_listed(city):
    alliance.add_organisation(city, name="安居物业", kind="物业", county_code="370705")
    with pytest.raises(Conflict):
        alliance.add_organisation(city, name="安居物业", kind="shop")
    assert alliance.update_organisation(city, "安居物业", kind="compound_guard") == ["kind"]
    assert alliance.update_organisation(city, "安居物业", kind="compound_guard") == []
    [listed] = alliance.list_organisations(city)
    assert (listed.kind, listed.kind_label, listed.members) == ("compound_guard", "小区门卫", 0)


def test_a_station_point_is_converted_from_its_declared_type(city):
    station = stations.add_station(
        city, code="370705-ps01", name="东关派出所", lon=119.015, lat=36.711, coord_type=GCJ02
    )
    assert station.code == "370705-PS01"
    [info] = stations.list_stations(city)
    expected = to_storage(119.015, 36.711, GCJ02)
    assert info.lon == pytest.approx(expected[0], abs=1e-9)
    assert info.lat == pytest.approx(expected[1], abs=1e-9)
    assert abs(info.lon - 119.015) > 0.003  # GCJ-02 is shifted by hundreds of metres


def test_station_grids_are_checked_against_the_current_generation(city):
    stations.add_station(
        city, code="S1", name="东关派出所", lon=119.01, lat=36.71, coord_type=WGS84
    )
    with pytest.raises(CodeError) as caught:
        stations.set_station_grids(city, "S1", [G1, "370705001001009"])
    assert caught.value.field == "grid_code"
    assert "370705001001009" in caught.value.message
    assert stations.own_grid_codes(city, "S1") == []
    assert stations.set_station_grids(city, "S1", [G1, G2]) == ([G1, G2], [])
    assert stations.set_station_grids(city, "S1", [G2, G3], replace=True) == ([G3], [G1])


def test_a_station_answers_for_its_offices_grids(city):
    add_station(city, "S1", lon=119.01, lat=36.71, grids=[G1])
    add_station(
        city, "S1-O1", lon=119.03, lat=36.71, grids=[G3], kind="community_office", parent_code="S1"
    )
    assert stations.station_grid_codes(city, "S1") == [G1, G3]
    assert stations.station_grid_codes(city, "S1-O1") == [G3]
    assert stations.station_family(city, "S1") == ["S1", "S1-O1"]


def test_offices_sit_under_stations(city):
    add_station(city, "S1", lon=119.01, lat=36.71)
    cases = [
        ({"kind": "community_office"}, "parent_code"),
        ({"kind": "station", "parent_code": "S1"}, "parent_code"),
        ({"kind": "community_office", "parent_code": "NOPE"}, "parent_code"),
    ]
    for options, field in cases:
        with pytest.raises((InputError, NotFound)) as caught:
            stations.add_station(
                city, code="O1", name="警务室", lon=119.0, lat=36.7, coord_type=CGCS2000, **options
            )
        assert caught.value.field == field


def test_teams_need_a_known_station_and_a_unique_mark(city):
    add_station(city, "S1", lon=119.01, lat=36.71)
    add_organisation(city, "安居物业")
    team = alliance.add_team(
        city,
        mark="pa3707050001",
        name="一队",
        station_code="S1",
        organisation="安居物业",
        base=(119.005, 36.705),
        coord_type=WGS84,
        capacity=2,
    )
    assert team.mark == "PA-370705-0001"
    with pytest.raises(Conflict) as caught:
        alliance.add_team(city, mark="PA-370705-0001", name="二队", station_code="S1")
    assert caught.value.field == "mark"
    with pytest.raises(NotFound) as caught:
        alliance.add_team(city, mark="PA-370705-0002", name="二队", station_code="S9")
    assert caught.value.field == "station_code"
    [info] = alliance.list_teams(city)
    assert (info.base_lon, info.base_lat, info.capacity, info.organisation) == (
        pytest.approx(119.005),
        pytest.approx(36.705),
        2.0,
        "安居物业",
    )


def test_a_member_keeps_only_the_masked_phone(city):
    add_station(city, "S1", lon=119.01, lat=36.71)
    org = add_organisation(city, "安居物业")
    add_team(city, "PA-370705-0001", "S1", organisation_id=org.id)
    member = alliance.add_member(
        city, name="张伟", team_mark="PA-370705-0001", phone="13812345678", is_leader=True
    )
    assert member.phone_masked == "138****5678"
    assert member.organisation_id == org.id  # the team's, when none is named
    stored = city.scalar(select(func.count()).where(PatrolMember.phone_masked.like("%2345%")))
    assert stored == 0
    with pytest.raises(Conflict):
        alliance.add_member(city, name="张伟", team_mark="PA-370705-0001")
    with pytest.raises(InputError) as caught:
        alliance.add_member(city, name="李娜")
    assert caught.value.field == "team"
    [listed] = alliance.list_members(city, team_mark="PA-370705-0001")
    assert (listed.name, listed.phone_masked, listed.is_leader) == ("张伟", "138****5678", True)


def test_stations_and_teams_are_updated_in_place(city):
    add_station(city, "S1", lon=119.01, lat=36.71)
    add_station(city, "S2", lon=119.03, lat=36.71)
    add_team(city, "PA-370705-0001", "S1")
    assert stations.update_station(city, "S1", lonlat=(119.01, 36.71), coord_type=WGS84) == []
    assert stations.update_station(
        city, "s1", name="新东关所", lonlat=(119.012, 36.71), coord_type=WGS84
    ) == ["name", "geom"]
    with pytest.raises(InputError) as caught:
        stations.update_station(city, "S1", lonlat=(119.0, 36.7))
    assert caught.value.field == "crs"
    changed = alliance.update_team(
        city, "PA3707050001", station_code="S2", capacity=3, active=False
    )
    assert changed == ["station_code", "capacity", "active"]
    assert alliance.list_teams(city) == []
    [team] = alliance.list_teams(city, station_code="S2", include_inactive=True)
    assert (team.station_code, team.capacity, team.active) == ("S2", 3.0, False)


def test_the_track_factory_stores_time_as_m(city):
    add_station(city, "S1", lon=119.01, lat=36.71)
    team = add_team(city, "PA-370705-0001", "S1")
    fixes = [(119.001, 36.701, 1_772_409_600), (119.002, 36.702, 1_772_409_660)]
    track = add_track_row(city, team, fixes)
    wkt, srid = city.execute(
        select(func.ST_AsText(PatrolTrack.geom), func.ST_SRID(PatrolTrack.geom)).where(
            PatrolTrack.id == track.id
        )
    ).one()
    assert wkt == "LINESTRING M (119.001 36.701 1772409600,119.002 36.702 1772409660)"
    assert srid == 4490
    assert (track.point_count, track.digest) == (2, fixes_digest(fixes))
    assert track.ended_at - track.started_at == timedelta(minutes=1)


# -- imports ----------------------------------------------------------------------------

ORGS = """名称,类型,区县
安居物业,物业服务企业,370705
顺达出租,出租车,370705
红马甲志愿者,volunteer,
"""


def test_organisations_import_adds_then_finds_nothing_to_change(city, tmp_path):
    path = write_csv(tmp_path / "orgs.csv", ORGS)
    first = alliance_import.import_organisations(city, path)
    assert not first.blocked
    assert [c.action for c in first.changes] == ["add", "add", "add"]
    again = alliance_import.import_organisations(city, path)
    assert [c.action for c in again.changes] == ["unchanged"] * 3
    kinds = dict(city.execute(select(PatrolOrganisation.name, PatrolOrganisation.kind)).all())
    assert kinds == {
        "安居物业": "property_management",
        "顺达出租": "taxi",
        "红马甲志愿者": "volunteer",
    }


def test_a_gbk_file_with_bad_rows_lists_them_and_writes_nothing(city, tmp_path):
    text = ORGS + "好运商店,杂货,370705\n,shop,\n安居物业,shop,\n"
    path = write_csv(tmp_path / "orgs.csv", text, encoding="gbk")
    result = alliance_import.import_organisations(city, path)
    assert result.blocked
    assert [(p.record, p.field) for p in result.problems] == [
        (5, "kind"),
        (6, "name"),
        (7, None),
    ]
    assert "line 2" in result.problems[2].message
    assert not result.changes
    assert city.scalar(select(func.count()).select_from(PatrolOrganisation)) == 0


def test_a_changed_row_is_an_update_naming_the_fields(city, tmp_path):
    alliance_import.import_organisations(city, write_csv(tmp_path / "a.csv", ORGS))
    changed = ORGS.replace("顺达出租,出租车,370705", "顺达出租,shop,370702")
    result = alliance_import.import_organisations(city, write_csv(tmp_path / "b.csv", changed))
    assert [(c.line, c.action, c.fields) for c in result.changes if c.action != "unchanged"] == [
        (3, "update", ("kind", "county_code"))
    ]


def test_a_missing_required_column_names_the_aliases(city, tmp_path):
    path = write_csv(tmp_path / "orgs.csv", "名称,区县\n安居物业,370705\n")
    with pytest.raises(FileFormatError) as caught:
        alliance_import.import_organisations(city, path)
    assert caught.value.field == "kind"
    assert "类型" in caught.value.message


STATIONS = f"""编码,名称,类型,所属派出所,经度,纬度,负责网格
S1-O1,东关警务室,警务室,S1,119.005,36.705,{G1}
S1,东关派出所,派出所,,119.01,36.71,{G2}、{G3}
S2,大虞派出所,,,119.03,36.71,{G4}
"""


def test_stations_import_with_offices_and_grids(city, tmp_path):
    path = write_csv(tmp_path / "stations.csv", STATIONS)
    result = alliance_import.import_stations(city, path, coord_type=WGS84)
    assert not result.blocked, result.problems
    assert [(c.line, c.key, c.action) for c in result.changes] == [
        (2, "S1-O1", "add"),
        (3, "S1", "add"),
        (4, "S2", "add"),
    ]
    office = city.get(PoliceStation, "S1-O1")
    assert (office.kind, office.parent_code) == ("community_office", "S1")
    assert stations.station_grid_codes(city, "S1") == [G1, G2, G3]
    again = alliance_import.import_stations(city, path, coord_type=WGS84)
    assert {c.action for c in again.changes} == {"unchanged"}


def test_stations_import_replaces_grids_and_moves_points(city, tmp_path):
    alliance_import.import_stations(city, write_csv(tmp_path / "a.csv", STATIONS), coord_type=WGS84)
    moved = STATIONS.replace(f"119.03,36.71,{G4}", f"119.031,36.71,{G3};{G4}")
    result = alliance_import.import_stations(
        city, write_csv(tmp_path / "b.csv", moved), coord_type=WGS84
    )
    assert [(c.key, c.fields) for c in result.changes if c.action == "update"] == [
        ("S2", ("geom", "grids"))
    ]
    assert stations.own_grid_codes(city, "S2") == [G3, G4]


def test_stations_import_lists_unknown_grids_parents_and_coordinates(city, tmp_path):
    text = f"""code,name,kind,parent_code,lon,lat,grids
S1,东关派出所,station,,119.01,36.71,{G1};370705009009009
O1,警务室,community_office,NOPE,119.0,36.7,
O2,警务室,community_office,O1,119.0,36.7,
S3,大虞派出所,station,,36.71,119.03,
"""
    result = alliance_import.import_stations(
        city, write_csv(tmp_path / "s.csv", text), coord_type=WGS84
    )
    assert [(p.record, p.field) for p in result.problems] == [
        (2, "grids"),
        (3, "parent_code"),
        (3, "kind"),
        (4, "parent_code"),
        (5, "lat"),
    ]
    assert "370705009009009" in result.problems[0].message
    assert "swapped" in result.problems[4].message
    assert city.scalar(select(func.count()).select_from(PoliceStation)) == 0
    assert city.scalar(select(func.count()).select_from(StationGrid)) == 0


TEAMS = """统一标识编号,队伍名称,派出所,单位,驻点经度,驻点纬度,承载量
PA3707050001,东关物业巡防一队,S1,安居物业,119.005,36.705,2
PA-370705-0002,出租车巡防队,S1,顺达出租,,,
"""


@pytest.fixture
def stations_and_orgs(city, tmp_path):
    alliance_import.import_organisations(city, write_csv(tmp_path / "orgs.csv", ORGS))
    alliance_import.import_stations(
        city, write_csv(tmp_path / "stations.csv", STATIONS), coord_type=WGS84
    )
    return city


def test_teams_import(stations_and_orgs, tmp_path):
    db = stations_and_orgs
    path = write_csv(tmp_path / "teams.csv", TEAMS)
    result = alliance_import.import_teams(db, path, coord_type=WGS84)
    assert [(c.key, c.action) for c in result.changes] == [
        ("PA-370705-0001", "add"),
        ("PA-370705-0002", "add"),
    ]
    first = alliance.find_team(db, "PA-370705-0001")
    assert first.capacity == 2.0
    assert alliance.list_teams(db)[1].base_lon is None
    again = alliance_import.import_teams(db, path, coord_type=WGS84)
    assert {c.action for c in again.changes} == {"unchanged"}


def test_teams_import_lists_unknown_stations_organisations_and_bad_marks(
    stations_and_orgs, tmp_path
):
    text = TEAMS + "PA-370705-03,坏编号,S1,,,,\nPA-370705-0004,无所,S9,无名单位,,,0\n"
    result = alliance_import.import_teams(
        stations_and_orgs, write_csv(tmp_path / "teams.csv", text), coord_type=None
    )
    assert [(p.record, p.field) for p in result.problems] == [
        (2, "crs"),
        (4, "mark"),
        (5, "capacity"),
    ]
    text = TEAMS.replace("119.005,36.705", ",").replace("S1,顺达出租", "S9,无名单位")
    result = alliance_import.import_teams(
        stations_and_orgs, write_csv(tmp_path / "teams2.csv", text)
    )
    assert [(p.record, p.field) for p in result.problems] == [
        (3, "station_code"),
        (3, "organisation"),
    ]
    assert stations_and_orgs.scalar(select(func.count()).select_from(PatrolTeam)) == 0


MEMBERS = """姓名,队伍,单位,手机,队长
张伟,PA-370705-0001,,13812345678,是
李娜,PA-370705-0001,,+86 139 0000 4321,否
王芳,,红马甲志愿者,,
"""


@pytest.fixture
def teams(stations_and_orgs, tmp_path):
    alliance_import.import_teams(
        stations_and_orgs, write_csv(tmp_path / "teams.csv", TEAMS), coord_type=WGS84
    )
    return stations_and_orgs


def test_members_import_masks_phones_and_takes_the_teams_organisation(teams, tmp_path):
    path = write_csv(tmp_path / "members.csv", MEMBERS, encoding="gbk")
    result = alliance_import.import_members(teams, path)
    assert [(c.key, c.action) for c in result.changes] == [
        ("PA-370705-0001/张伟", "add"),
        ("PA-370705-0001/李娜", "add"),
        ("红马甲志愿者/王芳", "add"),
    ]
    listed = {m.name: m for m in alliance.list_members(teams)}
    assert listed["张伟"].phone_masked == "138****5678"
    assert listed["李娜"].phone_masked == "139****4321"
    assert listed["张伟"].organisation == "安居物业"
    assert (listed["张伟"].is_leader, listed["李娜"].is_leader) == (True, False)
    assert listed["王芳"].team_mark is None
    phones = teams.scalars(select(PatrolMember.phone_masked)).all()
    assert not any("2345" in phone or "0000" in phone for phone in phones)
    again = alliance_import.import_members(teams, path)
    assert {c.action for c in again.changes} == {"unchanged"}


def test_members_import_lists_bad_rows(teams, tmp_path):
    text = (
        MEMBERS
        + "赵磊,PA-370705-0001,,12345,也许\n钱强,,,,\n张伟,PA-370705-0001,,,\n"
        + "孙丽,PA-370705-0009,,,\n"
    )
    result = alliance_import.import_members(teams, write_csv(tmp_path / "m.csv", text))
    assert [(p.record, p.field) for p in result.problems] == [
        (5, "phone"),
        (5, "leader"),
        (6, "team"),
        (7, None),
        (8, "team"),
    ]
    assert "12345" not in result.problems[0].message
    assert teams.scalar(select(func.count()).select_from(PatrolMember)) == 0


def test_members_import_from_xlsx_keeps_numbers_as_text(teams, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["name", "team", "phone", "leader"])
    sheet.append(["张伟", "PA-370705-0002", 13812345678, 1])
    path = tmp_path / "members.xlsx"
    workbook.save(path)
    result = alliance_import.import_members(teams, path)
    assert not result.blocked, result.problems
    [member] = alliance.list_members(teams, team_mark="PA-370705-0002")
    assert (member.phone_masked, member.is_leader, member.organisation) == (
        "138****5678",
        True,
        "顺达出租",
    )


def test_an_import_result_is_json_ready(teams, tmp_path):
    result = alliance_import.import_members(teams, write_csv(tmp_path / "m.csv", MEMBERS))
    body = json.loads(json.dumps(result.as_dict(), ensure_ascii=False))
    assert (body["added"], body["blocked"], body["changes"][0]["line"]) == (3, False, 2)


# -- the command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(make_cli, tmp_path_factory):
    from tests.factories import load_tiny_city_by_cli

    invoke = make_cli()
    folder = tmp_path_factory.mktemp("city")
    load_tiny_city_by_cli(invoke, folder)
    return invoke


def test_cli_import_is_a_dry_run_until_commit(cli, tmp_path):
    path = write_csv(tmp_path / "orgs.csv", ORGS)
    dry = cli("patrols", "import-orgs", str(path))
    assert "would add 3" in dry.output and "dry run" in dry.output
    assert "no organisations yet" in cli("patrols", "orgs").output
    assert "added 3" in cli("patrols", "import-orgs", str(path), "--commit").output
    listed = json.loads(cli("patrols", "orgs", "--json").output)
    assert {row["name"] for row in listed} == {"安居物业", "顺达出租", "红马甲志愿者"}


def test_cli_import_with_problems_fails_listing_lines(cli, tmp_path):
    path = write_csv(tmp_path / "stations.csv", STATIONS.replace(G4, "370705009009009"))
    result = cli("patrols", "import-stations", str(path), "--crs", "wgs84", "--commit", ok=False)
    assert result.exit_code == 1
    assert "line 4 [grids]: no grid 370705009009009" in result.output
    assert "nothing written" in result.output


def test_cli_lists_stations_teams_and_members(cli, tmp_path):
    cli("patrols", "import-orgs", str(write_csv(tmp_path / "o.csv", ORGS)), "--commit")
    stations_file = write_csv(tmp_path / "s.csv", STATIONS)
    cli("patrols", "import-stations", str(stations_file), "--crs", "wgs84", "--commit")
    cli(
        "patrols",
        "import-teams",
        str(write_csv(tmp_path / "t.csv", TEAMS)),
        "--crs",
        "wgs84",
        "--commit",
    )
    cli("patrols", "import-members", str(write_csv(tmp_path / "m.csv", MEMBERS)), "--commit")
    listed = json.loads(cli("patrols", "stations", "--json").output)
    assert {row["code"]: row["grid_codes"] for row in listed}["S1"] == [G2, G3]
    assert "PA-370705-0002" in cli("patrols", "teams", "--station", "S1").output
    members = cli("patrols", "members", "--team", "PA-370705-0001").output
    assert "138****5678" in members and "13812345678" not in members
    dry = cli("patrols", "add-team", "PA-370705-0003", "--name", "三队", "--station", "S2")
    assert "would add team PA-370705-0003" in dry.output
