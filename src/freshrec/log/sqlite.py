"""``SQLiteEventLog``: the event log in one embedded SQLite file, durable before ack.

Events are stored as columns (no pickles), so the file can be read by any SQLite
tool and migrated to PostgreSQL row by row. Each ``append`` is one transaction:

1. ``BEGIN IMMEDIATE`` takes the write lock, so nothing else can insert meanwhile;
2. one ``SELECT`` finds which of the batch's ids are already stored (the ids travel
   as a single JSON array, so batch size is not limited by SQL parameters);
3. positions are assigned in Python from ``sqlite_sequence`` and the new rows go in
   with one ``executemany`` of a prepared ``INSERT``;
4. ``COMMIT`` fsyncs the WAL (``synchronous=FULL``) before ``append`` returns.

Because step 2 runs under the write lock, the ``INSERT`` can never meet a
conflicting id; it has no ``ON CONFLICT`` clause on purpose, so a broken invariant
fails loudly (and rolls back) instead of mis-reporting positions.

Threads share one connection behind a lock (see :mod:`freshrec._sqlite`); for
many concurrent small appends wrap the log in
:class:`~freshrec.log.group_commit.GroupCommitLog`.

>>> from freshrec.records import Event, Impression, Item, ServedList
>>> log = SQLiteEventLog(":memory:")
>>> e = Event(user="u1", item="i1", type="view", timestamp=0.0, id="e1")
>>> log.append([e, e]).positions
[1, None]
>>> log.read()[0][1] == e
True
>>> log.close()
"""

from __future__ import annotations

import heapq
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from freshrec._sqlite import MAX_INTEGER, SQLiteDatabase
from freshrec.log.base import (
    ANY_RECORD,
    DEFAULT_ITERATE_BATCH,
    PRUNED_KINDS,
    RECORD_KINDS,
    AppendResult,
    LogRecord,
    QuarantinedRecord,
    QuarantineFilter,
    iterate_pages,
    number_batch,
    truncate_raw,
    user_marker,
)
from freshrec.records import Event, Impression, Item, ServedList

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position  INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused
    id        TEXT UNIQUE,                        -- NULL ids never conflict
    user      TEXT NOT NULL,
    item      TEXT NOT NULL,
    type      TEXT NOT NULL,
    value     REAL,
    timestamp REAL NOT NULL,
    session   TEXT,
    request_id TEXT                               -- the recommendation it reacts to
);
CREATE INDEX IF NOT EXISTS events_user ON events (user);
-- An item's events over time (the console's trend of an item).
CREATE INDEX IF NOT EXISTS events_item ON events (item, timestamp);
-- The records other than events that the models learn from, in the same positions.
CREATE TABLE IF NOT EXISTS records (
    position  INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,                      -- impression | item | served
    user      TEXT,                               -- an impression's or list's user
    payload   BLOB NOT NULL,                      -- the record, msgpack
    created   REAL NOT NULL                       -- wall time, for retention
);
CREATE INDEX IF NOT EXISTS records_user ON records (user);
CREATE TABLE IF NOT EXISTS quarantine (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    raw     TEXT NOT NULL,
    reason  TEXT NOT NULL,
    created REAL NOT NULL
);
"""

_INSERT = (
    "INSERT INTO events (position, id, user, item, type, value, timestamp, session, "
    "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STORED_IDS = "SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?))"
_LAST = "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
# Records take positions from the events' sequence, which only an events insert moves.
_MOVE_LAST = "UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'"
_FIRST_LAST = "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)"
_INSERT_RECORD = ("INSERT INTO records (position, kind, user, payload, created) "
                  "VALUES (?, ?, ?, ?, ?)")
_READ_RECORDS = ("SELECT position, kind, payload FROM records WHERE position > ? "
                 "ORDER BY position LIMIT ?")
_READ = (
    "SELECT position, user, item, type, value, timestamp, id, session, request_id FROM events "
    "WHERE position > ? ORDER BY position LIMIT ?"
)


class SQLiteEventLog:
    """An :class:`~freshrec.log.base.EventLog` in a SQLite file (WAL, ``synchronous=FULL``).

    Several processes may open the same file: positions are assigned under SQLite's
    write lock. ``":memory:"`` works too (not durable; for doctests).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._db = SQLiteDatabase(path, SCHEMA, secure_delete=True)
        self._add_request_ids()

    def _add_request_ids(self) -> None:
        """A log written before events kept their ``request_id`` gains the column."""
        with self._db.transaction() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
            if "request_id" not in columns:
                conn.execute("ALTER TABLE events ADD COLUMN request_id TEXT")

    def append(self, events: Sequence[LogRecord]) -> AppendResult:
        if not events:
            return AppendResult.of([])
        ids = [event.id for event in events if isinstance(event, Event) and event.id is not None]
        with self._db.transaction() as conn:
            seen = _stored_ids(conn, ids)
            row = conn.execute(_LAST).fetchone()
            first = row is None
            last = 0 if row is None else int(row[0])
            batch = number_batch(events, last, seen)
            last, positions = batch.last, batch.positions
            now = time.time()
            rows = [(at, event.id, event.user, event.item, event.type, event.value,
                     event.timestamp, event.session, event.request_id)
                    for at, event in batch.events]
            others = [(at, RECORD_KINDS[type(record)],
                       None if isinstance(record, Item) else record.user,
                       _encode_record(record), now) for at, record in batch.others]
            if rows:
                conn.executemany(_INSERT, rows)
            if others:
                conn.executemany(_INSERT_RECORD, others)
                # Only an events insert moves the sequence on by itself.
                conn.execute(_FIRST_LAST if first and not rows else _MOVE_LAST, (last,))
        return AppendResult.of(positions)

    def read(self, after: int = 0, limit: int | None = None) -> list[tuple[int, Event]]:
        with self._db.reading() as conn:
            rows = conn.execute(_READ, (after, -1 if limit is None else max(limit, 0)))
            return [(position, _event(*row)) for position, *row in rows]

    def iterate(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, Event]]:
        return iterate_pages(self.read, after, batch)

    def read_records(self, after: int = 0,
                     limit: int | None = None) -> list[tuple[int, LogRecord]]:
        bound = -1 if limit is None else max(limit, 0)
        with self._db.reading() as conn:
            # One read transaction: another process's append between the two queries
            # could otherwise show its records without its events, and a learner that
            # moved past them would never see those events.
            conn.execute("BEGIN")
            try:
                events: list[tuple[int, LogRecord]] = [
                    (position, _event(*row)) for position, *row
                    in conn.execute(_READ, (after, bound))]
                others = [(position, _decode_record(kind, payload)) for position, kind, payload
                          in conn.execute(_READ_RECORDS, (after, bound))]
            finally:
                conn.execute("COMMIT")
        if not others:
            return events
        merged = list(heapq.merge(events, others, key=lambda entry: entry[0]))
        return merged if limit is None else merged[:bound]

    def iterate_records(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, LogRecord]]:
        return iterate_pages(self.read_records, after, batch)

    def prune_impressions(self, created_before: float) -> int:
        with self._db.transaction() as conn:
            return int(conn.execute(
                "DELETE FROM records WHERE kind IN (SELECT value FROM json_each(?)) "
                "AND created < ?", (_encode_json(PRUNED_KINDS).decode(), created_before)).rowcount)

    def last_position(self) -> int:
        with self._db.reading() as conn:
            row = conn.execute(_LAST).fetchone()
            return 0 if row is None else int(row[0])

    def count(self) -> int:
        with self._db.reading() as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def erase_user(self, user: str) -> int:
        with self._db.transaction() as conn:
            erased = conn.execute("DELETE FROM events WHERE user = ?", (user,)).rowcount
            conn.execute("DELETE FROM records WHERE user = ?", (user,))
            conn.execute("DELETE FROM quarantine WHERE instr(raw, ?) > 0", (user_marker(user),))
        self._db.truncate_wal()  # the WAL still holds the pages as they were
        return int(erased)

    def quarantine(self, records: Sequence[tuple[str, str, str]]) -> None:
        if not records:
            return
        now = time.time()
        rows = [(kind, truncate_raw(raw), reason, now) for kind, raw, reason in records]
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO quarantine (kind, raw, reason, created) VALUES (?, ?, ?, ?)", rows
            )

    def list_quarantine(self, limit: int = 100, offset: int = 0,
                        where: QuarantineFilter = ANY_RECORD) -> list[QuarantinedRecord]:
        condition, params = _quarantine_where(where)
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT id, kind, raw, reason, created FROM quarantine "
                f"{condition} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, min(max(limit, 0), MAX_INTEGER), min(max(offset, 0), MAX_INTEGER)),
            )
            return [QuarantinedRecord(*row) for row in rows]

    def quarantine_count(self, where: QuarantineFilter = ANY_RECORD) -> int:
        condition, params = _quarantine_where(where)
        with self._db.reading() as conn:
            return int(conn.execute(f"SELECT count(*) FROM quarantine {condition}",
                                    params).fetchone()[0])

    def quarantine_reasons(self, bucket_s: float) -> list[tuple[str, float, int]]:
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT reason, CAST(created / ? AS INTEGER) * ? AS bucket, count(*) "
                "FROM quarantine GROUP BY reason, bucket ORDER BY bucket, reason",
                (bucket_s, bucket_s)).fetchall()
        return [(reason, float(bucket), int(n)) for reason, bucket, n in rows]

    def user_events(self, user: str, limit: int) -> list[tuple[int, Event]]:
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT position, user, item, type, value, timestamp, id, session, request_id "
                "FROM events WHERE user = ? ORDER BY position DESC LIMIT ?",
                (user, min(max(limit, 0), MAX_INTEGER))).fetchall()
        return [(row[0], _event(*row[1:])) for row in rows]

    def item_activity(self, item: str, bucket_s: float, since: float
                      ) -> list[tuple[float, int]]:
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT CAST(timestamp / ? AS INTEGER) * ? AS bucket, count(*) FROM events "
                "WHERE item = ? AND timestamp > ? GROUP BY bucket ORDER BY bucket",
                (bucket_s, bucket_s, item, since)).fetchall()
        return [(float(bucket), int(n)) for bucket, n in rows]

    def close(self) -> None:
        self._db.close()


_encode_json = msgspec.json.Encoder().encode
_encode_record = msgspec.msgpack.Encoder().encode
_RECORD_DECODERS: dict[str, msgspec.msgpack.Decoder[Any]] = {
    "impression": msgspec.msgpack.Decoder(Impression), "item": msgspec.msgpack.Decoder(Item),
    "served": msgspec.msgpack.Decoder(ServedList)}


def _quarantine_where(where: QuarantineFilter) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause of :class:`QuarantineFilter` (``instr`` on lower case: no LIKE
    wildcards to escape in what a person types)."""
    clauses, params = [], []
    if where.reason:
        clauses.append("instr(lower(reason), lower(?)) > 0")
        params.append(where.reason)
    if where.text:
        clauses.append("(instr(lower(raw), lower(?)) > 0 OR instr(lower(reason), lower(?)) > 0)")
        params += [where.text, where.text]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _event(user: str, item: str, kind: str, value: float | None, timestamp: float,
           event_id: str | None, session: str | None, request_id: str | None) -> Event:
    return Event(user=user, item=item, type=kind, timestamp=timestamp, value=value,
                 id=event_id, session=session, request_id=request_id)


def _decode_record(kind: str, payload: bytes) -> Impression | Item | ServedList:
    decoded: Impression | Item | ServedList = _RECORD_DECODERS[kind].decode(payload)
    return decoded


def _stored_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    """The subset of ``ids`` already in the log (one indexed query for the whole batch)."""
    if not ids:
        return set()
    rows = conn.execute(_STORED_IDS, (_encode_json(ids).decode(),))
    return {row[0] for row in rows}
