"""The engine's view of the catalog: dense item indices, availability, categories, age."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import Any

import numpy as np

from freshrec.models._arrays import grown
from freshrec.records import Item


class ItemIndex:
    """Maps item ids to dense indices and keeps what filters and features need.

    Every per-item array in the engine is indexed by these positions, so an item
    keeps its index for life; a removed item is marked unavailable, not deleted.

    >>> index = ItemIndex()
    >>> index.upsert(Item(id="a", categories=("x",), timestamp=5.0))
    0
    >>> index.category_mask("x")[:1].tolist(), float(index.first_seen[0])
    ([True], 5.0)
    """

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.position: dict[str, int] = {}
        self.records: list[Item | None] = []
        self.available = np.zeros(0, dtype=bool)
        self.first_seen = np.zeros(0, dtype=np.float64)
        self.first_event = np.zeros(0, dtype=np.float64)
        """Time of each item's first event (NaN before it has one)."""
        self._categories: dict[str, set[int]] = {}
        self._masks: dict[str, np.ndarray[Any, Any]] = {}
        self.version = 0
        """Bumped on every catalog change; content and caches key on it."""

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> dict[str, Any]:
        # Category masks are filled in by requests from ``_categories``: a snapshot does
        # not carry them, so that it is the same however many requests came before it.
        saved = self.__dict__.copy()
        saved["_masks"] = {}
        return saved

    def get(self, item_id: str) -> int | None:
        return self.position.get(item_id)

    def indices_of(self, item_ids: Iterable[str]) -> np.ndarray[Any, Any]:
        """Indices of the known ids among ``item_ids`` (unknown ones are skipped).

        A request's exclude list can hold a user's whole history, thousands of
        ids: one pass of ``dict.get`` (-1 for an unknown id) straight into an array,
        without a method call or a Python list per id.
        """
        found = np.fromiter(map(self.position.get, item_ids, repeat(-1)), dtype=np.int64)
        return found[found >= 0]

    def upsert(self, item: Item, now: float | None = None) -> int:
        """Add or replace an item's record; returns its index."""
        index = self.ensure(item.id, item.timestamp if item.timestamp is not None else now)
        previous = self.records[index]
        if previous is not None:
            for category in previous.categories:
                self._categories.get(category, set()).discard(index)
                self._masks.pop(category, None)
        for category in item.categories:
            self._categories.setdefault(category, set()).add(index)
            self._masks.pop(category, None)
        self.records[index] = item
        self.available[index] = item.available
        self.version += 1
        return index

    def ensure(self, item_id: str, timestamp: float | None = None) -> int:
        """Index of ``item_id``, creating a bare entry for an item seen only in events."""
        index = self.position.get(item_id)
        if index is not None:
            return index
        index = len(self.ids)
        self.ids.append(item_id)
        self.position[item_id] = index
        self.records.append(None)
        self.available = grown(self.available, index + 1)
        self.first_seen = grown(self.first_seen, index + 1)
        self.first_event = grown(self.first_event, index + 1, fill=np.nan)
        self.available[index] = True
        self.first_seen[index] = timestamp if timestamp is not None else 0.0
        self._masks.clear()
        self.version += 1
        return index

    def record_event(self, index: int, timestamp: float) -> None:
        if np.isnan(self.first_event[index]):
            self.first_event[index] = timestamp

    def category_mask(self, category: str) -> np.ndarray[Any, Any]:
        """Boolean mask over all indices of the items in ``category``."""
        mask = self._masks.get(category)
        if mask is None or mask.shape[0] != len(self.ids):
            mask = np.zeros(len(self.ids), dtype=bool)
            members = self._categories.get(category)
            if members:
                mask[list(members)] = True
            self._masks[category] = mask
        return mask

    def categories_of(self, index: int) -> tuple[str, ...]:
        record = self.records[index]
        return record.categories if record is not None else ()

    def content_of(self, index: int) -> str:
        record = self.records[index]
        return record.content if record is not None else ""
