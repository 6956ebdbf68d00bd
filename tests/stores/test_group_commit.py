"""GroupCommitLog under concurrency: one inner commit serves many callers.

No timing assertions: where a test needs callers to pile up behind a commit it
holds the inner log on a gate and waits until every caller is queued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from freshrec.errors import StoreUnavailable
from freshrec.log import AppendResult, GroupCommitLog, MemoryEventLog, SQLiteEventLog
from freshrec.records import Event


def event(n: int, *, id: str | None = None) -> Event:
    return Event(user=f"u{n % 5}", item=f"i{n}", type="view", timestamp=float(n), id=id)


class GatedLog(MemoryEventLog):
    """A memory log whose appends wait for ``gate`` and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_with: Exception | None = None
        self.sizes: list[int] = []

    def append(self, events: Sequence[Event]) -> AppendResult:
        self.gate.wait()
        self.sizes.append(len(events))
        if self.fail_with is not None:
            raise self.fail_with
        return super().append(events)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.001)


def run_threads(count: int, target: Callable[[int], object]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_callers_queued_behind_a_commit_share_the_next_one() -> None:
    inner = GatedLog()
    inner.gate.clear()
    log = GroupCommitLog(inner)
    results: dict[int, AppendResult] = {}
    threads = run_threads(16, lambda n: results.__setitem__(n, log.append([event(n)])))
    wait_until(lambda: log.calls == 16)
    inner.gate.set()
    for thread in threads:
        thread.join()

    positions = [results[n].positions[0] for n in range(16)]
    assert sorted(positions) == list(range(1, 17))  # type: ignore[type-var]
    assert log.commits == len(inner.sizes) < log.calls == 16
    assert inner.count() == 16
    log.close()


def test_sixteen_threads_of_batch_one_on_sqlite(tmp_path: Path) -> None:
    log = GroupCommitLog(SQLiteEventLog(tmp_path / "events.sqlite"))
    per_thread, shared = 25, 5
    start = threading.Barrier(16)
    results: dict[int, list[AppendResult]] = {}

    def worker(n: int) -> None:
        start.wait()
        mine = []
        for k in range(per_thread):
            mine.append(log.append([event(k, id=f"t{n}-{k}")]))
            if k < shared:  # every thread also sends the same ids: one copy must win
                mine.append(log.append([event(k, id=f"shared-{k}")]))
        results[n] = mine

    for thread in run_threads(16, worker):
        thread.join()

    every = [p for mine in results.values() for r in mine for p in r.positions]
    accepted = [p for p in every if p is not None]
    assert len(accepted) == len(set(accepted)) == 16 * per_thread + shared
    assert every.count(None) == 15 * shared
    assert log.count() == len(accepted) == log.last_position()
    stored_ids = [e.id for _, e in log.read()]
    assert sorted(i for i in stored_ids if i and i.startswith("shared")) == [
        f"shared-{k}" for k in range(shared)
    ]
    assert log.calls == 16 * (per_thread + shared)
    assert log.commits < log.calls
    log.close()


def test_an_id_sent_by_two_callers_in_one_group_is_stored_once() -> None:
    inner = GatedLog()
    inner.gate.clear()
    log = GroupCommitLog(inner)
    results: dict[int, AppendResult] = {}
    threads = run_threads(4, lambda n: results.__setitem__(n, log.append([event(n, id="dup")])))
    wait_until(lambda: log.calls == 4)
    inner.gate.set()
    for thread in threads:
        thread.join()
    assert sorted(r.accepted for r in results.values()) == [0, 0, 0, 1]
    assert inner.count() == 1
    log.close()


def test_an_inner_failure_reaches_every_waiting_caller_and_the_log_recovers() -> None:
    inner = GatedLog()
    inner.gate.clear()
    inner.fail_with = OSError("disk full")
    log = GroupCommitLog(inner)
    errors: dict[int, BaseException] = {}

    def worker(n: int) -> None:
        try:
            log.append([event(n)])
        except BaseException as exc:
            errors[n] = exc

    threads = run_threads(8, worker)
    wait_until(lambda: log.calls == 8)
    inner.gate.set()
    for thread in threads:
        thread.join()

    assert sorted(errors) == list(range(8))
    for exc in errors.values():
        assert isinstance(exc, StoreUnavailable)
        assert isinstance(exc.__cause__, OSError)
        assert "disk full" in str(exc)
    assert inner.count() == 0 and log.commits == 0

    inner.fail_with = None
    assert log.append([event(9)]).positions == [1]
    assert log.commits == 1
    log.close()


def test_groups_respect_the_event_cap_but_never_split_a_batch() -> None:
    inner = GatedLog()
    inner.gate.clear()
    log = GroupCommitLog(inner, max_batch_events=3)
    threads = run_threads(10, lambda n: log.append([event(n)]))
    wait_until(lambda: log.calls == 10)
    inner.gate.set()
    for thread in threads:
        thread.join()
    assert max(inner.sizes) <= 3
    assert sum(inner.sizes) == 10
    assert log.append([event(n) for n in range(7)]).accepted == 7  # bigger than the cap
    log.close()


def test_close_commits_what_is_queued_then_refuses_appends() -> None:
    inner = GatedLog()
    inner.gate.clear()
    log = GroupCommitLog(inner)
    results: dict[int, AppendResult] = {}
    threads = run_threads(6, lambda n: results.__setitem__(n, log.append([event(n)])))
    wait_until(lambda: log.calls == 6)
    closer = threading.Thread(target=log.close)
    closer.start()
    inner.gate.set()
    for thread in [*threads, closer]:
        thread.join()

    assert sorted(r.positions[0] for r in results.values()) == list(range(1, 7))  # type: ignore[type-var]
    with pytest.raises(StoreUnavailable, match="closed"):
        log.append([event(1)])
    with pytest.raises(StoreUnavailable):
        inner.count()  # the inner log was closed too
    log.close()  # idempotent


def test_a_bad_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_events"):
        GroupCommitLog(MemoryEventLog(), max_batch_events=0)
