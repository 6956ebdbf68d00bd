"""Arrays that grow with the catalog without copying on every new item."""

from __future__ import annotations

from typing import Any

import numpy as np


def grown(array: np.ndarray[Any, Any], size: int, fill: float = 0) -> np.ndarray[Any, Any]:
    """Return ``array`` if it holds ``size`` rows, else a copy with doubled capacity.

    Doubling keeps the amortised cost of adding an item constant.

    >>> a = grown(np.zeros(2), 3)
    >>> a.shape
    (16,)
    """
    if array.shape[0] >= size:
        return array
    capacity = max(size, 2 * array.shape[0], 16)
    bigger = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


def top_k(scores: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """Indices of the ``k`` largest finite scores, best first (ties broken by index).

    ``-inf`` marks an excluded entry and is never returned.

    >>> top_k(np.array([0.1, 0.9, -np.inf, 0.5]), 3).tolist()
    [1, 3, 0]
    """
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    part = part[np.isfinite(scores[part])]
    order = np.lexsort((part, -scores[part]))
    return part[order]


def widened(rows: np.ndarray[Any, Any], columns: int) -> np.ndarray[Any, Any]:
    """``rows`` with zero columns appended up to ``columns`` (feature rows of an older
    version, which had fewer features).

    >>> widened(np.ones((2, 1), dtype=np.float32), 3).tolist()
    [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if rows.shape[-1] >= columns:
        return rows
    padding = np.zeros((*rows.shape[:-1], columns - rows.shape[-1]), dtype=rows.dtype)
    return np.concatenate([rows, padding], axis=-1)
