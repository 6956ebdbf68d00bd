"""``MemoryCatalogStore``: items and users in dicts, a real backend for tests and demos.

>>> from freshrec.records import Item
>>> catalog = MemoryCatalogStore()
>>> catalog.upsert_items([Item(id="i1", title="Tea"), Item(id="i1", title="Green tea")])
>>> catalog.get_item("i1").title
'Green tea'
>>> catalog.item_count()
1
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from freshrec.errors import StoreUnavailable
from freshrec.records import Item, User

_PAGE = 1_000


class MemoryCatalogStore:
    """A :class:`~freshrec.catalog.base.CatalogStore` in memory; thread-safe via one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Item] = {}
        self._users: dict[str, User] = {}
        self._closed = False

    def upsert_items(self, items: Sequence[Item]) -> None:
        with self._lock:
            self._check_open()
            self._items.update((item.id, item) for item in items)

    def get_item(self, item_id: str) -> Item | None:
        with self._lock:
            self._check_open()
            return self._items.get(item_id)

    def iter_items(self) -> Iterator[Item]:
        with self._lock:
            self._check_open()
            ids = sorted(self._items)
        # Look up page by page so a slow consumer does not hold the lock.
        for start in range(0, len(ids), _PAGE):
            with self._lock:
                self._check_open()
                page = [self._items.get(item_id) for item_id in ids[start:start + _PAGE]]
            yield from (item for item in page if item is not None)

    def item_count(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._items)

    def upsert_users(self, users: Sequence[User]) -> None:
        with self._lock:
            self._check_open()
            self._users.update((user.id, user) for user in users)

    def get_user(self, user_id: str) -> User | None:
        with self._lock:
            self._check_open()
            return self._users.get(user_id)

    def delete_user(self, user_id: str) -> bool:
        with self._lock:
            self._check_open()
            return self._users.pop(user_id, None) is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the in-memory catalog is closed")
