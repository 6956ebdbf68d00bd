"""The catalog: items and users by id, behind the ``CatalogStore`` contract."""

from freshrec.catalog.base import CatalogStore
from freshrec.catalog.memory import MemoryCatalogStore
from freshrec.catalog.sqlite import SQLiteCatalogStore

__all__ = ["CatalogStore", "MemoryCatalogStore", "SQLiteCatalogStore"]
