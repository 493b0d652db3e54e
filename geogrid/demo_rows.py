"""The demo's incidents, events and breaches as the bulk writer stages them.

:func:`geogrid.demo_timeline.play` gives every event; here the incidents are read off
them as they stand at ``now`` (state and level of the last event, the first acceptance,
the last resolution unless reopened since, the holder ...), each event gets the data the
workflow records for it, and each escalation geogrid made gets its breach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geogrid.demo_timeline import NONE, Story
from geogrid.pointindex import Placement
from geogrid.workdays import SHANGHAI

DESCRIPTIONS = {
    "environment": ("垃圾桶满溢未清运", "楼道堆放杂物", "绿化带内有建筑垃圾"),
    "public_facility": ("路灯不亮", "井盖松动", "健身器材损坏"),
    "property": ("电梯故障停运", "小区门禁损坏", "物业未及时维修漏水"),
    "noise": ("夜间施工噪音扰民", "广场舞音响声音过大", "烧烤摊夜间喧哗"),
    "dispute": ("邻里因漏水发生纠纷", "停车位纠纷", "宠物扰邻引发争执"),
    "safety_hazard": ("电动车楼道充电", "消防通道被占用", "燃气管道老化"),
    "livelihood": ("独居老人需要帮扶", "低保申请咨询", "残疾人出行困难"),
    "public_order": ("可疑人员徘徊", "占道经营影响通行", "夜间聚集饮酒"),
    "other": ("咨询网格服务事项", "建议增设便民设施"),
}  # fmt: skip
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马胡朱郭"


@dataclass
class DemoIncidents:
    """The rows to write: incidents (stage columns), their events and their breaches."""

    incidents: pd.DataFrame
    events: pd.DataFrame
    breaches: pd.DataFrame


def demo_rows(
    story: Story,
    events: pd.DataFrame,
    placed: Placement,
    due,
    *,
    seed: int,
    rng: np.random.Generator,
    generation: int,
) -> DemoIncidents:
    """The rows to write, keyed ``demo:<seed>:<n>`` in the order of report."""
    keys = np.array([f"demo:{seed}:{i:07d}" for i in range(len(story.reported))], dtype=object)
    incidents = _incidents(story, events, placed, due, keys, rng, generation)
    return DemoIncidents(
        incidents, _event_rows(events, keys, story, placed, generation), _breaches(events, keys)
    )


def _instants(ns: np.ndarray) -> pd.Series:
    return pd.Series(
        pd.DatetimeIndex(np.asarray(ns, np.int64).view("datetime64[ns]")).tz_localize("UTC")
    )


def _incidents(story, events, placed, due, keys, rng, generation) -> pd.DataFrame:
    """The incidents as they stand at ``now``: the last event's state and level, the times."""
    n = len(keys)
    everyone = pd.RangeIndex(n)
    last = events.groupby("inc").tail(1).set_index("inc").reindex(everyone)
    state = last["to_state"].to_numpy()
    accepted = _earliest(_first(events, "accept", n), _first(events, "report_in", n))
    dispatched = _earliest(_first(events, "dispatch", n), _first(events, "report_in", n))
    # Reopened and not resolved again: no longer resolved (as the workflow clears it).
    resolved = _last(events, "resolve", n)
    resolved[np.isin(state, ("in_progress", "escalated"))] = NONE
    evaluations = events[events["action"] == "evaluate"]
    satisfied = evaluations.groupby("inc")["satisfied"].last().reindex(everyone)
    holders = events[events["action"].isin(["dispatch", "report_in"])].groupby("inc")
    waiting = last["action"].to_numpy() == "escalate"
    report_in_due = last["report_in_due"].fillna(NONE).to_numpy(np.int64)
    grid, placement, detail = _placements(story, events, placed)
    contact = rng.random(n) < 0.8
    surname = np.array(list(_SURNAMES))[rng.integers(0, len(_SURNAMES), n)]
    return pd.DataFrame(
        {
            "idempotency_key": keys,
            "category": story.category,
            "description": [_description(c, k) for k, c in enumerate(story.category)],
            "channel": story.channel,
            "state": state,
            "reported_at": _instants(story.reported),
            "reported_by": story.reporter,
            "given_lon": story.lon,
            "given_lat": story.lat,
            "coord_type": "cgcs2000",
            "lon": story.lon,
            "lat": story.lat,
            "grid_code": grid,
            "generation": generation,
            "placement": placement,
            "placement_detail": detail,
            "level": last["level"].to_numpy(),
            # The last holder; a station reporting in keeps the department it had.
            "assignee": holders["assignee"].last().reindex(everyone).to_numpy(),
            "department": holders["department"].last().reindex(everyone).to_numpy(),
            "accept_due_at": due.accept_due_at,
            "report_in_due_at": _instants(np.where(waiting, report_in_due, NONE)),
            "resolve_due_at": due.resolve_due_at,
            "deadline_alert": due.alert,
            "accepted_at": _instants(accepted),
            "dispatched_at": _instants(dispatched),
            "resolved_at": _instants(resolved),
            "evaluated_at": _instants(_last(events, "evaluate", n)),
            "satisfaction": satisfied.map({True: "satisfied", False: "unsatisfied"}).to_numpy(),
            "reopened_count": _count(evaluations[evaluations["satisfied"] == False], n),  # noqa: E712
            "escalation_count": _count(events[events["action"] == "escalate"], n),
            "reject_reason": _notes(events, "reject", n),
            "contact_name": np.where(contact, np.char.add(surname, "女士"), None),
            "contact_phone": np.where(
                contact, np.char.mod("1380000%04d", rng.integers(0, 10_000, n)), None
            ),
        }
    )


def _first(events: pd.DataFrame, action: str, n: int) -> np.ndarray:
    return _by_incident(events[events["action"] == action].groupby("inc")["at"].min(), n)


def _last(events: pd.DataFrame, action: str, n: int) -> np.ndarray:
    return _by_incident(events[events["action"] == action].groupby("inc")["at"].max(), n)


def _by_incident(times: pd.Series, n: int) -> np.ndarray:
    out = np.full(n, NONE)
    out[times.index.to_numpy()] = times.to_numpy()
    return out


def _count(events: pd.DataFrame, n: int) -> np.ndarray:
    return events.groupby("inc").size().reindex(pd.RangeIndex(n), fill_value=0).to_numpy()


def _notes(events: pd.DataFrame, action: str, n: int) -> np.ndarray:
    notes = events[events["action"] == action].set_index("inc")["note"]
    return notes.reindex(pd.RangeIndex(n)).to_numpy(dtype=object)


def _description(category: str, k: int) -> str:
    choices = DESCRIPTIONS.get(category, ("其他事项",))
    return choices[k % len(choices)]


def _placements(story, events, placed) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Grid, placement and placement detail; those placed by hand keep where they came from."""
    grid = story.grid_code.copy()
    placement = np.asarray(placed.status_names(), dtype=object)
    detail = [_detail(placed, k) if placed.status[k] != 0 else None for k in range(len(grid))]
    by_hand = events[events["action"] == "place"]
    for k, code in zip(by_hand["inc"], by_hand["grid_code"], strict=True):
        grid[k], placement[k] = code, "placed"
        detail[k] = {**detail[k], "placed_from": {"grid_code": None, "placement": "outside"}}
    texts = [None if d is None else json.dumps(d, ensure_ascii=False) for d in detail]
    return grid, placement, texts


def _earliest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a == NONE, b, np.where(b == NONE, a, np.minimum(a, b)))


def _detail(placed, k: int) -> dict:
    nearest = None
    if placed.nearest_index[k] >= 0:
        nearest = {
            "code": str(placed.codes[placed.nearest_index[k]]),
            "distance_m": float(placed.nearest_distance_m[k]),
        }
    swapped = placed.swapped_index[k]
    return {
        "candidates": placed.candidates(k),
        "nearest": nearest,
        "swapped_code": str(placed.codes[swapped]) if swapped >= 0 else None,
    }


def _event_rows(events: pd.DataFrame, keys, story, placed, generation) -> pd.DataFrame:
    """The events as the bulk writer stages them, each with the data the workflow records."""
    data = np.full(len(events), "{}", dtype=object)
    action = events["action"].to_numpy()
    status = placed.status_names()
    for name, facts in _EVENT_DATA.items():
        at = np.flatnonzero(action == name)
        if len(at):
            rows = events.iloc[at]
            data[at] = [
                json.dumps(f, ensure_ascii=False) for f in facts(rows, story, status, generation)
            ]
    return pd.DataFrame(
        {
            "idempotency_key": keys[events["inc"].to_numpy()],
            "at": _instants(events["at"].to_numpy()),
            "actor": events["actor"].to_numpy(),
            "role": events["role"].to_numpy(),
            "action": action,
            "from_state": events["from_state"].to_numpy(),
            "to_state": events["to_state"].to_numpy(),
            "level": events["level"].to_numpy(),
            "note": events["note"].to_numpy() if "note" in events else None,
            "data": data,
        }
    )


def _reported(rows, story, status, generation):
    inc = rows["inc"].to_numpy()
    return [
        {"channel": channel, "grid_code": code, "generation": generation, "placement": placement}
        for channel, code, placement in zip(
            story.channel[inc], story.grid_code[inc], status[inc], strict=True
        )
    ]


def _placed(rows, story, status, generation):
    return [
        {"grid_code": code, "from_grid_code": None, "from_placement": "outside"}
        for code in rows["grid_code"]
    ]


def _dispatched(rows, story, status, generation):
    return [
        {"assignee": assignee} | ({"department": department} if isinstance(department, str) else {})
        for assignee, department in zip(rows["assignee"], rows["department"], strict=True)
    ]


def _escalated(rows, story, status, generation):
    return [
        {"to_level": level, "previous_report_in_due_at": None, "report_in_due_at": _iso(due)}
        for level, due in zip(rows["level"], rows["report_in_due"], strict=True)
    ]


def _reported_in(rows, story, status, generation):
    return [
        {"assignee": assignee, "report_in_due_at": _iso(due)}
        for assignee, due in zip(rows["assignee"], rows["report_in_due"], strict=True)
    ]


def _evaluated(rows, story, status, generation):
    return [
        {"satisfied": True} if satisfied else {"satisfied": False, "reopened": True}
        for satisfied in rows["satisfied"]
    ]


#: The data each kind of event carries, as :mod:`geogrid.workflow` and intake record it.
_EVENT_DATA = {
    "report": _reported,
    "place": _placed,
    "dispatch": _dispatched,
    "escalate": _escalated,
    "report_in": _reported_in,
    "evaluate": _evaluated,
}


def _iso(ns) -> str | None:
    if ns is None or pd.isna(ns) or ns == NONE:
        return None
    return pd.Timestamp(int(ns), tz="UTC").tz_convert(SHANGHAI).isoformat()


def _breaches(events: pd.DataFrame, keys) -> pd.DataFrame:
    """A breach for every escalation geogrid made on a missed deadline."""
    automatic = (
        events[(events["action"] == "escalate") & events["breach"].notna()]
        if "breach" in events
        else events.iloc[:0]
    )
    return pd.DataFrame(
        {
            "idempotency_key": keys[automatic["inc"].to_numpy()],
            "deadline": automatic["breach"].to_numpy() if len(automatic) else [],
            "due_at": _instants(automatic["due"].to_numpy(np.int64)) if len(automatic) else [],
            "escalated_at": _instants(automatic["at"].to_numpy()),
            "level": automatic["level"].to_numpy(),
        }
    )
