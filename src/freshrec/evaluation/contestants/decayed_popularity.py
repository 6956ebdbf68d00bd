"""``decayed-popularity``: event counts that fade with a half-life in data time.

Each item keeps its decayed count and the time it was last brought up to
date, so an event costs O(1); a request decays the whole vector to the latest
event time in one numpy expression.

>>> from freshrec.records import Event
>>> pop = DecayedPopularity(half_life_days=1.0)
>>> old = [Event(f"u{n}", "old", "view", 0.0) for n in range(3)]
>>> pop.fit([*old, Event("u9", "new", "view", 3 * 86_400.0)])
>>> pop.recommend("anyone", 2, exclude=())  # 3 * 2**-3 = 0.375 < 1
['new', 'old']
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np

from freshrec.evaluation.contestants._index import IdIndex, grow
from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import DAY, feed
from freshrec.records import Event, Item


class DecayedPopularity:
    """Exponentially time-decayed event counts per item."""

    name = "decayed-popularity"

    def __init__(self, half_life_days: float = 7.0) -> None:
        self.half_life_days = half_life_days
        self._rate = math.log(2.0) / (half_life_days * DAY)
        self.items = IdIndex()
        self.values = np.zeros(0)
        self.updated = np.zeros(0)
        self.now = -math.inf

    def fit(self, records: Sequence[Item | Event]) -> None:
        feed(self, records)

    def add_item(self, item: Item) -> None:
        self._position(item.id)

    def learn_one(self, event: Event) -> None:
        i = self._position(event.item)
        t = event.timestamp
        last = self.updated[i]
        if t >= last:
            self.values[i] = self.values[i] * math.exp(-self._rate * (t - last)) + 1.0
            self.updated[i] = t
        else:  # an event older than the item's last one: decay it instead
            self.values[i] += math.exp(-self._rate * (last - t))
        self.now = max(self.now, t)

    def scores(self) -> np.ndarray:
        """Every known item's count decayed to the latest event time."""
        n = len(self.items)
        if n == 0 or self.now == -math.inf:
            return np.zeros(n)
        return self.values[:n] * np.exp(-self._rate * (self.now - self.updated[:n]))

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        chosen = top_k(self.scores(), k, self.items.known(exclude))
        return [self.items.ids[i] for i in chosen]

    def _position(self, item: str) -> int:
        position = self.items.add(item)
        if len(self.items) > self.values.shape[0]:
            self.values = grow(self.values, len(self.items))
            self.updated = grow(self.updated, len(self.items))
        return position
