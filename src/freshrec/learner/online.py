"""The online learner: the one writer of the model state, one record at a time.

Everything it learns from is a record (an item, an event, an impression), applied in
order, and everything it keeps between records is in the state: the state after N
records is a function of the records alone, so a snapshot plus the records after it
rebuild it exactly.

Order matters inside :meth:`OnlineLearner.learn_one`: the rankers learn first,
from what the user was shown before acting, then the counts and vectors absorb the
event, so the next request reflects it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from freshrec.models._arrays import widened
from freshrec.models.content import content_document
from freshrec.models.features import FEATURES, N_FEATURES, item_side
from freshrec.models.memory import LearnerMemory, Shown
from freshrec.models.state import ModelState
from freshrec.records import Event, Impression, Item

Array = np.ndarray[Any, Any]
SEEN = FEATURES.index("seen")
MAX_IMPRESSIONS = 20_000
"""Users whose last impression is kept; the oldest are dropped first. One holds every
candidate's features (~150 x 19 float32, ~12 KB), so this bounds them near 250 MB; an
impression only teaches within ``impression_ttl`` of being shown anyway."""
MAX_FIRST_VISITS = 10_000
"""Unknown users whose first impression is kept until their first event."""


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
        self._flush: Iterator[None] | None = None
        """An item flush under way (:meth:`flush_some`); not state: it is finished before
        any other write and before a snapshot, at the log position that started it."""

    # The learner's memory lives in the state (snapshotted with it); these read it.
    @property
    def memory(self) -> LearnerMemory:
        return self.state.memory

    @property
    def impressions(self) -> OrderedDict[int, Shown]:
        return self.state.memory.impressions

    @property
    def first_visits(self) -> OrderedDict[str, Shown]:
        return self.state.memory.first_visits

    @property
    def dirty_users(self) -> set[int]:
        return self.state.memory.dirty_users

    @property
    def dirty_items(self) -> set[int]:
        return self.state.memory.dirty_items

    @property
    def touched_users(self) -> set[int]:
        return self.state.memory.touched_users

    @property
    def touched_items(self) -> set[int]:
        return self.state.memory.touched_items

    def add_item(self, item: Item, *, encode: bool = True, refresh: bool = True) -> int:
        """Upsert an item; ``encode=False`` defers its text encoding to
        :meth:`encode_items` (bulk loading encodes many items in one call), and
        ``refresh=False`` the rebuild of the item-side signals to the caller (once per
        batch): requests never keep one they had to build."""
        self.settle()
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
        state.sequence.map_items(np.array([index]), state.als.item_factors)
        if refresh:
            item_side(state)
        return index

    def add_items(self, items: Sequence[Item]) -> list[int]:
        """Upsert several items with one text encoding for them all (a catalog batch):
        the same state as :meth:`add_item` for each, at a fraction of the cost (the
        vectoriser's per-call overhead is most of an item's). The caller rebuilds the
        item-side signals once, after."""
        state = self.state
        replace: dict[int, bool] = {}  # an item new at its first upsert replaces its factors
        for item in items:
            is_new = state.items.get(item.id) is None
            index = self.add_item(item, encode=False, refresh=False)
            replace[index] = replace.get(index, False) or is_new
        indices = list(replace)
        documents = [document(state, index) for index in indices]
        state.content_index.set_many(indices, documents)
        if state.projection.fitted and indices:
            vectors = state.projection.predict(state.encoder.transform(documents))
            for index, vector in zip(indices, vectors, strict=True):
                untouched = not state.item_users.of(index)[0].size
                state.als.set_prior(index, vector, replace_factors=replace[index] or untouched)
        state.sequence.map_items(np.array(indices, dtype=np.int64), state.als.item_factors)
        return indices

    def encode_items(self, indices: list[int]) -> None:
        state = self.state
        unique = sorted(set(indices))
        state.content_index.set_many(unique, [document(state, i) for i in unique])

    def learn_one(self, event: Event, *, fold_in: bool = True) -> None:
        """Fold one event in; when it fills the item micro-batch, the flush starts and
        the caller runs it (:meth:`flush_some`), or the next write finishes it."""
        self.settle()
        state = self.state
        item = state.items.ensure(event.item, event.timestamp)
        user = state.users.ensure(event.user)
        weight = state.config.weights.of(event)
        if fold_in:
            visit = self.first_visits.pop(event.user, None)
            if visit is not None and user not in self.impressions:
                self.impressions[user] = visit
            self._learn_from_impression(event, user, item)
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
            # Re-solving the user's vector waits for the next item batch; until then a
            # request solves it on the fly (without storing it): a burst of their events
            # then costs one stored solve, not one each.
            self.dirty_users.add(user)
            self.dirty_items.add(item)
            if len(self.dirty_items) >= state.config.item_batch_size:
                self._flush = self._flush_steps()
        if fold_in:
            # The writer refreshes the signals every request shares (half a millisecond
            # on MovieLens) when they are due: every few events, or when the event
            # brought an item the catalog did not list. A request never keeps one it
            # had to build, so this is the only place they move.
            item_side(state)

    def fold_in_user(self, user: int) -> None:
        """Bring one user's vector up to date with their events."""
        if user in self.dirty_users:
            self.dirty_users.discard(user)
            profile = self.state.users.profiles[user]
            self.state.als.fold_in_user(user, profile.seen(), profile.confidence[: profile.n])

    def current_user_vector(self, user: int) -> Array | None:
        """The user's vector as :meth:`fold_in_user` would leave it, without storing it:
        what a request reads."""
        als = self.state.als
        if user in self.dirty_users:
            profile = self.state.users.profiles[user]
            vector = als.solved_user(user, profile.seen(), profile.confidence[: profile.n])
            if vector is not None:
                return vector
        return als.user_vector(user)

    def flush_users(self) -> None:
        for user in list(self.dirty_users):
            self.fold_in_user(user)

    def flush_items(self) -> None:
        """Re-solve the vectors of items touched since the last flush (a micro-batch)."""
        self.settle()
        for _ in self._flush_steps():
            pass

    @property
    def flushing(self) -> bool:
        """An item flush has started and is not finished."""
        return self._flush is not None

    def flush_some(self, budget_s: float) -> bool:
        """Advance the flush under way for about ``budget_s`` (at least one step); True
        when it is finished. Between calls the caller may let requests read the state."""
        if self._flush is None:
            return True
        deadline = time.perf_counter() + budget_s
        for _ in self._flush:
            if time.perf_counter() >= deadline:
                return False
        self._flush = None
        return True

    def settle(self) -> None:
        """Finish a flush under way: every write starts from the state after it."""
        if self._flush is not None:
            self.flush_some(float("inf"))

    def _flush_steps(self) -> Iterator[None]:
        """The item flush one solve at a time, yielding after each.

        Each user is solved from the item factors and each item from the user factors,
        which do not move while that side is solved, so every solve gives the same
        vector whenever it runs: the finished state does not depend on how the steps
        were spread out, nor on requests reading in between (they read; a dirty user's
        vector they solve on the fly is the one the flush stores).
        """
        als = self.state.als
        for user in list(self.dirty_users):
            self.fold_in_user(user)
            yield
        als.refresh_user_gram()
        for item in list(self.dirty_items):
            users, confidence = self.state.item_users.of(item)
            als.fold_in_item(item, users, confidence)
            yield
        self.dirty_items.clear()
        als.refresh_item_gram()

    def learn_impression(self, record: Impression) -> None:
        """Apply an impression record: remember what was shown, to learn from the next
        choice, and store the user's vector if it was behind their events. Items no
        longer in the catalog are dropped with their rows; a user the model no longer
        knows (erased) teaches nothing."""
        self.settle()
        state = self.state
        rows = np.frombuffer(record.features, dtype=np.float32).reshape(-1, record.n_features)
        rows = widened(rows, N_FEATURES)  # logged by a version with fewer features
        if rows.shape[0] != len(record.items):
            raise ValueError(f"impression of {record.user!r}: {len(record.items)} items but "
                             f"{rows.shape[0]} feature rows")
        indices = list(map(state.items.position.get, record.items))  # no call per id
        known = [n for n, index in enumerate(indices) if index is not None]
        candidates = np.array([indices[n] for n in known], dtype=np.int64)
        if len(known) < len(indices):
            rows = rows[known]
        if record.first_visit:
            self.remember_first_visit(record.user, candidates, rows, timestamp=record.timestamp)
            return
        user = state.users.get(record.user)
        if user is not None:
            # The request solved this user's stale vector on the fly without storing it;
            # storing it here, at the impression's place in the log, lets the next solve
            # start from it (as when requests stored it: both replays then match that
            # request for request) and spares later requests the solve.
            self.fold_in_user(user)
            if candidates.size:  # an empty record only carries the vector
                self.remember_impression(user, candidates, rows, cold=record.cold,
                                         timestamp=record.timestamp)

    def remember_impression(self, user: int, candidates: Array, features: Array,
                            *, cold: bool = False, timestamp: float | None = None) -> None:
        """What ``user`` was just shown (every candidate the ranker ordered, with features)."""
        when = self.state.clock if timestamp is None else timestamp
        self.impressions[user] = Shown(when, candidates, features, cold)
        self.impressions.move_to_end(user)
        while len(self.impressions) > MAX_IMPRESSIONS:
            self.impressions.popitem(last=False)

    def remember_first_visit(self, user_id: str, candidates: Array, features: Array,
                             *, timestamp: float | None = None) -> None:
        """What an unknown user was just shown, until their first event (or eviction)."""
        last = next(reversed(self.first_visits.values()), None)
        if (last is not None and np.array_equal(last.candidates, candidates)
                and np.array_equal(last.features, features)):
            # Everyone without items is shown the same list until the shared signals
            # move: keep one copy, so many visitors cost little memory.
            candidates, features = last.candidates, last.features
        when = self.state.clock if timestamp is None else timestamp
        self.first_visits[user_id] = Shown(when, candidates, features, True)
        self.first_visits.move_to_end(user_id)
        while len(self.first_visits) > MAX_FIRST_VISITS:
            self.first_visits.popitem(last=False)

    def _learn_from_impression(self, event: Event, user: int, item: int) -> None:
        """Log (features, chosen?) rows and teach the online ranker.

        The rankers learn from what was actually shown, as production rankers do
        from impressions: features as the request saw them, the chosen item as the
        positive, other candidates as negatives. An item no source proposed is a
        retrieval miss, not a ranking mistake, and teaches the rankers nothing.
        """
        shown = self.impressions.get(user)
        config = self.state.config
        if shown is None or event.timestamp - shown.timestamp > config.impression_ttl:
            return
        hit = np.flatnonzero(shown.candidates == item)
        others = np.flatnonzero(shown.candidates != item)
        if hit.size == 0 or others.size == 0:
            return
        if shown.cold:
            sampled = self.memory.cold_rng.choice(others, min(config.ranker_negatives, others.size),
                                            replace=False)
            self.state.cold_ranker.learn_one(shown.features[hit[0]].astype(np.float64),
                                             shown.features[sampled].astype(np.float64))
            return
        sampled = self.memory.rng.choice(others, min(config.ranker_negatives, others.size),
                                   replace=False)
        rows = shown.features[np.concatenate([hit[:1], sampled])].astype(np.float64)
        if config.tree_ranker:  # the log only feeds the trees
            self.state.samples.add(rows, np.r_[1, np.zeros(sampled.size, dtype=np.int8)])
        self.state.ranker.learn_one(rows[0], rows[1:])
        # A choice of an item new to the user, against the other new items shown, is what
        # the ranker of requests that exclude the user's items must learn; pairs against
        # repeats would mostly teach it to avoid what such requests never show.
        new = shown.features[:, SEEN] == 0
        if new[hit[0]]:
            others = others[new[others]]
            if others.size:
                sampled = self.memory.discovery_rng.choice(
                    others, min(config.ranker_negatives, others.size), replace=False)
                self.state.discovery_ranker.learn_one(
                    rows[0], shown.features[sampled].astype(np.float64))

    def _set_content_prior(self, index: int, replace: bool) -> None:
        state = self.state
        vector = state.projection.predict(state.encoder.transform([document(state, index)]))[0]
        state.als.set_prior(index, vector, replace_factors=replace)

