"""Chicago's police beats as a benchmark database (district:2, sector:3, beat:4)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from geogrid import boundaries, db, generations
from geogrid.crs import parse_coord_type
from geogrid.settings import Settings
from geogrid.validate import ValidationRules

BEATS = Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago" / "beats.geojson"


def load_beats(settings: Settings):
    """The database with the beats imported (sectors and districts derived) and active."""
    engine = db.make_engine(settings)
    with Session(engine) as session:
        if generations.current_generation(session) is None:
            result = boundaries.import_boundaries(
                session,
                BEATS,
                level="beat",
                fields=boundaries.FieldMap(code="beat_num", name="beat"),
                coord_type=parse_coord_type("wgs84"),
                scheme=settings.scheme,
                rules=ValidationRules.from_settings(settings),
                created_by="bench",
                with_parents=True,
            )
            generations.activate(
                session,
                result.generation.id,
                settings.scheme,
                ValidationRules.from_settings(settings),
                activated_by="bench",
            )
            session.commit()
    return engine
