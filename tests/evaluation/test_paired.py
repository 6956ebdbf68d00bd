"""Paired comparison of replays: hand-checked cases."""

from __future__ import annotations

import math

import pytest

from freshrec.evaluation.paired import compare_marks, compare_reports


def test_requests_outside_the_cut_on_either_side_are_left_out() -> None:
    row = compare_marks("1-01", "11-0")
    assert (row.n, row.a, row.b) == (2, 1.0, 0.5)


def test_the_standard_error_is_that_of_the_per_request_differences() -> None:
    # per-request differences (1, 0, 0, 0): B hit one request A missed
    row = compare_marks("0100", "1100")
    assert row.difference == pytest.approx(0.25)
    # sample variance of (1, 0, 0, 0) is 0.25; its mean's standard error sqrt(0.25 / 4)
    assert row.standard_error == pytest.approx(0.25)
    assert row.z == pytest.approx(1.0)


def test_identical_runs_differ_by_nothing() -> None:
    row = compare_marks("10110", "10110")
    assert (row.difference, row.standard_error, row.z) == (0.0, 0.0, 0.0)


def test_an_empty_cut_is_not_a_number() -> None:
    assert math.isnan(compare_marks("--", "--").a)


def test_runs_of_different_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="different requests"):
        compare_marks("101", "10")


def test_reports_compare_one_contestant_against_another() -> None:
    report = {"contestants": {
        "freshrec": {"hits": {"repeats": {"all": "1101", "new-users": "-1-0"}}},
        "history": {"hits": {"repeats": {"all": "1001", "new-users": "-0-0"}}},
    }}
    rows = compare_reports(report, report, "history", "freshrec")
    assert rows[("repeats", "all")].difference == pytest.approx(0.25)
    assert rows[("repeats", "new-users")].n == 2


def test_a_report_without_hits_says_so() -> None:
    report = {"contestants": {"freshrec": {"metrics": {}}}}
    with pytest.raises(ValueError, match="no per-request hits"):
        compare_reports(report, report, "freshrec", "freshrec")
    with pytest.raises(ValueError, match="no contestant 'river'"):
        compare_reports(report, report, "river", "freshrec")


def test_runs_of_different_splits_are_refused_even_with_as_many_requests() -> None:
    def run(split: float | None, train_events: int) -> dict[str, object]:
        protocol: dict[str, object] = {"dataset": "movielens", "baskets": False,
                                       "train_events": train_events, "evaluated_requests": 3}
        if split is not None:
            protocol["split"] = split
        return {"protocol": protocol,
                "contestants": {"freshrec": {"hits": {"unseen": {"all": "101"}}}}}

    with pytest.raises(ValueError,
                       match=r"different plans: split 0\.5 vs 0\.8, train_events 50 vs 80$"):
        compare_reports(run(0.5, 50), run(0.8, 80), "freshrec", "freshrec")
    with pytest.raises(ValueError, match=r"different plans: split 0\.5 vs 0\.8$"):
        compare_reports(run(0.5, 50), run(0.8, 50), "freshrec", "freshrec")
    # a report written before --split existed used the median split
    rows = compare_reports(run(None, 50), run(0.5, 50), "freshrec", "freshrec")
    assert rows[("unseen", "all")].n == 3
