"""``MemoryEventLog``: the event log in a Python list, for tests, demos and dry runs.

A real backend, held to the same contract tests as SQLite; it just forgets
everything when the process ends. Thread-safe through one lock.

>>> from freshrec.records import Event, Impression, ServedList
>>> log = MemoryEventLog()
>>> e = Event(user="u1", item="i1", type="view", timestamp=0.0, id="e1")
>>> log.append([e, e]).positions
[1, None]
>>> log.append([e]).duplicates
1
>>> [(position, event.item) for position, event in log.read()]
[(1, 'i1')]
"""

from __future__ import annotations

import bisect
import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from freshrec.errors import StoreUnavailable
from freshrec.log.base import (
    ANY_RECORD,
    DEFAULT_ITERATE_BATCH,
    AppendResult,
    LogRecord,
    QuarantinedRecord,
    QuarantineFilter,
    bucket_start,
    iterate_pages,
    truncate_raw,
    user_marker,
)
from freshrec.records import Event, Impression, ServedList


class MemoryEventLog:
    """An :class:`~freshrec.log.base.EventLog` in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._positions: list[int] = []  # sorted, parallel to _events, for bisect
        self._events: list[Event] = []
        self._record_positions: list[int] = []  # sorted, parallel to _records
        self._records: list[tuple[LogRecord, float]] = []  # (record, wall time stored)
        self._ids: set[str] = set()
        self._last = 0
        self._quarantine: list[QuarantinedRecord] = []
        self._quarantine_last = 0
        self._closed = False

    def append(self, events: Sequence[LogRecord]) -> AppendResult:
        positions: list[int | None] = []
        now = time.time()
        with self._lock:
            self._check_open()
            for event in events:
                if not isinstance(event, Event):
                    self._last += 1
                    self._record_positions.append(self._last)
                    self._records.append((event, now))
                    positions.append(self._last)
                    continue
                if event.id is not None:
                    if event.id in self._ids:
                        positions.append(None)
                        continue
                    self._ids.add(event.id)
                self._last += 1
                self._positions.append(self._last)
                self._events.append(event)
                positions.append(self._last)
        return AppendResult.of(positions)

    def read_records(self, after: int = 0,
                     limit: int | None = None) -> list[tuple[int, LogRecord]]:
        with self._lock:
            self._check_open()
            events: list[tuple[int, LogRecord]] = list(self._read_events(after, limit))
            start = bisect.bisect_right(self._record_positions, after)
            stop = len(self._record_positions) if limit is None else start + max(limit, 0)
            others: list[tuple[int, LogRecord]] = [
                (position, record) for position, (record, _) in zip(
                    self._record_positions[start:stop], self._records[start:stop],
                    strict=True)]
        merged = list(heapq.merge(events, others, key=lambda entry: entry[0]))
        return merged if limit is None else merged[:max(limit, 0)]

    def iterate_records(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, LogRecord]]:
        return iterate_pages(self.read_records, after, batch)

    def prune_impressions(self, created_before: float) -> int:
        with self._lock:
            self._check_open()
            return self._keep_records(lambda record, created: not (
                isinstance(record, Impression | ServedList) and created < created_before))

    def _keep_records(self, keep: Callable[[LogRecord, float], bool]) -> int:
        """Keep the non-event records ``keep`` says yes to; return how many went."""
        kept = [(position, entry) for position, entry
                in zip(self._record_positions, self._records, strict=True) if keep(*entry)]
        dropped = len(self._records) - len(kept)
        self._record_positions = [position for position, _ in kept]
        self._records = [entry for _, entry in kept]
        return dropped

    def read(self, after: int = 0, limit: int | None = None) -> list[tuple[int, Event]]:
        with self._lock:
            self._check_open()
            return self._read_events(after, limit)

    def _read_events(self, after: int, limit: int | None) -> list[tuple[int, Event]]:
        start = bisect.bisect_right(self._positions, after)
        stop = len(self._positions) if limit is None else start + max(limit, 0)
        return list(zip(self._positions[start:stop], self._events[start:stop], strict=True))

    def iterate(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, Event]]:
        return iterate_pages(self.read, after, batch)

    def last_position(self) -> int:
        with self._lock:
            self._check_open()
            return self._last

    def count(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._events)

    def erase_user(self, user: str) -> int:
        marker = user_marker(user)
        with self._lock:
            self._check_open()
            kept = [(p, e) for p, e in zip(self._positions, self._events, strict=True)
                    if e.user != user]
            erased = len(self._events) - len(kept)
            self._ids -= {e.id for e in self._events if e.user == user and e.id is not None}
            self._positions = [p for p, _ in kept]
            self._events = [e for _, e in kept]
            self._quarantine = [r for r in self._quarantine if marker not in r.raw]
            self._keep_records(lambda record, _: not (
                isinstance(record, Impression | ServedList) and record.user == user))
            return erased

    def quarantine(self, records: Sequence[tuple[str, str, str]]) -> None:
        now = time.time()
        with self._lock:
            self._check_open()
            for kind, raw, reason in records:
                self._quarantine_last += 1
                self._quarantine.append(
                    QuarantinedRecord(self._quarantine_last, kind, truncate_raw(raw), reason, now)
                )

    def list_quarantine(self, limit: int = 100, offset: int = 0,
                        where: QuarantineFilter = ANY_RECORD) -> list[QuarantinedRecord]:
        with self._lock:
            self._check_open()
            newest_first = [r for r in reversed(self._quarantine) if where.matches(r)]
            return newest_first[max(offset, 0): max(offset, 0) + max(limit, 0)]

    def quarantine_count(self, where: QuarantineFilter = ANY_RECORD) -> int:
        with self._lock:
            self._check_open()
            return sum(1 for r in self._quarantine if where.matches(r))

    def quarantine_reasons(self, bucket_s: float) -> list[tuple[str, float, int]]:
        with self._lock:
            self._check_open()
            counts = Counter((r.reason, bucket_start(r.created, bucket_s))
                             for r in self._quarantine)
        return sorted(((reason, start, n) for (reason, start), n in counts.items()),
                      key=lambda row: (row[1], row[0]))

    def user_events(self, user: str, limit: int) -> list[tuple[int, Event]]:
        with self._lock:
            self._check_open()
            found = [(p, e) for p, e in zip(self._positions, self._events, strict=True)
                     if e.user == user]
        return found[::-1][:max(limit, 0)]

    def item_activity(self, item: str, bucket_s: float, since: float
                      ) -> list[tuple[float, int]]:
        with self._lock:
            self._check_open()
            counts = Counter(bucket_start(e.timestamp, bucket_s) for e in self._events
                             if e.item == item and e.timestamp > since)
        return sorted(counts.items())

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the in-memory event log is closed")
