"""Dense integer ids for string ids, and arrays that grow with them.

>>> index = IdIndex()
>>> index.add("a"), index.add("b"), index.add("a")
(0, 1, 0)
>>> index.get("z") is None, len(index), index.ids
(True, 2, ['a', 'b'])
>>> index.known(["b", "z", "a"]).tolist()
[1, 0]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class IdIndex:
    """Assigns 0, 1, 2, ... to ids in order of first sight."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.positions: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key: object) -> bool:
        return key in self.positions

    def add(self, key: str) -> int:
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = len(self.ids)
            self.ids.append(key)
        return position

    def get(self, key: str) -> int | None:
        return self.positions.get(key)

    def known(self, keys: Iterable[str]) -> np.ndarray:
        """Positions of the keys that are known, as an int array (unknown ones skipped)."""
        get = self.positions.get
        found = [p for p in map(get, keys) if p is not None]
        return np.fromiter(found, dtype=np.int64, count=len(found))


def grow(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with at least ``size`` rows, new rows zero; grows by half to amortise copies.

    >>> a = grow(np.ones(2), 3)
    >>> a.shape[0] >= 3, a[:3].tolist()
    (True, [1.0, 1.0, 0.0])
    """
    if size <= array.shape[0]:
        return array
    capacity = max(size, array.shape[0] + array.shape[0] // 2, 16)
    bigger = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger
