"""``item-knn``: item-item cosine similarity from co-occurrence in users' histories, online.

Co-occurrence is binary per user: when a user meets an item for the first time,
it is counted once with each of the user's last ``history_cap`` distinct items
(200 by default; the cap keeps an event's cost bounded for heavy users, at the
price of not pairing an item with a heavy user's oldest items). The diagonal
holds each item's user count, so cosine(i, i) = 1 and a user's own items stay
candidates when the harness does not exclude them. Counts live in a dense
float32 matrix that grows with the catalog (about 380 MB for MovieLens' 9.7k
films): dense row updates are what make an event cheap.

A request sums the cosine similarities of every candidate to the user's
``recent`` (20) most recent items, and fills up with popularity.

>>> from freshrec.records import Event
>>> knn = ItemKnn()
>>> knn.fit([Event("u1", "tea", "purchase", 0.0), Event("u1", "cup", "purchase", 1.0),
...          Event("u2", "tea", "purchase", 2.0), Event("u2", "cup", "purchase", 3.0),
...          Event("u3", "hat", "purchase", 4.0), Event("u3", "hat", "purchase", 5.0),
...          Event("u5", "hat", "purchase", 6.0)])
>>> knn.recommend("u4", 1, exclude=())  # unknown user: the most bought item
['hat']
>>> knn.learn_one(Event("u4", "tea", "purchase", 7.0))
>>> knn.recommend("u4", 2, exclude={"tea"})
['cup', 'hat']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence

import numpy as np

from freshrec.evaluation.contestants._index import IdIndex, grow
from freshrec.evaluation.contestants._topk import top_k_with_fill
from freshrec.evaluation.contestants.base import feed
from freshrec.records import Event, Item


class ItemKnn:
    """Online item-item cosine kNN over co-occurrence counts."""

    name = "item-knn"

    def __init__(self, history_cap: int = 200, recent: int = 20) -> None:
        self.history_cap = history_cap
        self.recent = recent
        self.items = IdIndex()
        self.cooccurrence = np.zeros((0, 0), dtype=np.float32)
        self.users_per_item = np.zeros(0)
        self.events_per_item = np.zeros(0)
        self.histories: dict[str, OrderedDict[int, None]] = {}
        self.ever: dict[str, set[int]] = {}

    def fit(self, records: Sequence[Item | Event]) -> None:
        ids = {r.item if isinstance(r, Event) else r.id for r in records}
        self._reserve(len(ids | set(self.items.ids)))
        feed(self, records)

    def add_item(self, item: Item) -> None:
        self._position(item.id)

    def learn_one(self, event: Event) -> None:
        i = self._position(event.item)
        self.events_per_item[i] += 1.0
        history = self.histories.setdefault(event.user, OrderedDict())
        ever = self.ever.setdefault(event.user, set())
        if i not in ever:
            ever.add(i)
            if history:
                others = np.fromiter(history.keys(), dtype=np.int64, count=len(history))
                self.cooccurrence[i, others] += 1.0
                self.cooccurrence[others, i] += 1.0
            self.cooccurrence[i, i] += 1.0
            self.users_per_item[i] += 1.0
        history[i] = None
        history.move_to_end(i)
        if len(history) > self.history_cap:
            history.popitem(last=False)

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        n = len(self.items)
        history = self.histories.get(user)
        scores = np.zeros(n)
        if history:
            recent = list(history.keys())[-self.recent:]
            norms = np.sqrt(self.users_per_item[:n])
            rows = self.cooccurrence[recent, :n] / norms[recent, None]
            scores = np.divide(rows.sum(axis=0), norms, out=np.zeros(n), where=norms > 0)
        chosen = top_k_with_fill(scores, self.events_per_item[:n], k, self.items.known(exclude))
        return [self.items.ids[i] for i in chosen]

    def _position(self, item: str) -> int:
        position = self.items.add(item)
        n = len(self.items)
        old = self.cooccurrence.shape[0]
        if n > old:
            self._reserve(max(n, old + old // 2, 16))
        return position

    def _reserve(self, capacity: int) -> None:
        """Room for ``capacity`` items (the count matrix is copied into a bigger one)."""
        old = self.cooccurrence.shape[0]
        if capacity > old:
            square = np.zeros((capacity, capacity), dtype=np.float32)
            square[:old, :old] = self.cooccurrence
            self.cooccurrence = square
            self.users_per_item = grow(self.users_per_item, capacity)
            self.events_per_item = grow(self.events_per_item, capacity)
