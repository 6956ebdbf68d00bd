"""The fallback chain's memory: a source that keeps failing or running slow is skipped.

Python cannot interrupt a running computation, so "too slow" is handled the way
a circuit breaker does it: a call over its time budget counts as a strike, and
after ``trip_after`` strikes in a row the source is skipped for a cooldown
while the next source in the chain answers. A success resets the strikes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
"""Seconds on a monotonic scale; the breaker's own, so tests can drive time by hand."""


@dataclass
class CircuitBreaker:
    """Per-source strike counting with a cooldown.

    >>> breaker = CircuitBreaker(trip_after=2, cooldown_s=60.0)
    >>> breaker.record("als", ok=False, now=0.0); breaker.record("als", ok=False, now=0.0)
    >>> breaker.is_open("als", now=1.0), breaker.is_open("als", now=61.0)
    (True, False)

    ``clock`` times both the calls (by :class:`~freshrec.serving.recommender.Recommender`)
    and the cooldowns.
    """

    trip_after: int = 3
    cooldown_s: float = 30.0
    clock: Clock = time.perf_counter
    strikes: dict[str, int] = field(default_factory=dict)
    open_until: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def is_open(self, source: str, now: float | None = None) -> bool:
        until = self.open_until.get(source)
        if until is None:
            return False
        if (self.clock() if now is None else now) >= until:
            del self.open_until[source]
            self.strikes[source] = 0
            return False
        return True

    def record(self, source: str, ok: bool, now: float | None = None) -> None:
        if ok:
            self.strikes[source] = 0
            return
        self.failures[source] = self.failures.get(source, 0) + 1
        self.strikes[source] = self.strikes.get(source, 0) + 1
        if self.strikes[source] >= self.trip_after:
            self.open_until[source] = (self.clock() if now is None else now) + self.cooldown_s
