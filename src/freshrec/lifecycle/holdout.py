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


def holdout_metrics(engine: Engine, events: Sequence[Event], k: int = 10,
                    max_requests: int = 3000) -> dict[str, float]:
    """HR@k and NDCG@k of ``engine`` on ``events``, learning each event after scoring it.

    At most ``max_requests`` events are scored (evenly spaced); every event is learned.

    >>> from freshrec.records import Item
    >>> engine = Engine()
    >>> engine.add_item(Item(id="a")); engine.add_item(Item(id="b"))
    >>> events = [Event(user=f"u{n}", item="a", type="view", timestamp=n) for n in range(4)]
    >>> holdout_metrics(engine, events, k=1)  # "a" is popular from the second event on
    {'hr': 1.0, 'ndcg': 1.0, 'requests': 4.0}
    """
    every = max(1, math.ceil(len(events) / max_requests))
    hits = 0.0
    gains = 0.0
    requests = 0
    for position, event in enumerate(events):
        if position % every == 0:
            ranked = [r.item for r in engine.recommend(event.user, k, NATURAL)]
            requests += 1
            if event.item in ranked:
                hits += 1
                gains += 1.0 / math.log2(ranked.index(event.item) + 2)
        engine.learn_one(event)
    if requests == 0:
        return {"hr": 0.0, "ndcg": 0.0, "requests": 0.0}
    return {"hr": hits / requests, "ndcg": gains / requests, "requests": float(requests)}
