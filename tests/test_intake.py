"""Filing incidents: geocoding at intake, field-named errors, idempotency under concurrency."""

from __future__ import annotations

import json
import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from factories import level_file, load_tiny_city, tiny_city
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from geogrid import boundaries, generations
from geogrid.actors import Actor
from geogrid.crs import parse_coord_type, wgs84_to_gcj02
from geogrid.db import make_sessionmaker, session_scope
from geogrid.errors import CodeError, Conflict, CoordinateError, Forbidden, InputError
from geogrid.incidents import incident_as_dict
from geogrid.intake import IncidentInput, file_incident, request_digest
from geogrid.models import Incident, IncidentContact, IncidentEvent
from geogrid.validate import ValidationRules
from geogrid.workdays import SHANGHAI, WorkCalendar

G1, G2, G3, G4 = "370705001001001", "370705001001002", "370705002001001", "370705002001002"
LAT = 36.71
M_PER_DEG_LON = 111_320 * math.cos(math.radians(LAT))
#: A Monday; the 09:00 report is due accepted Tuesday 09:00 and resolved Thursday 09:00.
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)
REPORTED = "2026-11-30T09:00:00+08:00"
ADMIN = Actor("admin", "administrator")
RESIDENT = Actor("zhang", "resident")
WORKER_G1 = Actor("wang", "grid_worker", (G1,))


def body(**changes):
    """A valid report in grid G1, with some fields changed (None removes one)."""
    data = {
        "category": "environment",
        "description": "垃圾堆放 rubbish piled up by the gate",
        "channel": "whistle",
        "lon": 119.005,
        "lat": LAT,
        "coord_type": "wgs84",
        "reported_at": REPORTED,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def count(session, model=Incident):
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def city(db, settings, tmp_path):
    load_tiny_city(db, settings, tmp_path)
    return db


def file(session, settings, data, actor=RESIDENT, **options):
    options.setdefault("now", NOW)
    return file_incident(session, settings, data, actor, **options)


# -- known answers -------------------------------------------------------------------------


def test_a_point_is_filed_into_its_grid_with_deadlines_and_a_first_event(city, settings):
    result = file(city, settings, body(contact_name="张三", contact_phone="138 0000 0000"))
    incident = result.incident
    assert result.created and result.warnings == [] and result.duplicates == []
    assert (incident.grid_code, incident.placement, incident.state) == (G1, "inside", "reported")
    assert incident.generation == generations.current_generation(city).id
    assert (incident.given_lon, incident.given_lat, incident.coord_type) == (119.005, LAT, "wgs84")
    assert incident.department == "城市管理局" and incident.reported_by == "zhang"
    assert incident.accept_due_at == datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    assert incident.resolve_due_at == datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)
    assert incident.deadline_alert is None
    stored = city.execute(select(func.ST_X(Incident.geom), func.ST_SRID(Incident.geom))).one()
    assert stored == (119.005, 4490)
    contact = city.get(IncidentContact, incident.id)
    assert (contact.name, contact.phone) == ("张三", "138 0000 0000")
    (event,) = city.scalars(select(IncidentEvent)).all()
    assert (event.action, event.from_state, event.to_state, event.actor) == (
        "report",
        None,
        "reported",
        "zhang",
    )
    assert event.data["grid_code"] == G1


def test_the_answer_to_a_filing_is_what_reading_it_back_gives(city, settings):
    # The answer is built from the inserted row and what filing knew, without reading back.
    for changes in ({"contact_name": "张三"}, {"contact_phone": None}, {"lon": 119.9}):
        result = file(city, settings, body(**changes), ADMIN)
        (event,) = city.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id == result.incident.id)
        )
        assert (event.at, event.level, event.role) == (
            result.incident.reported_at,
            "grid",
            "administrator",
        )
        answer = result.as_dict(city, ADMIN)["incident"]
        city.expire(result.incident)
        assert answer == incident_as_dict(city, result.incident, ADMIN)
        public = result.as_dict(city, ADMIN, with_reporter=False)["incident"]
        assert "contact" not in public and "reported_by" not in public


def test_complex_incidents_get_the_longer_deadline(city, settings):
    incident = file(city, settings, body(complex=True)).incident
    assert incident.complex and incident.resolve_due_at == datetime(2026, 12, 7, 9, tzinfo=SHANGHAI)


def test_gcj02_input_is_converted_before_geocoding(city, settings):
    gcj_lon, gcj_lat = wgs84_to_gcj02(119.015, LAT)
    incident = file(city, settings, body(lon=gcj_lon, lat=gcj_lat, coord_type="GCJ02")).incident
    assert (incident.grid_code, incident.coord_type) == (G2, "gcj02")
    assert (incident.given_lon, incident.given_lat) == (gcj_lon, gcj_lat)
    storage = city.execute(select(func.ST_X(Incident.geom), func.ST_Y(Incident.geom))).one()
    assert storage == pytest.approx((119.015, LAT), abs=1e-7)


def test_a_point_on_a_shared_edge_goes_to_the_smallest_code_and_is_flagged(city, settings):
    result = file(city, settings, body(lon=119.01))
    assert (result.incident.grid_code, result.incident.placement) == (G1, "edge")
    assert result.incident.placement_detail["candidates"] == [G2]
    assert "smallest code" in result.warnings[0]
    near = file(city, settings, body(lon=119.01 + 10 / M_PER_DEG_LON)).incident
    assert (near.grid_code, near.placement) == (G2, "near_edge")


def test_outside_every_grid_is_kept_and_flagged_with_the_nearest(city, settings):
    result = file(city, settings, body(lon=119.05))
    incident = result.incident
    assert (incident.grid_code, incident.placement) == (None, "outside")
    nearest = incident.placement_detail["nearest"]
    assert nearest["code"] == G4
    assert nearest["distance_m"] == pytest.approx(0.01 * M_PER_DEG_LON, rel=5e-3)
    assert incident.accept_due_at is not None, "the clock runs while it waits to be placed"
    assert result.warnings == [
        f"outside every grid: kept and flagged for a person to place (nearest grid {G4}, "
        f"{nearest['distance_m']:.0f} m away)"
    ]


def test_far_outside_is_still_accepted_with_a_louder_warning(city, settings):
    result = file(city, settings, body(lon=121.0))
    assert result.created and result.incident.placement == "outside"
    assert "far outside the grids (175 km" in result.warnings[1]


def test_by_code_for_a_grid_worker_in_their_own_grid(city, settings):
    data = body(lon=None, lat=None, coord_type=None, grid_code=G1, channel=None)
    incident = file(city, settings, data, WORKER_G1).incident
    assert (incident.grid_code, incident.placement, incident.geom) == (G1, "by_code", None)
    assert incident.channel == "grid_worker", "the channel follows the filer's role"
    assert incident.given_lon is None and incident.coord_type is None


@pytest.mark.parametrize(
    ("actor", "grid_code", "error", "message"),
    [
        (RESIDENT, G1, Forbidden, "only grid workers, officials and administrators"),
        (WORKER_G1, G2, Forbidden, "outside the scope of wang"),
        (ADMIN, "370705001001009", CodeError, "there is no grid 370705001001009"),
        (ADMIN, "370705001001", CodeError, "a grid code has 15"),
    ],
)
def test_by_code_is_refused_outside_scope_or_for_a_missing_grid(
    city, settings, actor, grid_code, error, message
):
    data = body(lon=None, lat=None, coord_type=None, grid_code=grid_code)
    with pytest.raises(error, match=message) as info:
        file(city, settings, data, actor)
    assert info.value.field == "grid_code"
    assert count(city) == 0


def test_a_missing_calendar_year_gives_an_alert_not_an_error(city, settings):
    empty = WorkCalendar(frozenset(), frozenset(), frozenset())
    result = file(city, settings, body(), calendar=empty)
    assert result.created and result.incident.accept_due_at is None
    assert result.incident.deadline_alert.startswith("calendar_not_covered")
    assert result.warnings[0].startswith("no deadlines: calendar_not_covered")


# -- bad input: the field named, nothing written -------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"category": "graffiti"}, "category", "known categories: dispute, environment"),
        ({"coord_type": None}, "coord_type", "coord_type is missing"),
        ({"coord_type": "gps"}, "coord_type", "'gps' is not a coordinate type"),
        ({"lon": float("nan")}, "lon", "not a finite number"),
        ({"lat": "inf"}, "lat", "not a finite number"),
        ({"lon": "east"}, "lon", "'east' is not a number"),
        ({"lat": None}, "lat", "lat is missing"),
        ({"lon": 0, "lat": 0}, "lon", "without a location fix"),
        ({"lon": 36.71, "lat": 119.005}, "lat", "lat/lon look swapped"),
        ({"lat": 91.0, "lon": 119.0}, "lat", r"outside \[-90, 90\]"),
        ({"description": "   "}, "description", "must not be empty"),
        ({"description": "x" * 4001}, "description", "at most 4000"),
        ({"description": 12}, "description", "must be a string, not a number"),
        ({"channel": "wechat"}, "channel", "unknown channel 'wechat'"),
        ({"reported_at": "2026-11-30T09:00"}, "reported_at", "needs a UTC offset"),
        ({"reported_at": "30/11/2026"}, "reported_at", "not ISO 8601"),
        ({"reported_at": "2026-11-30T10:06+08:00"}, "reported_at", "in the future"),
        ({"reported_at": "1926-11-30T10:00+08:00"}, "reported_at", "before 2000"),
        ({"photos": ["a.jpg"] * 10}, "photos", "at most 9 photos"),
        ({"photos": "a.jpg"}, "photos", "list of strings"),
        ({"contact_phone": "call me"}, "contact_phone", "not a phone number"),
        ({"complex": "yes"}, "complex", "true or false"),
        ({"crs": "wgs84"}, "crs", r"unknown field\(s\) crs \(use coord_type\)"),
        ({"grid_code": G1}, "grid_code", "not both"),
        ({"grid_code": "37070500100100x", "lon": None, "lat": None, "coord_type": None},
         "grid_code", "only the digits"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field_and_writes_nothing(city, settings, changes, field, message):
    with pytest.raises(InputError, match=message) as info:
        file(city, settings, body(**changes))
    assert info.value.field == field
    assert (count(city), count(city, IncidentContact), count(city, IncidentEvent)) == (0, 0, 0)


def test_a_retired_category_is_refused(city, settings):
    from geogrid.categories import set_category

    set_category(city, "noise", active=False)
    with pytest.raises(InputError, match="retired") as info:
        file(city, settings, body(category="noise"))
    assert info.value.field == "category" and count(city) == 0


def test_a_body_that_is_not_an_object(city, settings):
    with pytest.raises(InputError, match="JSON object") as info:
        file(city, settings, ["environment"])
    assert info.value.field == "body"


def test_a_resident_cannot_claim_a_staff_channel(city, settings):
    with pytest.raises(Forbidden) as info:
        file(city, settings, body(channel="import"))
    assert info.value.field == "channel" and count(city) == 0


def test_swapped_lat_lon_that_would_fall_in_a_grid_is_refused(db, settings, tmp_path):
    # Near Kashgar both numbers are valid latitudes, so only the grids can tell.
    load_city_at(db, settings, tmp_path, dx=76.0 - 119.0, dy=39.46 - 36.70)
    with pytest.raises(CoordinateError, match="lat/lon look swapped") as info:
        file(db, settings, body(lon=39.47, lat=76.005))
    assert info.value.field == "lat" and info.value.details["swapped_code"] == G1
    assert count(db) == 0
    assert file(db, settings, body(lon=76.005, lat=39.47)).incident.grid_code == G1


def test_a_failure_in_the_last_write_leaves_nothing_half_written(city, settings):
    # The database itself refuses the first event, written after the incident and contact.
    city.execute(
        text(
            "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the event log is unavailable'; END $$"
        )
    )
    city.execute(
        text(
            "CREATE TRIGGER refuse_events BEFORE INSERT ON incident_event "
            "FOR EACH ROW EXECUTE FUNCTION refuse_events()"
        )
    )
    with pytest.raises(DBAPIError, match="the event log is unavailable"):
        file(city, settings, body(contact_name="张三"), idempotency_key="k-1")
    assert (count(city), count(city, IncidentContact), count(city, IncidentEvent)) == (0, 0, 0)
    city.execute(text("DROP TRIGGER refuse_events ON incident_event"))
    again = file(city, settings, body(contact_name="张三"), idempotency_key="k-1")
    assert again.created, "the session is still usable and the key still free"
    assert (count(city), count(city, IncidentContact), count(city, IncidentEvent)) == (1, 1, 1)


def test_input_objects_check_themselves():
    given = IncidentInput(
        category=" Noise ", description=" loud ", lon="119.0", lat=36.7, coord_type="EPSG:4490"
    )
    assert (given.category, given.description, given.lon, given.coord_type) == (
        "noise",
        "loud",
        119.0,
        "cgcs2000",
    )
    with pytest.raises(CoordinateError) as info:
        IncidentInput(category="noise", description="loud", lon=119.0, lat=36.7)
    assert info.value.field == "coord_type"


# -- idempotency ---------------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_incident(city, settings):
    first = file(city, settings, body(), idempotency_key="phone-42:1")
    again = file(city, settings, dict(reversed(body().items())), idempotency_key="phone-42:1")
    assert first.created and not again.created
    assert again.incident.id == first.incident.id
    assert "already filed as incident" in again.warnings[0]
    assert (count(city), count(city, IncidentEvent)) == (1, 1)


def test_the_same_key_with_another_body_or_filer_is_a_conflict(city, settings):
    first = file(city, settings, body(), idempotency_key="phone-42:1")
    assert first.created
    with pytest.raises(Conflict, match="already used for a different request") as info:
        file(city, settings, body(description="another thing"), idempotency_key="phone-42:1")
    assert info.value.field == "Idempotency-Key"
    with pytest.raises(Conflict):
        file(city, settings, body(), Actor("li", "resident"), idempotency_key="phone-42:1")
    assert count(city) == 1


def test_the_digest_ignores_key_order_and_spelling_of_equal_values():
    one = IncidentInput.from_mapping(body())
    two = IncidentInput.from_mapping(
        dict(reversed(body(lon="119.005", coord_type="WGS84").items()))
    )
    assert request_digest(one, RESIDENT) == request_digest(two, RESIDENT)
    assert request_digest(one, RESIDENT) != request_digest(one, ADMIN)


def test_a_bad_key_is_refused(city, settings):
    with pytest.raises(InputError) as info:
        file(city, settings, body(), idempotency_key=" ")
    assert info.value.field == "Idempotency-Key"


def test_64_concurrent_submissions_with_one_key_make_one_incident(
    make_database, base_settings, tmp_path
):
    # Committed for real: the rolled-back test transaction cannot show other sessions' rows.
    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    with session_scope(make_sessionmaker(engine)) as session:
        load_tiny_city(session, settings, tmp_path)
    clients = 64
    wide = create_engine(engine.url, pool_size=clients, max_overflow=0, pool_timeout=120)
    start = threading.Barrier(clients)

    def submit(_: int) -> tuple[int, bool]:
        with Session(wide) as session:
            start.wait()
            result = file(session, settings, body(), idempotency_key="same-key")
            session.commit()
            return result.incident.id, result.created

    try:
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(submit, range(clients)))
    finally:
        wide.dispose()
    assert len({incident_id for incident_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    with Session(engine) as session:
        assert (count(session), count(session, IncidentEvent)) == (1, 1)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(make_database, base_settings, tmp_path_factory):
    """``geogrid`` on a database of this module's own, holding the tiny city (committed)."""
    from click.testing import CliRunner

    from geogrid.cli import main

    engine = make_database(base_settings.code_scheme)
    settings = base_settings.with_(database_url=engine.url.render_as_string(False))
    with session_scope(make_sessionmaker(engine)) as session:
        load_tiny_city(session, settings, tmp_path_factory.mktemp("city"))
    env = {"GEOGRID_DATABASE_URL": settings.database_url}

    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


POINT = ("--category", "environment", "--description", "垃圾", "--lon", "119.005", "--lat",
         "36.71", "--crs", "wgs84", "--reported-at", "2026-11-23T09:00")  # fmt: skip


def test_cli_file_is_a_dry_run_then_files(cli):
    dry = cli("incidents", "file", *POINT, "--role", "resident", "--user", "zhang").output
    assert f"would file: environment (环境卫生) in grid {G1} [inside, generation" in dry
    assert "accept by 2026-11-24 09:00, resolve by 2026-11-26 09:00" in dry
    assert "dry run: nothing was written" in dry
    assert json.loads(cli("incidents", "list", "--json").output)["total"] == 0
    filed = cli("incidents", "file", *POINT, "--contact-phone", "13800000000", "--commit").output
    number = int(re.search(r"filed incident (\d+)", filed).group(1))
    again = cli("incidents", "file", *POINT, "--json", "--commit", "--idempotency-key", "k1")
    answer = json.loads(again.output)
    assert answer["created"] and not answer["dry_run"]
    assert [d["incident_id"] for d in answer["duplicates"]] == [number]
    retry = cli("incidents", "file", *POINT, "--commit", "--idempotency-key", "k1").output
    assert f"incident {answer['incident']['id']} was already filed with this key" in retry
    listing = json.loads(cli("incidents", "list", "--json").output)
    assert listing["total"] == 2 and "contact" in listing["incidents"][0]


def test_cli_errors_name_the_field(cli):
    result = cli("incidents", "file", *POINT[:-4], ok=False)
    assert result.exit_code == 1
    assert "error [coord_type]: coord_type is missing" in result.output


def test_cli_show_list_place_merge(cli):
    outside = json.loads(
        cli("incidents", "file", *POINT[:4], "--lon", "119.05", "--lat", "36.71", "--crs",
            "wgs84", "--commit", "--json").output
    )["incident"]  # fmt: skip
    assert outside["placement"] == "outside"
    stray = str(outside["id"])
    official = ("--role", "official", "--scope", "370705002", "--user", "zhao")
    shown = cli("incidents", "show", stray, *official).output
    assert "grid - [outside" in shown and "report" in shown
    worker = ("--role", "grid_worker", "--scope", G1, "--user", "wang")
    refused = cli("incidents", "show", stray, *worker, ok=False)
    assert refused.exit_code == 1 and "error [id]" in refused.output
    dry = cli("incidents", "place", stray, G4, *official).output
    assert "would place" in dry and "dry run" in dry
    cli("incidents", "place", stray, G4, *official, "--note", "by the market", "--commit")
    placed = json.loads(cli("incidents", "show", stray, "--json").output)
    assert (placed["grid_code"], placed["placement"]) == (G4, "placed")
    assert [e["action"] for e in placed["events"]] == ["report", "place"]
    target, source = (
        str(
            json.loads(cli("incidents", "file", *POINT, "--commit", "--json").output)["incident"][
                "id"
            ]
        )
        for _ in range(2)
    )
    assert "would merge" in cli("incidents", "merge", source, "--into", target).output
    cli("incidents", "merge", source, "--into", target, *worker, "--commit")
    merged = json.loads(cli("incidents", "show", source, "--json").output)
    assert (merged["state"], merged["duplicate_of"]) == ("merged", int(target))
    rows = cli("incidents", "list", "--state", "merged").output
    assert f"{source:>8}" in rows and "1 of 1 incidents" in rows


def test_cli_categories(cli):
    table = cli("incidents", "categories").output
    assert "environment" in table and "城市管理局" in table
    dry = cli("incidents", "category-set", "graffiti", "--name-zh", "乱涂乱画", "--name-en",
              "Graffiti", "--resolve-days", "2").output  # fmt: skip
    assert "would be graffiti: accept 1, resolve 2, complex 5" in dry
    assert "graffiti" not in cli("incidents", "categories").output
    cli("incidents", "category-set", "noise", "--retired", "--commit")
    listed = json.loads(cli("incidents", "categories", "--all", "--json").output)
    assert [c["active"] for c in listed if c["code"] == "noise"] == [False]
    refused = cli("incidents", "category-set", "noise", "--active", "--role", "official",
                  "--scope", "370705", "--commit", ok=False)  # fmt: skip
    assert refused.exit_code == 1 and "only an administrator" in refused.output


# -- helpers -------------------------------------------------------------------------------


def load_city_at(session, settings, tmp_path, *, dx: float, dy: float):
    """The tiny city moved by (dx, dy) degrees, imported and activated."""
    areas = tiny_city()
    areas["geometry"] = areas.geometry.translate(dx, dy)
    rules = ValidationRules.from_settings(settings)
    fields = boundaries.FieldMap(code="code", name="name", parent="parent_code")
    for level in ("county", "township", "community", "grid"):
        boundaries.import_boundaries(
            session,
            level_file(tmp_path, level, areas),
            level=level,
            fields=fields,
            coord_type=parse_coord_type("cgcs2000"),
            scheme=settings.scheme,
            rules=rules,
            created_by="tester",
        )
    draft = generations.draft_generation(session)
    generations.activate(session, draft.id, settings.scheme, rules, activated_by="tester")
