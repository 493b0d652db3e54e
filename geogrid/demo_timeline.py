"""What happened to each demo incident after it was reported: the workflow, played out.

For every incident the same steps are drawn at once (numpy, no loop over incidents),
each at a time after the one before, on the working clock (:mod:`geogrid.incident_deadlines`):
work waits for working days, and nobody acts before 7 in the morning.

- 2% are rejected at acceptance; the rest are accepted by the grid worker, most within
  about an hour of working time, some later that day, 4% after the acceptance deadline
  (then geogrid escalates them to the community, which reports in);
- accepted ones are dispatched (to the grid worker, or to the category's department)
  and started; some disputes and hazards are whistled up (吹哨) to the community by
  hand; 88% are resolved before the resolution deadline, the others after it (escalated
  one level up when it passed; the department reports in), and 1.5% of the last weeks
  are stuck, still open;
- three in four are evaluated: 7% unsatisfied reopens one, which is resolved again
  (and escalated first, if its deadline had passed meanwhile).

Whatever would happen after ``now`` is cut off, so the last days' incidents are still
open, some overdue. The steps follow :mod:`geogrid.workflow` (its actions, states,
levels and event data) and every automatic escalation has its breach, so
``escalate-overdue`` never escalates one of them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from geogrid.incident_deadlines import WorkingDays
from geogrid.models import ESCALATION_LEVELS

NS = 10**9
MINUTE, HOUR, DAY = 60 * NS, 3600 * NS, 86_400 * NS
NONE = np.iinfo(np.int64).min
_LOCAL = 8 * HOUR
SYSTEM_NAME = "geogrid"
CENTRE = "综治中心"
#: Categories whose incidents often leave the grid for their department.
_DEPARTMENT_SHARE = {"public_facility": 0.6, "safety_hazard": 0.5, "public_order": 0.5}
_WHISTLED = ("dispute", "safety_hazard", "public_order")


@dataclass
class Story:
    """The incidents as reported: one entry per incident, times in UTC nanoseconds."""

    lon: np.ndarray
    lat: np.ndarray
    reported: np.ndarray
    accept_due: np.ndarray
    resolve_due: np.ndarray
    accept_days: np.ndarray
    category: np.ndarray
    department: np.ndarray
    grid_code: np.ndarray
    nearest_code: np.ndarray
    channel: np.ndarray
    reporter: np.ndarray
    reporter_role: np.ndarray


@dataclass
class _Log:
    """Events as columns, added a step (many incidents) at a time."""

    parts: list[pd.DataFrame] = field(default_factory=list)

    def add(self, mask, at, action, actor, role, to_state, **columns) -> None:
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        data = {
            "inc": rows,
            "at": _pick(at, rows),
            "step": len(self.parts),
            "action": action,
            "actor": _pick(actor, rows),
            "role": _pick(role, rows),
            "to_state": _pick(to_state, rows),
        }
        data.update({name: _pick(value, rows) for name, value in columns.items()})
        self.parts.append(pd.DataFrame(data))


def _pick(value, rows: np.ndarray):
    return value[rows] if isinstance(value, np.ndarray) else value


def play(story: Story, days: WorkingDays, rng: np.random.Generator, now: int) -> pd.DataFrame:
    """Every event of every incident up to ``now``, in order, with the state after each."""
    run = _Play(story, _Clock(days, rng, len(story.reported)), _Log(), now)
    run.report_and_place()
    run.reject_or_accept()
    run.dispatch_and_start()
    run.whistle()
    run.resolve()
    run.evaluate()
    return _in_order(run.log, now)


class _Play:
    """The steps in order; each works on all incidents, and remembers who holds each."""

    def __init__(self, story: Story, clock: _Clock, log: _Log, now: int) -> None:
        self.s, self.clock, self.log, self.now = story, clock, log, now
        self.n = len(story.reported)
        self.a_due, self.r_due = story.accept_due, story.resolve_due
        self.known_r = self.r_due != NONE

    def draw(self) -> np.ndarray:
        return self.clock.rng.random(self.n)

    def hold(self, mask: np.ndarray, holder, role) -> None:
        """From here on ``holder`` (in ``role``) works the incidents of ``mask``."""
        self.holder = np.where(mask, holder, self.holder)
        self.holder_role = np.where(mask, role, self.holder_role)

    def report_and_place(self) -> None:
        """Reported; outside every grid, placed by the centre before the acceptance deadline."""
        s, clock = self.s, self.clock
        self.log.add(np.ones(self.n, bool), s.reported, "report", s.reporter, s.reporter_role,
                     "reported")  # fmt: skip
        outside = pd.isna(s.grid_code)
        t_place = clock.office(clock.later(s.reported, clock.exp(3 * HOUR)))
        t_place = clock.before(t_place, s.reported + MINUTE, _minus(self.a_due, 30 * MINUTE))
        self.log.add(outside, t_place, "place", CENTRE, "official", None, grid_code=s.nearest_code)
        grid = np.where(outside, s.nearest_code, s.grid_code)
        self.start = np.where(outside, t_place, s.reported)
        self.worker = np.array([f"网格员-{g}" for g in grid], dtype=object)
        self.station = np.array([f"社区工作站-{g[:12]}" for g in grid], dtype=object)

    def reject_or_accept(self) -> None:
        """2% rejected; accepted at once, later that day, or after the deadline (escalated)."""
        clock, a_due, r_due = self.clock, self.a_due, self.r_due
        rejected = self.draw() < 0.02
        t_reject = clock.office(clock.later(self.start, clock.exp(HOUR)))
        t_reject = clock.before(t_reject, self.start + MINUTE, _minus(a_due, 10 * MINUTE))
        self.log.add(rejected, t_reject, "reject", self.worker, "grid_worker", "rejected",
                     note="重复上报, 已并入原事件")  # fmt: skip
        self.working = ~rejected
        # Late only where the resolution deadline leaves a working day after it.
        both = (a_due != NONE) & self.known_r
        room = clock.working_between(np.where(both, a_due, self.start),
                                     np.where(both, r_due, self.start))  # fmt: skip
        window = self.s.accept_days * DAY
        kind = self.draw()
        delay = np.where(kind < 0.86, clock.exp(1.2 * HOUR), clock.span(0.2, 0.9, window))
        late = (kind >= 0.96) & (room >= DAY)
        delay = np.where(late, clock.span(1.05, 1.5, window) + HOUR, delay)
        self.t_accept = clock.office(clock.later(self.start, delay))
        self.late_accept = self.working & (a_due != NONE) & (self.t_accept > a_due)
        self.on_time = self.working & ~self.late_accept
        self.log.add(self.on_time, self.t_accept, "accept", self.worker, "grid_worker", "accepted")
        self.ready = clock.escalation(
            self.log, self.late_accept, a_due, "accept", self.station, "official",
            limit=_minus(r_due, 10 * MINUTE), accept_days=self.s.accept_days,
        )  # fmt: skip

    def dispatch_and_start(self) -> None:
        """To the grid worker, or by the centre to the department; started before the deadline."""
        clock, s, on_time = self.clock, self.s, self.on_time
        to_department = on_time & (self.draw() < _share(s.category))
        t_dispatch = clock.office(clock.later(self.t_accept, clock.exp(HOUR // 2)))
        t_dispatch = clock.before(
            t_dispatch, self.t_accept + MINUTE, _minus(self.r_due, 10 * MINUTE)
        )
        self.holder = np.where(to_department, s.department, self.worker)
        self.holder_role = np.where(to_department, "department", "grid_worker")
        self.log.add(on_time, t_dispatch, "dispatch", np.where(to_department, CENTRE, self.worker),
                     np.where(to_department, "official", "grid_worker"), "dispatched",
                     assignee=self.holder,
                     department=np.where(to_department, s.department, None))  # fmt: skip
        t_start = clock.before(clock.later(t_dispatch, clock.exp(HOUR)), t_dispatch + MINUTE,
                               _minus(self.r_due, 5 * MINUTE))  # fmt: skip
        self.log.add(on_time, t_start, "start", self.holder, self.holder_role, "in_progress")
        self.ready = np.where(self.late_accept, self.ready, t_start)
        self.hold(self.late_accept, self.station, "official")

    def whistle(self) -> None:
        """吹哨 by hand: some disputes and hazards go up to the community, which reports in."""
        clock = self.clock
        t_whistle = clock.later(self.ready, clock.exp(2 * HOUR))
        whistled = (self.on_time & np.isin(self.s.category, _WHISTLED) & (self.draw() < 0.06)
                    & self.known_r & (t_whistle < _minus(self.r_due, 3 * HOUR)))  # fmt: skip
        t_in = clock.escalation(
            self.log, whistled, t_whistle, None, self.station, "official",
            limit=_minus(self.r_due, HOUR), accept_days=self.s.accept_days,
            by=(self.worker, "grid_worker"),
        )  # fmt: skip
        self.ready = np.where(whistled, t_in, self.ready)
        self.hold(whistled, self.station, "official")

    def resolve(self) -> None:
        """88% before the deadline; late ones escalated when it passed; a few recent stuck."""
        clock, s, r_due, known_r = self.clock, self.s, self.r_due, self.known_r
        draw = self.draw()
        self.stuck = self.working & (draw > 0.985) & (s.reported > self.now - 45 * DAY)
        after_due = self.working & (draw >= 0.88) & ~self.stuck & known_r
        left = clock.working_between(self.ready, np.where(known_r, r_due, self.ready))
        left = np.where(known_r, left - 30 * MINUTE, 2 * DAY)
        soon = (clock.rng.beta(1.4, 3.0, self.n) * np.maximum(left, 10 * MINUTE)).astype(np.int64)
        planned = clock.later(np.where(after_due, r_due, self.ready),
                              np.where(after_due, clock.span(0.1, 2.5, DAY), soon))  # fmt: skip
        t_resolve = np.maximum(clock.office(planned), self.ready + 5 * MINUTE)
        self.late = self.working & known_r & ((t_resolve > r_due) | self.stuck)
        t_in = clock.escalation(
            self.log, self.late, np.maximum(r_due, self.ready), "resolve", s.department,
            "department", accept_days=s.accept_days, department=s.department, due=r_due,
        )  # fmt: skip
        self.t_resolve = np.where(self.late, np.maximum(t_resolve, t_in + 20 * MINUTE), t_resolve)
        self.hold(self.late, s.department, "department")
        self.resolved = self.working & ~self.stuck
        self.log.add(self.resolved, self.t_resolve, "resolve", self.holder, self.holder_role,
                     "resolved", note="已处理完毕")  # fmt: skip

    def evaluate(self) -> None:
        """Three in four evaluated; unsatisfied reopens (escalated first if overdue by then)."""
        clock, s = self.clock, self.s
        evaluated = self.resolved & (self.draw() < 0.75)
        t_evaluate = clock.daytime(self.t_resolve + clock.span(1, 60, HOUR))
        resident = np.isin(s.channel, ("whistle", "hotline"))
        evaluator = np.where(resident, s.reporter, f"{CENTRE}回访")
        evaluator_role = np.where(resident, "resident", "official")
        unsatisfied = evaluated & (self.draw() < 0.07)
        self.log.add(evaluated, t_evaluate, "evaluate", evaluator, evaluator_role,
                     np.where(unsatisfied, "in_progress", "evaluated"),
                     satisfied=~unsatisfied)  # fmt: skip
        overdue = unsatisfied & ~self.late & self.known_r & (t_evaluate > self.r_due)
        t_in = clock.escalation(
            self.log, overdue, t_evaluate, "resolve", s.department, "department",
            accept_days=s.accept_days, department=s.department, due=self.r_due,
        )  # fmt: skip
        again_from = np.where(overdue, t_in, t_evaluate)
        self.hold(overdue, s.department, "department")
        t_again = np.maximum(clock.office(clock.later(again_from, clock.span(0.3, 1.5, DAY))),
                             again_from + 10 * MINUTE)  # fmt: skip
        self.log.add(unsatisfied, t_again, "resolve", self.holder, self.holder_role, "resolved",
                     note="已再次处理")  # fmt: skip
        second = unsatisfied & (self.draw() < 0.7)
        t_second = clock.daytime(t_again + clock.span(2, 48, HOUR))
        self.log.add(second, t_second, "evaluate", evaluator, evaluator_role, "evaluated",
                     satisfied=True)  # fmt: skip


class _Clock:
    """Random delays on the working clock, and the habits of the people acting."""

    def __init__(self, days: WorkingDays, rng: np.random.Generator, n: int) -> None:
        self.days, self.rng, self.n = days, rng, n

    def exp(self, mean: float) -> np.ndarray:
        return self.rng.exponential(mean, self.n).astype(np.int64)

    def span(self, low: float, high: float, unit) -> np.ndarray:
        """Durations drawn uniformly between ``low`` and ``high`` units (nanoseconds)."""
        return (self.rng.uniform(low, high, self.n) * unit).astype(np.int64)

    def working_between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Working nanoseconds from ``start`` to ``end``."""
        return self.days.clock(end) - self.days.clock(start)

    def later(self, start: np.ndarray, working: np.ndarray) -> np.ndarray:
        """The instant ``working`` nanoseconds of working time after ``start``."""
        return self.days.at_clock(self.days.clock(start) + np.asarray(working, dtype=np.int64))

    def office(self, moment: np.ndarray) -> np.ndarray:
        """Nobody acts before 7 in the morning: such moments move to 7:00-8:30."""
        into_day = (moment + _LOCAL) % DAY
        jitter = (self.rng.uniform(0, 90, len(moment)) * MINUTE).astype(np.int64)
        shift = 7 * HOUR - into_day + jitter
        return np.where(into_day < 7 * HOUR, moment + shift, moment)

    def daytime(self, moment: np.ndarray) -> np.ndarray:
        """Residents answer between 8:00 and 22:00."""
        into_day = (moment + _LOCAL) % DAY
        morning = 8 * HOUR + (self.rng.uniform(0, 120, len(moment)) * MINUTE).astype(np.int64)
        next_day = np.where(into_day >= 22 * HOUR, DAY, 0)
        moved = moment - into_day + next_day + morning
        return np.where((into_day < 8 * HOUR) | (into_day >= 22 * HOUR), moved, moment)

    def before(self, moment: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """``moment`` kept after ``low`` and, where there is room, not after ``high``."""
        room = (high != NONE) & (high > low)
        return np.maximum(np.where(room, np.minimum(moment, high), moment), low)

    def escalation(self, log, mask, after, deadline, receiver, receiver_role, *, accept_days,
                   limit=None, department=None, due=None, by=None):  # fmt: skip
        """One level up (by geogrid on a missed ``deadline``, else by hand) and the report-in."""
        rows = np.flatnonzero(mask)
        at = np.full(self.n, NONE)
        at[rows] = after[rows] + (self.rng.uniform(1, 4, len(rows)) * MINUTE).astype(np.int64)
        report_in_due = np.full(self.n, NONE)
        found, uncovered = self.days.add_days(at[rows], accept_days[rows])
        report_in_due[rows] = np.where(uncovered > 0, NONE, found)
        actor, role = by or (SYSTEM_NAME, "system")
        breach = {"breach": deadline, "due": after if due is None else due} if deadline else {}
        note: object = "需社区协调处置"
        if deadline:
            note = np.full(self.n, None, dtype=object)
            when = pd.DatetimeIndex(breach["due"][rows].view("datetime64[ns]")).tz_localize("UTC")
            local = when.tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M")
            note[rows] = [f"missed the {deadline} deadline due {text}" for text in local]
        log.add(mask, at, "escalate", actor, role, "escalated", note=note,
                report_in_due=report_in_due, **breach)  # fmt: skip
        t_in = np.full(self.n, NONE)
        delay = self.rng.exponential(1.5 * HOUR, len(rows)).astype(np.int64)
        t_in[rows] = self.office(self.later(at[rows], delay))
        cap = _minus(report_in_due, 10 * MINUTE)
        if limit is not None:
            cap = np.where(cap == NONE, limit, np.where(limit == NONE, cap, np.minimum(cap, limit)))
        t_in = np.maximum(self.before(t_in, at + MINUTE, cap), at + MINUTE)
        log.add(mask, t_in, "report_in", receiver, receiver_role, "in_progress",
                assignee=receiver, department=department, report_in_due=report_in_due)  # fmt: skip
        return t_in


def _minus(due: np.ndarray, span: int) -> np.ndarray:
    """``due - span``, still none where ``due`` is none."""
    return np.where(due != NONE, np.where(due != NONE, due, 0) - span, NONE)


def _share(category: np.ndarray) -> np.ndarray:
    return np.array([_DEPARTMENT_SHARE.get(c, 0.15) for c in category])


def _in_order(log: _Log, now: int) -> pd.DataFrame:
    """The events up to ``now`` in order, with the state and level after each."""
    events = pd.concat(log.parts, ignore_index=True)
    events["at"] = events["at"] // NS * NS  # whole seconds, as people read the log
    events = events[events["at"] <= now].sort_values(["inc", "at", "step"], kind="stable")
    events = events.reset_index(drop=True)
    # A placing leaves the state as it was.
    events["to_state"] = events.groupby("inc")["to_state"].ffill()
    events["from_state"] = events.groupby("inc")["to_state"].shift(1)
    ups = (events["action"] == "escalate").astype(int).groupby(events["inc"]).cumsum()
    events["level"] = np.asarray(ESCALATION_LEVELS, dtype=object)[np.minimum(ups, 3)]
    return events
