"""``als-once``: implicit ALS trained on the first half and never updated (the prototype).

>>> from freshrec.records import Event
>>> als = AlsOnce(AlsParams(factors=2, iterations=5))
>>> als.fit([Event("u1", "a", "purchase", 0.0)])
>>> als.learn_one(Event("u2", "b", "purchase", 1.0))  # ignored: the model is frozen
>>> als.recommend("u2", 5, exclude=())  # an unknown user gets training-time popularity
['a']
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from freshrec.evaluation.contestants._als import FrozenAls, Interactions
from freshrec.evaluation.contestants.base import AlsParams
from freshrec.records import Event, Item


class AlsOnce:
    """ALS fit once; ``add_item`` and ``learn_one`` change nothing."""

    name = "als-once"

    def __init__(self, params: AlsParams, seed: int = 0) -> None:
        self.params = params
        self.seed = seed
        self.model: FrozenAls | None = None

    def fit(self, records: Sequence[Item | Event]) -> None:
        interactions = Interactions()
        interactions.extend(records)
        self.model = FrozenAls(interactions, self.params, self.seed)

    def add_item(self, item: Item) -> None:
        """Frozen: a new item stays unknown to the model."""

    def learn_one(self, event: Event) -> None:
        """Frozen: events after training are ignored."""

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        if self.model is None:
            return []
        return self.model.recommend(user, k, exclude)
