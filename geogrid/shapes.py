"""The one seam between database rows and shapely geometries.

Geometry leaves PostGIS as WKB (``ST_AsBinary``) and enters it as WKB with the storage
SRID; nothing else in geogrid converts rows to shapes or builds WKT by formatting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import ColumnElement, LargeBinary, bindparam, func

from geogrid.models import STORAGE_SRID


def as_multipolygon(geoms: Any) -> np.ndarray:
    """Promote Polygons to MultiPolygons (the stored type); other types pass unchanged."""
    geoms = np.asarray(geoms, dtype=object)
    is_polygon = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    out = geoms.copy()
    out[is_polygon] = [shapely.MultiPolygon([g]) for g in geoms[is_polygon]]
    return out


def geometry_param(name: str = "wkb") -> ColumnElement[Any]:
    """A bound WKB parameter read as a geometry in the storage SRID.

    Binding WKB keeps every bit of every coordinate; going through WKT text (which a
    plain geometry-typed bind does) would round them.
    """
    return func.ST_GeomFromWKB(bindparam(name, type_=LargeBinary), STORAGE_SRID)


def to_wkb(geoms: Any) -> list[bytes]:
    """Geometries as WKB values for :func:`geometry_param`."""
    return list(shapely.to_wkb(np.asarray(geoms, dtype=object)))


def wkb_column(column: Any) -> ColumnElement[Any]:
    """Select a geometry column as plain WKB, for :func:`frame_from_rows`."""
    return func.ST_AsBinary(column)


def frame_from_rows(
    rows: Sequence[Any], columns: Sequence[str], *, geometry: str = "geometry"
) -> gpd.GeoDataFrame:
    """Rows whose ``geometry`` field holds WKB as a GeoDataFrame in the storage CRS."""
    data = {name: [getattr(row, name) for row in rows] for name in columns if name != geometry}
    wkb = [bytes(getattr(row, geometry)) for row in rows]
    geoms = shapely.from_wkb(np.array(wkb, dtype=object)) if wkb else np.array([], dtype=object)
    return gpd.GeoDataFrame(data, geometry=geoms, crs=f"EPSG:{STORAGE_SRID}")


def point(lon: float, lat: float) -> ColumnElement[Any]:
    """A bound PostGIS point in the storage SRID (lon, lat)."""
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), STORAGE_SRID)
