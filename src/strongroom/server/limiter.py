"""Each principal's fair share of the expensive calls (pipeline step 6).

Calls that cost far more than a read of one secret (``EXPENSIVE``) are counted per principal by
:class:`PrincipalLimiter`; past its share a call is refused with the protocol's throttling answer
before it is parsed, and is not recorded in the trail (a flood's surplus costs no writes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["EXPENSIVE", "EXPENSIVE_PER_PRINCIPAL", "EXPENSIVE_RATE", "PrincipalLimiter"]

# Calls that cost far more than a read of one secret: pages of many secrets, batches, functions
# run or stored, audit searches. Each principal may have EXPENSIVE_PER_PRINCIPAL of them in
# flight, and start EXPENSIVE_RATE a second (bursts of as many); past that, AWS's throttling
# answer (clients retry it with back-off). EXPENSIVE_RATE is AWS's own quota for ListSecrets and
# BatchGetSecretValue (100 a second, per account and region there). Calls whose cost has a small
# bound (a password of at most 4,096 characters, one secret's versions) are not in the set.
EXPENSIVE = {
    "secretsmanager": frozenset({"ListSecrets", "BatchGetSecretValue"}),
    "lambda": frozenset({"Invoke", "CreateFunction", "UpdateFunctionCode", "ListFunctions"}),
    "cloudtrail": frozenset({"LookupEvents"}),
}
EXPENSIVE_PER_PRINCIPAL = 4
EXPENSIVE_RATE = 100.0


class PrincipalLimiter:
    """Each principal's share of the expensive work: at most ``limit`` calls in flight, and a
    token bucket of ``rate`` calls a second (``rate`` at once after a pause).

    Both are needed: a call that waits (a function run in a thread, a PostgreSQL read, the audit
    write) is bounded by the count in flight; a call that runs on the event loop from start to
    end (a SQLite page of secrets) is never "in flight" beside another, and one principal's
    hundreds of them queued on the loop would delay everyone, so their rate is bounded too.
    A refused call costs its authentication only. No await, no lock (one event loop).
    """

    __slots__ = ("_clock", "_state", "limit", "rate")

    def __init__(self, limit: int, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.rate = rate
        self._state: dict[str, list[float]] = {}  # principal -> [in flight, tokens, when counted]
        self._clock = clock

    def acquire(self, principal: str) -> bool:
        now = self._clock()
        state = self._state.get(principal)
        if state is None:
            if len(self._state) > 100_000:  # principals with nothing in flight start afresh
                self._state = {k: v for k, v in self._state.items() if v[0]}
            state = self._state[principal] = [0.0, self.rate, now]
        tokens = min(self.rate, state[1] + (now - state[2]) * self.rate)
        state[2] = now
        if state[0] >= self.limit or tokens < 1.0:
            state[1] = tokens
            return False
        state[0] += 1
        state[1] = tokens - 1.0
        return True

    def release(self, principal: str) -> None:
        self._state[principal][0] -= 1
