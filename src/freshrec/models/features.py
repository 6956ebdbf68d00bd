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
RETRIEVAL = (("als", 60), ("cooccurrence", 60), ("transition", 20), ("trend_short", 20),
             ("trend_mid", 20), ("trend_long", 20), ("popularity", 20), ("repeat", 50),
             ("young", 20))
# Signals whose value is also given relative to the best candidate of the request.
RELATIVE = ("als", "cooccurrence", "transition", "content", "trend_short", "repeat")
SIGNALS = ("als", "cooccurrence", "transition", "trend_short", "trend_mid", "trend_long",
           "popularity", "repeat", "seen", "freshness", "content")
FEATURES = (*SIGNALS, *(f"{name}_relative" for name in RELATIVE),
            "context_size", "has_vector")
N_FEATURES = len(FEATURES)
PRIOR_WEIGHTS = np.array([
    1.0, 1.0, 1.0, 0.3, 0.3, 0.2, 0.1, 1.0, 0.0, 0.3, 0.5,  # signals
    0.5, 0.5, 0.5, 0.3, 0.2, 0.5,                         # relative
    0.0, 0.0,                                              # context
])
"""Where the online ranker starts before it has seen anything."""
# Retrieval source -> the name an answer credits.
CREDIT = {"als": "als", "cooccurrence": "cooccurrence", "transition": "session",
          "trend_short": "trending", "trend_mid": "trending", "trend_long": "trending",
          "popularity": "popularity", "repeat": "history", "young": "content"}
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
    seen: Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    repeat: Array = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    vector: Array | None = None


def _recent_context(state: ModelState, items: Sequence[int]) -> tuple[
        list[tuple[int, float]], list[tuple[int, float]]]:
    config = state.config
    tail = list(dict.fromkeys(reversed(items)))[: config.context_size]
    recent = [(item, config.context_decay**n) for n, item in enumerate(tail)]
    last = [(item, 1.0 / (n + 1)) for n, item in enumerate(list(reversed(items))[
        : config.transition_context])]
    return recent, last


def user_context(state: ModelState, user_id: str) -> Context:
    """The context of a known user; an unknown user gets an empty one."""
    user = state.users.get(user_id)
    if user is None:
        return Context()
    profile = state.users.profiles[user]
    recent, last = _recent_context(state, [item for item, _ in profile.recent])
    return Context(
        user=user, recent=recent, last=last, seen=profile.seen().copy(),
        repeat=profile.repeat_scores(state.clock, state.config.repeat_half_life),
        vector=state.als.user_vector(user),
    )


def session_context(state: ModelState, item_ids: Sequence[str]) -> Context:
    """The context of an anonymous session from the items it touched (oldest first)."""
    items = [index for index in map(state.items.get, item_ids) if index is not None]
    if not items:
        return Context()
    recent, last = _recent_context(state, items)
    seen, counts = np.unique(np.array(items, dtype=np.int64), return_counts=True)
    return Context(recent=recent, last=last, seen=seen, repeat=counts.astype(np.float64),
                   vector=state.als.session_vector(seen, counts.astype(np.float32)))


class Signals:
    """Every source's score of every item, for one context; computed on first use."""

    def __init__(self, state: ModelState, context: Context) -> None:
        self.state = state
        self.context = context
        self.n = len(state.items)

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

    def _trend(self, which: int) -> Array:
        return np.log1p(self.state.trending.scores(self.state.clock, self.n, which))

    @cached_property
    def trend_short(self) -> Array:
        return self._trend(0)

    @cached_property
    def trend_mid(self) -> Array:
        return self._trend(1)

    @cached_property
    def trend_long(self) -> Array:
        return self._trend(2)

    @cached_property
    def counts(self) -> Array:
        return self.state.trending.popularity(self.n)

    @cached_property
    def popularity(self) -> Array:
        return np.log1p(self.counts)

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

    @cached_property
    def freshness(self) -> Array:
        # Age counts from an item's first event, not its catalog entry: when an item
        # was listed says nothing about whether anyone wants it.
        age = np.maximum(0.0, self.state.clock - self.state.items.first_event[: self.n])
        return np.nan_to_num(np.exp2(-age / self.state.config.freshness_half_life))

    @cached_property
    def young(self) -> Array:
        """Young items scored by taste (ALS, from content while they have no events)."""
        return np.where(self.counts < YOUNG_EVENTS, self.als + 1e-3, 0.0)

    def content(self, items: Array) -> Array:
        """Cosine between each item's text and the text of the context's recent items."""
        return self.state.content_index.similarity(items, self.context.recent)


def retrieve(signals: Signals, allowed: Array) -> tuple[Array, Array]:
    """Union of each source's best allowed items, and the best rank each had in any source."""
    best_rank: dict[int, int] = {}
    credit: dict[int, int] = {}
    for number, (name, size) in enumerate(RETRIEVAL):
        scores = getattr(signals, name)
        if not scores.any():
            continue
        ranked = top_k(np.where(allowed & (scores > 0), scores, -np.inf), size)
        for rank, item in enumerate(ranked.tolist()):
            if rank < best_rank.get(item, size + 1):
                best_rank[item] = rank
                credit[item] = number
    items = np.fromiter(best_rank.keys(), dtype=np.int64, count=len(best_rank))
    sources = np.fromiter((credit[i] for i in best_rank), dtype=np.int64, count=len(best_rank))
    return items, sources


def candidate_features(signals: Signals, items: Array) -> Array:
    """Feature rows ``(len(items), N_FEATURES)`` in the order of :data:`FEATURES`."""
    rows = np.zeros((items.shape[0], N_FEATURES), dtype=np.float32)
    columns: dict[str, Array] = {}
    for column, name in enumerate(SIGNALS):
        values = signals.content(items) if name == "content" else getattr(signals, name)[items]
        rows[:, column] = values
        columns[name] = values
    offset = len(SIGNALS)
    for shift, name in enumerate(RELATIVE):
        values = columns[name]
        peak = float(values.max()) if values.size else 0.0
        if peak > 0:
            rows[:, offset + shift] = values / peak
    rows[:, -2] = np.log1p(len(signals.context.recent))
    rows[:, -1] = float(signals.context.vector is not None)
    return rows


__all__ = ["FEATURES", "Context", "Signals", "candidate_features", "retrieve",
           "session_context", "user_context"]
