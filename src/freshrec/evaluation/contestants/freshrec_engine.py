"""``freshrec``: the engine under test, behind the contestant interface.

The harness decides what to leave out, so the engine's own filters are switched
off (``exclude_seen=False``, ``available_only=False``) and the harness's set is
passed as ``exclude``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from freshrec.records import Event, Item
from freshrec.serving.results import Filters


def engine_available() -> str | None:
    """``None`` when ``freshrec.engine`` imports, else the reason it does not."""
    try:
        import freshrec.engine  # noqa: F401
    except Exception as error:  # any import failure means "not wired yet"
        return f"{type(error).__name__}: {error}"
    return None


class FreshrecEngine:
    """Adapter over :class:`freshrec.engine.Engine` with its default config."""

    name = "freshrec"

    def __init__(self, seed: int = 0) -> None:
        from freshrec import engine as engine_module

        config_class: Any = getattr(engine_module, "EngineConfig", None)
        if config_class is None:
            from freshrec.config import EngineConfig as config_class
        self.seed = seed
        self.engine = engine_module.Engine(config_class())

    def fit(self, records: Sequence[Item | Event]) -> None:
        self.engine.fit(records)

    def add_item(self, item: Item) -> None:
        self.engine.add_item(item)

    def learn_one(self, event: Event) -> None:
        self.engine.learn_one(event)

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        filters = Filters(exclude_seen=False, available_only=False, exclude=frozenset(exclude))
        return [rec.item for rec in self.engine.recommend(user, k, filters=filters)]
