"""``PostgresModelRegistry``: model versions in a PostgreSQL database, shared by several machines.

The same layout as :class:`~freshrec.registry.models.SQLiteModelRegistry`: one JSON
document per version, its status also a column, and a partial unique index by which
the database itself refuses a second champion. The rules (what may be registered,
what ``update`` may change, who is retired by a promotion) are the shared functions of
:mod:`freshrec.registry.models`, so every backend enforces the same ones.

Why ``set_champion`` is safe when two machines call it at once: it is one transaction
that first takes a transaction-level advisory lock, so promotions run one at a time,
and only then reads who is champion, in a new statement whose snapshot includes the
promotion it waited for. Without the lock, both could read the same champion (or none)
and the second would either fail on the unique index or retire a version that is no
longer champion. The rows it rewrites are locked ``FOR UPDATE``, as ``update`` locks
its row, so a concurrent ``update`` (pinning the champion, say) is neither lost nor
applied to a stale copy. The lock is released by ``COMMIT``, ``ROLLBACK`` or a lost
connection, so a crashed promoter cannot hold it.

Connections and failures as for the other PostgreSQL stores (:mod:`freshrec._postgres`).

Example (needs a server)::

    registry = PostgresModelRegistry("postgresql://freshrec@db.example/freshrec")
    registry.set_champion("m0002")
"""

from __future__ import annotations

import builtins
from typing import Any

from freshrec._postgres import Connection, PostgresDatabase, bound
from freshrec.registry.models import (
    DEFAULT_LIST_LIMIT,
    ModelStatus,
    ModelVersion,
    UnknownModelVersion,
    apply_changes,
    check_new,
    check_status,
    decode_version,
    encode_version,
    first_unused_id,
    promotion,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- registration order
    id     text NOT NULL UNIQUE,
    status text NOT NULL,
    data   bytea NOT NULL                                    -- the ModelVersion as JSON
);
CREATE INDEX IF NOT EXISTS model_versions_status ON model_versions (status, seq);
-- The database itself refuses a second champion, whatever a buggy caller does.
CREATE UNIQUE INDEX IF NOT EXISTS model_versions_one_champion
    ON model_versions (status) WHERE status = 'champion';
"""
# Advisory locks are per database; this constant ("freshreg") only has to differ
# from the other locks freshrec takes in the same database.
_CHAMPION_LOCK = 0x6672657368726567
_CHAMPION = "SELECT data FROM model_versions WHERE status = 'champion'"


class PostgresModelRegistry:
    """A :class:`~freshrec.registry.models.ModelRegistry` in a PostgreSQL database at ``url``."""

    def __init__(self, url: str) -> None:
        self._db = PostgresDatabase(url, SCHEMA, probe_table="model_versions")
        self.where = self._db.where

    def register(self, version: ModelVersion) -> None:
        checked = check_new(version)
        with self._db.transaction() as conn:
            added = conn.execute(
                "INSERT INTO model_versions (id, status, data) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (checked.id, checked.status, encode_version(checked))).rowcount
            if not added:
                raise ValueError(f"model version {checked.id!r} is already registered")

    def get(self, version_id: str) -> ModelVersion | None:
        rows = self._db.fetch("SELECT data FROM model_versions WHERE id = %s", (version_id,))
        return _first(rows)

    def list(self, limit: int = DEFAULT_LIST_LIMIT,
             status: ModelStatus | None = None) -> builtins.list[ModelVersion]:
        check_status(status)
        rows = self._db.fetch(
            "SELECT data FROM model_versions WHERE %(status)s::text IS NULL "
            "OR status = %(status)s ORDER BY seq DESC LIMIT %(limit)s",
            {"status": status, "limit": bound(limit)})
        return [decode_version(bytes(data)) for (data,) in rows]

    def update(self, version_id: str, **changes: Any) -> ModelVersion:
        with self._db.transaction() as conn:
            version = _locked(conn, "SELECT data FROM model_versions WHERE id = %s",
                              version_id)
            if version is None:
                raise UnknownModelVersion(version_id)
            updated = apply_changes(version, changes)
            _write(conn, updated)
            return updated

    def champion(self) -> ModelVersion | None:
        return _first(self._db.fetch(_CHAMPION))

    def next_id(self) -> str:
        # One statement, one snapshot: the count and the ids agree.
        ids = {row[0] for row in self._db.fetch("SELECT id FROM model_versions")}
        return first_unused_id(len(ids) + 1, ids.__contains__)

    def set_champion(self, version_id: str, *, force: bool = False) -> None:
        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAMPION_LOCK,))
            new = _locked(conn, "SELECT data FROM model_versions WHERE id = %s", version_id)
            if new is None:
                raise UnknownModelVersion(version_id)
            old = _locked(conn, _CHAMPION)
            # The old champion first: the unique index allows one champion at a time.
            for changed in reversed(promotion(new, old, force=force)):
                _write(conn, changed)

    def close(self) -> None:
        self._db.close()


def _first(rows: builtins.list[tuple[Any, ...]]) -> ModelVersion | None:
    return decode_version(bytes(rows[0][0])) if rows else None


def _locked(conn: Connection, query: str, *params: str) -> ModelVersion | None:
    """The version ``query`` finds, its row locked until the transaction ends."""
    return _first(conn.execute(f"{query} FOR UPDATE", params).fetchall())


def _write(conn: Connection, version: ModelVersion) -> None:
    conn.execute("UPDATE model_versions SET status = %s, data = %s WHERE id = %s",
                 (version.status, encode_version(version), version.id))
