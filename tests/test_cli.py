"""The geogrid command line end to end, on its own database (the CLI commits for real)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner
from factories import level_file

from geogrid.cli import main


@pytest.fixture(scope="module")
def run(make_cli):
    """Invoke ``geogrid`` against a fresh database of this module's own."""
    return make_cli()


@pytest.fixture(scope="module")
def city_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("city")
    return {
        level: level_file(folder, level) for level in ("county", "township", "community", "grid")
    }


def test_import_is_a_dry_run_without_commit(run, city_files):
    result = run(
        "boundaries",
        "import",
        str(city_files["county"]),
        "--level",
        "county",
        "--name-field",
        "name",
        "--crs",
        "wgs84",
    )
    assert "would import into a new draft generation" in result.output
    assert "dry run: nothing was written" in result.output
    assert "no generations yet" in run("generations", "list").output


def test_import_activate_locate_export(run, city_files, tmp_path):
    drafts = set()
    for level, path in city_files.items():
        out = run(
            "boundaries",
            "import",
            str(path),
            "--level",
            level,
            "--name-field",
            "name",
            "--households-field",
            "households",
            "--crs",
            "wgs84",
            "--commit",
        ).output
        drafts.add(re.search(r"imported into draft generation (\d+)", out).group(1))
    assert len(drafts) == 1, "every level goes into the one open draft"
    draft = drafts.pop()
    checked = run("generations", "activate", draft, "--user", "planner").output
    assert f"generation {draft} passes validation and would become active" in checked
    assert "draft" in run("generations", "list").output
    activated = run("generations", "activate", draft, "--user", "planner", "--commit").output
    assert f"generation {draft} is now active" in activated
    listing = json.loads(run("generations", "list", "--json").output)
    assert listing[0]["status"] == "active" and listing[0]["activated_by"] == "planner"
    where = json.loads(run("locate", "119.005", "36.71", "--crs", "wgs84", "--json").output)
    assert (where["status"], where["grid_code"]) == ("inside", "370705001001001")
    out = tmp_path / "grids.geojson"
    assert (
        "wrote 4 grid areas"
        in run("boundaries", "export", "--level", "grid", "--out", str(out)).output
    )
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert len(exported["features"]) == 4 and "crs" not in exported
    assert run("codes", "next", "370705001001").output.strip() == "370705001001003"


def test_geocode_a_csv_keeps_every_row(run, city_files, tmp_path):
    if "active" not in run("generations", "list").output:
        test_import_activate_locate_export(run, city_files, tmp_path)
    source = tmp_path / "cases.csv"
    source.write_text(
        "id,经度,纬度\n1,119.005,36.71\n2,119.01,36.71\n3,abc,36.71\n4,119.2,36.71\n5,119.005\n",
        encoding="utf-8",
    )
    out = tmp_path / "placed.csv"
    result = run(
        "geocode",
        str(source),
        "--lon-field",
        "经度",
        "--lat-field",
        "纬度",
        "--crs",
        "wgs84",
        "--out",
        str(out),
    )
    assert "line 4" in result.output and "not a number" in result.output
    placed = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert list(placed["id"].fillna("")) == ["1", "2", "3", "4", ""]
    assert list(placed["status"]) == ["inside", "edge", "unreadable", "outside", "unreadable"]
    assert "line 6" in result.output
    assert (
        placed.loc[1, "grid_code"] == "370705001001001"
        and placed.loc[1, "candidates"] == "370705001001002"
    )


def test_errors_are_one_line_not_a_traceback(run):
    result = run("locate", "119.0", "36.7", "--crs", "mars", ok=False)
    assert result.exit_code == 1
    assert "error [crs]" in result.output and "Traceback" not in result.output
    result = run("codes", "check", "12345", ok=False)
    assert "error [code]" in result.output
    result = run(
        "boundaries", "export", "--level", "grid", "--out", "/no/such/folder/x.geojson", ok=False
    )
    assert "error [" in result.output and "Traceback" not in result.output


def test_an_unreachable_database_is_one_line(tmp_path):
    env = {"GEOGRID_DATABASE_URL": f"postgresql://nobody@/nowhere?host={tmp_path}"}
    result = CliRunner().invoke(main, ["generations", "list"], env=env)
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output and "Traceback" not in result.output
