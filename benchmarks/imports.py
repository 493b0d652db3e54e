"""Importing and validating the ~15,000-grid city from files, as a planner would.

The generated city is written to one GeoPackage per level (not timed); then every level
is imported into one draft (reading, checks, loading, validation of the whole draft) and
the draft is activated (validation again, lineage), all timed.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from benchmarks.common import bench_settings, report
from geogrid import boundaries, db, generations
from geogrid.crs import parse_coord_type
from geogrid.demo import build_demo_city
from geogrid.files import write_boundary_file
from geogrid.validate import ValidationRules


def run(city: str = "3707") -> dict:
    """Write the city to files, then time import + validation + activation."""
    settings = bench_settings("geogrid_bench_import")
    started = time.perf_counter()
    areas = build_demo_city(county=None, city=city, seed=7, scheme=settings.scheme)
    generate_s = time.perf_counter() - started
    counts = areas.groupby("level").size().to_dict()
    rules = ValidationRules.from_settings(settings)
    steps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for level in settings.scheme.level_names:
            frame = areas[areas["level"] == level].drop(columns=["level"])
            # Files carry free attributes as one JSON column, as `geogrid boundaries export` writes.
            frame["attributes"] = [json.dumps(a, ensure_ascii=False) for a in frame["attributes"]]
            paths[level] = Path(folder) / f"{level}.gpkg"
            write_boundary_file(frame, paths[level], "gpkg", epsg=4490)
        engine = db.make_engine(settings)
        with Session(engine) as session:
            fields = boundaries.FieldMap(
                code="code",
                name="name",
                parent="parent_code",
                households="households",
                population="population",
                kind="kind",
            )
            total = time.perf_counter()
            for level, path in paths.items():
                started = time.perf_counter()
                result = boundaries.import_boundaries(
                    session,
                    path,
                    level=level,
                    fields=fields,
                    coord_type=parse_coord_type("cgcs2000"),
                    scheme=settings.scheme,
                    rules=rules,
                    created_by="bench",
                )
                assert not result.blocked, result.prepared.problems[:5]
                steps[f"import {level}"] = time.perf_counter() - started
            started = time.perf_counter()
            generations.activate(
                session, result.generation.id, settings.scheme, rules, activated_by="bench"
            )
            steps["activate"] = time.perf_counter() - started
            total_s = time.perf_counter() - total
            session.rollback()  # leave the database empty for the next run
    figures = {
        "areas": {k: int(v) for k, v in counts.items()},
        "generate_s": round(generate_s, 1),
        "steps_s": {k: round(v, 2) for k, v in steps.items()},
        "import_validate_activate_s": round(total_s, 1),
    }
    report("import", figures)
    return figures
