"""The ``CatalogStore`` contract: the items that can be recommended, and the users.

Upserts replace a record whole (no field-level merge), so the store always holds
exactly what the last writer sent. ``delete_user`` is the catalog half of a right
to erasure request; the event log has ``erase_user`` for the other half.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from freshrec.records import Item, User


@runtime_checkable
class CatalogStore(Protocol):
    """Items and users by id."""

    def upsert_items(self, items: Sequence[Item]) -> None:
        """Insert or replace ``items`` in one transaction (the last copy of an id wins)."""
        ...

    def get_item(self, item_id: str) -> Item | None:
        """The item, or ``None`` if the catalog has never seen it."""
        ...

    def iter_items(self) -> Iterator[Item]:
        """Every item in id order, streamed; items upserted meanwhile may or may not appear."""
        ...

    def item_count(self) -> int:
        """How many items the catalog holds."""
        ...

    def upsert_users(self, users: Sequence[User]) -> None:
        """Insert or replace ``users`` in one transaction (the last copy of an id wins)."""
        ...

    def get_user(self, user_id: str) -> User | None:
        """The user, or ``None``."""
        ...

    def delete_user(self, user_id: str) -> bool:
        """Forget the user; ``True`` if they were there."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...
