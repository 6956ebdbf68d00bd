"""A training is reported as running until its decision, promotion included, is done."""

from __future__ import annotations

import threading

from freshrec.catalog.memory import MemoryCatalogStore
from freshrec.config import EngineConfig
from freshrec.data.synthetic import generate_shop
from freshrec.engine import Engine
from freshrec.lifecycle.manager import LifecycleSettings, ModelLifecycle
from freshrec.log.memory import MemoryEventLog
from freshrec.registry.datasets import DatasetVersion
from freshrec.registry.models import MemoryModelRegistry, ModelVersion
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


class WatchedLock:
    """The lifecycle's own lock, telling the test when someone comes to it while it is
    held, so the test knows for certain that a second caller reached it mid-conclusion."""

    def __init__(self, lock: threading.Lock, second_came: threading.Event) -> None:
        self._lock = lock
        self._second_came = second_came

    def __enter__(self) -> WatchedLock:
        if self._lock.locked():  # someone else is concluding: this one must wait
            self._second_came.set()
        self._lock.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self._lock.release()


def test_a_finished_training_is_concluded_once_when_two_threads_poll() -> None:
    installs: list[str] = []
    second_came = threading.Event()  # the second poller is at the lock, or concluding too
    first_installing = threading.Event()

    def install(engine: Engine, position: int, version: str) -> None:
        installs.append(version)
        if len(installs) == 1:
            first_installing.set()
            # Hold the first conclusion open until the other poller has come as far as
            # it can: blocked on the lock, or (without one) into a second conclusion.
            second_came.wait(60)
        else:
            second_came.set()

    lifecycle, _ = _lifecycle(install)
    lifecycle._concluding = WatchedLock(lifecycle._concluding, second_came)  # type: ignore[assignment]
    try:
        lifecycle.start(1500, "first")
        lifecycle.status.running.future.exception(timeout=600)  # type: ignore[union-attr]
        outcomes: list[object] = []
        first = threading.Thread(target=lambda: outcomes.append(lifecycle.poll()))
        first.start()
        assert first_installing.wait(60)
        second = threading.Thread(target=lambda: outcomes.append(lifecycle.poll()))
        second.start()
        for thread in (first, second):
            thread.join(60)
    finally:
        lifecycle.close()
    assert second_came.is_set()
    assert len(installs) == 1
    assert sorted(o is None for o in outcomes) == [False, True]


def test_a_pin_asked_for_while_a_training_concludes_waits_for_the_conclusion() -> None:
    installed: list[str] = []
    pin_came = threading.Event()  # the pin is at the lifecycle's lock
    pins: list[threading.Thread] = []
    lifecycle: ModelLifecycle

    def install(engine: Engine, position: int, version: str) -> None:
        installed.append(version)
        if len(installed) == 2:  # the second conclusion is under way: an admin pins now
            champion = registry.champion()
            assert champion is not None
            pins.append(threading.Thread(target=lifecycle.pin, args=(champion.id, True)))
            pins[0].start()
            assert pin_came.wait(60)

    shop = generate_shop(n_users=100, n_items=60, n_events=2000, seed=5)
    log, catalog = MemoryEventLog(), MemoryCatalogStore()
    catalog.upsert_items(shop.items)
    log.append(shop.events)
    registry = MemoryModelRegistry()
    lifecycle = ModelLifecycle(registry, MemorySnapshotStore(), EngineConfig(), install,
                               LifecycleSettings(tolerance=10.0),  # the gate says yes
                               log=log, catalog=catalog)
    lifecycle._concluding = WatchedLock(lifecycle._concluding, pin_came)  # type: ignore[assignment]
    try:
        lifecycle.start(1500, "first")
        assert lifecycle.wait()["decision"] == "promoted"  # type: ignore[index]
        second = lifecycle.start(2000, "second")
        outcome = lifecycle.wait()  # without the lock, the pin lands mid-way: ChampionPinned
        pins[0].join(60)
    finally:
        lifecycle.close()
    assert outcome is not None and outcome["decision"] == "promoted"
    champion = registry.champion()
    assert champion is not None and champion.id == second == installed[-1]


def test_a_training_left_by_an_ended_process_is_refused_when_the_lifecycle_is_taken_over(
        ) -> None:
    lifecycle, registry = _lifecycle(lambda *_: None)
    try:
        # What a process that died mid-training leaves: the id it reserved, nothing else.
        orphan = registry.next_id()
        registry.register(ModelVersion(
            id=orphan, created=0.0, status="candidate", notes="training (left behind)",
            dataset=DatasetVersion(start_position=0, end_position=0, events=0,
                                   content_hash="", created=0.0)))
        running = lifecycle.start(1500, "ours")
        assert lifecycle.abandon_unfinished() == 1
        assert registry.get(orphan).status == "refused"  # type: ignore[union-attr]
        assert "abandoned" in registry.get(orphan).notes  # type: ignore[union-attr]
        assert registry.get(running).status == "candidate"  # type: ignore[union-attr]
        lifecycle.wait()
    finally:
        lifecycle.close()
