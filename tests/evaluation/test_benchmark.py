"""The whole replay on a small synthetic shop: workers, tuning, cuts, files, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freshrec.cli import app
from freshrec.data import generate_shop
from freshrec.evaluation import InlineSource, ReplayOptions, publish, run_replay
from freshrec.evaluation.benchmark import select
from freshrec.evaluation.contestants import BUILDERS
from freshrec.evaluation.replay import CUTS

CHEAP = ("popularity", "decayed-popularity", "item-knn")


@pytest.fixture(scope="module")
def shop() -> InlineSource:
    return InlineSource(generate_shop(n_users=60, n_items=40, n_events=3000, seed=3))


def metrics(report: object) -> dict[str, object]:
    return {r.name: r.metric_means() for r in report.results}  # type: ignore[attr-defined]


def test_replay_end_to_end_in_workers(shop: InlineSource, tmp_path: Path) -> None:
    options = ReplayOptions(dataset="synthetic", contestants=CHEAP, jobs=2, out=tmp_path,
                            tuning_requests=200)
    report = run_replay(options, source=shop, show_progress=False)
    assert [r.name for r in report.results] == list(CHEAP)
    assert all(r.error is None for r in report.results)
    assert report.plan["baskets"] and report.plan["new_items"] > 0
    for result in report.results:
        assert set(result.metrics) == {"repeats", "new-to-user"}
        for cuts in result.metric_means().values():
            assert set(cuts) == set(CUTS)
            assert cuts["all"]["n"] > 0 and 0.0 <= cuts["all"]["hr"] <= 1.0
            assert cuts["new-items"]["n"] > 0 and cuts["new-users"]["n"] > 0
        assert result.peak_mb is not None and result.peak_mb >= 0.0
        assert result.update_us["p50"] <= result.update_us["p99"]
    # every contestant saw the same requests
    assert len({r.metrics["repeats"]["all"].n for r in report.results}) == 1
    assert [o.name for o in report.tuning] == ["decayed-popularity"]

    paths = publish(report)
    assert sorted(p.name for p in paths) == ["hr_over_time.png", "replay.json", "replay.md"]
    assert (tmp_path / "hr_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((tmp_path / "replay.json").read_text())
    assert set(written["contestants"]) == set(CHEAP)
    hr = written["contestants"]["popularity"]["metrics"]["repeats"]["all"]["hr"]
    assert hr == report.results[0].metric_means()["repeats"]["all"]["hr"]
    assert written["settings"]["popularity_half_life_days"] == (
        report.settings.popularity_half_life_days)
    assert written["hardware"]["cores"] >= 1

    # the same run in this process gives the same numbers
    again = run_replay(ReplayOptions(dataset="synthetic", contestants=CHEAP, jobs=0,
                                     tuning_requests=200), source=shop, show_progress=False)
    assert metrics(again) == metrics(report)
    assert again.settings == report.settings


def test_factor_models_are_deterministic(shop: InlineSource) -> None:
    options = ReplayOptions(dataset="synthetic", contestants=("implicit-online",
                            "river-biasedmf"), jobs=0, tune=False, max_requests=100)
    first = run_replay(options, source=shop, show_progress=False)
    second = run_replay(options, source=shop, show_progress=False)
    assert metrics(first) == metrics(second)
    assert all(r.metric_means()["repeats"]["all"]["n"] <= 100 for r in first.results)


def test_a_failing_contestant_is_reported_not_fatal(
    shop: InlineSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(settings: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setitem(BUILDERS, "broken", broken)
    options = ReplayOptions(dataset="synthetic", contestants=("popularity", "broken"), jobs=0,
                            tune=False)
    report = run_replay(options, source=shop, show_progress=False)
    assert report.results[0].error is None
    assert "boom" in (report.results[1].error or "")


def test_selection() -> None:
    chosen, skipped = select(("popularity", "purchase-history"), baskets=False)
    assert chosen == ["popularity"] and "purchase-history" in skipped
    with pytest.raises(ValueError, match="unknown contestant"):
        select(("nope",), baskets=True)


def test_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "replay", "synthetic", "--limit", "2000", "--jobs", "0", "--no-tune",
        "--contestants", "popularity,item-knn", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "popularity" in result.output and "item-knn" in result.output
    assert (tmp_path / "replay.json").is_file() and (tmp_path / "hr_over_time.png").is_file()
    bad = CliRunner().invoke(app, ["replay", "nowhere"])
    assert bad.exit_code == 2 and "unknown dataset" in bad.output


def test_cli_split(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "replay", "synthetic", "--limit", "2000", "--jobs", "0", "--no-tune", "--split", "0.8",
        "--contestants", "popularity", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "replay.json").read_text())
    assert written["options"]["split"] == 0.8 and written["protocol"]["split"] == 0.8
    # 1,600 events train, plus the rest of the basket the split falls in
    assert 1600 <= written["protocol"]["train_events"] < 1700
    marks = written["contestants"]["popularity"]["hits"]["repeats"]["all"]
    assert len(marks) == written["protocol"]["evaluated_requests"]  # the contestant's plan too
    for bad in ("0", "1", "1.5", "-0.1"):
        refused = CliRunner().invoke(app, ["replay", "synthetic", "--split", bad])
        assert refused.exit_code == 2, refused.output
        assert "split must be a fraction strictly between 0 and 1" in refused.output


def test_runs_of_other_splits_get_their_own_folder() -> None:
    assert ReplayOptions(dataset="movielens").out_dir == Path("results/replay-movielens")
    assert ReplayOptions(dataset="movielens", split=0.8).out_dir == Path(
        "results/replay-movielens-split80")
    assert ReplayOptions(dataset="retail", split=0.65).out_dir == Path(
        "results/replay-retail-split65")
    assert ReplayOptions(dataset="retail", split=0.8, out=Path("x")).out_dir == Path("x")
