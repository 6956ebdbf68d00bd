"""``PostgresEventLog``: the event log in a PostgreSQL database, shared by several machines.

The same tables and record encoding as :mod:`freshrec.log.sqlite` (events as columns,
other records as msgpack), so a log moves between the two row by row. Each ``append``
is one transaction:

1. ``SELECT ... FOR UPDATE`` locks the one row of ``log_position``, the last position
   handed out; every other appender, on this machine or another, waits there;
2. one ``SELECT`` finds which of the batch's ids are already stored; it is a separate
   statement after the lock, so its snapshot includes the appender just waited for;
3. positions are assigned in Python from the counter, and the rows go in with one
   ``INSERT ... SELECT FROM unnest(...)`` per table;
4. the counter row is updated and ``COMMIT`` flushes the WAL before ``append`` returns.

Why readers never skip a position: the counter row stays locked until ``COMMIT``, and
PostgreSQL makes a transaction visible before it releases its locks, so appends commit
in position order and become visible in it. A reader's statement sees a prefix of
the positions (less what was erased), never a later one without an earlier one, so
a learner resuming from ``read(after=p)`` cannot miss a record committed afterwards.
``read_records`` reads events and other records in ONE statement (one snapshot) for
the same reason.

Erasure deletes the rows; PostgreSQL reclaims their space at the next (auto)vacuum
and recycles the WAL that held them, as the embedded log's WAL truncation does at
once.

Example (needs a server)::

    log = PostgresEventLog("postgresql://freshrec@db.example/freshrec")
    log.append([Event(user="u1", item="i1", type="view", timestamp=0.0, id="e1")])
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from freshrec._postgres import Connection, PostgresDatabase, bound, columns
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
from freshrec.log.sqlite import _decode_record, _encode_record, _event
from freshrec.records import Event, Item

SCHEMA = """
-- The last position handed out, in one row that every append locks.
CREATE TABLE IF NOT EXISTS log_position (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last      bigint NOT NULL
);
INSERT INTO log_position (singleton, last) VALUES (true, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS events (
    position   bigint PRIMARY KEY,               -- from log_position: never reused
    id         text UNIQUE,                      -- NULL ids never conflict
    "user"     text NOT NULL,
    item       text NOT NULL,
    type       text NOT NULL,
    value      double precision,
    timestamp  double precision NOT NULL,
    session    text,
    request_id text                              -- the recommendation it reacts to
);
CREATE INDEX IF NOT EXISTS events_user ON events ("user");
-- An item's events over time (the console's trend of an item).
CREATE INDEX IF NOT EXISTS events_item ON events (item, timestamp);
-- The records other than events that the models learn from, in the same positions.
CREATE TABLE IF NOT EXISTS records (
    position bigint PRIMARY KEY,
    kind     text NOT NULL,                      -- impression | item | served
    "user"   text,                               -- an impression's or list's user
    payload  bytea NOT NULL,                     -- the record, msgpack
    created  double precision NOT NULL           -- wall time, for retention
);
CREATE INDEX IF NOT EXISTS records_user ON records ("user");
CREATE TABLE IF NOT EXISTS quarantine (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind    text NOT NULL,
    raw     text NOT NULL,
    reason  text NOT NULL,
    created double precision NOT NULL
);
"""

_EVENT_COLUMNS = 'position, "user", item, type, value, timestamp, id, session, request_id'
_LOCK_LAST = "SELECT last FROM log_position FOR UPDATE"
_STORED_IDS = "SELECT id FROM events WHERE id = ANY(%s::text[])"
_INSERT = (
    'INSERT INTO events (position, id, "user", item, type, value, timestamp, session, '
    "request_id) SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::float8[], %s::float8[], %s::text[], %s::text[])"
)
_INSERT_RECORDS = (
    'INSERT INTO records (position, kind, "user", payload, created) '
    "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bytea[], %s::float8[])"
)
_READ = (f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > %s "
         "ORDER BY position LIMIT %s")
# Events and records in one statement, so in one snapshot: two statements could see
# another machine's append between them, its records without its events.
_READ_RECORDS = (
    f"(SELECT {_EVENT_COLUMNS}, NULL::text AS kind, NULL::bytea AS payload FROM events "
    "WHERE position > %(after)s ORDER BY position LIMIT %(limit)s) "
    "UNION ALL (SELECT position, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, kind, "
    "payload FROM records WHERE position > %(after)s ORDER BY position LIMIT %(limit)s) "
    "ORDER BY position LIMIT %(limit)s"
)


class PostgresEventLog:
    """An :class:`~freshrec.log.base.EventLog` in a PostgreSQL database at ``url``.

    Any number of processes on any number of machines may append to one database:
    positions are assigned under the counter row's lock. The tables are created on
    first use.
    """

    def __init__(self, url: str) -> None:
        self._db = PostgresDatabase(url, SCHEMA, probe_table="quarantine")
        self.where = self._db.where

    def append(self, events: Sequence[LogRecord]) -> AppendResult:
        if not events:
            return AppendResult.of([])
        ids = [event.id for event in events if isinstance(event, Event) and event.id is not None]
        with self._db.transaction() as conn:
            last = _one(conn, _LOCK_LAST)
            first = last
            seen = _stored_ids(conn, ids)
            batch = number_batch(events, last, seen)
            last, positions = batch.last, batch.positions
            now = time.time()
            rows = [(at, event.id, event.user, event.item, event.type,
                     None if event.value is None else float(event.value),
                     float(event.timestamp), event.session, event.request_id)
                    for at, event in batch.events]
            others = [(at, RECORD_KINDS[type(record)],
                       None if isinstance(record, Item) else record.user,
                       _encode_record(record), now) for at, record in batch.others]
            if rows:
                conn.execute(_INSERT, columns(rows, 9))
            if others:
                conn.execute(_INSERT_RECORDS, columns(others, 5))
            if last != first:
                conn.execute("UPDATE log_position SET last = %s", (last,))
        return AppendResult.of(positions)

    def read(self, after: int = 0, limit: int | None = None) -> list[tuple[int, Event]]:
        rows = self._db.fetch(_READ, (after, bound(limit)))
        return [(position, _event(*row)) for position, *row in rows]

    def iterate(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, Event]]:
        return iterate_pages(self.read, after, batch)

    def read_records(self, after: int = 0,
                     limit: int | None = None) -> list[tuple[int, LogRecord]]:
        rows = self._db.fetch(_READ_RECORDS, {"after": after, "limit": bound(limit)})
        return [(position, _event(*fields) if kind is None else _decode_record(kind, payload))
                for position, *fields, kind, payload in rows]

    def iterate_records(
        self, after: int = 0, batch: int = DEFAULT_ITERATE_BATCH
    ) -> Iterator[tuple[int, LogRecord]]:
        return iterate_pages(self.read_records, after, batch)

    def prune_impressions(self, created_before: float) -> int:
        with self._db.transaction() as conn:
            return conn.execute(
                "DELETE FROM records WHERE kind = ANY(%s::text[]) AND created < %s",
                (list(PRUNED_KINDS), float(created_before))).rowcount

    def last_position(self) -> int:
        return int(self._db.fetch("SELECT last FROM log_position")[0][0])

    def count(self) -> int:
        return int(self._db.fetch("SELECT count(*) FROM events")[0][0])

    def erase_user(self, user: str) -> int:
        with self._db.transaction() as conn:
            erased = conn.execute('DELETE FROM events WHERE "user" = %s', (user,)).rowcount
            conn.execute('DELETE FROM records WHERE "user" = %s', (user,))
            conn.execute("DELETE FROM quarantine WHERE strpos(raw, %s) > 0",
                         (user_marker(user),))
        return erased

    def quarantine(self, records: Sequence[tuple[str, str, str]]) -> None:
        if not records:
            return
        now = time.time()
        rows = [(_text(kind), _text(truncate_raw(raw)), _text(reason), now)
                for kind, raw, reason in records]
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO quarantine (kind, raw, reason, created) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[])",
                columns(rows, 4))

    def list_quarantine(self, limit: int = 100, offset: int = 0,
                        where: QuarantineFilter = ANY_RECORD) -> list[QuarantinedRecord]:
        condition, params = _quarantine_where(where)
        rows = self._db.fetch(
            f"SELECT id, kind, raw, reason, created FROM quarantine {condition} "
            "ORDER BY id DESC LIMIT %s OFFSET %s",
            (*params, bound(limit), bound(offset)))
        return [QuarantinedRecord(*row) for row in rows]

    def quarantine_count(self, where: QuarantineFilter = ANY_RECORD) -> int:
        condition, params = _quarantine_where(where)
        return int(self._db.fetch(f"SELECT count(*) FROM quarantine {condition}", params)[0][0])

    def quarantine_reasons(self, bucket_s: float) -> list[tuple[str, float, int]]:
        # trunc, not a cast to an integer: PostgreSQL's cast rounds, SQLite's truncates.
        rows = self._db.fetch(
            "SELECT reason, trunc(created / %s) * %s AS bucket, count(*) FROM quarantine "
            'GROUP BY reason, bucket ORDER BY bucket, reason COLLATE "C"',
            (float(bucket_s), float(bucket_s)))
        return [(reason, float(bucket), int(n)) for reason, bucket, n in rows]

    def user_events(self, user: str, limit: int) -> list[tuple[int, Event]]:
        rows = self._db.fetch(
            f'SELECT {_EVENT_COLUMNS} FROM events WHERE "user" = %s '
            "ORDER BY position DESC LIMIT %s", (user, bound(limit)))
        return [(position, _event(*row)) for position, *row in rows]

    def item_activity(self, item: str, bucket_s: float, since: float
                      ) -> list[tuple[float, int]]:
        rows = self._db.fetch(
            "SELECT trunc(timestamp / %s) * %s AS bucket, count(*) FROM events "
            "WHERE item = %s AND timestamp > %s GROUP BY bucket ORDER BY bucket",
            (float(bucket_s), float(bucket_s), item, float(since)))
        return [(float(bucket), int(n)) for bucket, n in rows]

    def close(self) -> None:
        self._db.close()


def _one(conn: Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    if row is None:
        raise RuntimeError(f"{query!r} found no row: the log_position row is missing")
    return int(row[0])


def _stored_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The subset of ``ids`` already in the log (one indexed query for the whole batch)."""
    if not ids:
        return set()
    return {row[0] for row in conn.execute(_STORED_IDS, (ids,))}


def _text(text: str) -> str:
    """``text`` as PostgreSQL can store it: a ``text`` value cannot hold NUL."""
    return text.replace("\x00", "\ufffd")


def _quarantine_where(where: QuarantineFilter) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause of :class:`QuarantineFilter` (``strpos`` on lower case: no LIKE
    wildcards to escape in what a person types)."""
    clauses, params = [], []
    if where.reason:
        clauses.append("strpos(lower(reason), lower(%s)) > 0")
        params.append(_text(where.reason))
    if where.text:
        clauses.append("(strpos(lower(raw), lower(%s)) > 0 "
                       "OR strpos(lower(reason), lower(%s)) > 0)")
        params += [_text(where.text)] * 2
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)
