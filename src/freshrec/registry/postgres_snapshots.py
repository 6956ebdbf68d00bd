"""``PostgresSnapshotStore``: model snapshots in a PostgreSQL database, shared by several machines.

It behaves as :class:`~freshrec.registry.snapshots.LocalSnapshotStore`: the same ids
(``<10-digit sequence>-<name>``), order, pruning and sha256 check on load, through the
shared functions of :mod:`freshrec.registry.snapshots`. ``namespace`` keeps apart the
uses that share one database (the runtime's state snapshots, the model artifacts):
each has its own sequence and never sees another's snapshots.

Layout: a row per snapshot in ``snapshots`` and its payload cut into ``bytea`` rows of
``chunk_bytes`` (8 MiB) in ``snapshot_chunks``, since one value is limited to 1 GB and
a single huge value would be built whole in memory on both sides. A save is one
transaction, so a snapshot is visible whole or not at all: a writer killed mid-save
leaves only rows that were never committed, which PostgreSQL discards itself, and
``remove_leftovers`` has nothing to do. The chunks are written first and the
snapshot's row last, under a per-namespace advisory lock that only covers picking the
next sequence number, so two machines saving large models at once upload in parallel
and still get distinct ids in commit order. The chunks' foreign key is checked at
``COMMIT`` (it is deferred) and cascades a delete.

Memory: a save sends ``memoryview`` slices of the caller's payload, one chunk at a
time; a load fetches one chunk per statement into one growing buffer whose bytes are
returned without a final copy. So either holds about the payload plus a chunk or two,
never several copies of a 100 MB model. Chunks are stored uncompressed (``STORAGE
EXTERNAL``): model weights hardly compress, and it spares the CPU.

Connections and failures as for the other PostgreSQL stores (:mod:`freshrec._postgres`):
every database error is :class:`~freshrec.errors.StoreUnavailable`; a missing or
damaged payload is :class:`~freshrec.errors.CorruptSnapshot`, as from the local store.

Example (needs a server)::

    artifacts = PostgresSnapshotStore("postgresql://freshrec@db.example/freshrec",
                                      namespace="artifacts")
    info = artifacts.save("biased_mf", payload, {"log_position": 1200})
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import json
import time
from collections.abc import Mapping
from typing import Any

from freshrec._postgres import PostgresDatabase, Row
from freshrec.errors import CorruptSnapshot
from freshrec.registry.snapshots import (
    ID_PATTERN,
    NAME_PATTERN,
    SnapshotInfo,
    describe_new,
    log_position_of,
    to_prune,
    verified,
)

CHUNK_BYTES = 8 * 1024 * 1024
SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS snapshot_keys;
CREATE TABLE IF NOT EXISTS snapshots (
    key       bigint PRIMARY KEY DEFAULT nextval('snapshot_keys'),
    namespace text NOT NULL,
    seq       bigint NOT NULL,               -- the id's number, per namespace
    id        text NOT NULL,
    name      text NOT NULL,
    sha256    text NOT NULL,
    size      bigint NOT NULL,
    created   double precision NOT NULL,
    metadata  text NOT NULL,                 -- JSON, as the local store's sidecar
    chunks    integer NOT NULL,              -- rows in snapshot_chunks, numbered from 0
    UNIQUE (namespace, seq),
    UNIQUE (namespace, id)
);
CREATE TABLE IF NOT EXISTS snapshot_chunks (
    snapshot bigint NOT NULL REFERENCES snapshots (key) ON DELETE CASCADE
             DEFERRABLE INITIALLY DEFERRED,  -- the chunks are written before their row
    n        integer NOT NULL,
    data     bytea NOT NULL,
    PRIMARY KEY (snapshot, n)
);
ALTER TABLE snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
"""
NAMESPACE_LOCK_KEY = "hashtextextended('freshrec.snapshots:' || %s, 0)"
"""The SQL of a namespace's advisory lock key (one parameter, the namespace), taken
while a save picks its sequence number."""
_INFO = "id, name, sha256, size, created, metadata"


STATE_SNAPSHOTS = "state"
"""The namespace of the runtime's snapshots of the model state."""
MODEL_ARTIFACTS = "models"
"""The namespace of the model versions' artifacts (written by the training process)."""


class PostgresSnapshotStore:
    """A :class:`~freshrec.registry.snapshots.SnapshotStore` in the PostgreSQL database at
    ``url``, under ``namespace``."""

    def __init__(self, url: str, *, namespace: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        if not isinstance(namespace, str) or not NAME_PATTERN.match(namespace):
            raise ValueError(f"snapshot namespace {namespace!r} must be 1-64 letters, digits, "
                             "'_', '.' or '-', starting with a letter or digit")
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be 1 or more, got {chunk_bytes}")
        self.namespace = namespace
        self.chunk_bytes = chunk_bytes
        self._db = PostgresDatabase(url, SCHEMA, probe_table="snapshot_chunks")
        self.where = self._db.where

    def save(self, name: str, payload: bytes,
             metadata: Mapping[str, Any] | None = None) -> SnapshotInfo:
        # Checked and hashed before the database is touched; the id is set below.
        draft = describe_new(name, 0, payload, metadata)
        view = memoryview(payload).cast("B")
        # An empty payload is one empty chunk: no chunk at all means "missing".
        starts = range(0, max(len(view), 1), self.chunk_bytes)
        with self._db.transaction() as conn:
            key = _one(conn.execute("SELECT nextval('snapshot_keys')").fetchall())
            for n, start in enumerate(starts):
                conn.execute("INSERT INTO snapshot_chunks (snapshot, n, data) "
                             "VALUES (%s, %s, %b)",
                             (key, n, view[start:start + self.chunk_bytes]))
            conn.execute(f"SELECT pg_advisory_xact_lock({NAMESPACE_LOCK_KEY})",
                         (self.namespace,))
            # After the lock, so this statement sees the previous holder's commit.
            seq = 1 + _one(conn.execute(
                "SELECT coalesce(max(seq), 0) FROM snapshots WHERE namespace = %s",
                (self.namespace,)).fetchall())
            # Stamped now, so ``created`` rises with the sequence as in the local store.
            info = dataclasses.replace(draft, id=f"{seq:010d}-{name}", created=time.time())
            conn.execute(
                "INSERT INTO snapshots (key, namespace, seq, id, name, sha256, size, created, "
                "metadata, chunks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key, self.namespace, seq, info.id, info.name, info.sha256, info.size,
                 info.created, json.dumps(info.metadata), len(starts)))
        return info

    def latest(self, name: str | None = None) -> SnapshotInfo | None:
        snapshots = self.list(name)
        return snapshots[-1] if snapshots else None

    def load(self, info: SnapshotInfo) -> bytes:
        if not ID_PATTERN.match(info.id):
            raise CorruptSnapshot(f"{info.id!r} is not a snapshot id")
        rows = self._db.fetch(
            "SELECT s.key, s.chunks, c.n FROM snapshots s "
            "LEFT JOIN snapshot_chunks c ON c.snapshot = s.key "
            "WHERE s.namespace = %s AND s.id = %s ORDER BY c.n",
            (self.namespace, info.id))
        if not rows:
            raise CorruptSnapshot(f"snapshot {info.id} is missing")
        key, count = rows[0][0], rows[0][1]
        stored = [row[2] for row in rows if row[2] is not None]  # None: the join found none
        if stored != list(range(count)):
            raise CorruptSnapshot(f"snapshot {info.id} is missing chunks: {len(stored)} "
                                  f"of its {count} are stored")
        buffer = io.BytesIO()
        for n in range(count):
            # One chunk per statement, so one chunk at a time is held beside the buffer.
            chunk = self._db.fetch("SELECT data FROM snapshot_chunks "
                                   "WHERE snapshot = %s AND n = %s", (key, n), binary=True)
            if not chunk:  # deleted since the first statement
                raise CorruptSnapshot(f"snapshot {info.id} is missing (deleted while read)")
            buffer.write(chunk[0][0])
            del chunk
        # BytesIO hands over its own buffer here rather than copying it.
        return verified(info, buffer.getvalue())

    def list(self, name: str | None = None) -> builtins.list[SnapshotInfo]:
        rows = self._db.fetch(
            f"SELECT {_INFO} FROM snapshots WHERE namespace = %(namespace)s "
            "AND (%(name)s::text IS NULL OR name = %(name)s) ORDER BY seq",
            {"namespace": self.namespace, "name": name})
        return [_info(row) for row in rows]

    def prune(self, keep: int) -> int:
        doomed = to_prune(self.list(), keep)
        if not doomed:
            return 0
        with self._db.transaction() as conn:
            # The rowcount, not len(doomed): another machine may have pruned some already.
            return conn.execute(
                "DELETE FROM snapshots WHERE namespace = %s AND id = ANY(%s)",
                (self.namespace, [info.id for info in doomed])).rowcount

    def delete(self, snapshot_id: str) -> bool:
        if not ID_PATTERN.match(snapshot_id):
            return False
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM snapshots WHERE namespace = %s AND id = %s",
                                (self.namespace, snapshot_id)).rowcount > 0

    def remove_leftovers(self) -> None:
        """Nothing to do: a save cut short was never committed, and PostgreSQL discards
        its rows itself (the space at the next vacuum)."""

    def close(self) -> None:
        """Close the connection; later calls raise StoreUnavailable. Idempotent."""
        self._db.close()


def _info(row: Row) -> SnapshotInfo:
    snapshot_id, name, sha256, size, created, metadata = row
    plain = json.loads(metadata)
    return SnapshotInfo(id=snapshot_id, name=name, sha256=sha256, size=int(size),
                        created=float(created), log_position=log_position_of(plain),
                        metadata=plain)


def _one(rows: builtins.list[Row]) -> int:
    return int(rows[0][0])
