"""The online learner: the one writer of the model state, one event at a time.

Order matters inside :meth:`OnlineLearner.learn_one`: the rankers learn first,
from the candidates the user would have been shown before acting, then the counts
and vectors absorb the event, so the next request reflects it.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np

from freshrec.models.content import content_document
from freshrec.models.features import Signals, candidate_features, retrieve, user_context
from freshrec.models.state import ModelState
from freshrec.records import Event, Item

Array = np.ndarray[Any, Any]


def document(state: ModelState, index: int) -> str:
    """The text the content model reads for an item."""
    record = state.items.records[index]
    if record is None:
        return ""
    return content_document(" ".join(p for p in (record.title, record.text) if p),
                            record.categories)


class OnlineLearner:
    """Folds every event into every model."""

    def __init__(self, state: ModelState) -> None:
        self.state = state
        self.dirty_items: set[int] = set()
        self.dirty_users: set[int] = set()
        """Users whose vector is behind their events: folded in before their next request."""
        self.inline_flush = True
        """Re-solve item vectors inside ``learn_one`` every ``item_batch_size`` events; a
        service turns this off and calls :meth:`flush_items` from a background thread."""
        self.touched_users: set[int] = set()
        """Users and items changed since the last full training started (to re-apply)."""
        self.touched_items: set[int] = set()
        self._rng = np.random.default_rng(state.config.random_state)
        self._allowance = 0.0
        self.cap_samples = True
        """Off while replaying the log, where wall time says nothing about load."""
        self._allowance_at = time.monotonic()

    def add_item(self, item: Item, *, encode: bool = True) -> int:
        """Upsert an item; ``encode=False`` defers its text encoding to
        :meth:`encode_items` (bulk loading encodes many items in one call)."""
        state = self.state
        timestamp = item.timestamp if item.timestamp is not None else state.clock
        is_new = state.items.get(item.id) is None
        index = state.items.upsert(item, now=timestamp)
        state.clock = max(state.clock, timestamp)
        if not encode:
            return index
        state.content_index.set(index, document(state, index))
        if state.projection.fitted:
            untouched = not state.item_users.of(index)[0].size
            self._set_content_prior(index, replace=is_new or untouched)
        return index

    def encode_items(self, indices: list[int]) -> None:
        state = self.state
        unique = sorted(set(indices))
        state.content_index.set_many(unique, [document(state, i) for i in unique])

    def learn_one(self, event: Event, *, fold_in: bool = True) -> None:
        state = self.state
        item = state.items.ensure(event.item, event.timestamp)
        user = state.users.ensure(event.user)
        weight = state.config.weights.of(event)
        if fold_in and self._take_sample(event):
            self.log_sample(event.user, item)
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
            # Re-solving the user's vector waits for their next request (or the next
            # item batch): a burst of their events then costs one solve, not one each.
            self.dirty_users.add(user)
            self.dirty_items.add(item)
            if self.inline_flush and len(self.dirty_items) >= state.config.item_batch_size:
                self.flush_items()

    def fold_in_user(self, user: int) -> None:
        """Bring one user's vector up to date with their events."""
        if user in self.dirty_users:
            self.dirty_users.discard(user)
            profile = self.state.users.profiles[user]
            self.state.als.fold_in_user(user, profile.seen(), profile.confidence[: profile.n])

    def flush_users(self) -> None:
        for user in list(self.dirty_users):
            self.fold_in_user(user)

    def flush_items(self) -> None:
        """Re-solve the vectors of items touched since the last flush (a micro-batch)."""
        state = self.state
        als = state.als
        self.flush_users()
        als.refresh_user_gram()
        for item in self.dirty_items:
            users, confidence = state.item_users.of(item)
            als.fold_in_item(item, users, confidence)
        self.dirty_items.clear()
        als.refresh_item_gram()

    def _take_sample(self, event: Event) -> bool:
        """Whether this event teaches the rankers.

        A fixed fraction of events, chosen by a hash of the event so that replaying
        the log (recovery) picks the same ones; and, when the config sets
        ``ranker_samples_per_second`` and ``cap_samples`` is on, at most that many per
        second of wall time, so a busy service bounds the cost.
        """
        config = self.state.config
        key = f"{event.user}\x1f{event.item}\x1f{event.timestamp!r}".encode()
        if zlib.crc32(key) / 2**32 >= config.ranker_sample_rate:
            return False
        cap = config.ranker_samples_per_second
        if cap is None or not self.cap_samples:
            return True
        now = time.monotonic()
        self._allowance = min(cap, self._allowance + (now - self._allowance_at) * cap)
        self._allowance_at = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True

    def log_sample(self, user_id: str, item: int) -> None:
        """Teach the rankers with the candidates the user would have been shown just now.

        Called before the event is applied, so the features are those a request
        would have seen. Candidates come from every source without request-specific
        filters, the natural pool a ranker must order; an item no source proposed is
        a retrieval miss, not a ranking mistake, and teaches nothing here.
        """
        state = self.state
        index = state.users.get(user_id)
        if index is not None:
            self.fold_in_user(index)
        context = user_context(state, user_id)
        signals = Signals(state, context)
        candidates, _ = retrieve(signals, state.items.available[: signals.n])
        hit = np.flatnonzero(candidates == item)
        if hit.size == 0 or candidates.size < 2:
            return
        config = state.config
        others = np.flatnonzero(candidates != item)
        sampled = self._rng.choice(others, min(config.ranker_negatives, others.size),
                                   replace=False)
        rows = candidate_features(signals, np.concatenate([candidates[hit[:1]],
                                                           candidates[sampled]]))
        state.samples.add(rows, np.r_[1, np.zeros(sampled.size, dtype=np.int8)])
        state.ranker.learn_one(rows[0].astype(np.float64), rows[1:].astype(np.float64))

    def _set_content_prior(self, index: int, replace: bool) -> None:
        state = self.state
        vector = state.projection.predict(state.encoder.transform([document(state, index)]))[0]
        state.als.set_prior(index, vector, replace_factors=replace)
