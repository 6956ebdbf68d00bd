"""Candidates and their features for one context (a user, or an anonymous session).

Serving is two-stage, as in most production recommenders: each source proposes
its best items over the whole catalog (retrieval), then the ranker orders the
union with features from every source. ``Signals`` holds the per-source scores
of every item for one request, so each is computed once and shared by both
stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from freshrec.models._arrays import top_k

if TYPE_CHECKING:
    from freshrec.models.state import ModelState

Array = np.ndarray[Any, Any]

# Retrieval: how many items each source proposes.
RETRIEVAL = (("als", 50), ("cooccurrence", 50), ("transition", 20), ("trend_short", 15),
             ("trend_mid", 15), ("trend_long", 15), ("popularity", 15), ("repeat", 40),
             ("young", 15), ("sequence", 30))
# Signals whose value is also given relative to the best candidate of the request.
RELATIVE = ("als", "cooccurrence", "transition", "content", "trend_short", "repeat")
SIGNALS = ("als", "cooccurrence", "transition", "trend_short", "trend_mid", "trend_long",
           "popularity", "repeat", "seen", "freshness", "content")
CONTEXT = ("context_size", "has_vector")
# Added later: features only ever grow at the end, so that what an older version
# learned stays the first weights (models/state.py ``upgrade_features``).
LATER = ("sequence", "sequence_relative")
FEATURES = (*SIGNALS, *(f"{name}_relative" for name in RELATIVE), *CONTEXT, *LATER)
N_FEATURES = len(FEATURES)
PRIOR_WEIGHTS = np.array([
    1.0, 1.0, 1.0, 0.3, 0.3, 0.2, 0.1, 1.0, 0.0, 0.3, 0.5,  # signals
    0.5, 0.5, 0.5, 0.3, 0.2, 0.5,                         # relative
    0.0, 0.0,                                              # context
    1.0, 0.5,                                              # sequence
])
"""Where the online ranker starts before it has seen anything."""
# Retrieval source -> the name an answer credits.
CREDIT = {"als": "als", "cooccurrence": "cooccurrence", "transition": "session",
          "trend_short": "trending", "trend_mid": "trending", "trend_long": "trending",
          "popularity": "popularity", "repeat": "history", "young": "content",
          "sequence": "sequence"}
YOUNG_EVENTS = 5
"""An item with fewer events than this is young: proposed from its content and vector."""


@dataclass
class Context:
    """Who is asking: their recent items, what they have seen, their ALS vector."""

    user: int | None = None
    recent: list[tuple[int, float]] = field(default_factory=list)
    """(item, strength) for the recent items, most recent with strength 1."""
    last: list[tuple[int, float]] = field(default_factory=list)
    """The last few items, for transitions."""
    sequence: list[tuple[int, float]] = field(default_factory=list)
    """The last distinct items, most recent first with weight 1, for the sequence model."""
    seen: Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    repeat: Array = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    vector: Array | None = None


def _recent_context(state: ModelState, items: Sequence[int]) -> tuple[
        list[tuple[int, float]], list[tuple[int, float]], list[tuple[int, float]]]:
    # Strength decays by position, even across the lines of one basket: tried decaying
    # by moment instead (a basket's lines sharing one strength), and it scored lower on
    # the retail validation half (repeats HR -0.005, new items -0.011).
    config = state.config
    tail = list(dict.fromkeys(reversed(items)))[: config.context_size]
    recent = [(item, config.context_decay**n) for n, item in enumerate(tail)]
    last = [(item, 1.0 / (n + 1)) for n, item in enumerate(list(reversed(items))[
        : config.transition_context])]
    # Distinct items, as the sequence model was trained (each item at its last time).
    sequence = [(item, config.sequence_decay**n)
                for n, item in enumerate(tail[: config.sequence_length])]
    return recent, last, sequence


def user_context(state: ModelState, user_id: str) -> Context:
    """The context of a known user; an unknown user gets an empty one."""
    user = state.users.get(user_id)
    if user is None:
        return Context()
    profile = state.users.profiles[user]
    recent, last, sequence = _recent_context(state, [item for item, _ in profile.recent])
    return Context(
        user=user, recent=recent, last=last, sequence=sequence, seen=profile.seen().copy(),
        repeat=profile.repeat_scores(state.clock, state.config.repeat_half_life),
        vector=state.als.user_vector(user),
    )


def session_context(state: ModelState, item_ids: Sequence[str]) -> Context:
    """The context of an anonymous session from the items it touched (oldest first)."""
    items = [index for index in map(state.items.get, item_ids) if index is not None]
    if not items:
        return Context()
    recent, last, sequence = _recent_context(state, items)
    seen, counts = np.unique(np.array(items, dtype=np.int64), return_counts=True)
    return Context(recent=recent, last=last, sequence=sequence, seen=seen,
                   repeat=counts.astype(np.float64),
                   vector=state.als.session_vector(seen, counts.astype(np.float32)))


ITEM_SIDE_REFRESH_EVENTS = 32
"""Item-only signals (trending, popularity, freshness) are shared by all requests and
recomputed after at most this many events (by the learner) or any catalog change (by
the next request): per-user signals are always exact, popularity may lag a little."""


def item_side_interval(events_seen: int) -> int:
    """Events between refreshes of the item-side signals: every event while the history
    is small (where one event moves trending visibly, and a refresh is cheap), growing to
    :data:`ITEM_SIDE_REFRESH_EVENTS` once there are ~32,000 events.

    >>> [item_side_interval(n) for n in (0, 5_000, 100_000)]
    [1, 4, 32]
    """
    return max(1, min(ITEM_SIDE_REFRESH_EVENTS, events_seen // 1024))


_NONE = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
_RANKED_DEPTH = 256
_ITEM_SIDE = frozenset({"trend_short", "trend_mid", "trend_long", "popularity", "freshness"})


class ItemSide:
    """Item-only signals and their rankings, computed once for many requests.

    A refresh keeps the raw scores and ranks them (a monotone transform ranks the
    same); the log and freshness transforms run only on the candidates a request
    scores, not on the whole catalog at every refresh.
    """

    def __init__(self, state: ModelState) -> None:
        n = len(state.items)
        trending = state.trending
        self.key = _item_side_key(state)
        self.clock = state.clock
        self.half_life = state.config.freshness_half_life
        self.items = state.items
        self.counts = trending.popularity(n)
        self.raw: dict[str, Array] = {
            "trend_short": trending.scores(state.clock, n, 0),
            "trend_mid": trending.scores(state.clock, n, 1),
            "trend_long": trending.scores(state.clock, n, 2),
            "popularity": self.counts,
        }
        self.ranked = {name: _top_positive(values) for name, values in self.raw.items()}
        self.young = np.flatnonzero(self.counts < YOUNG_EVENTS)
        self._full: dict[str, Array] = {}

    def at(self, name: str, items: Array) -> Array:
        """Signal ``name`` of ``items`` (log-scaled counts and scores, or freshness)."""
        if name == "freshness":
            # Age counts from an item's first event, not its catalog entry: when an item
            # was listed says nothing about whether anyone wants it.
            age = np.maximum(0.0, self.clock - self.items.first_event[items])
            values = np.exp2(-age / self.half_life)
            values[np.isnan(values)] = 0.0  # no event yet (nan_to_num costs 4x this)
            return values
        return np.log1p(self.raw[name][items])

    def __getstate__(self) -> dict[str, Any]:
        # ``_full`` is filled by requests from the rest: a snapshot need not carry it,
        # and leaving it out keeps the snapshot of a state independent of its readers.
        saved = self.__dict__.copy()
        saved["_full"] = {}
        return saved

    def full(self, name: str) -> Array:
        """Signal ``name`` of every item (computed on first use after a refresh)."""
        values = self._full.get(name)
        if values is None:
            values = self.at(name, np.arange(self.counts.shape[0]))
            self._full[name] = values
        return values


def _top_positive(values: Array) -> Array:
    best = top_k(values, _RANKED_DEPTH)
    return best[values[best] > 0]


def _item_side_key(state: ModelState) -> tuple[int, int, int]:
    return (state.events_seen // item_side_interval(state.events_seen), len(state.items),
            state.items.version)


def item_side(state: ModelState, *, keep: bool = True) -> ItemSide:
    """The item-side signals, rebuilt when the state has moved past the kept ones.

    Only the learner keeps a rebuilt one (``keep=True``), at positions the records fix;
    a request (``keep=False``) that finds it stale builds its own and leaves the state
    as it was, so that what later requests see does not depend on when earlier ones ran.
    """
    cached: ItemSide | None = getattr(state, "_item_side", None)
    if cached is None or cached.key != _item_side_key(state):
        cached = ItemSide(state)
        if keep:
            state._item_side = cached  # type: ignore[attr-defined]
    return cached


class Signals:
    """Every source's score of every item, for one context; computed on first use."""

    def __init__(self, state: ModelState, context: Context) -> None:
        self.state = state
        self.context = context
        self.n = len(state.items)
        self.shared = item_side(state, keep=False)

    @cached_property
    def als(self) -> Array:
        return self.state.als.item_scores(self.context.vector, self.n)

    @cached_property
    def cooccurrence(self) -> Array:
        if not self.context.recent:
            return np.zeros(self.n)
        return self.state.cooccurrence.scores(self.context.recent, self.n)

    @cached_property
    def transition(self) -> Array:
        if not self.context.last:
            return np.zeros(self.n)
        return self.state.cooccurrence.transition_scores(self.context.last, self.n)

    @cached_property
    def sequence(self) -> Array:
        return self.state.sequence.scores(self.context.sequence, self.n)

    @property
    def trend_short(self) -> Array:
        return self.shared.full("trend_short")

    @property
    def trend_mid(self) -> Array:
        return self.shared.full("trend_mid")

    @property
    def trend_long(self) -> Array:
        return self.shared.full("trend_long")

    @property
    def counts(self) -> Array:
        return self.shared.counts

    @property
    def popularity(self) -> Array:
        return self.shared.full("popularity")

    @cached_property
    def repeat(self) -> Array:
        out = np.zeros(self.n)
        if self.context.seen.size:
            out[self.context.seen] = np.log1p(self.context.repeat)
        return out

    @cached_property
    def seen(self) -> Array:
        out = np.zeros(self.n)
        out[self.context.seen] = 1.0
        return out

    def positive(self, name: str, allowed: Array) -> tuple[Array, Array]:
        """The allowed items a source scores above zero, and their scores.

        Retrieval only needs these: working on them instead of the whole catalog
        keeps a request's cost in what the user's sources know, not in catalog size.
        """
        if name == "young":
            # Young items scored by taste (ALS, from content while they have no events).
            if not self.state.als.trained:
                return _NONE
            items = self.shared.young[allowed[self.shared.young]]
            scores = self.als[items] + 1e-3
        elif name == "repeat":
            seen = self.context.seen
            items = np.sort(seen[allowed[seen]])  # ties break by index, as elsewhere
            scores = self.repeat[items]
        else:
            values = getattr(self, name)
            items = np.flatnonzero((values > 0) & allowed)
            return items, values[items]
        keep = scores > 0
        return items[keep], scores[keep]

    def content(self, items: Array) -> Array:
        """Cosine between each item's text and the text of the context's recent items."""
        return self.state.content_index.similarity(items, self.context.recent)


def retrieve(signals: Signals, allowed: Array) -> tuple[Array, Array]:
    """Union of each source's best allowed items, and the source that ranked each highest."""
    picked, ranks, sources = [], [], []
    for number, (name, size) in enumerate(RETRIEVAL):
        ranked = _best_allowed(signals, name, size, allowed)
        if ranked.size:
            picked.append(ranked)
            ranks.append(np.arange(ranked.size))
            sources.append(np.full(ranked.size, number))
    if not picked:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    items, rank, source = np.concatenate(picked), np.concatenate(ranks), np.concatenate(sources)
    order = np.lexsort((source, rank))          # best rank first, then source order
    items, source = items[order], source[order]
    unique, first = np.unique(items, return_index=True)
    return unique, source[first]


def _best_allowed(signals: Signals, name: str, size: int, allowed: Array) -> Array:
    """The ``size`` best allowed items of one source (zero scores never qualify)."""
    shared = signals.shared.ranked.get(name)
    if shared is not None:
        # Item-only sources were ranked once for everyone; filter that ranking.
        kept = shared[allowed[shared]][:size]
        if kept.size == size or shared.size < _RANKED_DEPTH:
            return kept
    items, scores = signals.positive(name, allowed)
    return items[top_k(scores, size)]


_CONTEXT_SIZE = FEATURES.index("context_size")
_HAS_VECTOR = FEATURES.index("has_vector")
_SEQUENCE = FEATURES.index("sequence")


def _relative(values: Array) -> Array:
    """Each value over the request's best (zeros when nothing scores above zero)."""
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def candidate_features(signals: Signals, items: Array) -> Array:
    """Feature rows ``(len(items), N_FEATURES)`` in the order of :data:`FEATURES`."""
    rows = np.zeros((items.shape[0], N_FEATURES), dtype=np.float32)
    columns: dict[str, Array] = {}
    for column, name in enumerate(SIGNALS):
        if name == "content":
            values = signals.content(items)
        elif name in _ITEM_SIDE:
            values = signals.shared.at(name, items)
        else:
            values = getattr(signals, name)[items]
        rows[:, column] = values
        columns[name] = values
    offset = len(SIGNALS)
    for shift, name in enumerate(RELATIVE):
        rows[:, offset + shift] = _relative(columns[name])
    rows[:, _CONTEXT_SIZE] = np.log1p(len(signals.context.recent))
    rows[:, _HAS_VECTOR] = float(signals.context.vector is not None)
    sequence = signals.sequence[items]
    rows[:, _SEQUENCE] = sequence
    rows[:, _SEQUENCE + 1] = _relative(sequence)
    return rows


__all__ = ["FEATURES", "Context", "Signals", "candidate_features", "retrieve",
           "session_context", "user_context"]
