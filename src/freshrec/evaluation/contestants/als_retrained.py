"""``als-retrained``: implicit ALS retrained from scratch on a schedule, frozen in between.

The schedule is either a period of data time (``every_seconds``: retail is
retrained nightly, at the first event of each new day) or a number of streamed
events (``every_events``). Between retrains it answers like :class:`AlsOnce`:
users and items unknown to the last training get training-time popularity or
nothing.

>>> from freshrec.records import Event
>>> als = AlsRetrained(AlsParams(factors=2, iterations=5), every_events=2)
>>> als.fit([Event("u1", "a", "purchase", 0.0)])
>>> als.learn_one(Event("u2", "b", "purchase", 1.0))
>>> als.learn_one(Event("u3", "b", "purchase", 2.0))  # second event: retrain
>>> als.retrains, als.recommend("new-user", 2, exclude=())
(1, ['b', 'a'])
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from freshrec.evaluation.contestants._als import FrozenAls, Interactions
from freshrec.evaluation.contestants.base import AlsParams
from freshrec.records import Event, Item


class AlsRetrained:
    """ALS retrained on everything seen so far, by data-time period or event count."""

    name = "als-retrained"

    def __init__(self, params: AlsParams, seed: int = 0, *, every_events: int | None = None,
                 every_seconds: float | None = None) -> None:
        if (every_events is None) == (every_seconds is None):
            raise ValueError("give exactly one of every_events and every_seconds")
        self.params = params
        self.seed = seed
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.interactions = Interactions()
        self.model: FrozenAls | None = None
        self.retrains = 0
        self._since = 0
        self._period = -math.inf

    def fit(self, records: Sequence[Item | Event]) -> None:
        self.interactions.extend(records)
        events = [r for r in records if isinstance(r, Event)]
        if events and self.every_seconds is not None:
            self._period = math.floor(events[-1].timestamp / self.every_seconds)
        self.model = FrozenAls(self.interactions, self.params, self.seed)

    def add_item(self, item: Item) -> None:
        self.interactions.add_item(item.id)

    def learn_one(self, event: Event) -> None:
        if self.every_seconds is not None:
            period = math.floor(event.timestamp / self.every_seconds)
            if period > self._period:
                self._period = period
                self._retrain()
            self.interactions.add(event)
            return
        self.interactions.add(event)
        self._since += 1
        if self.every_events is not None and self._since >= self.every_events:
            self._retrain()

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        if self.model is None:
            return []
        return self.model.recommend(user, k, exclude)

    def _retrain(self) -> None:
        self.model = FrozenAls(self.interactions, self.params, self.seed)
        self.retrains += 1
        self._since = 0
