"""Ranking features of items for one context (a user, or an anonymous session).

Two paths compute the same numbers: :func:`dense_features` for every item at
once (serving) and :func:`item_features` for a handful of items (the ranker's
training pairs). ``tests/models/test_features.py`` pins that they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freshrec.models.ranker import FEATURES, N_FEATURES
from freshrec.models.state import ModelState

Array = np.ndarray[Any, Any]
_COLUMN = {name: n for n, name in enumerate(FEATURES)}


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

    @property
    def is_empty(self) -> bool:
        return not self.recent and self.vector is None


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
    seen = np.array(sorted(set(items)), dtype=np.int64)
    counts = np.array([items.count(int(i)) for i in seen], dtype=np.float32)
    return Context(recent=recent, last=last, seen=seen, repeat=counts.astype(np.float64),
                   vector=state.als.session_vector(seen, counts))


def _item_side(state: ModelState, items: Array, n_items: int) -> dict[str, Array]:
    """Features that depend on the item only, for ``items`` (indices into the catalog)."""
    now = state.clock
    trending = state.trending
    columns: dict[str, Array] = {}
    for name, which in (("trend_short", 0), ("trend_mid", 1), ("trend_long", 2)):
        columns[name] = np.log1p(trending.scores(now, n_items, which)[items])
    counts = trending.popularity(n_items)[items]
    columns["popularity"] = np.log1p(counts)
    # Age counts from an item's first event, not from its catalog entry: when an item
    # was added says nothing about whether anyone wants it.
    age = np.maximum(0.0, now - state.items.first_event[items])
    columns["freshness"] = np.nan_to_num(np.exp2(-age / state.config.freshness_half_life))
    return columns


def dense_features(state: ModelState, context: Context) -> Array:
    """Feature matrix ``(n_items, N_FEATURES)`` for every item in the catalog."""
    n = len(state.items)
    matrix = np.zeros((n, N_FEATURES), dtype=np.float64, order="F")
    everything = np.arange(n)
    for name, column in _item_side(state, everything, n).items():
        matrix[:, _COLUMN[name]] = column
    matrix[:, _COLUMN["als"]] = state.als.item_scores(context.vector, n)
    if context.recent:
        matrix[:, _COLUMN["cooccurrence"]] = state.cooccurrence.scores(context.recent, n)
        matrix[:, _COLUMN["transition"]] = state.cooccurrence.transition_scores(context.last, n)
    if context.seen.size:
        matrix[context.seen, _COLUMN["repeat"]] = np.log1p(context.repeat)
        matrix[context.seen, _COLUMN["seen"]] = 1.0
    return matrix


def item_features(state: ModelState, context: Context, items: Array) -> Array:
    """Feature rows for a few ``items``; equal to the matching rows of :func:`dense_features`."""
    n = len(state.items)
    rows = np.zeros((items.shape[0], N_FEATURES), dtype=np.float64)
    for name, column in _item_side(state, items, n).items():
        rows[:, _COLUMN[name]] = column
    if context.vector is not None:
        rows[:, _COLUMN["als"]] = state.als.scores_of(context.vector, items)
    cooccurrence = state.cooccurrence
    for row, item in enumerate(items.tolist()):
        rows[row, _COLUMN["cooccurrence"]] = _pair_score(state, cooccurrence.neighbors,
                                                         context.recent, item)
        rows[row, _COLUMN["transition"]] = _pair_score(state, cooccurrence.transitions,
                                                       context.last, item)
    if context.seen.size:
        where = {int(item): n for n, item in enumerate(context.seen)}
        for row, item in enumerate(items.tolist()):
            slot = where.get(item)
            if slot is not None:
                rows[row, _COLUMN["repeat"]] = np.log1p(context.repeat[slot])
                rows[row, _COLUMN["seen"]] = 1.0
    return rows


def _pair_score(state: ModelState, pairs: Any, context: Sequence[tuple[int, float]],
                item: int) -> float:
    cooccurrence = state.cooccurrence
    total = 0.0
    for other, strength in context:
        count = pairs.get(other, item)
        if count:
            norms = cooccurrence.norm(np.array([other, item]))
            total += count * strength / (norms[0] * norms[1])
    return total


__all__ = ["Context", "dense_features", "item_features", "session_context", "user_context"]
