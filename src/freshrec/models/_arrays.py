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
    part: np.ndarray[Any, Any] | None = np.arange(scores.size) if k >= scores.size else (
        _distinct_top(scores, k))
    if part is None:
        part = np.argpartition(-scores, k - 1)[:k]
    part = part[np.isfinite(scores[part])]
    order = np.lexsort((part, -scores[part]))
    return part[order]


_SAMPLE_STRIDE = 8
_SAMPLED_FROM = 1024
"""Arrays shorter than this are partitioned whole: the sample would not pay for itself."""


def _distinct_top(scores: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any] | None:
    """The indices of the ``k`` largest scores (in no order) when they are one set: None
    when the ``k``-th and the next tie (or the sample below misses), so that the caller
    partitions the whole array and picks among the tied exactly as it always has.

    Partitioning thousands of scores for a few dozen was a tenth of a request. A strided
    sample gives a threshold that about twice ``k`` scores pass; only those are
    partitioned. Whenever the ``k`` largest are distinct from the rest, any partition
    returns exactly them, so the answer is the same as the whole array's.

    >>> scores = np.arange(5000) * 7919 % 5000.0  # every value once, shuffled
    >>> sorted(scores[_distinct_top(scores, 3)].tolist())
    [4997.0, 4998.0, 4999.0]
    >>> tied = np.r_[np.zeros(5000), np.ones(4)]
    >>> _distinct_top(tied, 2) is None  # four 1s: which two is the whole partition's call
    True
    """
    if scores.shape[0] < _SAMPLED_FROM or k * 4 * _SAMPLE_STRIDE > scores.shape[0]:
        return None
    sample = scores[::_SAMPLE_STRIDE]
    rank = 2 * (k + 1) // _SAMPLE_STRIDE + 2
    threshold = -np.partition(-sample, rank)[rank]
    if not np.isfinite(threshold):
        return None
    above = np.flatnonzero(scores >= threshold)
    if above.shape[0] <= k:
        return None
    values = scores[above]
    order = np.argpartition(-values, (k - 1, k))
    if values[order[k - 1]] == values[order[k]]:
        return None
    return above[order[:k]]


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
