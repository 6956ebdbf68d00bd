"""``PostgresKeyStore``: API keys in a PostgreSQL database, shared by several machines.

The same table as :class:`~freshrec.security.keys.SQLiteKeyStore`: the key's SHA-256
(computed here: the key itself never reaches the server), the non-secret prefix
shown in listings, the name and the scopes. ``ensure`` is one
``INSERT ... ON CONFLICT (hash) DO UPDATE ... RETURNING``, so two machines starting
with the same ``FRESHREC_ADMIN_KEY`` agree on one row. A revoked key's row is deleted
and its space reclaimed at the next (auto)vacuum; until then only its hash, of a key
that no longer works, lingers in the table's pages.

Connections and failures as for the other PostgreSQL stores (:mod:`freshrec._postgres`).

Example (needs a server)::

    keys = PostgresKeyStore("postgresql://freshrec@db.example/freshrec")
    key = keys.create(["read"], name="web shop")
"""

from __future__ import annotations

import builtins
import hmac
import time
from collections.abc import Collection

from freshrec._postgres import PostgresDatabase
from freshrec.security.keys import (
    KeyInfo,
    _candidate_hash,
    _check_given_key,
    _info,
    _new_id,
    check_scopes,
    display_prefix,
    generate_key,
    hash_key,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id      text PRIMARY KEY,
    hash    text NOT NULL UNIQUE,             -- hex SHA-256 of the key; never the key
    prefix  text NOT NULL,
    name    text NOT NULL,
    scopes  text NOT NULL,                    -- space-separated
    created double precision NOT NULL
);
"""
_COLUMNS = "id, name, prefix, scopes, created"
_INSERT = ("INSERT INTO api_keys (id, hash, prefix, name, scopes, created) "
           "VALUES (%s, %s, %s, %s, %s, %s)")


class PostgresKeyStore:
    """A :class:`~freshrec.security.keys.KeyStore` in a PostgreSQL database at ``url``."""

    def __init__(self, url: str) -> None:
        self._db = PostgresDatabase(url, SCHEMA, probe_table="api_keys")
        self.where = self._db.where

    def create(self, scopes: Collection[str], name: str = "") -> str:
        chosen = check_scopes(scopes)
        key = generate_key()
        with self._db.transaction() as conn:
            conn.execute(_INSERT, (_new_id(), hash_key(key), display_prefix(key), name,
                                   " ".join(sorted(chosen)), time.time()))
        return key

    def verify(self, key: str) -> KeyInfo | None:
        digest = _candidate_hash(key)
        if digest is None:
            return None
        rows = self._db.fetch(f"SELECT hash, {_COLUMNS} FROM api_keys WHERE hash = %s",
                              (digest,))
        if not rows or not hmac.compare_digest(rows[0][0], digest):
            return None
        return _info(rows[0][1:])

    def hashes(self) -> dict[str, KeyInfo]:
        """Every key's hash and what verifying it tells: what a
        :class:`~freshrec.security.key_mirror.KeyMirror` copies."""
        rows = self._db.fetch(f"SELECT hash, {_COLUMNS} FROM api_keys")
        return {row[0]: _info(row[1:]) for row in rows}

    def list(self) -> builtins.list[KeyInfo]:
        rows = self._db.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, id")
        return [_info(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM api_keys WHERE id = %s", (key_id,)).rowcount > 0

    def ensure(self, key: str, scopes: Collection[str], name: str = "") -> KeyInfo:
        chosen = check_scopes(scopes)
        _check_given_key(key)
        digest = hash_key(key)
        with self._db.transaction() as conn:
            row = conn.execute(
                f"{_INSERT} ON CONFLICT (hash) DO UPDATE SET name = excluded.name, "
                f"scopes = excluded.scopes RETURNING {_COLUMNS}",
                (_new_id(), digest, display_prefix(key), name, " ".join(sorted(chosen)),
                 time.time())).fetchone()
        assert row is not None, "INSERT ... RETURNING returns the row"
        return _info(row)

    def close(self) -> None:
        self._db.close()
