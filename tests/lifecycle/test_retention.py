"""Refused candidates keep their artifacts only while they are recent."""

from __future__ import annotations

from freshrec.catalog.memory import MemoryCatalogStore
from freshrec.config import EngineConfig
from freshrec.data.synthetic import generate_shop
from freshrec.engine import Engine
from freshrec.lifecycle.manager import LifecycleSettings, ModelLifecycle
from freshrec.log.memory import MemoryEventLog
from freshrec.registry.models import MemoryModelRegistry
from freshrec.registry.snapshots import MemorySnapshotStore

# Little better than nothing: the gate refuses it against any real champion.
BAD = {"factors": 1, "als_iterations": 1, "cooccurrence_window": 0, "transition_span": 0,
       "context_size": 0, "repeat_half_life": 1.0, "trending_half_lives": [1.0, 1.0, 1.0],
       "freshness_half_life": 1.0, "ranker_learning_rate": 0.0}


def test_only_the_newest_refused_candidates_keep_their_artifacts() -> None:
    shop = generate_shop(n_users=200, n_items=120, n_events=6000, seed=3)
    log, catalog = MemoryEventLog(), MemoryCatalogStore()
    catalog.upsert_items(shop.items)
    log.append(shop.events)
    registry, artifacts = MemoryModelRegistry(), MemorySnapshotStore()
    installed: list[str] = []

    def install(engine: Engine, position: int, version: str) -> None:
        installed.append(version)

    lifecycle = ModelLifecycle(registry, artifacts, EngineConfig(), install,
                               LifecycleSettings(keep_refused_artifacts=2),
                               log=log, catalog=catalog)
    try:
        position = 3000
        lifecycle.start(position, "first")
        assert lifecycle.wait()["decision"] == "promoted"
        refused = []
        for _ in range(4):
            position += 500
            version = lifecycle.start(position, "bad", params=BAD)
            outcome = lifecycle.wait()
            assert outcome is not None and outcome["decision"] == "refused", outcome
            refused.append(version)
    finally:
        lifecycle.close()

    kept = {v.id for v in registry.list(status="refused") if v.artifacts}
    assert kept == set(refused[-2:])
    stored = {info.id for info in artifacts.list()}
    for version_id in refused[:2]:
        version = registry.get(version_id)
        assert version is not None and version.artifacts == []
        assert "artifact deleted" in version.notes
        assert not any(name.endswith(version_id) for name in stored)
    # The champion's artifact is never touched.
    champion = registry.champion()
    assert champion is not None and champion.artifacts
    assert installed == [champion.id]
