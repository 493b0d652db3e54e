"""Cutting areas into children of about equal weight, and making the cuts nest exactly.

Two stages. Drafting (``cut``): each area is split into as many children as wanted by
recursive weighted-median cuts of its weighted points, one seed per child, and cut along
the Voronoi edges of those seeds; detached pieces and pieces far lighter than their
siblings join the neighbour they share most boundary with. Drafts are only approximate:
clipping and unions leave slivers and vertices that neighbours do not share.

Finishing (``exact_coverages``): every boundary of the finest drafts is noded together
once, snap-rounded to one grid, and polygonised. Each face goes to the one finest draft
holding it, and every area of every level is the coverage union of its faces. Since all
levels are unions of the same faces, neighbours share every vertex, each level covers its
parent with no gap or overlap, and every child nests exactly in its parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

_LIGHT_SHARE = 0.25  # a piece below this share of its siblings' mean weight is merged
_POLYGONAL = [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON]


@dataclass
class Households:
    """Households scattered as weighted points, in metres; ``cut`` moves them into pieces."""

    x: np.ndarray
    y: np.ndarray
    count: np.ndarray  # households at each point
    urban: np.ndarray
    cell: np.ndarray  # row of the area holding the point at the latest level; -1 if displaced
    points: np.ndarray | None = None  # the same as shapely Points, made once

    def sums(self, values: np.ndarray, cells: int) -> np.ndarray:
        """Per area of the latest level, the sum of ``values`` over its points."""
        live = self.cell >= 0
        return np.bincount(self.cell[live], values[live], minlength=cells)


def points_in(region: shapely.Geometry, n: int, rng: np.random.Generator) -> tuple:
    """``n`` points drawn uniformly inside a polygon (from its triangles, so never fails)."""
    triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(region))
    corners = shapely.get_coordinates(shapely.get_exterior_ring(triangles)).reshape(-1, 4, 2)
    area = shapely.area(triangles)
    pick = rng.choice(len(triangles), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    a, b, c = corners[pick, 0], corners[pick, 1], corners[pick, 2]
    points = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    return points[:, 0], points[:, 1]


# -- drafts -----------------------------------------------------------------------------


def cut(
    regions: np.ndarray,
    counts: np.ndarray,
    homes: Households,
    weight: np.ndarray,
    rng: np.random.Generator,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut region i into counts[i] pieces of about equal weight, and move households in.

    A piece far lighter than its siblings joins a neighbour, while its region keeps at
    least ``keep[i]`` pieces (default 1). Returns the pieces, the region of each and its
    number within the region (1, 2, ... in reading order, north to south).
    """
    live = np.flatnonzero(homes.cell >= 0)
    seed_x, seed_y, owner = _balanced_seeds(
        homes.x[live], homes.y[live], weight[live], homes.cell[live], counts, regions, rng
    )
    pieces = _voronoi_pieces(regions, seed_x, seed_y, owner)
    for region in np.unique(owner[shapely.get_num_geometries(pieces) > 1]):
        members = np.flatnonzero(owner == region)
        pieces[members] = _rejoin_detached(pieces[members])
    _locate(homes, pieces, owner)
    keep = np.ones(len(regions), dtype=int) if keep is None else keep
    pieces, owner = _merge_light(pieces, owner, homes, weight, keep)
    order, seq = _reading_order(pieces, owner, regions)
    moved = homes.cell >= 0
    homes.cell[moved] = np.argsort(order)[homes.cell[moved]]
    return pieces[order], owner[order], seq


def _merge_light(
    pieces: np.ndarray,
    owner: np.ndarray,
    homes: Households,
    weight: np.ndarray,
    keep: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge pieces under a quarter of their region's mean weight into a neighbour."""
    load = homes.sums(weight, len(pieces))
    per_region = np.bincount(owner, minlength=len(keep))
    mean = np.bincount(owner, load, len(keep)) / np.maximum(per_region, 1)
    light = np.flatnonzero((load < _LIGHT_SHARE * mean[owner]) & (per_region[owner] > keep[owner]))
    alive = np.ones(len(pieces), dtype=bool)
    target_of = np.arange(len(pieces))
    for p in light[np.argsort(load[light], kind="stable")]:
        region = owner[p]
        if per_region[region] <= keep[region]:
            continue
        siblings = np.flatnonzero((owner == region) & alive)
        siblings = siblings[siblings != p]
        shared = shapely.length(
            shapely.intersection(
                shapely.boundary(pieces[p]), shapely.buffer(pieces[siblings], 1e-3)
            )
        )
        if shared.max() <= 0:
            continue  # touches no sibling (a detached part of its region): keep it
        target = siblings[np.argmax(shared)]
        pieces[target] = shapely.union_all([pieces[target], pieces[p]])
        alive[p], per_region[region] = False, per_region[region] - 1
        target_of[target_of == p] = target
    renumber = np.cumsum(alive) - 1
    moved = homes.cell >= 0
    homes.cell[moved] = renumber[target_of[homes.cell[moved]]]
    return pieces[alive], owner[alive]


def _balanced_seeds(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    owner: np.ndarray,
    counts: np.ndarray,
    regions: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One seed per wanted child: the point nearest the weighted centre of its group."""
    group, group_owner = _balanced_groups(x, y, w, owner, counts)
    n = len(group_owner)
    total = np.bincount(group, w, n)
    safe = np.where(total > 0, total, 1.0)
    cx, cy = np.bincount(group, w * x, n) / safe, np.bincount(group, w * y, n) / safe
    order = np.lexsort(((x - cx[group]) ** 2 + (y - cy[group]) ** 2, group))
    first = order[np.r_[True, group[order][1:] != group[order][:-1]]] if len(order) else order
    seed_x, seed_y = np.full(n, np.nan), np.full(n, np.nan)
    seed_x[group[first]], seed_y[group[first]] = x[first], y[first]
    # A child whose group holds no household (a campus, empty land) gets a random seed.
    for g in np.flatnonzero(np.isnan(seed_x)):
        (seed_x[g],), (seed_y[g],) = points_in(regions[group_owner[g]], 1, rng)
    order = np.argsort(group_owner, kind="stable")
    return seed_x[order], seed_y[order], group_owner[order]


def _balanced_groups(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, owner: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Split each owner's points into counts[owner] groups of about equal weight.

    Every owner's points are cut across their longer side at the weighted median (at
    the share of the children going left), all owners at once, until each group is one
    child. Returns each point's group and each group's owner.
    """
    node, wanted, node_owner = owner.copy(), counts.astype(int).copy(), np.arange(len(counts))
    while (wanted > 1).any():
        splitting = np.flatnonzero(wanted > 1)
        left = wanted[splitting] // 2
        right_id = np.full(len(wanted), -1)
        right_id[splitting] = len(wanted) + np.arange(len(splitting))
        share = np.zeros(len(wanted))
        share[splitting] = left / wanted[splitting]
        sel = np.flatnonzero(wanted[node] > 1)
        if len(sel):
            nd, px, py, pw = node[sel], x[sel], y[sel], w[sel] + 1e-12
            extent = np.full((4, len(wanted)), np.inf)
            extent[2:] = -np.inf
            np.minimum.at(extent[0], nd, px)
            np.minimum.at(extent[1], nd, py)
            np.maximum.at(extent[2], nd, px)
            np.maximum.at(extent[3], nd, py)
            across_x = (extent[2] - extent[0]) >= (extent[3] - extent[1])
            along = np.where(across_x[nd], px, py)
            order = np.lexsort((along, nd))
            nd_sorted, w_sorted = nd[order], pw[order]
            before = np.cumsum(w_sorted) - w_sorted
            start = np.r_[True, nd_sorted[1:] != nd_sorted[:-1]]
            offset = np.maximum.accumulate(np.where(start, before, 0.0))
            middle = before - offset + w_sorted / 2
            total = np.bincount(nd_sorted, w_sorted, len(wanted))
            goes_right = middle > share[nd_sorted] * total[nd_sorted]
            node[sel[order[goes_right]]] = right_id[nd_sorted[goes_right]]
        wanted = np.concatenate([wanted, wanted[splitting] - left])
        wanted[splitting] = left
        node_owner = np.concatenate([node_owner, node_owner[splitting]])
    return node, node_owner


def _voronoi_pieces(
    regions: np.ndarray, seed_x: np.ndarray, seed_y: np.ndarray, owner: np.ndarray
) -> np.ndarray:
    """Each region cut along the Voronoi edges of its seeds (seeds sorted by region)."""
    pieces = np.empty(len(owner), dtype=object)
    alone = np.bincount(owner, minlength=len(regions))[owner] == 1
    pieces[alone] = regions[owner[alone]]
    shared = np.flatnonzero(~alone)
    if len(shared):
        split, index = np.unique(owner[shared], return_inverse=True)
        sites = shapely.multipoints(shapely.points(seed_x[shared], seed_y[shared]), indices=index)
        cells = shapely.voronoi_polygons(sites, extend_to=regions[split], ordered=True)
        parts, part_of = shapely.get_parts(cells, return_index=True)
        if len(parts) != len(shared):
            raise RuntimeError("two seeds of a cut coincide")  # not for random floats
        pieces[shared] = shapely.intersection(parts, regions[split][part_of])
    return _polygonal(pieces)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    # An intersection may add a line or point where pieces touch; keep the polygons.
    odd = np.flatnonzero(shapely.get_type_id(geoms) == shapely.GeometryType.GEOMETRYCOLLECTION)
    for i in odd:
        parts = shapely.get_parts(geoms[i])
        polygons = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)]
        geoms[i] = shapely.union_all(polygons)
    return geoms


def _rejoin_detached(children: np.ndarray) -> np.ndarray:
    """Give every detached piece of a child to the sibling it shares most boundary with."""
    if len(children) < 2:
        return children
    parts, child = shapely.get_parts(children, return_index=True)
    area = shapely.area(parts)
    core = np.zeros(len(parts), dtype=bool)
    for c in range(len(children)):
        mine = np.flatnonzero(child == c)
        core[mine[np.argmax(area[mine])]] = True
    cores, core_child = parts[core], child[core]
    halo = shapely.buffer(cores, 1e-3)
    members: list[list[shapely.Geometry]] = [[g] for g in cores]
    for p in np.flatnonzero(~core):
        others = np.flatnonzero(core_child != child[p])
        touching = shapely.length(shapely.intersection(shapely.boundary(parts[p]), halo[others]))
        if touching.max() > 0:
            target = others[np.argmax(touching)]
        else:
            target = others[np.argmin(shapely.distance(parts[p], cores[others]))]
        members[target].append(parts[p])
    out = np.empty(len(children), dtype=object)
    for k, c in enumerate(core_child):
        out[c] = members[k][0] if len(members[k]) == 1 else shapely.union_all(members[k])
    return out


def _reading_order(
    pieces: np.ndarray, owner: np.ndarray, regions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces ordered per region in bands from north to south, alternating direction."""
    probe = shapely.point_on_surface(pieces)
    x, y = shapely.get_x(probe), shapely.get_y(probe)
    n = np.bincount(owner, minlength=len(regions))
    top = shapely.bounds(regions)[:, 3]
    band_height = np.sqrt(shapely.area(regions) / np.maximum(n, 1))
    band = np.floor((top[owner] - y) / band_height[owner])
    order = np.lexsort((np.where(band % 2 == 0, x, -x), band, owner))
    sorted_owner = owner[order]
    first = np.searchsorted(sorted_owner, sorted_owner)
    return order, np.arange(len(order)) - first + 1


def _locate(homes: Households, pieces: np.ndarray, region: np.ndarray) -> None:
    """Move each household point from its region to the piece of that region holding it."""
    live = np.flatnonzero(homes.cell >= 0)
    if homes.points is None:
        homes.points = shapely.points(homes.x, homes.y)
    tree = shapely.STRtree(pieces)
    found, piece = tree.query(homes.points[live], predicate="intersects")
    same = region[piece] == homes.cell[live[found]]
    cell = np.full(len(live), -1)
    cell[found[same]] = piece[same]
    for k in np.flatnonzero(cell < 0):
        # On a boundary, a few rounding errors away from every piece of its region.
        mine = np.flatnonzero(region == homes.cell[live[k]])
        point = shapely.Point(homes.x[live[k]], homes.y[live[k]])
        cell[k] = mine[np.argmin(shapely.distance(pieces[mine], point))]
    homes.cell[live] = cell


# -- exact coverages --------------------------------------------------------------------


def exact_coverages(
    drafts: list[np.ndarray], parents: list[np.ndarray], grid_size: float
) -> list[np.ndarray]:
    """Exact shapes per level: the finest drafts' boundaries noded once, then dissolved.

    ``drafts`` are the draft shapes of each level, coarsest first; ``parents[k]`` gives,
    for each area of level k + 1, its row in level k. Boundaries are snap-rounded to
    ``grid_size``.
    """
    finest = drafts[-1]
    noded = shapely.union_all(shapely.boundary(finest), grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    shapes = [_dissolve(faces, _face_owner(faces, finest), len(finest))]
    for level, parent in zip(drafts[-2::-1], parents[::-1], strict=True):
        shapes.insert(0, _dissolve(shapes[0], parent, len(level)))
    return shapes


def _face_owner(faces: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The draft cell holding each face (by a point inside it, or by most overlap)."""
    tree = shapely.STRtree(cells)
    face, cell = tree.query(shapely.point_on_surface(faces), predicate="intersects")
    hits = np.bincount(face, minlength=len(faces))
    owner = np.full(len(faces), -1)
    clear = hits[face] == 1
    owner[face[clear]] = cell[clear]
    for i in np.flatnonzero(hits != 1):
        near = tree.query(faces[i], predicate="intersects")
        owner[i] = near[np.argmax(shapely.area(shapely.intersection(cells[near], faces[i])))]
    return owner


def _dissolve(geoms: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The coverage union of the geometries of each group 0..n-1."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n + 1))
    out = np.empty(n, dtype=object)
    for g in range(n):
        members = order[bounds[g] : bounds[g + 1]]
        if not len(members):
            raise RuntimeError(f"area {g} lost every face")  # a draft below the snap grid
        out[g] = (
            geoms[members[0]] if len(members) == 1 else shapely.coverage_union_all(geoms[members])
        )
    return out
