"""``popularity``: all-time interaction counts, updated on every event.

>>> from freshrec.records import Event
>>> pop = Popularity()
>>> pop.fit([Event("u1", "a", "purchase", 0.0), Event("u2", "b", "purchase", 1.0),
...          Event("u3", "b", "purchase", 2.0)])
>>> pop.recommend("anyone", 2, exclude=())
['b', 'a']
>>> pop.recommend("anyone", 2, exclude={"b"})
['a']
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from freshrec.evaluation.contestants._index import IdIndex, grow
from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import feed
from freshrec.records import Event, Item


class Popularity:
    """Counts events per item; recommends the most counted items to everyone."""

    name = "popularity"

    def __init__(self) -> None:
        self.items = IdIndex()
        self.counts = np.zeros(0)

    def fit(self, records: Sequence[Item | Event]) -> None:
        feed(self, records)

    def add_item(self, item: Item) -> None:
        self._position(item.id)

    def learn_one(self, event: Event) -> None:
        position = self._position(event.item)
        self.counts[position] += 1.0

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        n = len(self.items)
        chosen = top_k(self.counts[:n], k, self.items.known(exclude))
        return [self.items.ids[i] for i in chosen]

    def _position(self, item: str) -> int:
        position = self.items.add(item)
        self.counts = grow(self.counts, len(self.items))
        return position
