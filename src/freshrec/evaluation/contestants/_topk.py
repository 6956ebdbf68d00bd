"""Top-k selection over a score vector: a vectorised path and its plain-Python reference.

Both return the same indices: highest score first, ties broken by the lower
index (the item known first), and ``-inf`` never returned (it marks excluded or
unscorable items).

>>> scores = np.array([0.5, 2.0, 2.0, -np.inf, 1.0])
>>> top_k(scores, 3).tolist(), top_k_reference(scores, 3)
([1, 2, 4], [1, 2, 4])
>>> top_k(scores, 10, exclude=np.array([1])).tolist()
[2, 4, 0]
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` best finite scores (``scores`` itself is not modified)."""
    if exclude is not None and exclude.size:
        scores = scores.copy()
        scores[exclude] = -np.inf
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        above = part[scores[part] > threshold]
        ties = np.flatnonzero(scores == threshold)[: k - above.shape[0]]
        chosen = np.concatenate([above, ties])
    else:
        chosen = np.arange(n)
    chosen = chosen[np.lexsort((chosen, -scores[chosen]))]
    result: np.ndarray = chosen[scores[chosen] > -np.inf]
    return result


def top_k_reference(scores: np.ndarray, k: int) -> list[int]:
    """The same answer as :func:`top_k`, by a full Python sort (slow, obviously right)."""
    values = [float(s) for s in scores]
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return [i for i in order[:k] if values[i] > -np.inf]


def top_k_with_fill(
    primary: np.ndarray, fallback: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """The best items by ``primary`` (only positive scores), filled up by ``fallback``.

    Items a contestant has evidence for come first; when there are fewer than
    ``k`` of them, the rest of the list is the best of the others by
    ``fallback`` (usually popularity).

    >>> top_k_with_fill(np.array([0.0, 3.0, 0.0, 1.0]), np.array([9.0, 0, 5, 0]), 3).tolist()
    [1, 3, 0]
    """
    n = primary.shape[0]
    masked = np.where(primary > 0, primary, -np.inf)
    if exclude is not None and exclude.size:
        masked[exclude] = -np.inf
    first = top_k(masked, k)
    if first.shape[0] >= k:
        return first
    rest = np.full(n, -np.inf)
    rest[: fallback.shape[0]] = fallback[:n]
    rest[first] = -np.inf
    if exclude is not None and exclude.size:
        rest[exclude] = -np.inf
    return np.concatenate([first, top_k(rest, k - first.shape[0])])
