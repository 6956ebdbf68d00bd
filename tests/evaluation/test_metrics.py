"""HR@k, Recall@k and NDCG@k on cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from freshrec.evaluation.metrics import CutTotals, score_request


def test_one_target_at_the_top() -> None:
    # hit at rank 0: DCG = 1/log2(2) = 1, IDCG = 1
    assert score_request(["a", "b", "c"], {"a"}, k=10) == (1.0, 1.0, 1.0)


def test_one_target_third() -> None:
    # hit at rank 2: DCG = 1/log2(4) = 0.5, IDCG = 1 -> NDCG 0.5
    assert score_request(["x", "y", "a"], {"a"}, k=10) == (1.0, 1.0, 0.5)


def test_miss() -> None:
    assert score_request(["x", "y"], {"a"}, k=10) == (0.0, 0.0, 0.0)


def test_empty_top_k_is_a_miss() -> None:
    assert score_request([], {"a"}, k=10) == (0.0, 0.0, 0.0)


def test_several_targets() -> None:
    # targets {a, b, c}; list [a, x, b]: hits at ranks 0 and 2
    # recall = 2 / min(3, 10) = 2/3
    # DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.1309297535714578
    score = score_request(["a", "x", "b"], {"a", "b", "c"}, k=10)
    assert score.hit == 1.0
    assert score.recall == pytest.approx(2 / 3)
    assert score.ndcg == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))
    assert score.ndcg == pytest.approx(0.7039180890341347)


def test_recall_is_capped_by_k() -> None:
    # 5 targets but k = 2: a perfect list of 2 hits has recall 2 / min(5, 2) = 1, NDCG 1
    targets = {"a", "b", "c", "d", "e"}
    assert score_request(["a", "b"], targets, k=2) == (1.0, 1.0, 1.0)
    # one hit in second place: recall 1/2; DCG = 1/log2(3) = 0.6309, IDCG = 1 + 0.6309
    score = score_request(["x", "a"], targets, k=2)
    assert score.recall == 0.5
    assert score.ndcg == pytest.approx(0.6309297535714575 / 1.6309297535714575)


def test_k_truncates_the_list() -> None:
    # the target sits at rank 3, outside the top 3
    assert score_request(["x", "y", "z", "a"], {"a"}, k=3) == (0.0, 0.0, 0.0)
    assert score_request(["x", "y", "z", "a"], {"a"}, k=4).hit == 1.0


def test_duplicates_count_once_and_take_no_slot() -> None:
    # ties in the list: "a" twice. The duplicate is dropped, so "b" is at rank 1:
    # DCG = 1 + 1/log2(3); IDCG for 2 targets is the same -> NDCG 1, recall 1
    assert score_request(["a", "a", "b"], {"a", "b"}, k=2) == (1.0, 1.0, 1.0)
    # a list that repeats a hit does not earn it twice
    assert score_request(["a", "a"], {"a", "b"}, k=10).recall == 0.5


def test_no_targets_is_an_error() -> None:
    with pytest.raises(ValueError):
        score_request(["a"], set(), k=10)


def test_cut_totals_average() -> None:
    totals = CutTotals()
    assert totals.means() == {"n": 0, "hr": None, "recall": None, "ndcg": None}
    totals.add(score_request(["a"], {"a"}, k=10))  # 1, 1, 1
    totals.add(score_request(["x", "y", "a"], {"a"}, k=10))  # 1, 1, 0.5
    totals.add(score_request(["x"], {"a"}, k=10))  # 0, 0, 0
    assert totals.means() == {"n": 3, "hr": 2 / 3, "recall": 2 / 3, "ndcg": 0.5}
