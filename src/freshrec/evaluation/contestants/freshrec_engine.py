"""``freshrec``: the engine under test, behind the contestant interface.

The harness decides what to leave out, so the engine's own filters are switched
off (``exclude_seen=False``, ``available_only=False``) and the harness's set is
passed as ``exclude``. Each request goes the way the service's do: ``rank`` reads
the model and returns the impression, which is applied as a record before the
user's events.

Like the service, the engine retrains in full on a schedule: here half as often as
``als-retrained`` or less (each week of data time, or every 10% of the stream), run
in the foreground so that runs are deterministic; the rankers (the tree ranker, when
enabled) are refitted at every ``RANKER_EVERY``-th training.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

from freshrec.records import Event, Item
from freshrec.serving.results import Filters

RANKER_EVERY = 2


def engine_available() -> str | None:
    """``None`` when ``freshrec.engine`` imports, else the reason it does not."""
    try:
        import freshrec.engine  # noqa: F401
    except Exception as error:  # any import failure means "not wired yet"
        return f"{type(error).__name__}: {error}"
    return None


class FreshrecEngine:
    """Adapter over :class:`freshrec.engine.Engine` with its default config (or
    ``config`` overrides, under another ``name``)."""

    name = "freshrec"

    def __init__(self, seed: int = 0, *, every_events: int | None = None,
                 every_seconds: float | None = None, name: str = "freshrec",
                 **config: Any) -> None:
        from freshrec import engine as engine_module

        config_class: Any = getattr(engine_module, "EngineConfig", None)
        if config_class is None:
            from freshrec.config import EngineConfig as config_class
        self.name = name
        self.seed = seed
        # No time budget: a slow request on a busy machine would trip the circuit breaker
        # and answer from the fallback chain for its cooldown, so a replay's HR would
        # depend on what else the machine ran; paired comparisons need the same answers
        # from the same code (docs/benchmarks.md, the sequence source, has the numbers).
        config.setdefault("source_budget_ms", math.inf)
        self.engine = engine_module.Engine(config_class(num_threads=1, random_state=seed,
                                                        **config))
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.retrains = 0
        self._events = 0
        self._period: int | None = None

    def fit(self, records: Sequence[Item | Event]) -> None:
        self.engine.fit(records)
        events = [r for r in records if isinstance(r, Event)]
        if events and self.every_seconds is not None:
            self._period = math.floor(events[-1].timestamp / self.every_seconds)

    def add_item(self, item: Item) -> None:
        self.engine.add_item(item)

    def learn_one(self, event: Event) -> None:
        if self._due(event):
            self.retrains += 1
            self.engine.retrain(background=False, rankers=self.retrains % RANKER_EVERY == 0)
        self.engine.learn_one(event)

    def _due(self, event: Event) -> bool:
        self._events += 1
        if self.every_events is not None:
            return self._events % self.every_events == 0
        if self.every_seconds is not None:
            period = math.floor(event.timestamp / self.every_seconds)
            if self._period is None:
                self._period = period
            if period != self._period:
                self._period = period
                return True
        return False

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        filters = Filters(exclude_seen=False, available_only=False, exclude=frozenset(exclude))
        # The service's path: rank (reads only), then apply the impression it logs.
        ranked, impression = self.engine.rank(user, k, filters=filters)
        if impression is not None:
            self.engine.learn_impression(impression)
        return [rec.item for rec in ranked]
