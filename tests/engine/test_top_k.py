"""``top_k``'s sampled shortcut returns what partitioning the whole array returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from freshrec.models._arrays import top_k

Array = np.ndarray[Any, Any]


def _whole_partition(scores: Array, k: int) -> Array:
    """``top_k`` as it was: the whole array partitioned, whatever the ties."""
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    part = part[np.isfinite(scores[part])]
    return part[np.lexsort((part, -scores[part]))]


@pytest.mark.parametrize("kind", ["distinct", "few values", "mostly excluded", "sorted",
                                  "reversed", "infinite"])
def test_top_k_matches_the_whole_partition(kind: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n, k = int(rng.integers(1, 9000)), int(rng.integers(1, 60))
        scores = rng.random(n)
        if kind == "few values":  # ties at the cut: the shortcut must step aside
            scores = np.round(scores * 40)
        elif kind == "mostly excluded":
            scores[rng.random(n) < 0.95] = -np.inf
        elif kind == "sorted":
            scores.sort()
        elif kind == "reversed":
            scores = -np.sort(scores)
        elif kind == "infinite":
            scores[rng.random(n) < 0.01] = np.inf
        assert np.array_equal(top_k(scores, k), _whole_partition(scores, k)), (n, k)
