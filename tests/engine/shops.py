"""Small shops with a known answer, for engine tests."""

from __future__ import annotations

from freshrec.config import EngineConfig
from freshrec.records import Event, Item

# Two tastes: kitchen people buy k0..k4, garden people buy g0..g4.
KITCHEN = [f"k{i}" for i in range(5)]
GARDEN = [f"g{i}" for i in range(5)]
TEXT = {"k": "steel kitchen pan pot knife cooking", "g": "garden hose rake soil plant"}


def catalog() -> list[Item]:
    return [Item(id=item, title=f"{TEXT[item[0]]} {item}",
                 categories=("kitchen" if item[0] == "k" else "garden",), timestamp=0.0)
            for item in KITCHEN + GARDEN]


def history(users_per_taste: int = 20) -> list[Event]:
    events, t = [], 1.0
    for taste, items in (("k", KITCHEN), ("g", GARDEN)):
        for u in range(users_per_taste):
            for step in range(4):
                item = items[(u + step) % len(items)]
                events.append(Event(user=f"{taste}-user{u}", item=item, type="purchase",
                                    timestamp=t))
                t += 60.0
    return events


def small_config(**overrides: object) -> EngineConfig:
    settings: dict[str, object] = dict(factors=8, als_iterations=10, num_threads=1,
                                       content_min_events=1, warmup_fraction=0.3)
    settings.update(overrides)
    return EngineConfig(**settings)  # type: ignore[arg-type]
