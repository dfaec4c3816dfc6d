"""Rotation schedules: AWS's ``RotationRules``, parsed, validated, and turned into windows.

A schedule is one of:

* ``AutomaticallyAfterDays: N`` (1-1000): a window on the day N days after the last rotation;
* ``ScheduleExpression: rate(N hours|days)``: every N hours (at least 4) or days (at most 999);
* ``ScheduleExpression: cron(0 H DOM MON DOW *)``: AWS's cron grammar restricted as AWS restricts
  it for rotation (minutes must be 0, year must be ``*``), with ``?``, ``L``, ``W``, ``#``, names,
  ranges, lists and steps.

``Duration`` (``Nh``, 1-24) is the window's length. Without it, AWS closes a window at the end of
the UTC day for day-based schedules and after one hour for hour-based ones. A window never runs
past UTC midnight. All times are epoch seconds, UTC; nothing here reads a clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Schedule", "ScheduleError", "next_window", "parse_rules", "pick_moment"]

HOUR = 3600.0
DAY = 86400.0


class ScheduleError(ValueError):
    """Rules AWS would refuse; the message is the one to show the caller."""


@dataclass(frozen=True)
class Schedule:
    days: int | None = None  # AutomaticallyAfterDays, or rate(N days)
    hours: int | None = None  # rate(N hours)
    cron: _Cron | None = None
    duration_hours: int | None = None

    @property
    def hourly(self) -> bool:
        return self.hours is not None or (self.cron is not None and not self.cron.single_hour)


_RATE = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_DURATION = re.compile(r"^(\d+)h$")
_MONTHS = {n.upper(): i for i, n in enumerate(calendar.month_abbr) if n}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def parse_rules(rules: dict[str, Any]) -> Schedule:
    """Validate ``RotationRules`` as AWS does and answer the schedule."""
    days = rules.get("AutomaticallyAfterDays")
    expression = rules.get("ScheduleExpression")
    duration = rules.get("Duration")
    if days is not None and expression is not None:
        raise ScheduleError("You cannot specify both rotation frequency and schedule expression together.")
    duration_hours = None
    if duration is not None:
        m = _DURATION.match(duration)
        if not m or not 1 <= int(m.group(1)) <= 24:
            raise ScheduleError("The rotation window duration must be between 1 and 24 hours, like 3h.")
        duration_hours = int(m.group(1))
    if days is not None:
        if not 1 <= days <= 1000:
            raise ScheduleError("AutomaticallyAfterDays must be between 1 and 1000.")
        return Schedule(days=days, duration_hours=duration_hours)
    if expression is None:
        if duration is not None:
            raise ScheduleError("You must specify a rotation frequency or a schedule expression with Duration.")
        raise ScheduleError("You must specify a rotation frequency or a schedule expression.")
    expression = expression.strip()
    m = _RATE.match(expression)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if unit.startswith("hour"):
            if not 4 <= n <= 999 * 24:
                raise ScheduleError("The schedule expression rate must be at least 4 hours.")
            if duration_hours is not None and duration_hours > n:
                raise ScheduleError("The rotation window duration can't be longer than the rotation interval.")
            return Schedule(hours=n, duration_hours=duration_hours)
        if not 1 <= n <= 999:
            raise ScheduleError("The schedule expression rate must be between 1 and 999 days.")
        return Schedule(days=n, duration_hours=duration_hours)
    m = _CRON.match(expression)
    if m:
        return Schedule(cron=_Cron.parse(m.group(1)), duration_hours=duration_hours)
    raise ScheduleError(f"The schedule expression {expression} is not valid. Use rate() or cron().")


def _midnight(t: float) -> float:
    return math.floor(t / DAY) * DAY


def _window(start: float, schedule: Schedule) -> tuple[float, float]:
    if schedule.duration_hours is not None:
        length = schedule.duration_hours * HOUR
    elif schedule.hourly:
        length = HOUR
    else:
        length = DAY
    end = min(start + length, _midnight(start) + DAY)
    return start, end


def next_window(schedule: Schedule, last: float, now: float) -> tuple[float, float]:
    """The next rotation window ``(start, end)`` after a rotation (or configuration) at ``last``.

    A window that would already be over at ``now`` is skipped: a missed window is not replayed.
    """
    while True:
        if schedule.cron is not None:
            start = schedule.cron.next_after(max(last, now - DAY))
        elif schedule.hours is not None:
            start = math.floor((last + schedule.hours * HOUR) / HOUR) * HOUR
        else:
            assert schedule.days is not None
            start = _midnight(last) + schedule.days * DAY
        start, end = _window(start, schedule)
        if end > now:
            return start, end
        last = start


def pick_moment(start: float, end: float, now: float, rng: random.Random | None = None) -> float:
    """A random moment in the window, weighted toward the top of an hour, as AWS describes."""
    rng = rng or random.Random()
    start = max(start, now)
    if end <= start:
        return start
    hours = max(1, int((end - start) // HOUR))
    hour_start = start + rng.randrange(hours) * HOUR
    offset = min(rng.expovariate(1 / 300.0), HOUR - 1)
    return min(hour_start + offset, end - 1)


class _Cron:
    """``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` as AWS rotation accepts it."""

    def __init__(self, hours: set[int], dom: str, months: set[int], dow: str) -> None:
        self.hours = hours
        self.dom = dom
        self.months = months
        self.dow = dow

    @property
    def single_hour(self) -> bool:
        return len(self.hours) == 1

    @classmethod
    def parse(cls, body: str) -> _Cron:
        fields = body.split()
        bad = ScheduleError(f"The schedule expression cron({body}) is not valid.")
        if len(fields) != 6:
            raise bad
        minutes, hours, dom, month, dow, year = fields
        if minutes != "0":
            raise ScheduleError("The minutes field of a rotation schedule expression must be 0.")
        if year != "*":
            raise ScheduleError("The year field of a rotation schedule expression must be *.")
        if (dom == "?") == (dow == "?"):
            raise bad  # exactly one of day-of-month and day-of-week is "?"
        try:
            parsed = cls(_values(hours, 0, 23, {}), dom, _values(month, 1, 12, _MONTHS), dow)
            if dom != "?":
                _check_dom(dom)
            if dow != "?":
                _check_dow(dow)
        except (ValueError, KeyError):
            raise bad from None
        if len(parsed.hours) > 1:
            ordered = sorted(parsed.hours)
            gaps = [b - a for a, b in itertools.pairwise(ordered)] + [24 - ordered[-1] + ordered[0]]
            if min(gaps) < 4:
                raise ScheduleError("A rotation schedule expression must not rotate more often than every 4 hours.")
        return parsed

    def matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        if self.dom != "?":
            return _dom_matches(self.dom, day)
        return _dow_matches(self.dow, day)

    def next_after(self, t: float) -> float:
        """The first matching hour strictly after ``t``."""
        moment = dt.datetime.fromtimestamp(t, dt.UTC)
        day = moment.date()
        for _ in range(366 * 5):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    when = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp()
                    if when > t:
                        return when
            day += dt.timedelta(days=1)
        raise ScheduleError("The schedule expression never matches a date.")


def _values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(field)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _one(a, names), _one(b, names)
        else:
            first = _one(base, names)
            last = high if step_text else first
        if not (low <= first <= last <= high):
            raise ValueError(field)
        out.update(range(first, last + 1, step))
    return out


def _one(text: str, names: dict[str, int]) -> int:
    return names[text.upper()] if text.upper() in names else int(text)


def _check_dom(field: str) -> None:
    if field in ("L", "LW") or re.fullmatch(r"\d{1,2}W", field):
        return
    _values(field, 1, 31, {})


def _check_dow(field: str) -> None:
    if re.fullmatch(r"\w{1,3}#[1-5]", field):
        _one(field.split("#")[0], _DAYS)
        return
    if re.fullmatch(r"\w{1,3}L", field):
        _one(field[:-1], _DAYS)
        return
    _values(field, 1, 7, _DAYS)


def _dom_matches(field: str, day: dt.date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if field == "L":
        return day.day == last
    if field == "LW":
        return day == _weekday_near(day.replace(day=last), last)
    if field.endswith("W"):
        target = min(int(field[:-1]), last)
        return day == _weekday_near(day.replace(day=target), last)
    return day.day in _values(field, 1, 31, {})


def _weekday_near(target: dt.date, last: int) -> dt.date:
    """The weekday nearest ``target`` within its month (``W``)."""
    if target.weekday() == 5:  # Saturday → Friday, or Monday if Friday is in the last month
        return target - dt.timedelta(days=1) if target.day > 1 else target + dt.timedelta(days=2)
    if target.weekday() == 6:  # Sunday → Monday, or Friday if Monday is next month
        return target + dt.timedelta(days=1) if target.day < last else target - dt.timedelta(days=2)
    return target


def _aws_dow(day: dt.date) -> int:
    return (day.weekday() + 1) % 7 + 1  # SUN=1 ... SAT=7


def _dow_matches(field: str, day: dt.date) -> bool:
    if "#" in field:
        name, nth = field.split("#")
        return _aws_dow(day) == _one(name, _DAYS) and (day.day - 1) // 7 + 1 == int(nth)
    if field.endswith("L") and field != "L":
        last = calendar.monthrange(day.year, day.month)[1]
        return _aws_dow(day) == _one(field[:-1], _DAYS) and day.day + 7 > last
    return _aws_dow(day) in _values(field, 1, 7, _DAYS)
