"""Dataset versions: the exact slice of the event log a model was trained on.

A :class:`DatasetVersion` names the positions ``(start_position, end_position]``
of the log and a sha256 over every event in that range, so a model can be traced
to the data it saw and that data can be read back and checked.

The hash is taken over a canonical encoding, the same for every log backend:
one JSON line per event, ``[position, id, user, item, type, value, timestamp,
session]`` in position order (``value`` and ``timestamp`` as floats), after a
header line ``["freshrec-dataset/1", start_position, end_position]`` and
followed, when a catalog was hashed too, by ``["catalog", <catalog sha256>]``.
Positions are part of each line, so erasing or changing any event in the range,
or inserting one, changes the hash.

Positions are never reused, but events can still disappear: a right-to-erasure
request deletes a user's events. :func:`read_dataset` re-hashes what it reads and
raises :class:`DatasetMismatch` when the log no longer holds the same data.

>>> from freshrec.log import MemoryEventLog
>>> from freshrec.records import Event
>>> log = MemoryEventLog()
>>> _ = log.append([Event(user="u1", item=f"i{n}", type="view", timestamp=n) for n in range(3)])
>>> version = dataset_version(log, end_position=2)
>>> (version.events, version.id == f"ds-2-{version.content_hash[:12]}")
(2, True)
>>> [event.item for event in read_dataset(log, version)]
['i0', 'i1']
>>> _ = log.erase_user("u1")
>>> list(read_dataset(log, version))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
freshrec.registry.datasets.DatasetMismatch: dataset ds-2-... no longer matches the event log...
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import msgspec

from freshrec.errors import FreshrecError
from freshrec.log.base import EventLog
from freshrec.records import Event

if TYPE_CHECKING:
    from freshrec.catalog.base import CatalogStore

FORMAT = "freshrec-dataset/1"
# Rows held in memory at a time while hashing; bounded whatever the log size.
READ_BATCH = 10_000

# "sorted": dict keys (item properties) in a fixed order, so equal data hashes equally.
_encode_lines = msgspec.json.Encoder(order="sorted").encode_lines
_encode = msgspec.json.Encoder(order="sorted").encode


class DatasetMismatch(FreshrecError):
    """The event log no longer holds the data a :class:`DatasetVersion` describes."""


class DatasetVersion(msgspec.Struct, frozen=True, kw_only=True):
    """Positions ``(start_position, end_position]`` of the log and the sha256 of their events.

    ``first_timestamp`` and ``last_timestamp`` bound the events' timestamps (``None``
    for an empty range): the time a holdout must start after.
    """

    start_position: int
    end_position: int
    events: int
    content_hash: str
    created: float
    catalog_hash: str | None = None
    first_timestamp: float | None = None
    last_timestamp: float | None = None

    @property
    def id(self) -> str:
        """``ds-<end_position>-<first 12 hex digits of the hash>``: short, and says how far."""
        return f"ds-{self.end_position}-{self.content_hash[:12]}"


def dataset_version(
    log: EventLog,
    end_position: int,
    start_position: int = 0,
    *,
    catalog: CatalogStore | None = None,
) -> DatasetVersion:
    """Hash the events in ``(start_position, end_position]``, streaming the log in batches.

    ``end_position`` must not be beyond ``log.last_position()``: positions not yet
    assigned could later fill with events and silently change the data. With a
    ``catalog`` its items are hashed too (see :func:`catalog_hash`); the catalog is
    not versioned, so that hash records which state was seen, not one to read back.
    """
    _check_range(start_position, end_position)
    last = log.last_position()
    if end_position > last:
        raise ValueError(f"end_position {end_position} is beyond the log's last position {last}")
    items = None if catalog is None else catalog_hash(catalog)
    digest = _Digest(start_position, end_position)
    for _ in digest.consume(_events_in(log, start_position, end_position)):
        pass
    return DatasetVersion(
        start_position=start_position, end_position=end_position, events=digest.events,
        content_hash=digest.hexdigest(items), created=time.time(), catalog_hash=items,
        first_timestamp=digest.first_timestamp, last_timestamp=digest.last_timestamp,
    )


def read_dataset(log: EventLog, version: DatasetVersion) -> Iterator[Event]:
    """Stream the events of ``version`` from ``log``, checking them against its hash.

    The check completes with the last event: iteration raises :class:`DatasetMismatch`
    at the end (or as soon as there are more events than recorded), so a consumer
    must treat what it built as valid only once the iterator is exhausted. Use
    :func:`verify_dataset` to check before reading.
    """
    digest = _Digest(version.start_position, version.end_position)
    for event in digest.consume(_events_in(log, version.start_position, version.end_position)):
        if digest.events > version.events:
            raise _mismatch(version, digest, version.catalog_hash)
        yield event
    if digest.events != version.events or (
        digest.hexdigest(version.catalog_hash) != version.content_hash
    ):
        raise _mismatch(version, digest, version.catalog_hash)


def verify_dataset(log: EventLog, version: DatasetVersion) -> None:
    """Read ``version`` back without keeping it; raise :class:`DatasetMismatch` if it changed."""
    for _ in read_dataset(log, version):
        pass


def catalog_hash(catalog: CatalogStore) -> str:
    """sha256 over every item of ``catalog`` as canonical JSON lines, in id order.

    >>> from freshrec.catalog import MemoryCatalogStore
    >>> from freshrec.records import Item
    >>> a, b = MemoryCatalogStore(), MemoryCatalogStore()
    >>> a.upsert_items([Item(id="i1", properties={"x": 1, "y": 2}), Item(id="i2")])
    >>> b.upsert_items([Item(id="i2"), Item(id="i1", properties={"y": 2, "x": 1})])
    >>> catalog_hash(a) == catalog_hash(b)
    True
    """
    sha = hashlib.sha256(_encode(["freshrec-catalog/1"]) + b"\n")
    batch = []
    for item in catalog.iter_items():
        batch.append(item)
        if len(batch) >= READ_BATCH:
            sha.update(_encode_lines(batch))
            batch.clear()
    sha.update(_encode_lines(batch))
    return sha.hexdigest()


class _Digest:
    """The running hash of one range, fed event by event."""

    def __init__(self, start: int, end: int) -> None:
        self._sha = hashlib.sha256(_encode([FORMAT, start, end]) + b"\n")
        self.events = 0
        self.first_timestamp: float | None = None
        self.last_timestamp: float | None = None

    def consume(self, rows: Iterable[tuple[int, Event]]) -> Iterator[Event]:
        """Hash ``rows`` in batches as they pass through; yield their events."""
        lines: list[tuple[object, ...]] = []
        low, high = self.first_timestamp, self.last_timestamp
        for position, event in rows:
            # float(): a memory log may hold an int timestamp where SQLite returns a
            # float; both must encode the same way.
            timestamp = float(event.timestamp)
            value = None if event.value is None else float(event.value)
            lines.append((position, event.id, event.user, event.item, event.type, value,
                          timestamp, event.session))
            if low is None or timestamp < low:
                low = timestamp
            if high is None or timestamp > high:
                high = timestamp
            self.events += 1
            if len(lines) >= READ_BATCH:
                self._sha.update(_encode_lines(lines))
                lines.clear()
            yield event
        self._sha.update(_encode_lines(lines))
        self.first_timestamp, self.last_timestamp = low, high

    def hexdigest(self, catalog: str | None) -> str:
        sha = self._sha.copy()
        if catalog is not None:
            sha.update(_encode(["catalog", catalog]) + b"\n")
        return sha.hexdigest()


def _events_in(log: EventLog, start: int, end: int) -> Iterator[tuple[int, Event]]:
    for position, event in log.iterate(after=start, batch=READ_BATCH):
        if position > end:
            return
        yield position, event


def _check_range(start: int, end: int) -> None:
    for name, value in (("start_position", start), ("end_position", end)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if end < start:
        raise ValueError(f"end_position {end} is before start_position {start}")


def _mismatch(version: DatasetVersion, digest: _Digest, catalog: str | None) -> DatasetMismatch:
    found = (f"more than {version.events} events" if digest.events > version.events
             else f"{digest.events} events with sha256 {digest.hexdigest(catalog)[:16]}…")
    return DatasetMismatch(
        f"dataset {version.id} no longer matches the event log: positions "
        f"({version.start_position}, {version.end_position}] held {version.events} events "
        f"with sha256 {version.content_hash[:16]}…, now {found}. Events in that range were "
        "changed or erased (a right-to-erasure request deletes a user's events), so the "
        "data this model was trained on cannot be read back exactly."
    )
