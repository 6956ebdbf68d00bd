"""What the ALS-family contestants share: the interaction matrix, fitting, and scoring.

Confidence is built from :class:`~freshrec.config.EventWeights`: a user's weights
for an item are summed, then scaled by :attr:`AlsParams.scaling`; implicit
multiplies by ``alpha`` itself, both in ``fit`` and in its incremental updates.
Models are fit with one thread (``num_threads=1`` and a BLAS limit of one) so
that two replay workers on two cores do not oversubscribe them.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterable

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from freshrec.config import EventWeights
from freshrec.evaluation.contestants._index import IdIndex
from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import AlsParams
from freshrec.records import Event, Item

WEIGHTS = EventWeights()


def scale(values: np.ndarray, scaling: str) -> np.ndarray:
    """Confidence from summed event weights (see :class:`AlsParams`)."""
    if scaling == "linear":
        return values.astype(np.float32)
    if scaling == "log":
        scaled: np.ndarray = np.log1p(values).astype(np.float32)
        return scaled
    raise ValueError(f"unknown ALS scaling {scaling!r} (known: linear, log)")


class Interactions:
    """Every (user, item, weight) seen so far, ready to become a user x item matrix."""

    def __init__(self) -> None:
        self.users = IdIndex()
        self.items = IdIndex()
        self._rows = array("q")
        self._cols = array("q")
        self._weights = array("d")

    def add_item(self, item: str) -> int:
        return self.items.add(item)

    def add(self, event: Event) -> None:
        self._rows.append(self.users.add(event.user))
        self._cols.append(self.items.add(event.item))
        self._weights.append(WEIGHTS.of(event))

    def extend(self, records: Iterable[Item | Event]) -> None:
        for record in records:
            if isinstance(record, Event):
                self.add(record)
            else:
                self.add_item(record.id)

    def counts(self) -> np.ndarray:
        """Number of events per item position."""
        return np.bincount(np.frombuffer(self._cols, dtype=np.int64),
                           minlength=len(self.items)).astype(np.float64)

    def matrix(self, scaling: str) -> sp.csr_matrix:
        """Users x items, summed weights scaled to confidences."""
        shape = (len(self.users), len(self.items))
        summed = sp.coo_matrix(
            (np.frombuffer(self._weights, dtype=np.float64),
             (np.frombuffer(self._rows, dtype=np.int64),
              np.frombuffer(self._cols, dtype=np.int64))),
            shape=shape,
        ).tocsr()
        summed.sum_duplicates()
        summed.data = scale(summed.data, scaling)
        return summed


def fit_als(params: AlsParams, matrix: sp.csr_matrix, seed: int) -> AlternatingLeastSquares:
    """A single-threaded implicit ALS model fit on ``matrix`` (users x items)."""
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=params.alpha,
            iterations=params.iterations, num_threads=1, random_state=seed,
        )
        model.fit(matrix, show_progress=False)
    return model


class FrozenAls:
    """A trained model as of one moment: factors, id maps and a popularity fallback.

    Users unknown to the model get the items that were most popular at training
    time; items unknown to it are never recommended.
    """

    def __init__(self, interactions: Interactions, params: AlsParams, seed: int) -> None:
        self.users = dict(interactions.users.positions)
        self.item_ids = list(interactions.items.ids)
        self.item_positions = dict(interactions.items.positions)
        self.popularity = interactions.counts()
        if len(self.users) and len(self.item_ids):
            model = fit_als(params, interactions.matrix(params.scaling), seed)
            self.user_factors = np.asarray(model.user_factors)
            self.item_factors = np.asarray(model.item_factors)
        else:
            self.user_factors = np.zeros((0, params.factors), dtype=np.float32)
            self.item_factors = np.zeros((len(self.item_ids), params.factors), dtype=np.float32)

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        get = self.item_positions.get
        leave_out = np.fromiter((p for p in map(get, exclude) if p is not None), dtype=np.int64)
        position = self.users.get(user)
        if position is None:
            scores = self.popularity
        else:
            scores = self.item_factors @ self.user_factors[position]
        return [self.item_ids[i] for i in top_k(scores, k, leave_out)]
