"""Hyperparameter search on the validation slice of the training half."""

from __future__ import annotations

import pytest

from freshrec.data.dataset import Dataset
from freshrec.evaluation.benchmark import merge_outcomes
from freshrec.evaluation.contestants.base import ContestantSettings
from freshrec.evaluation.datasets import InlineSource
from freshrec.evaluation.metrics import CutTotals, RequestScore
from freshrec.evaluation.plan import build_plan
from freshrec.evaluation.replay import CUTS, ContestantResult
from freshrec.evaluation.runner import TuningTask
from freshrec.evaluation.tuning import (
    TuningOutcome,
    apply,
    candidates,
    objective,
    tune,
    validation_plan,
)
from freshrec.records import Event

HIT, MISS = RequestScore(1.0, 1.0, 1.0), RequestScore(0.0, 0.0, 0.0)


def result_with(all_scores: list[RequestScore],
                new_user_scores: list[RequestScore]) -> ContestantResult:
    cuts = {cut: CutTotals() for cut in CUTS}
    for score in all_scores:
        cuts["all"].add(score)
    for score in new_user_scores:
        cuts["new-users"].add(score)
    return ContestantResult(name="x", metrics={"unseen": cuts}, timelines={})


def test_objective_overall_and_returning_users() -> None:
    # 4 requests, 2 hits; the 2 new-user requests hold 1 hit -> returning: 1 hit of 2
    result = result_with([HIT, HIT, MISS, MISS], [HIT, MISS])
    assert objective(result) == 0.5
    assert objective(result, returning_only=True) == 0.5
    result = result_with([HIT, MISS, MISS, MISS], [MISS, MISS])
    assert objective(result) == 0.25
    assert objective(result, returning_only=True) == 0.5  # 1 hit of the 2 returning requests
    assert objective(result_with([], [])) == 0.0


def views(n: int) -> Dataset:
    return Dataset("views", [Event(f"u{i % 7}", f"i{i % 5}", "view", float(i)) for i in range(n)],
                   [])


def test_validation_plan_uses_the_training_half_only() -> None:
    dataset = views(100)
    plan = validation_plan(build_plan(dataset), dataset, max_requests=None)
    assert plan.n_train_events == 40 and plan.n_test_events == 10
    assert max(e.timestamp for s in plan.steps for e in s.events) == 49.0


def test_the_validation_slice_comes_from_before_the_split_whatever_the_split() -> None:
    source = InlineSource(views(100))
    for split, train_events in ((0.5, 50), (0.8, 80), (0.3, 30)):
        plan = TuningTask("decayed-popularity", source, (), split=split).plan()
        assert plan.n_train_events + plan.n_test_events == train_events
        assert plan.n_train_events == int(train_events * 0.8)
        assert max(e.timestamp for s in plan.steps for e in s.events) == train_events - 1


def test_best_is_the_highest_score_then_the_earliest() -> None:
    grid = candidates("decayed-popularity", ContestantSettings())
    outcome = TuningOutcome("decayed-popularity", grid[:3], [0.2, 0.5, 0.5])
    assert outcome.best == grid[1]
    assert apply(ContestantSettings(), outcome).popularity_half_life_days == (
        grid[1].popularity_half_life_days)


def test_tune_scores_every_candidate() -> None:
    dataset = views(200)
    plan = validation_plan(build_plan(dataset), dataset, max_requests=None)
    grid = candidates("decayed-popularity", ContestantSettings())
    outcome = tune("decayed-popularity", grid, plan)
    assert len(outcome.scores) == len(grid)
    assert all(0.0 <= score <= 1.0 for score in outcome.scores)


def test_parts_of_a_grid_merge_back_in_grid_order() -> None:
    source = InlineSource(views(10))
    grid = candidates("als-once", ContestantSettings())
    tasks = [TuningTask("als-once", source, grid[0::2]), TuningTask("als-once", source, grid[1::2])]
    outcomes = [TuningOutcome("als-once", grid[0::2], [float(n) for n in range(0, len(grid), 2)]),
                TuningOutcome("als-once", grid[1::2], [float(n) for n in range(1, len(grid), 2)])]
    (merged,) = merge_outcomes(tasks, outcomes, console=None)
    assert merged.candidates == grid
    assert merged.scores == [float(n) for n in range(len(grid))]


@pytest.mark.parametrize("name", ["als-once", "decayed-popularity", "purchase-history",
                                  "river-biasedmf"])
def test_every_grid_is_small_and_distinct(name: str) -> None:
    grid = candidates(name, ContestantSettings())
    assert 2 <= len(grid) <= 20 and len(set(grid)) == len(grid)
