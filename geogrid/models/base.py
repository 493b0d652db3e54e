"""The declarative base and what every table module shares."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

#: CGCS2000, the national datum; every stored geometry uses it (lon, lat).
STORAGE_SRID = 4490


class Base(DeclarativeBase):
    """The metadata every table module registers on (Alembic compares it with the migrations)."""


def sql_list(values: tuple[str, ...]) -> str:
    """Constant strings as an SQL list for CHECK constraints (never user input)."""
    return ", ".join(f"'{value}'" for value in values)
