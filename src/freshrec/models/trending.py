"""Trending: time-decayed popularity, overall and per category, updated per event."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from freshrec.models._arrays import grown

# exp2 overflows float64 near 1024; rebasing well before keeps full precision.
_REBASE_AFTER = 400.0


class DecayedPopularity:
    """Exponentially decayed event weight per item, for one half-life.

    Scores are stored relative to a reference time, so an event costs one
    addition instead of decaying every item; the common factor cancels out of
    any ranking and is applied only when an absolute value is asked for.

    >>> day = 86400.0
    >>> trend = DecayedPopularity(half_life=day)
    >>> trend.learn_one(0, 1.0, 0.0); trend.learn_one(1, 1.0, day)
    >>> trend.scores(now=day, n_items=2).round(3).tolist()
    [0.5, 1.0]
    """

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self._raw = np.zeros(0, dtype=np.float64)
        self._reference = 0.0
        self._started = False

    def learn_one(self, item: int, weight: float, timestamp: float) -> None:
        if not self._started:
            self._reference, self._started = timestamp, True
        exponent = (timestamp - self._reference) / self.half_life
        if exponent > _REBASE_AFTER:
            self._raw *= math.exp2(-exponent)
            self._reference = timestamp
            exponent = 0.0
        self._raw = grown(self._raw, item + 1)
        self._raw[item] += weight * math.exp2(exponent)

    def scores(self, now: float, n_items: int) -> np.ndarray[Any, Any]:
        """Decayed weight of every item at time ``now`` (a fresh array of ``n_items``)."""
        out = np.zeros(n_items, dtype=np.float64)
        filled = min(n_items, self._raw.shape[0])
        factor = math.exp2(-(now - self._reference) / self.half_life) if self._started else 0.0
        out[:filled] = self._raw[:filled] * factor
        return out

    def forget(self, item: int, weight: float, timestamp: float) -> None:
        """Remove an earlier contribution (erasure), never below zero."""
        if item < self._raw.shape[0]:
            value = weight * math.exp2((timestamp - self._reference) / self.half_life)
            self._raw[item] = max(0.0, self._raw[item] - value)


class Trending:
    """Several half-lives side by side plus all-time counts.

    Short half-lives react to a launch or a season within hours; long ones keep
    steady sellers visible. The ranker learns how much each one matters.
    """

    def __init__(self, half_lives: tuple[float, ...] = (86400.0, 7 * 86400.0, 60 * 86400.0),
                 ) -> None:
        self.half_lives = half_lives
        self.decayed = [DecayedPopularity(h) for h in half_lives]
        self.counts = np.zeros(0, dtype=np.float64)

    def learn_one(self, item: int, weight: float, timestamp: float) -> None:
        for component in self.decayed:
            component.learn_one(item, weight, timestamp)
        self.counts = grown(self.counts, item + 1)
        self.counts[item] += 1.0

    def forget(self, item: int, weight: float, timestamp: float) -> None:
        for component in self.decayed:
            component.forget(item, weight, timestamp)
        if item < self.counts.shape[0]:
            self.counts[item] = max(0.0, self.counts[item] - 1.0)

    def popularity(self, n_items: int) -> np.ndarray[Any, Any]:
        out = np.zeros(n_items, dtype=np.float64)
        filled = min(n_items, self.counts.shape[0])
        out[:filled] = self.counts[:filled]
        return out

    def scores(self, now: float, n_items: int, which: int = 0) -> np.ndarray[Any, Any]:
        """Decayed popularity for the ``which``-th half-life."""
        return self.decayed[which].scores(now, n_items)
