"""The engine: one object that learns from events and answers recommendation requests.

It wires the straight line of the event path together: the
:class:`~freshrec.learner.online.OnlineLearner` writes the
:class:`~freshrec.models.state.ModelState`, the
:class:`~freshrec.learner.retrain.Retrainer` replaces its collaborative part
in the background, and the :class:`~freshrec.serving.recommender.Recommender`
reads it without ever writing it. Everything the models learn from arrives as a
record applied in order (:meth:`Engine.add_item`, :meth:`Engine.learn_one`,
:meth:`Engine.learn_impression`), so a snapshot plus the records after it rebuild
the same state. One re-entrant lock keeps a request from reading half an update.

>>> from freshrec.records import Event, Item
>>> engine = Engine()
>>> engine.add_item(Item(id="tea", categories=("drinks",)))
>>> engine.add_item(Item(id="cup", categories=("kitchen",)))
>>> for user in ("ann", "bob"):
...     engine.learn_one(Event(user=user, item="tea", type="purchase", timestamp=1.0))
...     engine.learn_one(Event(user=user, item="cup", type="purchase", timestamp=2.0))
>>> [r.item for r in engine.similar("tea", k=1)]
['cup']
>>> engine.recommend("carol", k=1)[0].source  # unknown user: never an error
'trending'
"""

from __future__ import annotations

import operator
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby

import numpy as np

from freshrec.config import EngineConfig
from freshrec.errors import UnknownItem
from freshrec.learner.online import OnlineLearner
from freshrec.learner.retrain import Retrainer
from freshrec.models.features import (
    N_FEATURES,
    Context,
    item_side,
    session_context,
    user_context,
)
from freshrec.models.state import ModelState
from freshrec.records import Event, Impression, Item
from freshrec.serving.fallback import CircuitBreaker
from freshrec.serving.recommender import Ranked, Recommender
from freshrec.serving.results import Explanation, Filters, Recommendation
from freshrec.serving.sources import (
    DEFAULT_CHAIN,
    CategoryTrendingSource,
    PopularitySource,
    SimilarItemsSource,
    Source,
    TrendingSource,
)

NO_FILTERS = Filters()
NATURAL = Filters(exclude_seen=False)


def _ids_of(ids: list[str], indices: np.ndarray) -> tuple[str, ...]:  # type: ignore[type-arg]
    """The ids at ``indices``, in one C-level pass (a request's impression lists ~150)."""
    positions = indices.tolist()
    if len(positions) < 2:
        return tuple(ids[i] for i in positions)
    return operator.itemgetter(*positions)(ids)  # type: ignore[no-any-return]


class Engine:
    """Online recommender: ``learn_one`` per event, ``recommend`` per request."""

    def __init__(self, config: EngineConfig | None = None,
                 chain: Sequence[Source] | None = None, state: ModelState | None = None) -> None:
        self.config = state.config if state is not None else (config or EngineConfig())
        self.state = state if state is not None else ModelState(self.config)
        self.lock = threading.RLock()
        self.learner = OnlineLearner(self.state)
        self.retrainer = Retrainer(self.state, self.learner, self.lock)
        self.breaker = CircuitBreaker(self.config.trip_after, self.config.trip_cooldown_s)
        self.recommender = Recommender(self.state, self.breaker, self.config.source_budget_ms)
        self.chain: list[Source] = list(chain) if chain is not None else [
            source() for source in DEFAULT_CHAIN]
        self.flush_slice_ms = 1.0
        """Longest the learner holds the lock for an item flush before letting requests in."""

    # -- learning --------------------------------------------------------------------
    def add_item(self, item: Item) -> None:
        """Add or update a catalog item; a new item is recommendable at once."""
        with self.lock:
            self.learner.add_item(item)

    def add_items(self, items: Iterable[Item]) -> None:
        """Add or update several items, rebuilding the signals every request shares once
        for all of them rather than once each (catalog batches)."""
        with self.lock:
            if self.learner.add_items(list(items)):
                item_side(self.state)

    def apply(self, record: Item | Event | Impression) -> None:
        """Apply one logged record, whatever its kind: what the learner does with the log."""
        with self.lock:
            self._apply_one(record)
        self._flush_in_slices()

    def _apply_one(self, record: Item | Event | Impression) -> None:
        if isinstance(record, Event):
            self.learner.learn_one(record)
        elif isinstance(record, Item):
            self.learner.add_item(record)
        else:
            self.learner.learn_impression(record)

    def _flush_in_slices(self) -> None:
        """Run an item flush an event started, releasing the lock every
        :attr:`flush_slice_ms` so a request waits for a slice, not the whole flush
        (tens of milliseconds). Whatever the slices, the state after it is the same."""
        while self.learner.flushing:
            with self.lock:
                self.learner.flush_some(self.flush_slice_ms / 1000.0)
            time.sleep(0)

    def learn_impression(self, record: Impression) -> None:
        """Apply what a request showed (from :meth:`rank`), to learn from the next choice.

        Records are applied in log order, between the events, like everything else the
        models learn from.
        """
        with self.lock:
            self.learner.learn_impression(record)

    def learn_one(self, event: Event) -> None:
        """Fold one event into every model; the next request reflects it."""
        with self.lock:
            self.learner.learn_one(event)
        self._flush_in_slices()

    def apply_many(self, records: Sequence[Item | Event | Impression], chunk: int = 16,
                   before_event: Callable[[Event], None] | None = None) -> None:
        """Apply logged records in order, letting requests in between small groups.

        Python locks are not fair: a thread that re-takes the lock at once for each of a
        thousand records can keep a waiting request out for the whole batch. Releasing
        it and yielding the interpreter every ``chunk`` records bounds that wait to a few
        hundred microseconds. Consecutive items are added together, so the signals every
        request shares are rebuilt once per group rather than once per item.
        ``before_event`` sees each event with the state just before it is learned.
        """
        start = 0
        while start < len(records):
            with self.lock:
                start = self._apply_group(records, start, chunk, before_event)
            self._flush_in_slices()
            time.sleep(0)

    def _apply_group(self, records: Sequence[Item | Event | Impression], start: int,
                     chunk: int, before_event: Callable[[Event], None] | None) -> int:
        """Apply up to ``chunk`` records from ``start``, stopping after one that starts an
        item flush (run next, in slices); returns where the next group starts."""
        group = records[start:start + chunk]
        position = start
        for is_item, run in groupby(group, key=lambda record: isinstance(record, Item)):
            if is_item:
                items = list(run)
                self.add_items(items)  # type: ignore[arg-type]
                position += len(items)
                continue
            for record in run:
                if before_event is not None and isinstance(record, Event):
                    before_event(record)
                self._apply_one(record)
                position += 1
                if self.learner.flushing:
                    return position
        return position

    def fit(self, records: Iterable[Item | Event]) -> None:
        """Bulk-load history, train in full, and teach the ranker on the most recent part.

        The bulk of the history only updates counts (fast); ALS is trained on it;
        then the most recent slice is streamed online exactly as live traffic
        would be, which teaches the rankers how much each source is worth;
        finally everything is trained in full once more.
        """
        records = list(records)
        events = sum(1 for r in records if isinstance(r, Event))
        warmup = min(int(events * self.config.warmup_fraction), self.config.warmup_max_events)
        bulk_until = events - warmup
        seen = 0
        added: list[int] = []
        with self.lock:
            for position, record in enumerate(records):
                if isinstance(record, Item):
                    added.append(self.learner.add_item(record, encode=False, refresh=False))
                    continue
                if seen == bulk_until:
                    tail = records[position:]
                    break
                self.learner.learn_one(record, fold_in=False)
                seen += 1
            else:
                tail = []
            self.learner.encode_items(added)
        self.retrainer.train()
        shown: dict[str, float] = {}
        for record in tail:
            if isinstance(record, Item):
                self.add_item(record)
                continue
            # A request before the user acts at each new moment (once per basket when
            # a basket's lines share a time), as live traffic would make, through the
            # path the service takes: rank, log the impression, apply it, then the event.
            if shown.get(record.user) != record.timestamp:
                shown[record.user] = record.timestamp
                _, impression = self.rank(record.user, k=10, filters=NATURAL)
                if impression is not None:
                    self.learn_impression(impression)
            self.learn_one(record)
        if tail:
            self.retrainer.train()

    def retrain(self, background: bool = True, rankers: bool = True) -> bool:
        """Retrain in full (in a thread by default); False if one is already running.

        ``rankers=False`` refits ALS and the content projection only, keeping the
        tree ranker: cheaper, for frequent refreshes.
        """
        if background:
            return self.retrainer.start(rankers=rankers)
        return self.retrainer.train(rankers=rankers)

    def forget_user(self, user_id: str) -> bool:
        """Forget a user's profile and vector (erasure); True if the user was known."""
        with self.lock:
            self.learner.settle()
            memory = self.state.memory
            memory.first_visits.pop(user_id, None)
            index = self.state.users.get(user_id)
            if index is None:
                return False
            self.state.users.forget(user_id)
            self.state.als.forget_user(index)
            memory.dirty_users.discard(index)
            memory.impressions.pop(index, None)
            return True

    # -- serving ---------------------------------------------------------------------
    def rank(self, user_id: str, k: int = 10, filters: Filters = NO_FILTERS,
             chain: Sequence[Source] | None = None
             ) -> tuple[list[Recommendation], Impression | None]:
        """Top ``k`` for a user, and the record of what the learner must learn from it;
        reads only. The caller logs the record and the learner applies it with
        :meth:`learn_impression`.

        The record lists every candidate the ranker ordered, with their features. A list
        cut by an explicit exclude list or a category is not what the user would
        naturally be shown (learning from it would skew the rankers): like a request
        with no candidates, it gives an empty record (no items) when the request solved
        a vector behind the user's events, for the learner to store that vector, and
        ``None`` otherwise. ``chain``: other sources than the engine's (an experiment's
        arm that changes them).
        """
        with self.lock:
            state = self.state
            context, stale, ranked = self._rank(user_id, k, filters, chain=chain)
            natural = not filters.exclude and filters.category is None
            if ranked.impression is None or not natural:
                if not stale:
                    return ranked.items, None
                return ranked.items, Impression(user=user_id, timestamp=state.clock, items=(),
                                                features=b"", n_features=N_FEATURES)
            candidates, features = ranked.impression
            ids = state.items.ids
            record = Impression(
                user=user_id, timestamp=state.clock, items=_ids_of(ids, candidates),
                features=np.ascontiguousarray(features, dtype=np.float32).tobytes(),
                n_features=features.shape[1], cold=context.user is None or not context.recent,
                first_visit=context.user is None)
            return ranked.items, record

    def _rank(self, user_id: str, k: int, filters: Filters, explain: bool = False,
              chain: Sequence[Source] | None = None) -> tuple[Context, bool, Ranked]:
        """The user's context, whether their vector is behind their events, the ranking
        (by ``chain``, or the engine's own sources)."""
        context = user_context(self.state, user_id)
        stale = context.user is not None and context.user in self.learner.dirty_users
        if context.user is not None:
            context.vector = self.learner.current_user_vector(context.user)
        return context, stale, self.recommender.rank(self.chain if chain is None else chain,
                                                     context, k, filters, explain=explain)

    def explain(self, user_id: str, k: int = 10, filters: Filters = NO_FILTERS
                ) -> tuple[list[Recommendation], list[Explanation]]:
        """What :meth:`rank` answers now, and why each item has its score (the rankers'
        feature contributions); reads only, and logs nothing."""
        with self.lock:
            _, _, ranked = self._rank(user_id, k, filters, explain=True)
            return ranked.items, ranked.explanations

    def recommend(self, user_id: str, k: int = 10,
                  filters: Filters = NO_FILTERS) -> list[Recommendation]:
        """Top ``k`` for a user; an unknown user gets trending items, never an error.

        The in-process convenience: :meth:`rank`, then the engine applies its own
        impression at once (in a library the engine is its own log). A service logs
        the impression instead and lets its learner apply it in log order.
        """
        with self.lock:
            items, impression = self.rank(user_id, k, filters)
            if impression is not None:
                self.learner.learn_impression(impression)
            return items

    def recommend_for_session(self, recent_items: Sequence[str], k: int = 10,
                              filters: Filters = NO_FILTERS) -> list[Recommendation]:
        """Top ``k`` for an anonymous session from the items it touched, oldest first."""
        with self.lock:
            context = session_context(self.state, recent_items)
            return self.recommender.rank(self.chain, context, k, filters).items

    def similar(self, item_id: str, k: int = 10,
                filters: Filters = NO_FILTERS) -> list[Recommendation]:
        """Items like ``item_id``: bought together, or close in taste or content."""
        with self.lock:
            index = self.state.items.get(item_id)
            if index is None:
                raise UnknownItem(item_id)
            chain: list[Source] = [SimilarItemsSource(index), CategoryTrendingSource(index),
                                   TrendingSource(), PopularitySource()]
            context = Context()
            return self.recommender.rank(chain, context, k, filters, also_exclude=[index]).items

    def trending(self, k: int = 10, category: str | None = None,
                 filters: Filters = NO_FILTERS) -> list[Recommendation]:
        """What is popular right now, overall or in one category."""
        with self.lock:
            if category is not None:
                filters = Filters(exclude_seen=False, category=category,
                                  available_only=filters.available_only, exclude=filters.exclude)
            chain: list[Source] = [TrendingSource(), PopularitySource()]
            return self.recommender.rank(chain, Context(), k, filters).items

    @property
    def model_version(self) -> str:
        return self.state.model_version

    # -- persistence -----------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Everything learned, as bytes (the service writes them with a checksum)."""
        with self.lock:
            self.learner.settle()
            return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, payload: bytes, chain: Sequence[Source] | None = None) -> Engine:
        """An engine from :meth:`snapshot` bytes.

        Snapshots are pickles written by this service into its own data
        directory and verified by hash before loading; never load one from an
        untrusted source.
        """
        state = pickle.loads(payload)
        if not isinstance(state, ModelState):
            raise TypeError("not a freshrec snapshot")
        return cls(chain=chain, state=state)
