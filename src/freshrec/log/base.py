"""The ``EventLog`` contract: an append-only, deduplicating, durable log of events.

Every event gets a *position*: an integer that strictly increases across the whole
log and is never reused, not even after an erasure. Learners remember the last
position they consumed and resume from it with ``read(after=...)``.

An event with an ``id`` is stored at most once: appending it again (in a later
batch or later in the same batch) reports it as a duplicate instead of storing it
twice, which makes client retries safe. Events without an id are never duplicates.

The log is the whole truth the models learn from, so besides events it holds the
other records they learn from, in the same position order: what a request showed
(:class:`~freshrec.records.Impression`) and catalog changes
(:class:`~freshrec.records.Item`). ``read``/``iterate`` give events only (what a
training reads); ``read_records``/``iterate_records`` give every record (what a
learner applies). Impressions are kept for a bounded time
(:meth:`EventLog.prune_impressions`).

>>> result = AppendResult.of([1, None, 2])
>>> (result.accepted, result.duplicates)
(2, 1)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from freshrec.records import Event, Impression, Item, ServedList

Record = TypeVar("Record")
LogRecord = Event | Impression | Item | ServedList
"""What the log holds: events, the other records the models learn from, and the lists
experiments served (which only the experiments read)."""
LearnedRecord = Event | Impression | Item
"""The records the models learn from."""
RECORD_KINDS: dict[type, str] = {Impression: "impression", Item: "item", ServedList: "served"}
PRUNED_KINDS = ("impression", "served")
"""The records kept for a bounded time (:meth:`EventLog.prune_impressions`)."""
"""How a stored non-event record names its kind."""

# Raw text kept for a quarantined record; enough to see what was wrong, bounded so a
# flood of huge bad payloads cannot fill the disk.
MAX_QUARANTINE_BYTES = 10_000
DEFAULT_ITERATE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Per input position: the assigned log position, or ``None`` for a duplicate."""

    positions: list[int | None]
    accepted: int
    duplicates: int

    @classmethod
    def of(cls, positions: list[int | None]) -> AppendResult:
        """Build a result, counting accepted events and duplicates from ``positions``."""
        duplicates = positions.count(None)
        return cls(positions=positions, accepted=len(positions) - duplicates,
                   duplicates=duplicates)


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record that could not be ingested, kept for a person to look at."""

    id: int
    kind: str
    raw: str
    reason: str
    created: float


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """Which quarantined records to list: case-insensitive substrings (``None``: any).

    ``text`` is looked for in the raw record and in the reason, ``reason`` in the reason.
    """

    text: str | None = None
    reason: str | None = None

    def matches(self, record: QuarantinedRecord) -> bool:
        """The rule for a backend that filters in Python (SQL backends say it in SQL)."""
        reason = record.reason.lower()
        if self.reason and self.reason.lower() not in reason:
            return False
        if self.text:
            text = self.text.lower()
            return text in record.raw.lower() or text in reason
        return True


ANY_RECORD = QuarantineFilter()


@runtime_checkable
class EventLog(Protocol):
    """An append-only event log; see the module docstring for positions and duplicates."""

    def append(self, events: Sequence[LogRecord]) -> AppendResult:
        """Store ``events`` (and any other records) in one transaction, durably.

        Every record gets the next position, in order; only events can be duplicates.
        """
        ...

    def read_records(self, after: int = 0,
                     limit: int | None = None) -> list[tuple[int, LogRecord]]:
        """Every record (events, impressions, items) after ``after``, in position order."""
        ...

    def iterate_records(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, LogRecord]]:
        """Stream every record after ``after``, ``batch`` at a time (what a learner applies)."""
        ...

    def prune_impressions(self, created_before: float) -> int:
        """Delete impressions and served lists stored before wall time ``created_before``;
        return how many."""
        ...

    def read(self, after: int = 0, limit: int | None = None) -> list[tuple[int, Event]]:
        """Events with a position greater than ``after``, in position order."""
        ...

    def iterate(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, Event]]:
        """Stream ``(position, event)`` after ``after``, ``batch`` rows in memory at a time."""
        ...

    def last_position(self) -> int:
        """The highest position ever assigned (erasures do not lower it); 0 for a new log."""
        ...

    def count(self) -> int:
        """How many events the log holds now."""
        ...

    def erase_user(self, user: str) -> int:
        """Delete every event of ``user`` (right to erasure); return how many were deleted.

        The erased ids are forgotten too, and so are the user's impressions and the
        quarantined records whose raw text contains the user id as a JSON string:
        nothing about the user is kept.
        """
        ...

    def quarantine(self, records: Sequence[tuple[str, str, str]]) -> None:
        """Keep ``(kind, raw_json, reason)`` records, raw text cut to 10 kB, timestamped."""
        ...

    def list_quarantine(self, limit: int = 100, offset: int = 0,
                        where: QuarantineFilter = ANY_RECORD) -> list[QuarantinedRecord]:
        """Quarantined records (those ``where`` matches), newest first."""
        ...

    def quarantine_count(self, where: QuarantineFilter = ANY_RECORD) -> int:
        """How many records (that ``where`` matches) are in quarantine."""
        ...

    def quarantine_reasons(self, bucket_s: float) -> list[tuple[str, float, int]]:
        """``(reason, bucket start, records)`` for every reason and ``bucket_s`` of wall
        time (when the records were quarantined), oldest bucket first."""
        ...

    def user_events(self, user: str, limit: int) -> list[tuple[int, Event]]:
        """The user's last ``limit`` events, newest (highest position) first."""
        ...

    def item_activity(self, item: str, bucket_s: float, since: float
                      ) -> list[tuple[float, int]]:
        """``(bucket start, events)`` on ``item`` per ``bucket_s`` of event time, for the
        events timestamped after ``since``, oldest first (buckets without events left out)."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...


def learned(records: Sequence[LogRecord]) -> list[LearnedRecord]:
    """The records among ``records`` that the models learn from (no served lists)."""
    return [record for record in records if not isinstance(record, ServedList)]


@dataclass
class NumberedBatch:
    """A batch given its positions: what each backend writes, in its own SQL."""

    positions: list[int | None]
    """Per record of the batch: its position, or None for a duplicate event."""
    events: list[tuple[int, Event]]
    others: list[tuple[int, LogRecord]]
    """Impressions, items and served lists, which the log keeps as records."""
    last: int


def number_batch(records: Sequence[LogRecord], last: int, stored_ids: set[str]
                 ) -> NumberedBatch:
    """Positions after ``last`` for ``records``, in order; an event whose id is in
    ``stored_ids`` or earlier in the batch is a duplicate and gets none.

    >>> batch = number_batch([Event(user="u", item="i", type="view", timestamp=0.0, id="a"),
    ...                       Event(user="u", item="i", type="view", timestamp=0.0, id="a"),
    ...                       Event(user="u", item="j", type="view", timestamp=0.0, id="b")],
    ...                      last=7, stored_ids={"b"})
    >>> batch.positions, batch.last
    ([8, None, None], 8)
    """
    seen = set(stored_ids)
    positions: list[int | None] = []
    events: list[tuple[int, Event]] = []
    others: list[tuple[int, LogRecord]] = []
    for record in records:
        if not isinstance(record, Event):
            last += 1
            positions.append(last)
            others.append((last, record))
            continue
        if record.id is not None:
            if record.id in seen:
                positions.append(None)
                continue
            seen.add(record.id)  # later copies in this batch are duplicates
        last += 1
        positions.append(last)
        events.append((last, record))
    return NumberedBatch(positions, events, others, last)


def iterate_pages(
    read: Callable[[int, int], list[tuple[int, Record]]], after: int, batch: int
) -> Iterator[tuple[int, Record]]:
    """Stream a log by repeated ``read(after, limit)`` calls (keyset pagination).

    Nothing is held open between pages, so a slow consumer never blocks writers.
    Events appended while iterating are included; erased ones may still appear if
    their page was already read.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    while True:
        page = read(after, batch)
        yield from page
        if len(page) < batch:
            return
        after = page[-1][0]


def bucket_start(moment: float, bucket_s: float) -> float:
    """The start of the ``bucket_s``-long bucket holding ``moment`` (as SQL backends
    compute it: ``CAST(moment / bucket_s AS INTEGER) * bucket_s``, for positive times).

    >>> bucket_start(125.0, 60)
    120.0
    """
    return float(int(moment / bucket_s) * bucket_s)


def truncate_raw(raw: str) -> str:
    """Cut ``raw`` to at most :data:`MAX_QUARANTINE_BYTES` of UTF-8, on a character boundary.

    >>> len(truncate_raw("é" * 6_000).encode())
    10000
    """
    encoded = raw.encode("utf-8", errors="replace")
    if len(encoded) <= MAX_QUARANTINE_BYTES:
        return raw
    return encoded[:MAX_QUARANTINE_BYTES].decode("utf-8", errors="ignore")


def user_marker(user: str) -> str:
    """The user id as it appears inside JSON text (quoted, escaped), for erasure.

    >>> user_marker('u"1')
    '"u\\\\"1"'
    """
    return json.dumps(user, ensure_ascii=False)
