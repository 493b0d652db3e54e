"""Accuracy on real data: Chicago's police beats and 17,197 crimes labelled with their beat.

The beats are imported with a district:2, sector:3, beat:4 scheme (sectors and districts
derived by dissolving beats), and the crimes are geocoded through the bulk path. Most
records are block addresses on street centre-lines, which are also beat boundaries, so
the labelled beat must be the grid code or a candidate for at least 99.5% of located
records, and every other record is explained.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from factories import CHICAGO_SCHEME, SHARED_DATA
from sqlalchemy.orm import Session

from geogrid import boundaries, generations
from geogrid.bulk import place_points
from geogrid.crs import geometry_to_metric, parse_coord_type, to_metric
from geogrid.files import read_table
from geogrid.geocode import locate
from geogrid.validate import ValidationRules

BEATS = SHARED_DATA / "chicago" / "beats.geojson"
CRIMES = SHARED_DATA / "chicago" / "crimes_sample.csv"


@pytest.fixture(scope="module")
def chicago(make_database, base_settings):
    """A database of the beats, imported and activated once for the module."""
    settings = base_settings.with_(code_scheme=CHICAGO_SCHEME)
    engine = make_database(CHICAGO_SCHEME)
    settings = settings.with_(database_url=engine.url.render_as_string(False))
    with Session(engine) as session:
        result = boundaries.import_boundaries(
            session,
            BEATS,
            level="beat",
            fields=boundaries.FieldMap(code="beat_num", name="beat"),
            coord_type=parse_coord_type("wgs84"),
            scheme=settings.scheme,
            rules=ValidationRules.from_settings(settings),
            created_by="test",
            with_parents=True,
        )
        assert not result.blocked
        assert result.report.ok, result.report.summary_lines()
        generations.activate(
            session,
            result.generation.id,
            settings.scheme,
            ValidationRules.from_settings(settings),
            activated_by="test",
        )
        session.commit()
    return settings, engine


@pytest.fixture(scope="module")
def placed(chicago):
    settings, engine = chicago
    crimes = read_table(CRIMES).frame
    crimes["beat"] = crimes["Beat"].str.zfill(4)
    crimes["lon"] = pd.to_numeric(crimes["Longitude"])
    crimes["lat"] = pd.to_numeric(crimes["Latitude"])
    located = crimes.dropna(subset=["lon", "lat"]).reset_index()
    with Session(engine) as session:
        result = place_points(
            session, settings, located["lon"].to_numpy(), located["lat"].to_numpy()
        )
    return crimes, located.join(result)


def test_imported_hierarchy(chicago):
    settings, engine = chicago
    with Session(engine) as session:
        counts = generations.summary(session, generations.current_generation(session))["areas"]
    assert counts == {"district": 22, "sector": 67, "beat": 274}


def test_labelled_beat_is_found_for_over_99_5_percent(placed):
    crimes, located = placed
    assert len(crimes) == 17_197 and len(located) == 17_197 - 160
    found = _labelled_beat_found(located)
    share = found.mean()
    assert share >= 0.995, f"only {share:.4%} of located records placed in their labelled beat"


def test_every_record_not_placed_in_its_beat_is_explained(placed, chicago):
    settings, engine = chicago
    _, located = placed
    missed = located[~_labelled_beat_found(located)]
    with Session(engine) as session:
        beats = generations.generation_areas(
            session, generations.current_generation(session).id, level="beat"
        )
    reasons = explain(missed, beats)
    assert len(reasons) == len(missed) and all(reasons)
    # The published facts: about 60 located records fall in no beat, almost all within
    # centimetres of one, which is then a candidate.
    outside = located[located["status"] == "outside"]
    assert 30 <= len(outside) <= 90
    assert outside["nearest_code"].notna().all()
    assert (outside["nearest_distance_m"] <= settings.near_edge_m).mean() > 0.9


def test_bulk_agrees_with_postgis_on_hard_records(placed, chicago):
    settings, engine = chicago
    _, located = placed
    hard = located[located["status"] != "inside"].head(150)
    sample = pd.concat([hard, located[located["status"] == "inside"].sample(150, random_state=3)])
    with Session(engine) as session:
        for row in sample.itertuples():
            where = locate(session, settings, row.lon, row.lat, "wgs84")
            assert (where.grid_code, where.status) == (row.grid_code, row.status), row.Index
            assert ";".join(where.candidates) == row.candidates


def _labelled_beat_found(located: pd.DataFrame) -> pd.Series:
    candidates = located["candidates"].fillna("").str.split(";")
    in_candidates = [beat in cands for beat, cands in zip(located["beat"], candidates, strict=True)]
    return (located["grid_code"] == located["beat"]) | np.array(in_candidates)


def explain(missed: pd.DataFrame, beats) -> list[str]:
    """Why each record is not in its labelled beat, in words and metres."""
    by_code = dict(
        zip(
            beats["code"], geometry_to_metric(np.asarray(beats.geometry.values), 32616), strict=True
        )
    )
    x, y = to_metric(missed["lon"].to_numpy(), missed["lat"].to_numpy(), 32616)
    reasons = []
    for row, px, py in zip(missed.itertuples(), x, y, strict=True):
        labelled = by_code.get(row.beat)
        away = shapely.distance(labelled, shapely.Point(px, py)) if labelled is not None else None
        if labelled is None:
            reasons.append(f"labelled beat {row.beat} is not among the 2012 beats")
        elif row.status == "outside":
            reasons.append(
                f"in no beat; nearest {row.nearest_code} at {row.nearest_distance_m:.0f} m, "
                f"labelled beat {away:.0f} m away"
            )
        else:
            reasons.append(
                f"in beat {row.grid_code}; labelled beat {row.beat} is {away:.0f} m away"
            )
    return reasons
