"""``GroupCommitLog``: many callers' small appends share one durable commit.

A durable commit costs an fsync (about a millisecond or more), whatever its size.
With one commit per HTTP request, batch-1 ingest is capped at the fsync rate. Here
callers from any number of threads enqueue their batch and wait; a single writer
thread takes everything queued (up to ``max_batch_events``), appends it to the
inner log in ONE call, so ONE fsync, and hands each caller its own slice of the
result. No timer is involved: while one commit is in flight the next group
gathers by itself, so an idle log adds no latency and a busy one batches more.

Semantics are those of the inner log applied to the concatenated batches in
queue order: positions still strictly increase, and an id sent by two callers in
the same group is stored once, for whichever caller was queued first.

If the inner append fails, every caller of that group gets
:class:`~freshrec.errors.StoreUnavailable` (the cause chained) and nothing of the
group is stored; the next group is tried afresh.

>>> from freshrec.log.memory import MemoryEventLog
>>> from freshrec.records import Event
>>> log = GroupCommitLog(MemoryEventLog())
>>> log.append([Event(user="u1", item="i1", type="view", timestamp=0.0, id="e1")]).positions
[1]
>>> (log.calls, log.commits)
(1, 1)
>>> log.close()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

from freshrec.errors import StoreUnavailable
from freshrec.log.base import (
    ANY_RECORD,
    DEFAULT_ITERATE_BATCH,
    AppendResult,
    EventLog,
    LogRecord,
    QuarantinedRecord,
    QuarantineFilter,
)
from freshrec.records import Event

DEFAULT_MAX_BATCH_EVENTS = 50_000


class _Waiter:
    """One caller's batch, and where the writer puts its answer."""

    __slots__ = ("done", "error", "events", "positions")

    def __init__(self, events: Sequence[LogRecord]) -> None:
        self.events = events
        self.done = threading.Event()
        self.positions: list[int | None] = []
        self.error: BaseException | None = None


class GroupCommitLog:
    """An :class:`~freshrec.log.base.EventLog` that batches concurrent appends into one.

    ``calls`` counts non-empty ``append`` calls and ``commits`` the inner appends
    that succeeded; under concurrency ``commits`` stays well below ``calls``.
    Every method other than ``append`` goes straight to the inner log.
    ``close()`` commits whatever is queued, stops the writer and closes the inner log.
    """

    def __init__(self, inner: EventLog, *,
                 max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS) -> None:
        if max_batch_events < 1:
            raise ValueError(f"max_batch_events must be at least 1, got {max_batch_events}")
        self.inner = inner
        self.max_batch_events = max_batch_events
        self.calls = 0
        self.commits = 0
        self._queue: deque[_Waiter] = deque()
        self._wakeup = threading.Condition()
        self._closed = False
        # Daemon: a process that forgets close() still exits; SQLite's transactions
        # make an interrupted commit all-or-nothing.
        self._writer = threading.Thread(target=self._run, name="freshrec-group-commit",
                                        daemon=True)
        self._writer.start()

    def append(self, events: Sequence[LogRecord]) -> AppendResult:
        if not events:
            return AppendResult.of([])
        waiter = _Waiter(events)
        with self._wakeup:
            if self._closed:
                raise StoreUnavailable("the event log is closed")
            self.calls += 1
            self._queue.append(waiter)
            self._wakeup.notify()
        waiter.done.wait()
        if waiter.error is not None:
            raise StoreUnavailable(
                f"the event log could not store the batch: {waiter.error}"
            ) from waiter.error
        return AppendResult.of(waiter.positions)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._closed:
                    self._wakeup.wait()
                if not self._queue:
                    return  # closed and drained
                group = [self._queue.popleft()]
                size = len(group[0].events)
                # Always take at least one batch, even one larger than the cap.
                while self._queue and size + len(self._queue[0].events) <= self.max_batch_events:
                    size += len(self._queue[0].events)
                    group.append(self._queue.popleft())
            self._commit(group)
            # Yield the GIL so callers just released can queue their next batch before
            # the next group is cut: bigger groups, no timed wait.
            time.sleep(0)

    def _commit(self, group: list[_Waiter]) -> None:
        if len(group) == 1:
            events: Sequence[LogRecord] = group[0].events
        else:
            events = [event for waiter in group for event in waiter.events]
        try:
            positions = self.inner.append(events).positions
        except BaseException as exc:  # the writer must outlive any failure
            for waiter in group:
                waiter.error = exc
                waiter.done.set()
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        start = 0
        for waiter in group:
            stop = start + len(waiter.events)
            waiter.positions = positions[start:stop]
            start = stop
            waiter.done.set()

    def read(self, after: int = 0, limit: int | None = None) -> list[tuple[int, Event]]:
        return self.inner.read(after, limit)

    def iterate(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, Event]]:
        return self.inner.iterate(after, batch)

    def read_records(self, after: int = 0,
                     limit: int | None = None) -> list[tuple[int, LogRecord]]:
        return self.inner.read_records(after, limit)

    def iterate_records(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, LogRecord]]:
        return self.inner.iterate_records(after, batch)

    def prune_impressions(self, created_before: float) -> int:
        return self.inner.prune_impressions(created_before)

    def last_position(self) -> int:
        return self.inner.last_position()

    def count(self) -> int:
        return self.inner.count()

    def erase_user(self, user: str) -> int:
        return self.inner.erase_user(user)

    def quarantine(self, records: Sequence[tuple[str, str, str]]) -> None:
        self.inner.quarantine(records)

    def list_quarantine(self, limit: int = 100, offset: int = 0,
                        where: QuarantineFilter = ANY_RECORD) -> list[QuarantinedRecord]:
        return self.inner.list_quarantine(limit, offset, where)

    def quarantine_count(self, where: QuarantineFilter = ANY_RECORD) -> int:
        return self.inner.quarantine_count(where)

    def quarantine_reasons(self, bucket_s: float) -> list[tuple[str, float, int]]:
        return self.inner.quarantine_reasons(bucket_s)

    def user_events(self, user: str, limit: int) -> list[tuple[int, Event]]:
        return self.inner.user_events(user, limit)

    def item_activity(self, item: str, bucket_s: float, since: float
                      ) -> list[tuple[float, int]]:
        return self.inner.item_activity(item, bucket_s, since)

    def close(self) -> None:
        with self._wakeup:
            already_closed = self._closed
            self._closed = True
            self._wakeup.notify_all()
        if self._writer is not threading.current_thread():
            self._writer.join()
        if not already_closed:
            self.inner.close()
