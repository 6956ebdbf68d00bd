"""``PostgresCatalogStore``: items and users in a PostgreSQL database, one JSON document per row.

The same layout as :mod:`freshrec.catalog.sqlite`: each record's msgspec JSON next to
its id, so the record shape can grow without a migration, and an upsert is one
``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE``. Ids use the "C"
collation, so "id order" is code-point order whatever the database's locale, as in
SQLite. Connections and failures as for the event log (:mod:`freshrec._postgres`):
one connection behind a lock, :class:`~freshrec.errors.StoreUnavailable` for every
database error, a dropped connection replaced on the next call.

Example (needs a server)::

    catalog = PostgresCatalogStore("postgresql://freshrec@db.example/freshrec")
    catalog.upsert_items([Item(id="i1", title="Tea")])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from freshrec._postgres import PostgresDatabase
from freshrec.records import Item, User

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (id text COLLATE "C" PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS users (id text COLLATE "C" PRIMARY KEY, data bytea NOT NULL);
"""
_PAGE = 1_000

_encode = msgspec.json.Encoder().encode
_decode_item = msgspec.json.Decoder(Item).decode
_decode_user = msgspec.json.Decoder(User).decode


class PostgresCatalogStore:
    """A :class:`~freshrec.catalog.base.CatalogStore` in a PostgreSQL database at ``url``.

    Several processes or machines may share one database; the tables are created on
    first use.
    """

    def __init__(self, url: str) -> None:
        self._db = PostgresDatabase(url, SCHEMA, probe_table="users")
        self.where = self._db.where

    def upsert_items(self, items: Sequence[Item]) -> None:
        self._upsert("items", {item.id: _encode(item) for item in items})

    def get_item(self, item_id: str) -> Item | None:
        data = self._get("items", item_id)
        return None if data is None else _decode_item(data)

    def iter_items(self) -> Iterator[Item]:
        after = ""
        while True:  # keyset pagination: no cursor stays open between pages
            rows = self._db.fetch(
                "SELECT id, data FROM items WHERE id > %s ORDER BY id LIMIT %s", (after, _PAGE))
            yield from (_decode_item(data) for _, data in rows)
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def item_count(self) -> int:
        return int(self._db.fetch("SELECT count(*) FROM items")[0][0])

    def upsert_users(self, users: Sequence[User]) -> None:
        self._upsert("users", {user.id: _encode(user) for user in users})

    def get_user(self, user_id: str) -> User | None:
        data = self._get("users", user_id)
        return None if data is None else _decode_user(data)

    def delete_user(self, user_id: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount > 0

    def close(self) -> None:
        self._db.close()

    def _upsert(self, table: str, latest: dict[str, bytes]) -> None:
        """Store ``latest`` (one document per id: the batch's last copy won in the dict).

        One statement may not update a row twice, hence the dict; ids go in sorted so
        that two writers' overlapping batches lock rows in one order (no deadlock).
        """
        if not latest:
            return
        ids = sorted(latest)
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO {table} (id, data) "
                "SELECT * FROM unnest(%s::text[], %s::bytea[]) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (ids, [latest[record_id] for record_id in ids]))

    def _get(self, table: str, record_id: str) -> bytes | None:
        rows = self._db.fetch(f"SELECT data FROM {table} WHERE id = %s", (record_id,))
        return bytes(rows[0][0]) if rows else None
