"""A training is reported as running until its decision, promotion included, is done."""

from __future__ import annotations

import threading

from freshrec.catalog.memory import MemoryCatalogStore
from freshrec.config import EngineConfig
from freshrec.data.synthetic import generate_shop
from freshrec.engine import Engine
from freshrec.lifecycle.manager import ModelLifecycle
from freshrec.log.memory import MemoryEventLog
from freshrec.registry.models import MemoryModelRegistry
from freshrec.registry.snapshots import MemorySnapshotStore


def _lifecycle(install: object) -> tuple[ModelLifecycle, MemoryModelRegistry]:
    shop = generate_shop(n_users=100, n_items=60, n_events=2000, seed=5)
    log, catalog = MemoryEventLog(), MemoryCatalogStore()
    catalog.upsert_items(shop.items)
    log.append(shop.events)
    registry = MemoryModelRegistry()
    lifecycle = ModelLifecycle(registry, MemorySnapshotStore(), EngineConfig(), install,  # type: ignore[arg-type]
                               log=log, catalog=catalog)
    return lifecycle, registry


def test_a_promotion_under_way_still_counts_as_a_running_training() -> None:
    seen_while_installing: list[bool] = []
    lifecycle: ModelLifecycle

    def install(engine: Engine, position: int, version: str) -> None:
        # What /v1/monitoring would report while the new model is being swapped in.
        seen_while_installing.append(lifecycle.running)

    lifecycle, registry = _lifecycle(install)
    try:
        version = lifecycle.start(1500, "first")
        assert lifecycle.wait()["decision"] == "promoted"  # type: ignore[index]
    finally:
        lifecycle.close()
    assert seen_while_installing == [True]
    assert not lifecycle.running
    champion = registry.champion()
    assert champion is not None and champion.id == version


def test_a_finished_training_is_concluded_once_when_two_threads_poll() -> None:
    installs: list[str] = []
    release = threading.Event()

    def install(engine: Engine, position: int, version: str) -> None:
        installs.append(version)
        release.wait(5)  # hold the first conclusion open while the other thread polls

    lifecycle, _ = _lifecycle(install)
    try:
        lifecycle.start(1500, "first")
        lifecycle.status.running.future.exception(timeout=600)  # type: ignore[union-attr]
        outcomes: list[object] = []
        threads = [threading.Thread(target=lambda: outcomes.append(lifecycle.poll()))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        release.set()
        for thread in threads:
            thread.join(30)
    finally:
        lifecycle.close()
    assert len(installs) == 1
    assert sorted(o is None for o in outcomes) == [False, True]
