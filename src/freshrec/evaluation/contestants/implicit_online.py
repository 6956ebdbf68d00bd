"""``implicit-online``: implicit ALS trained on the first half, then updated by implicit itself.

After each event the user's factors are re-solved with implicit's
``partial_fit_users`` from the user's whole row (summed weights, scaled like in
training). Item factors are re-solved with ``partial_fit_items`` in small
batches of the items touched since the last batch (every ``item_batch``
events), because each item update invalidates implicit's cached YᵀY, which the
next user update must then recompute. A brand-new item is solved at once, from
the users who interacted with it, so that the user update that follows can use it.

>>> from freshrec.records import Event
>>> online = ImplicitOnline(AlsParams(factors=2, iterations=5))
>>> online.fit([Event("u1", "a", "purchase", 0.0), Event("u2", "b", "purchase", 0.0)])
>>> online.learn_one(Event("u3", "c", "purchase", 1.0))  # new user and new item
>>> "c" in online.recommend("u3", 3, exclude=())
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from freshrec.evaluation.contestants._als import WEIGHTS, Interactions, fit_als, scale
from freshrec.evaluation.contestants._index import IdIndex, grow
from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import AlsParams
from freshrec.records import Event, Item


class ImplicitOnline:
    """ALS kept fresh with implicit's ``partial_fit_users`` / ``partial_fit_items``."""

    name = "implicit-online"

    def __init__(self, params: AlsParams, seed: int = 0, item_batch: int = 32) -> None:
        self.params = params
        self.seed = seed
        self.item_batch = item_batch
        self.users = IdIndex()
        self.items = IdIndex()
        self.model: AlternatingLeastSquares | None = None
        self.popularity = np.zeros(0)
        self.user_rows: dict[int, dict[int, float]] = defaultdict(dict)
        self.item_columns: dict[int, dict[int, float]] = defaultdict(dict)
        self._touched: set[int] = set()
        self._since = 0

    def fit(self, records: Sequence[Item | Event]) -> None:
        interactions = Interactions()
        interactions.extend(records)
        self.users, self.items = interactions.users, interactions.items
        self.popularity = interactions.counts()
        for record in records:
            if isinstance(record, Event):
                self._count(record)
        if len(self.users) and len(self.items):
            self.model = fit_als(self.params, interactions.matrix(self.params.scaling), self.seed)

    def add_item(self, item: Item) -> None:
        self.items.add(item.id)
        self.popularity = grow(self.popularity, len(self.items))

    def learn_one(self, event: Event) -> None:
        u, i = self._count(event)
        self.popularity = grow(self.popularity, len(self.items))
        self.popularity[i] += 1.0
        model = self.model
        if model is None:
            return
        if i >= model.item_factors.shape[0]:
            if u >= model.user_factors.shape[0]:
                model.partial_fit_users([u], self._row(self.user_rows[u], self._n_items()))
            model.partial_fit_items([i], self._row(self.item_columns[i], self._n_users()))
        model.partial_fit_users([u], self._row(self.user_rows[u], self._n_items()))
        self._touched.add(i)
        self._since += 1
        if self._since >= self.item_batch:
            self.flush()

    def flush(self) -> None:
        """Re-solve the factors of the items touched since the last batch."""
        if self.model is not None and self._touched:
            touched = sorted(self._touched)
            n_users = self._n_users()
            rows = sp.vstack([self._row(self.item_columns[i], n_users) for i in touched],
                             format="csr")
            self.model.partial_fit_items(touched, rows)
        self._touched.clear()
        self._since = 0

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        position = self.users.get(user)
        model = self.model
        leave_out = self.items.known(exclude)
        if model is None or position is None or position >= model.user_factors.shape[0]:
            scores = self.popularity[: len(self.items)]
        else:
            scores = model.item_factors @ model.user_factors[position]
            leave_out = leave_out[leave_out < scores.shape[0]]
        return [self.items.ids[i] for i in top_k(scores, k, leave_out)]

    def _count(self, event: Event) -> tuple[int, int]:
        u, i = self.users.add(event.user), self.items.add(event.item)
        weight = WEIGHTS.of(event)
        row, column = self.user_rows[u], self.item_columns[i]
        row[i] = row.get(i, 0.0) + weight
        column[u] = column.get(u, 0.0) + weight
        return u, i

    def _n_items(self) -> int:
        assert self.model is not None
        return int(self.model.item_factors.shape[0])

    def _n_users(self) -> int:
        assert self.model is not None
        return int(self.model.user_factors.shape[0])

    def _row(self, entries: dict[int, float], width: int) -> sp.csr_matrix:
        """One sparse row of scaled confidences, keeping only columns the model has."""
        columns = np.fromiter(entries.keys(), dtype=np.int32, count=len(entries))
        values = np.fromiter(entries.values(), dtype=np.float64, count=len(entries))
        keep = columns < width
        columns, values = columns[keep], scale(values[keep], self.params.scaling)
        return sp.csr_matrix((values, columns, np.array([0, columns.shape[0]], dtype=np.int32)),
                             shape=(1, width))
