"""Shift patterns as people write them: days of the week and wall-clock times.

Days are a bitmask, bit 0 Monday to bit 6 Sunday (127 is every day). Accepted words:
``daily`` (每天), ``weekdays`` (工作日: Monday to Friday, the bitmask cannot follow the
State Council's swapped working days), ``weekends`` (周末), day names in English (``mon``,
``monday``) or Chinese (周一, 星期一, 礼拜一; 周日/周天 for Sunday), ISO numbers 1-7, lists
(``mon,wed,sat``, ``周一、周三``) and ranges (``mon-fri``, ``周一至周五``; ``fri-mon`` wraps).

>>> parse_weekdays("mon-fri"), parse_weekdays("mon,wed,sat"), parse_weekdays("daily")
(31, 37, 127)
>>> format_weekdays(31), format_weekdays(37), format_weekdays(96)
('mon-fri', 'mon,wed,sat', 'sat,sun')
"""

from __future__ import annotations

import re
from datetime import date, time

from geogrid.errors import InputError

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY = 127

_ENGLISH = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CHINESE_DIGITS = "一二三四五六日"
_WORDS = {
    **{name: 1 << i for i, name in enumerate(WEEKDAY_NAMES)},
    **{name: 1 << i for i, name in enumerate(_ENGLISH)},
    **{str(i + 1): 1 << i for i in range(7)},
    **{
        f"{prefix}{digit}": 1 << i
        for i, digit in enumerate(_CHINESE_DIGITS)
        for prefix in ("周", "星期", "礼拜")
    },
    "周天": 1 << 6,
    "星期天": 1 << 6,
    "礼拜天": 1 << 6,
    "周七": 1 << 6,
}
_SETS = {
    **dict.fromkeys(("daily", "every day", "everyday", "all", "每天", "每日", "全周"), DAILY),
    **dict.fromkeys(("weekdays", "workdays", "工作日", "周一至周五"), 0b0011111),
    **dict.fromkeys(("weekends", "weekend", "周末", "双休日"), 0b1100000),
}
_SEPARATORS = re.compile(r"[,，、;；/\s]+")
_RANGE = re.compile(r"\s*(?:-|–|—|－|~|～|至|到)\s*")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


def weekday_bit(day: date) -> int:
    """The bit of ``day``'s weekday in a pattern (Monday 1, Sunday 64)."""
    return 1 << day.weekday()


def parse_weekdays(value: str | int, *, field: str = "weekdays") -> int:
    """The bitmask of days written as ``mon-fri``, ``mon,wed,sat``, ``daily``, ``周一至周五`` ..."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value <= DAILY:
            raise InputError(f"{field} {value} is not a day bitmask (1 to 127)", field=field)
        return value
    text = " ".join(str(value or "").split()).lower()
    if text in _SETS:
        return _SETS[text]
    mask = 0
    for item in filter(None, _SEPARATORS.split(_RANGE.sub("-", text))):
        mask |= _SETS.get(item) or _days(item, field)
    if not mask:
        raise InputError(f"{field} is missing: give days such as mon-fri or daily", field=field)
    return mask


def _days(item: str, field: str) -> int:
    first, _, last = item.partition("-")
    if first not in _WORDS or (last and last not in _WORDS):
        raise InputError(
            f"{field}: {item!r} is not a day or a range of days; write e.g. mon-fri, "
            "mon,wed,sat, daily, weekends or 周一至周五",
            field=field,
        )
    if not last:
        return _WORDS[first]
    start, stop = _WORDS[first].bit_length() - 1, _WORDS[last].bit_length() - 1
    length = (stop - start) % 7 + 1  # fri-mon wraps round the weekend
    return sum(1 << ((start + i) % 7) for i in range(length))


def format_weekdays(mask: int) -> str:
    """A bitmask as ``daily``, ``mon-fri`` or ``mon,wed,sat`` (runs of 3 or more as ranges)."""
    if mask == DAILY:
        return "daily"
    days = [i for i in range(7) if mask & (1 << i)]
    parts, run = [], []
    for i in [*days, None]:
        if run and (i is None or i != run[-1] + 1):
            names = [WEEKDAY_NAMES[d] for d in run]
            parts.append(f"{names[0]}-{names[-1]}" if len(run) >= 3 else ",".join(names))
            run = []
        if i is not None:
            run.append(i)
    return ",".join(parts)


def parse_clock(value: str | time, *, field: str, end: bool = False) -> time:
    """A wall-clock time from ``HH:MM``; an end may be ``24:00`` (midnight, the next day)."""
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    text = str(value or "").strip()
    match = _CLOCK.fullmatch(text)
    hours, minutes = (int(match[1]), int(match[2])) if match else (-1, -1)
    if end and (hours, minutes) == (24, 0):
        return time(0)
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise InputError(f"{field} {text!r} is not a time of day as HH:MM", field=field)
    return time(hours, minutes)
