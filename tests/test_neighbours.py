"""Binary contiguity: neighbours found by hand-checkable lattices, stored once, cached."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import shapely
from factories import load_tiny_city
from geoalchemy2.shape import from_shape
from sqlalchemy import delete, event, func, select

from geogrid import neighbours
from geogrid.errors import Conflict
from geogrid.models import Area, AreaNeighbour, Generation

#: Lattice cells are this many degrees square, from this south-west corner.
CELL = 0.01
CORNER = (119.10, 36.80)
COMMUNITY = "370705009001"


def lattice(side: int, *, x0: float = 0.0, y0: float = 0.0) -> dict[str, shapely.Polygon]:
    """A side x side lattice of unit squares, named ``r<row>c<col>`` from the south-west."""
    return {
        f"r{row}c{col}": shapely.box(x0 + col, y0 + row, x0 + col + 1, y0 + row + 1)
        for row in range(side)
        for col in range(side)
    }


def grid_code(row: int, col: int, side: int) -> str:
    """The grid code of a lattice cell: numbered row by row from 001."""
    return f"{COMMUNITY}{row * side + col + 1:03d}"


def add_lattice_generation(session, side: int) -> Generation:
    """A (retired, once active) generation whose grids are a side x side lattice of squares."""
    generation = Generation(
        status="retired", created_by="tester", activated_at=datetime.now(UTC), description="lattice"
    )
    session.add(generation)
    session.flush()
    # Each line of the lattice is computed once, so neighbours share their edges exactly.
    xs = [CORNER[0] + k * CELL for k in range(side + 1)]
    ys = [CORNER[1] + k * CELL for k in range(side + 1)]
    for row in range(side):
        for col in range(side):
            outline = shapely.MultiPolygon(
                [shapely.box(xs[col], ys[row], xs[col + 1], ys[row + 1])]
            )
            session.add(
                Area(
                    code=grid_code(row, col, side),
                    level="grid",
                    parent_code=COMMUNITY,
                    name=f"格{row}-{col}",
                    generation_low=generation.id,
                    generation_high=generation.id,
                    geom=from_shape(outline, srid=4490),
                )
            )
    session.flush()
    return generation


def neighbours_of(found: neighbours.Contiguity, code: str, *, rook: bool = False) -> set[str]:
    pairs = found.pairs()
    if rook:
        pairs = pairs[pairs["shares_edge"]]
    return set(pairs.loc[pairs["code"] == code, "neighbour_code"])


def test_the_centre_of_a_3x3_lattice_has_8_queen_and_4_rook_neighbours():
    cells = lattice(3)
    found = neighbours.contiguity(list(cells), list(cells.values()))
    assert neighbours_of(found, "r1c1") == set(cells) - {"r1c1"}
    assert neighbours_of(found, "r1c1", rook=True) == {"r0c1", "r1c0", "r1c2", "r2c1"}
    assert neighbours_of(found, "r0c0") == {"r0c1", "r1c0", "r1c1"}
    assert neighbours_of(found, "r0c0", rook=True) == {"r0c1", "r1c0"}
    # 12 shared edges and 8 corner-only contacts, each stored both ways round.
    assert len(found.focal) == 40
    assert int(found.shares_edge.sum()) == 24


def test_weights_are_binary_with_the_codes_sorted():
    cells = lattice(3)
    found = neighbours.contiguity(list(reversed(cells)), list(reversed(cells.values())))
    queen, rook = found.weights(), found.weights(rook=True)
    assert queen.id_order == sorted(cells)
    assert queen.cardinalities["r1c1"] == 8
    assert rook.cardinalities["r1c1"] == 4
    assert rook.cardinalities["r2c2"] == 2
    assert set(np.concatenate([queen.weights[code] for code in cells])) == {1.0}


def test_an_area_touching_nothing_is_an_island_and_reported():
    cells = lattice(2)
    cells["far"] = shapely.box(10, 10, 11, 11)
    found = neighbours.contiguity(list(cells), list(cells.values()))
    assert found.islands == ["far"]
    assert found.weights().islands == ["far"]


def test_activation_stores_the_neighbours_of_every_counted_level(db, settings, tmp_path):
    activation = load_tiny_city(db, settings, tmp_path)
    rows = db.execute(
        select(AreaNeighbour.level, func.count())
        .where(AreaNeighbour.generation_id == activation.generation.id)
        .group_by(AreaNeighbour.level)
    ).all()
    # Four grids in a row (3 shared edges), two communities, two townships, one county.
    assert dict(rows) == {"grid": 6, "community": 2, "township": 2}


def test_ensure_stores_each_pair_both_ways_once(db):
    generation = add_lattice_generation(db, 3)
    assert neighbours.ensure_neighbours(db, generation.id, "grid") == 40
    assert neighbours.ensure_neighbours(db, generation.id, "grid") == 0
    pairs = set(
        db.execute(
            select(AreaNeighbour.code, AreaNeighbour.neighbour_code).where(
                AreaNeighbour.generation_id == generation.id
            )
        ).all()
    )
    assert len(pairs) == 40
    assert all((b, a) in pairs for a, b in pairs)
    centre = grid_code(1, 1, 3)
    edges = db.scalars(
        select(AreaNeighbour.neighbour_code).where(
            AreaNeighbour.generation_id == generation.id,
            AreaNeighbour.code == centre,
            AreaNeighbour.shares_edge,
        )
    ).all()
    assert sorted(edges) == [
        grid_code(0, 1, 3),
        grid_code(1, 0, 3),
        grid_code(1, 2, 3),
        grid_code(2, 1, 3),
    ]


def test_a_draft_has_no_stored_neighbours(db):
    draft = Generation(status="draft", created_by="tester")
    db.add(draft)
    db.flush()
    with pytest.raises(Conflict):
        neighbours.ensure_neighbours(db, draft.id, "grid")


def test_weights_are_built_once_per_generation(db, monkeypatch):
    generation = add_lattice_generation(db, 3)
    first = neighbours.neighbour_weights(db, generation.id, "grid")
    assert first.cardinalities[grid_code(1, 1, 3)] == 8
    statements = []
    event.listen(db.connection(), "before_cursor_execute", lambda *args: statements.append(1))
    monkeypatch.setattr(neighbours, "query_frame", lambda *args: pytest.fail("read again"))
    second = neighbours.neighbour_weights(db, generation.id, "grid")
    assert second is first
    assert statements == []


def test_missing_neighbours_are_found_and_stored_when_asked_for(db):
    generation = add_lattice_generation(db, 3)
    assert not db.scalar(select(func.count()).where(AreaNeighbour.generation_id == generation.id))
    weights = neighbours.neighbour_weights(db, generation.id, "grid")
    assert weights.n == 9
    stored = db.scalar(select(func.count()).where(AreaNeighbour.generation_id == generation.id))
    assert stored == 40


def test_stored_rows_are_what_the_weights_are_read_from(db):
    generation = add_lattice_generation(db, 3)
    neighbours.ensure_neighbours(db, generation.id, "grid")
    centre, corner = grid_code(1, 1, 3), grid_code(0, 0, 3)
    # Take one pair out by hand: weights read from the table no longer have it.
    db.execute(
        delete(AreaNeighbour).where(
            AreaNeighbour.generation_id == generation.id,
            AreaNeighbour.code.in_([centre, corner]),
            AreaNeighbour.neighbour_code.in_([centre, corner]),
        )
    )
    neighbours.clear_cache()
    weights = neighbours.neighbour_weights(db, generation.id, "grid")
    assert weights.cardinalities[centre] == 7
    assert corner not in weights.neighbors[centre]
