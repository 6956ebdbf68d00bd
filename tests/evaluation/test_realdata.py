"""A short MovieLens replay of the baselines, on the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshrec.evaluation import ReplayOptions, publish, run_replay
from freshrec.evaluation.contestants import names

BASELINES = tuple(name for name in names(baskets=False) if name != "freshrec")


@pytest.mark.realdata
def test_movielens_replay_of_the_first_20k_ratings(shared_data: Path, tmp_path: Path) -> None:
    options = ReplayOptions(dataset="movielens", data_dir=shared_data, limit=20_000,
                            max_requests=2_500, contestants=BASELINES, jobs=2, tune=False,
                            out=tmp_path)
    report = run_replay(options, show_progress=False)
    assert report.plan["train_events"] == 10_000 and report.plan["test_events"] == 10_000
    assert [r.name for r in report.results] == list(BASELINES)
    for result in report.results:
        assert result.error is None, result.error
        cuts = result.metric_means()["unseen"]
        assert cuts["all"]["n"] == report.plan["evaluated_requests"] == 2_500
        assert 0.0 < cuts["all"]["hr"] < 0.5
    als_once = next(r for r in report.results if r.name == "als-once")
    assert als_once.metric_means()["unseen"]["new-items"]["hr"] == 0.0  # frozen: never new
    publish(report)
    assert (tmp_path / "replay.json").is_file()
