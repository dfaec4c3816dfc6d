"""Time comes from here, so tests can move it.

Every layer asks ``clock.now()`` (a float of seconds since the epoch, UTC) instead of
``time.time()``; tests install a :class:`FakeClock` with :func:`use`.
"""

from __future__ import annotations

import datetime as _dt
import time as _time

__all__ = ["Clock", "FakeClock", "now", "use", "utcnow"]


class Clock:
    def now(self) -> float:
        return _time.time()


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when


_current: Clock = Clock()


def use(clock: Clock) -> Clock:
    """Install ``clock`` and return the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous


def now() -> float:
    return _current.now()


def utcnow() -> _dt.datetime:
    return _dt.datetime.fromtimestamp(_current.now(), _dt.UTC)
