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


_SAMPLE_STRIDE = 8


def top_k(scores: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """Indices of the ``k`` largest finite scores, best first (ties broken by index).

    ``-inf`` marks an excluded entry and is never returned.

    >>> top_k(np.array([0.1, 0.9, -np.inf, 0.5]), 3).tolist()
    [1, 3, 0]
    >>> top_k(np.repeat([1.0, 2.0], 600), 3).tolist()
    [600, 601, 602]
    """
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    candidates = None
    if scores.size >= 64 * k:
        # Selecting over the whole array is what a request pays for most (tens of µs on
        # thousands of items). The k-th best of every 8th score is a bound at least k
        # scores reach, and only ~8k do: the exact order is then taken among those.
        sample = scores[::_SAMPLE_STRIDE]
        bound = np.partition(sample, sample.size - k)[sample.size - k]
        if np.isfinite(bound):
            candidates = np.flatnonzero(scores >= bound)
    if candidates is None:
        candidates = np.flatnonzero(np.isfinite(scores))
    values = scores[candidates]
    if candidates.size > 4 * k:
        # Partial selection first when there are many, then an exact order of the rest;
        # every score tied with the k-th is kept, so the index decides among them.
        kth = values[np.argpartition(-values, k - 1)[k - 1]]
        keep = values >= kth
        candidates, values = candidates[keep], values[keep]
    finite = np.isfinite(values)
    if not finite.all():
        candidates, values = candidates[finite], values[finite]
    order = np.lexsort((candidates, -values))[:k]
    return candidates[order]
