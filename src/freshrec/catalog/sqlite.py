"""``SQLiteCatalogStore``: items and users in a SQLite file, one JSON document per row.

Each record is stored as its msgspec JSON next to its id: the record shape can grow
without a migration, and an upsert is one ``INSERT ... ON CONFLICT DO UPDATE``.
Same durability and threading model as the event log (WAL, ``synchronous=FULL``,
one connection behind a lock; see :mod:`freshrec._sqlite`).

>>> from freshrec.records import Item
>>> catalog = SQLiteCatalogStore(":memory:")
>>> catalog.upsert_items([Item(id="i1", title="Tea", categories=("drinks",))])
>>> catalog.get_item("i1") == Item(id="i1", title="Tea", categories=("drinks",))
True
>>> [item.id for item in catalog.iter_items()]
['i1']
>>> catalog.close()
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import msgspec

from freshrec._sqlite import SQLiteDatabase
from freshrec.records import Item, User

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
"""
_PAGE = 1_000

_encode = msgspec.json.Encoder().encode
_decode_item = msgspec.json.Decoder(Item).decode
_decode_user = msgspec.json.Decoder(User).decode


class SQLiteCatalogStore:
    """A :class:`~freshrec.catalog.base.CatalogStore` in a SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        # secure_delete: a deleted user's attributes must not linger in free pages.
        self._db = SQLiteDatabase(path, SCHEMA, secure_delete=True)

    def upsert_items(self, items: Sequence[Item]) -> None:
        self._upsert("items", [(item.id, _encode(item)) for item in items])

    def get_item(self, item_id: str) -> Item | None:
        data = self._get("items", item_id)
        return None if data is None else _decode_item(data)

    def iter_items(self) -> Iterator[Item]:
        after = ""
        while True:  # keyset pagination: no cursor stays open between pages
            with self._db.reading() as conn:
                rows = conn.execute(
                    "SELECT id, data FROM items WHERE id > ? ORDER BY id LIMIT ?", (after, _PAGE)
                ).fetchall()
            yield from (_decode_item(data) for _, data in rows)
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def item_count(self) -> int:
        with self._db.reading() as conn:
            return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])

    def upsert_users(self, users: Sequence[User]) -> None:
        self._upsert("users", [(user.id, _encode(user)) for user in users])

    def get_user(self, user_id: str) -> User | None:
        data = self._get("users", user_id)
        return None if data is None else _decode_user(data)

    def delete_user(self, user_id: str) -> bool:
        with self._db.transaction() as conn:
            deleted = conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0
        self._db.truncate_wal()  # the WAL still holds the pages as they were
        return deleted

    def close(self) -> None:
        self._db.close()

    def _upsert(self, table: str, rows: list[tuple[str, bytes]]) -> None:
        if not rows:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                f"INSERT INTO {table} (id, data) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                rows,
            )

    def _get(self, table: str, record_id: str) -> bytes | None:
        with self._db.reading() as conn:
            row = conn.execute(f"SELECT data FROM {table} WHERE id = ?", (record_id,)).fetchone()
            return None if row is None else bytes(row[0])
