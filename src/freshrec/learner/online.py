"""The online learner: the one writer of the model state, one event at a time.

Order matters inside :meth:`OnlineLearner.learn_one`: the ranker learns first,
from the state the user saw when they were shown recommendations, then the
counts and vectors absorb the event, so the next request reflects it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from freshrec.models.features import item_features, user_context
from freshrec.models.state import ModelState
from freshrec.records import Event, Item


@dataclass
class Impression:
    """What was shown to a user, kept briefly so their next action can teach the ranker."""

    timestamp: float
    items: np.ndarray


class OnlineLearner:
    """Folds every event into every model."""

    def __init__(self, state: ModelState) -> None:
        self.state = state
        self.impressions: dict[int, Impression] = {}
        self.dirty_items: set[int] = set()
        self.touched_users: set[int] = set()
        """Users and items changed since the last full training started (to re-apply)."""
        self.touched_items: set[int] = set()
        self._rng = np.random.default_rng(state.config.random_state)

    def add_item(self, item: Item) -> int:
        state = self.state
        timestamp = item.timestamp if item.timestamp is not None else state.clock
        is_new = state.items.get(item.id) is None
        index = state.items.upsert(item, now=timestamp)
        state.clock = max(state.clock, timestamp)
        if state.projection.fitted:
            untouched = not state.item_users.of(index)[0].size
            self._set_content_prior([index], replace=is_new or untouched)
        return index

    def learn_one(self, event: Event, *, fold_in: bool = True) -> None:
        state = self.state
        item = state.items.ensure(event.item, event.timestamp)
        user = state.users.ensure(event.user)
        weight = state.config.weights.of(event)
        if fold_in:
            self._teach_ranker(event, user, item)
        profile = state.users.profiles[user]
        state.cooccurrence.learn_one(item, profile.recent)
        profile.add(item, weight, event.timestamp, state.config.repeat_half_life)
        state.trending.learn_one(item, weight, event.timestamp)
        state.item_users.add(item, user, weight)
        state.items.record_event(item, event.timestamp)
        state.clock = max(state.clock, event.timestamp)
        state.events_seen += 1
        self.touched_users.add(user)
        self.touched_items.add(item)
        if fold_in and state.als.trained:
            state.als.fold_in_user(user, profile.seen(), profile.confidence[: profile.n])
            self.dirty_items.add(item)
            if len(self.dirty_items) >= state.config.item_batch_size:
                self.flush_items()

    def flush_items(self) -> None:
        """Re-solve the vectors of items touched since the last flush (a micro-batch)."""
        state = self.state
        als = state.als
        als.refresh_grams()
        for item in self.dirty_items:
            users, confidence = state.item_users.of(item)
            als.fold_in_item(item, users, confidence)
        self.dirty_items.clear()
        als.refresh_grams()

    def remember_impression(self, user: int, items: np.ndarray) -> None:
        self.impressions[user] = Impression(self.state.clock, items)

    def _teach_ranker(self, event: Event, user: int, item: int) -> None:
        shown = self.impressions.get(user)
        if shown is None or event.timestamp - shown.timestamp > self.state.config.impression_ttl:
            return
        # Hard negatives alone (only what was shown) teach the ranker to distrust its own
        # top picks, a feedback loop; random catalog items keep the scale honest.
        config = self.state.config
        hard = shown.items[shown.items != item][: config.ranker_hard_negatives]
        sampled = self._rng.integers(0, len(self.state.items), config.ranker_negatives)
        negatives = np.concatenate([hard, sampled[sampled != item]])
        if negatives.size == 0:
            return
        context = user_context(self.state, event.user)
        rows = item_features(self.state, context, np.concatenate([[item], negatives]))
        self.state.ranker.learn_one(rows[0], rows[1:])

    def _set_content_prior(self, indices: list[int], replace: bool) -> None:
        state = self.state
        documents = [_document(state, index) for index in indices]
        vectors = state.projection.predict(state.encoder.transform(documents))
        for index, vector in zip(indices, vectors, strict=True):
            state.als.set_prior(index, vector, replace_factors=replace)

    def forget_impressions(self) -> None:
        self.impressions.clear()


def _document(state: ModelState, index: int) -> str:
    from freshrec.models.content import content_document

    record = state.items.records[index]
    if record is None:
        return ""
    return content_document(" ".join(p for p in (record.title, record.text) if p),
                            record.categories)
