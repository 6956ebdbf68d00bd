"""``purchase-history``: a user's own purchases again, by recency and frequency.

Each (user, item) keeps a decayed purchase count: frequency times an
exponential decay of age, summed over purchases. When fewer than ``k`` of the
user's items are left after exclusion, the list is filled with decayed
popularity. Retail only: people rebuy candles; they do not re-watch a rated film.

>>> from freshrec.records import Event
>>> history = PurchaseHistory(history_half_life_days=30.0, popularity_half_life_days=7.0)
>>> history.fit([Event("u1", "mug", "purchase", 0.0), Event("u1", "mug", "purchase", 1.0),
...              Event("u1", "pen", "purchase", 2.0), Event("u2", "hat", "purchase", 3.0)])
>>> history.recommend("u1", 3, exclude=())
['mug', 'pen', 'hat']
>>> history.recommend("u1", 2, exclude={"mug"})
['pen', 'hat']
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np

from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import DAY, feed
from freshrec.evaluation.contestants.decayed_popularity import DecayedPopularity
from freshrec.records import Event, Item


class PurchaseHistory:
    """The user's own items by decayed purchase count, then decayed popularity."""

    name = "purchase-history"

    def __init__(self, history_half_life_days: float = 90.0,
                 popularity_half_life_days: float = 7.0) -> None:
        self.history_half_life_days = history_half_life_days
        self.popularity_half_life_days = popularity_half_life_days
        self._rate = math.log(2.0) / (history_half_life_days * DAY)
        self.popularity = DecayedPopularity(popularity_half_life_days)
        self.histories: dict[str, dict[str, tuple[float, float]]] = {}

    def fit(self, records: Sequence[Item | Event]) -> None:
        feed(self, records)

    def add_item(self, item: Item) -> None:
        self.popularity.add_item(item)

    def learn_one(self, event: Event) -> None:
        self.popularity.learn_one(event)
        history = self.histories.setdefault(event.user, {})
        value, last = history.get(event.item, (0.0, event.timestamp))
        if event.timestamp >= last:
            value = value * math.exp(-self._rate * (event.timestamp - last)) + 1.0
            last = event.timestamp
        else:
            value += math.exp(-self._rate * (last - event.timestamp))
        history[event.item] = (value, last)

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        now = self.popularity.now
        history = self.histories.get(user, {})
        own = sorted(
            ((value * math.exp(-self._rate * (now - last)), item)
             for item, (value, last) in history.items() if item not in exclude),
            key=lambda entry: (-entry[0], entry[1]),
        )
        chosen = [item for _, item in own[:k]]
        if len(chosen) < k:
            index = self.popularity.items
            leave_out = np.concatenate([index.known(exclude), index.known(chosen)])
            fill = top_k(self.popularity.scores(), k - len(chosen), leave_out)
            chosen.extend(index.ids[i] for i in fill)
        return chosen
