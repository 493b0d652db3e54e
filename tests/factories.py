"""A tiny city of named boxes near Weifang, and helpers to write it as boundary files.

Every coordinate is a round number of hundredths of a degree so that shared edges are
exactly shared; 0.01 degree is about 890 m east-west and 1,110 m north-south here.

    lat 36.72 +-----------+-----------+-----------+-----------+
              | grid ..001| grid ..002| grid ..001| grid ..002|
              | 370705001001          | 370705002001          |
    lat 36.70 +-----------+-----------+-----------+-----------+
           119.00      119.01      119.02      119.03      119.04
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import shapely

WEST, EAST, SOUTH, NORTH = 119.00, 119.04, 36.70, 36.72

#: The reference data beside the repository (../shared/data).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHICAGO_SCHEME = "district:2,sector:3,beat:4"


def _row(
    code: str,
    level: str,
    parent: str | None,
    name: str,
    box: tuple[float, float, float, float],
    households: int | None = None,
) -> dict:
    return {
        "code": code,
        "level": level,
        "parent_code": parent,
        "name": name,
        "households": households,
        "geometry": shapely.box(*box),
    }


def tiny_city() -> gpd.GeoDataFrame:
    """County, two townships, one community each, two grids per community (CGCS2000)."""
    rows = [
        _row("370705", "county", None, "奎文区", (WEST, SOUTH, EAST, NORTH)),
        _row("370705001", "township", "370705", "东关街道", (119.00, SOUTH, 119.02, NORTH)),
        _row("370705002", "township", "370705", "大虞街道", (119.02, SOUTH, 119.04, NORTH)),
        _row(
            "370705001001", "community", "370705001", "东关第1社区", (119.00, SOUTH, 119.02, NORTH)
        ),
        _row(
            "370705002001", "community", "370705002", "大虞第1社区", (119.02, SOUTH, 119.04, NORTH)
        ),
        _row(
            "370705001001001",
            "grid",
            "370705001001",
            "东关第1网格",
            (119.00, SOUTH, 119.01, NORTH),
            300,
        ),
        _row(
            "370705001001002",
            "grid",
            "370705001001",
            "东关第2网格",
            (119.01, SOUTH, 119.02, NORTH),
            280,
        ),
        _row(
            "370705002001001",
            "grid",
            "370705002001",
            "大虞第1网格",
            (119.02, SOUTH, 119.03, NORTH),
            310,
        ),
        _row(
            "370705002001002",
            "grid",
            "370705002001",
            "大虞第2网格",
            (119.03, SOUTH, 119.04, NORTH),
            290,
        ),
    ]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4490")


def write_geojson(areas: gpd.GeoDataFrame, path: Path) -> Path:
    """Write areas as a GeoJSON FeatureCollection with plain properties."""
    features = [
        {
            "type": "Feature",
            "properties": {k: v for k, v in row.items() if k != "geometry"},
            "geometry": shapely.geometry.mapping(row["geometry"]),
        }
        for row in areas.to_dict("records")
    ]
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


def level_file(tmp_path: Path, level: str, areas: gpd.GeoDataFrame | None = None) -> Path:
    """One level of the tiny city (or of ``areas``) as a GeoJSON file."""
    areas = tiny_city() if areas is None else areas
    return write_geojson(areas[areas["level"] == level], tmp_path / f"{level}.geojson")


def load_tiny_city(session, settings, tmp_path: Path, *, user: str = "tester"):
    """Import every level of the tiny city through the library and activate it."""
    from geogrid import boundaries, generations
    from geogrid.crs import parse_coord_type
    from geogrid.validate import ValidationRules

    rules = ValidationRules.from_settings(settings)
    fields = boundaries.FieldMap(
        code="code", name="name", parent="parent_code", households="households"
    )
    for level in ("county", "township", "community", "grid"):
        result = boundaries.import_boundaries(
            session,
            level_file(tmp_path, level),
            level=level,
            fields=fields,
            coord_type=parse_coord_type("cgcs2000"),
            scheme=settings.scheme,
            rules=rules,
            created_by=user,
        )
        assert not result.blocked, result.prepared.problems
    draft = generations.draft_generation(session)
    return generations.activate(session, draft.id, settings.scheme, rules, activated_by=user)


def add_incident(session, *, grid_code: str | None, reported_at, **fields):
    """Insert an incident row directly (not through intake), for tests of what comes after.

    ``grid_code`` None makes an incident outside every grid at the tiny city's corner.
    Fields default to an ordinary reported environment incident in the current generation.
    """
    from geoalchemy2.shape import from_shape
    from sqlalchemy import func, select

    from geogrid.models import Area, Generation, Incident

    generation = fields.pop("generation", None) or session.scalar(
        select(Generation.id).where(Generation.status == "active")
    )
    geom = fields.pop("geom", None)
    if geom is None and grid_code is not None:
        geom = session.scalar(
            select(func.ST_PointOnSurface(Area.geom)).where(
                Area.code == grid_code, Area.valid_in(generation)
            )
        )
    elif geom is None:
        geom = from_shape(shapely.Point(WEST - 0.01, SOUTH - 0.01), srid=4490)
    values = {
        "category": "environment",
        "description": "垃圾堆放 rubbish piled up",
        "channel": "whistle",
        "state": "reported",
        "placement": "inside" if grid_code else "outside",
        "level": "grid",
    }
    values.update(fields)
    incident = Incident(
        grid_code=grid_code, generation=generation, reported_at=reported_at, geom=geom, **values
    )
    session.add(incident)
    session.flush()
    return incident


def load_tiny_city_by_cli(invoke, folder: Path) -> None:
    """Import every level of the tiny city and activate it through ``geogrid`` (make_cli)."""
    for level in ("county", "township", "community", "grid"):
        path = str(level_file(folder, level))
        invoke("boundaries", "import", path, "--level", level, "--name-field", "name",
               "--crs", "cgcs2000", "--commit")  # fmt: skip
    invoke("generations", "activate", "1", "--user", "planner", "--commit")
