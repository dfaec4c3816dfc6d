"""Rotation schedules: AWS's rules, validated, and their windows over a fast-forwarded year."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from strongroom.domain.schedule import ScheduleError, next_window, parse_rules, pick_moment

DAY, HOUR = 86400.0, 3600.0


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    "rules, message",
    [
        (
            {"AutomaticallyAfterDays": 2, "ScheduleExpression": "rate(2 days)"},
            "You cannot specify both rotation frequency and schedule expression together.",
        ),
        ({"ScheduleExpression": "rate(3 hours)"}, "at least 4 hours"),
        ({"ScheduleExpression": "rate(1000 days)"}, "between 1 and 999 days"),
        ({"ScheduleExpression": "cron(30 10 * * ? *)"}, "minutes field"),
        ({"ScheduleExpression": "cron(0 10 * * ? 2027)"}, "year field"),
        ({"ScheduleExpression": "cron(0 10 * * MON *)"}, "not valid"),
        ({"ScheduleExpression": "cron(0 */2 * * ? *)"}, "every 4 hours"),
        ({"ScheduleExpression": "cron(0 25 * * ? *)"}, "not valid"),
        ({"ScheduleExpression": "cron(0 8 ? * SAT-SUN *)"}, "not valid"),
        ({"ScheduleExpression": "every day"}, "not valid"),
        ({"AutomaticallyAfterDays": 5, "Duration": "25h"}, "between 1 and 24 hours"),
        ({"AutomaticallyAfterDays": 5, "Duration": "0h"}, "between 1 and 24 hours"),
    ],
)
def test_invalid_rules_are_refused(rules, message):
    with pytest.raises(ScheduleError) as exc:
        parse_rules(rules)
    assert message in str(exc.value)


def test_days_window_is_the_whole_utc_day_by_default():
    schedule = parse_rules({"AutomaticallyAfterDays": 30})
    start, end = next_window(schedule, at("2026-01-10T15:20:00"), at("2026-01-10T15:20:00"))
    assert (iso(start), iso(end)) == ("2026-02-09 00:00", "2026-02-10 00:00")


def test_duration_never_runs_past_midnight():
    schedule = parse_rules({"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "4h"})
    start, end = next_window(schedule, at("2026-01-10T00:00:00"), at("2026-01-10T00:00:00"))
    assert (iso(start), iso(end)) == ("2026-01-10 22:00", "2026-01-11 00:00")


def test_hourly_rate_window_is_one_hour():
    schedule = parse_rules({"ScheduleExpression": "rate(6 hours)"})
    start, end = next_window(schedule, at("2026-01-10T01:30:00"), at("2026-01-10T01:30:00"))
    assert (iso(start), iso(end)) == ("2026-01-10 07:00", "2026-01-10 08:00")


@pytest.mark.parametrize(
    "expression, first, second",
    [
        ("cron(0 8 L * ? *)", "2026-01-31 08:00", "2026-02-28 08:00"),  # last day of the month
        ("cron(0 8 ? * MON#1 *)", "2026-02-02 08:00", "2026-03-02 08:00"),  # first Monday
        ("cron(0 8 ? * FRIL *)", "2026-01-30 08:00", "2026-02-27 08:00"),  # last Friday
        ("cron(0 8 15W * ? *)", "2026-01-15 08:00", "2026-02-16 08:00"),  # nearest weekday to the 15th
        ("cron(0 8 1 JAN,JUL ? *)", "2026-07-01 08:00", "2027-01-01 08:00"),  # month names
        ("cron(0 4,16 ? * SUN,SAT *)", "2026-01-10 16:00", "2026-01-11 04:00"),  # lists and ranges
    ],
)
def test_cron_grammar(expression, first, second):
    schedule = parse_rules({"ScheduleExpression": expression})
    now = at("2026-01-10T09:00:00")
    start, _ = next_window(schedule, now, now)
    assert iso(start) == first
    start2, _ = next_window(schedule, start + 1, start + HOUR * 2)
    assert iso(start2) == second


def test_a_year_of_daily_rotations_in_a_fraction_of_a_second():
    schedule = parse_rules({"AutomaticallyAfterDays": 1, "Duration": "2h"})
    rng = random.Random(7)
    now = at("2026-01-01T00:00:00")
    moments = []
    while now < at("2027-01-01T00:00:00"):
        start, end = next_window(schedule, now, now)
        moment = pick_moment(start, end, now, rng)
        assert start <= moment < end
        moments.append(moment)
        now = moment  # the rotation ran at that moment
    assert len(moments) == 365
    # Weighted toward the top of the hour: most moments fall in the first 10 minutes of one.
    assert sum(1 for m in moments if m % HOUR < 600) > 0.75 * len(moments)


def test_a_missed_window_is_not_replayed():
    schedule = parse_rules({"AutomaticallyAfterDays": 1})
    last = at("2026-01-01T12:00:00")
    now = at("2026-01-05T12:00:00")  # the server was down for days
    start, end = next_window(schedule, last, now)
    assert start <= now < end
