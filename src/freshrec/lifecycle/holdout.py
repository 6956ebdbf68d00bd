"""Prequential evaluation on a slice of events: recommend before each event, then learn it.

Both the candidate and the champion are scored this way on the same slice, so the
comparison answers the question that matters in production: which model, kept up
to date event by event, would have served these users better?
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from freshrec.engine import Engine
from freshrec.records import Event
from freshrec.serving.results import Filters

NATURAL = Filters(exclude_seen=False, available_only=False)
DISCOVERY = Filters(exclude_seen=True, available_only=False)


def holdout_metrics(engine: Engine, events: Sequence[Event], k: int = 10,
                    max_requests: int = 3000) -> dict[str, float]:
    """HR@k and NDCG@k of ``engine`` on ``events``, learning each event after scoring it.

    Two views: ``hr``/``ndcg`` over every scored event (repeats count: a shop's
    customers re-buy), and ``hr_new``/``ndcg_new`` over events on items new to
    the user, asked with their seen items excluded (discovery). At most
    ``max_requests`` events are scored (evenly spaced); every event is learned.

    >>> from freshrec.records import Item
    >>> engine = Engine()
    >>> engine.add_item(Item(id="a")); engine.add_item(Item(id="b"))
    >>> events = [Event(user=f"u{n}", item="a", type="view", timestamp=n) for n in range(4)]
    >>> holdout_metrics(engine, events, k=1)["hr"]  # "a" is popular from the second event
    1.0
    """
    every = max(1, math.ceil(len(events) / max_requests))
    totals = {"hr": 0.0, "ndcg": 0.0, "requests": 0.0,
              "hr_new": 0.0, "ndcg_new": 0.0, "requests_new": 0.0}
    seen: dict[str, set[str]] = {}
    for position, event in enumerate(events):
        history = seen.setdefault(event.user, set())
        if position % every == 0:
            _score(engine, event, k, NATURAL, totals, "")
            if event.item not in history:
                _score(engine, event, k, DISCOVERY, totals, "_new")
        engine.learn_one(event)
        history.add(event.item)
    for suffix in ("", "_new"):
        requests = totals[f"requests{suffix}"]
        for name in ("hr", "ndcg"):
            totals[f"{name}{suffix}"] = totals[f"{name}{suffix}"] / requests if requests else 0.0
    return totals


def _score(engine: Engine, event: Event, k: int, filters: Filters,
           totals: dict[str, float], suffix: str) -> None:
    ranked = [r.item for r in engine.recommend(event.user, k, filters)]
    totals[f"requests{suffix}"] += 1
    if event.item in ranked:
        totals[f"hr{suffix}"] += 1
        totals[f"ndcg{suffix}"] += 1.0 / math.log2(ranked.index(event.item) + 2)
