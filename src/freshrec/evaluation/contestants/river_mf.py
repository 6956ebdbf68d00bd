"""``river-biasedmf``: river's ``reco.BiasedMF`` as a peer online learner.

BiasedMF is a rating regressor, so each event is learnt as ``y=1`` for the
item plus ``negatives`` items drawn uniformly from the catalog with ``y=0``.
Ranking a catalog with ``predict_one`` would cost one Python call per item, so
the contestant keeps numpy mirrors of river's item latents and biases and of
the user latents, and copies only the rows a ``learn_one`` touched. A user's
ranking is then ``item_bias + item_latents @ user_latent`` (the global mean and
user bias shift every item equally). Rows river never touched stay zero in the
mirror, which is the mean of river's random initialisation.

>>> from freshrec.records import Event
>>> mf = RiverBiasedMF(RiverParams(factors=4, negatives=1), seed=1)
>>> mf.fit([Event("u1", "a", "view", 0.0), Event("u1", "b", "view", 1.0)])
>>> sorted(mf.recommend("u1", 2, exclude=()))
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from river import optim, reco

from freshrec.evaluation.contestants._index import IdIndex, grow
from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import RiverParams
from freshrec.records import Event, Item


class RiverBiasedMF:
    """river BiasedMF trained online with sampled negatives, ranked by numpy mirrors."""

    name = "river-biasedmf"

    def __init__(self, params: RiverParams, seed: int = 0) -> None:
        self.params = params
        self.seed = seed
        self.model = reco.BiasedMF(
            n_factors=params.factors,
            bias_optimizer=optim.SGD(params.learning_rate),
            latent_optimizer=optim.SGD(params.learning_rate),
            l2_bias=params.l2,
            l2_latent=params.l2,
            latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=seed),
            seed=seed,
        )
        self.rng = np.random.default_rng(seed)
        self.items = IdIndex()
        self.users = IdIndex()
        self.item_latents = np.zeros((0, params.factors))
        self.item_biases = np.zeros(0)
        self.user_latents = np.zeros((0, params.factors))

    def fit(self, records: Sequence[Item | Event]) -> None:
        for record in records:
            if isinstance(record, Item):
                self.add_item(record)
        events = [record for record in records if isinstance(record, Event)]
        for _ in range(self.params.epochs):
            for event in events:
                self.learn_one(event)

    def add_item(self, item: Item) -> None:
        self._item(item.id)

    def learn_one(self, event: Event) -> None:
        model = self.model
        i = self._item(event.item)
        model.learn_one(event.user, event.item, 1.0)  # type: ignore[no-untyped-call]
        touched = [i]
        if self.params.negatives:
            for j in self.rng.integers(0, len(self.items), size=self.params.negatives).tolist():
                if j != i:
                    model.learn_one(  # type: ignore[no-untyped-call]
                        event.user, self.items.ids[j], 0.0)
                    touched.append(j)
        for j in touched:
            item = self.items.ids[j]
            self.item_latents[j] = model.i_latents[item]
            self.item_biases[j] = model.i_biases[item]
        u = self.users.add(event.user)
        self.user_latents = grow(self.user_latents, len(self.users))
        self.user_latents[u] = model.u_latents[event.user]

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        n = len(self.items)
        scores = self.item_biases[:n].copy()
        position = self.users.get(user)
        if position is not None:
            scores += self.item_latents[:n] @ self.user_latents[position]
        return [self.items.ids[i] for i in top_k(scores, k, self.items.known(exclude))]

    def _item(self, item: str) -> int:
        position = self.items.add(item)
        if len(self.items) > self.item_biases.shape[0]:
            self.item_latents = grow(self.item_latents, len(self.items))
            self.item_biases = grow(self.item_biases, len(self.items))
        return position
