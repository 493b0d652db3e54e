"""Which grid an incident counts for: the grid it was recorded in, or today's grid.

Every incident keeps the grid code and generation it was recorded in, forever. A report
can count it there (``recorded``), or re-attribute it to the current generation's grids
(``current``) through the lineage that each activation records:

- a recorded (generation, code) whose area row is still valid in the current
  generation keeps its code;
- otherwise the area row was replaced: its land is followed through the lineage rows
  (old area row → new area rows, with ``share_of_old``), activation after activation,
  multiplying shares along a chain and adding up the chains that end in the same
  current area, and the incident goes to the current grid that received the largest
  share of the recorded grid's land. Shares are compared to six decimals; on a tie the
  successor with the recorded code wins, then the smallest code;
- a replaced row whose land went nowhere (no lineage reaches the current generation)
  is *unmapped*: it keeps its recorded code and the report says so.

The successor table is computed once per report for every replaced area row of the
level (set-based, a handful of joins however many incidents there are), and applied to
the incidents' distinct (generation, code) pairs.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from geogrid.errors import InputError
from geogrid.models import Area, Lineage

RECORDED = "recorded"
CURRENT = "current"
ATTRIBUTIONS = (RECORDED, CURRENT)

#: Shares closer than this count as equal (areas on the ellipsoid are not exact).
_SHARE_DECIMALS = 6

SUCCESSOR_COLUMNS = ["code", "generation_low", "generation_high", "current_code", "share"]


def check_attribution(attribution: str) -> str:
    """The attribution mode, or an InputError naming the field ``attribution``."""
    if attribution not in ATTRIBUTIONS:
        raise InputError(
            f"attribution is recorded or current, not {attribution!r}", field="attribution"
        )
    return attribution


def successor_map(session: Session, level: str, generation_id: int) -> pd.DataFrame:
    """For every replaced area row of ``level``: the current code its land mostly went to.

    One row per area row that ended before ``generation_id``, with its code, its run of
    generations, ``current_code`` (None when its land reached no current area) and the
    share of its land that went there.
    """
    ended = _ended_rows(session, level, generation_id)
    if ended.empty:
        return pd.DataFrame(columns=SUCCESSOR_COLUMNS)
    shares = _composed_shares(session, level, generation_id, ended["id"])
    best = _largest_share(shares.merge(ended[["id", "code"]], left_on="origin", right_on="id"))
    mapped = ended.merge(best, left_on="id", right_on="origin", how="left")
    mapped["current_code"] = (
        mapped["current_code"].astype(object).where(mapped["current_code"].notna(), None)
    )
    return mapped[SUCCESSOR_COLUMNS].reset_index(drop=True)


def attribute(
    generations: pd.Series, codes: pd.Series, successors: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Current codes for recorded (generation, code) pairs, and which pairs were unmapped.

    Pairs whose area row is still valid (not in ``successors``) keep their code, and so
    do unmapped ones; the second series is True for the unmapped.
    """
    current = codes.copy()
    unmapped = pd.Series(False, index=codes.index)
    if successors.empty:
        return current, unmapped
    candidates = codes.isin(successors["code"])
    if not candidates.any():
        return current, unmapped
    pairs = pd.DataFrame(
        {"generation": generations[candidates], "code": codes[candidates]}
    ).reset_index(names="position")
    matched = pairs.merge(successors, on="code")
    matched = matched[
        (matched["generation_low"] <= matched["generation"])
        & (matched["generation"] <= matched["generation_high"])
    ].set_index("position")
    moved = matched["current_code"].notna()
    current.loc[matched.index[moved]] = matched.loc[moved, "current_code"]
    unmapped.loc[matched.index[~moved]] = True
    return current, unmapped


def _ended_rows(session: Session, level: str, generation_id: int) -> pd.DataFrame:
    rows = session.execute(
        select(Area.id, Area.code, Area.generation_low, Area.generation_high).where(
            Area.level == level, Area.generation_high < generation_id
        )
    ).all()
    return pd.DataFrame(rows, columns=["id", "code", "generation_low", "generation_high"])


def _composed_shares(
    session: Session, level: str, generation_id: int, origins: pd.Series
) -> pd.DataFrame:
    """Share of each origin row's land in each current area row, over chains of lineage."""
    new = aliased(Area)
    links = pd.DataFrame(
        session.execute(
            select(
                Lineage.old_area_id,
                Lineage.new_area_id,
                Lineage.share_of_old,
                new.code,
                (new.generation_high >= generation_id).label("current"),
            )
            .join(new, new.id == Lineage.new_area_id)
            .where(Lineage.level == level, new.generation_low <= generation_id)
        ).all(),
        columns=["old_area_id", "new_area_id", "share_of_old", "current_code", "current"],
    )
    if links.empty:
        return _empty_shares()
    frontier = pd.DataFrame({"origin": origins.to_numpy(), "area": origins.to_numpy()})
    frontier["share"] = 1.0
    reached = []
    # Lineage runs from an older generation to a newer one, so a chain is at most as long
    # as the number of activations; the bound only guards against a corrupt table.
    for _ in range(len(links) + 1):
        step = frontier.merge(links, left_on="area", right_on="old_area_id")
        if step.empty:
            break
        step["share"] = step["share"] * step["share_of_old"]
        step = step.groupby(["origin", "new_area_id", "current_code", "current"], as_index=False)[
            "share"
        ].sum()
        reached.append(step[step["current"]])
        frontier = step[~step["current"]].rename(columns={"new_area_id": "area"})
        frontier = frontier[["origin", "area", "share"]]
    if not reached:
        return _empty_shares()
    shares = pd.concat(reached)
    return shares.groupby(["origin", "current_code"], as_index=False)["share"].sum()


def _largest_share(shares: pd.DataFrame) -> pd.DataFrame:
    """Per origin, the current code with the largest share; ties: same code, then smallest."""
    if shares.empty:
        return _empty_shares()
    ranked = shares.assign(
        rounded=shares["share"].round(_SHARE_DECIMALS),
        other_code=shares["current_code"] != shares["code"],
    ).sort_values(
        ["origin", "rounded", "other_code", "current_code"], ascending=[True, False, True, True]
    )
    return ranked.drop_duplicates("origin")[["origin", "current_code", "share"]]


def _empty_shares() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "origin": pd.Series(dtype="int64"),
            "current_code": pd.Series(dtype=object),
            "share": pd.Series(dtype=float),
        }
    )
