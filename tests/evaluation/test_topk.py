"""The vectorised top-k against its plain-Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from freshrec.evaluation.contestants._topk import top_k, top_k_reference, top_k_with_fill


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_fast_path_matches_reference(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    # few distinct values, so there are many ties, and some excluded items
    scores = rng.integers(0, 5, size=40).astype(np.float64)
    scores[rng.random(40) < 0.2] = -np.inf
    assert top_k(scores, k).tolist() == top_k_reference(scores, k)


def test_exclusion_does_not_modify_the_input() -> None:
    scores = np.array([3.0, 2.0, 1.0])
    assert top_k(scores, 2, exclude=np.array([0])).tolist() == [1, 2]
    assert scores.tolist() == [3.0, 2.0, 1.0]


def test_empty_and_all_excluded() -> None:
    assert top_k(np.zeros(0), 5).tolist() == []
    assert top_k(np.array([1.0, 2.0]), 5, exclude=np.array([0, 1])).tolist() == []


def test_fill_puts_evidence_first_then_fallback() -> None:
    primary = np.array([0.0, 0.2, 0.0, 0.9, 0.0])
    fallback = np.array([5.0, 1.0, 7.0, 0.0, 6.0])
    assert top_k_with_fill(primary, fallback, 4).tolist() == [3, 1, 2, 4]
    assert top_k_with_fill(primary, fallback, 4, exclude=np.array([3, 2])).tolist() == [1, 4, 0]
