"""Serving: walk the fallback chain until k items that pass the filters are found."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freshrec.models._arrays import top_k
from freshrec.models.features import Context
from freshrec.models.state import ModelState
from freshrec.serving.fallback import CircuitBreaker
from freshrec.serving.filters import allowed_items
from freshrec.serving.results import Explanation, Filters, Recommendation
from freshrec.serving.sources import Scored, Source

log = logging.getLogger(__name__)
Array = np.ndarray[Any, Any]


@dataclass
class Ranked:
    items: list[Recommendation]
    impression: tuple[Array, Array] | None = None
    explanations: list[Explanation] = field(default_factory=list)
    """One per item, when asked for (``explain=True``)."""


class Recommender:
    """Answers from the first healthy source, filling up from the next ones."""

    def __init__(self, state: ModelState, breaker: CircuitBreaker, budget_ms: float) -> None:
        self.state = state
        self.breaker = breaker
        self.budget_ms = budget_ms

    def rank(self, chain: Sequence[Source], context: Context, k: int, filters: Filters,
             also_exclude: Sequence[int] = (), explain: bool = False) -> Ranked:
        """Top ``k`` for the context; with ``explain``, why each item scored as it did."""
        state = self.state
        if k <= 0 or len(state.items) == 0:
            return Ranked([])
        mask = allowed_items(state, filters, context)
        if also_exclude:
            mask[list(also_exclude)] = False
        answer: list[Recommendation] = []
        explanations: list[Explanation] = []
        impression: tuple[Array, Array] | None = None
        for source in chain:
            if len(answer) >= k:
                break
            if self.breaker.is_open(source.name):
                continue
            started = self.breaker.clock()
            try:
                scored = source.score(state, context, mask)
            except Exception:
                log.exception("source %s failed; falling back", source.name)
                self.breaker.record(source.name, ok=False)
                continue
            elapsed_ms = (self.breaker.clock() - started) * 1000.0
            self.breaker.record(source.name, ok=elapsed_ms <= self.budget_ms)
            if scored is None:
                continue
            picked = _best(scored, mask, k - len(answer))
            if picked.size == 0:
                continue
            for item, name in zip(picked.tolist(), scored.credit(picked), strict=True):
                answer.append(Recommendation(state.items.ids[item], float(scored.scores[item]),
                                             name))
            if explain:
                explanations += (scored.explain(picked) if scored.explain is not None else [
                    Explanation(None, {source.name: float(scored.scores[item])})
                    for item in picked.tolist()])
            impression = impression or scored.impression
            mask[picked] = False
        return Ranked(answer, impression, explanations)


def _best(scored: Scored, mask: Array, k: int) -> Array:
    """The ``k`` best items ``mask`` allows, best first.

    A zero means "nothing to say about this item": unless every finite score ranks,
    it must not take a slot that the next source in the chain could fill with
    something it knows.
    """
    if scored.candidates is not None:
        items = scored.candidates[mask[scored.candidates]]
        values = scored.scores[items]
        if not scored.any_score:
            items, values = items[values > 0], values[values > 0]
        return items[top_k(values, k)]
    usable = mask if scored.any_score else mask & (scored.scores > 0)
    return top_k(np.where(usable, scored.scores, -np.inf), k)
