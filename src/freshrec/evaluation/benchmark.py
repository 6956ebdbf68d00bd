"""The replay benchmark from end to end: load, tune, replay every contestant, report.

:func:`run_replay` is what ``freshrec replay`` and ``bench/replay.py`` call.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from freshrec.evaluation.contestants import BASKETS_ONLY, BUILDERS, names
from freshrec.evaluation.contestants.base import ContestantSettings
from freshrec.evaluation.contestants.freshrec_engine import engine_available
from freshrec.evaluation.contestants.sasrec import torch_missing
from freshrec.evaluation.datasets import DatasetSource, Source
from freshrec.evaluation.plan import DEFAULT_SPLIT, build_plan, check_split
from freshrec.evaluation.progress import progress_bars
from freshrec.evaluation.replay import CUTS, ContestantResult, Timeline, variants
from freshrec.evaluation.runner import ContestantTask, Failure, Task, TuningTask, run_tasks
from freshrec.evaluation.tuning import TUNED_BY, TuningOutcome, apply, candidates

RETRAINS_PER_STREAM = 20
"""``als-retrained`` without data days retrains every 5% of the streamed events."""
SLOWEST_FIRST = ("freshrec", "sasrec", "tune river-biasedmf", "als-retrained", "implicit-online",
                 "tune als-once", "river-biasedmf", "tune", "item-knn")
"""Scheduling hint (label prefixes): long tasks start first."""
SPLIT_TUNING = {"als-once": 2, "river-biasedmf": 2}
"""Grids worth cutting into parts that run in parallel."""


@dataclass(frozen=True)
class ReplayOptions:
    """What ``freshrec replay`` was asked to do."""

    dataset: str
    data_dir: Path | None = None
    limit: int | None = None
    max_requests: int | None = None
    jobs: int = 2
    out: Path | None = None
    seed: int = 0
    contestants: tuple[str, ...] | None = None
    k: int = 10
    tune: bool = True
    tuning_requests: int = 5000
    split: float = DEFAULT_SPLIT
    """Share of the events to train on (see :mod:`freshrec.evaluation.plan`)."""

    def __post_init__(self) -> None:
        check_split(self.split)

    @property
    def out_dir(self) -> Path:
        return self.out if self.out is not None else Path("results") / folder_name(
            self.dataset, self.split)


def folder_name(dataset: str, split: float) -> str:
    """Where a run's files go by default, so that runs of different splits keep theirs.

    >>> folder_name("movielens", 0.5), folder_name("movielens", 0.8)
    ('replay-movielens', 'replay-movielens-split80')
    """
    if split == DEFAULT_SPLIT:
        return f"replay-{dataset}"
    return f"replay-{dataset}-split{split * 100:g}"


@dataclass
class ReplayReport:
    """Everything a run produced, ready for the table, the JSON file and the plot."""

    options: ReplayOptions
    plan: dict[str, Any]
    settings: ContestantSettings
    results: list[ContestantResult]
    tuning: list[TuningOutcome] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    tuning_seconds: float = 0.0
    """Wall time of the first stage: tuning, alongside the contestants it does not affect."""
    wall_seconds: float = 0.0

    @property
    def variants(self) -> tuple[str, ...]:
        return variants(bool(self.plan["baskets"]))


def select(requested: Sequence[str] | None, *, baskets: bool) -> tuple[list[str], dict[str, str]]:
    """The contestants to run and, by name, why any were left out."""
    skipped: dict[str, str] = {}
    if requested is None:
        chosen = list(names(baskets=baskets))
    else:
        unknown = [name for name in requested if name not in BUILDERS]
        if unknown:
            raise ValueError(f"unknown contestant(s) {', '.join(unknown)} "
                             f"(known: {', '.join(BUILDERS)})")
        chosen = list(dict.fromkeys(requested))
    if not baskets:
        for name in [n for n in chosen if n in BASKETS_ONLY]:
            chosen.remove(name)
            skipped[name] = "needs baskets (retail only)"
    for name, missing in UNAVAILABLE.items():
        reason = missing() if name in chosen else None
        if reason is not None:
            chosen.remove(name)
            skipped[name] = reason
            warnings.warn(f"skipping contestant {name}: {reason}", stacklevel=2)
    return chosen, skipped


def _engine_missing() -> str | None:
    reason = engine_available()
    return None if reason is None else f"freshrec.engine does not import ({reason})"


UNAVAILABLE: dict[str, Callable[[], str | None]] = {
    "freshrec": _engine_missing,
    "freshrec-noseq": _engine_missing,
    "sasrec": torch_missing,
}
"""Contestants that need something which may be absent: why they cannot run, or None."""


def run_replay(options: ReplayOptions, *, source: Source | None = None,
               console: Console | None = None, show_progress: bool = True) -> ReplayReport:
    """Run the whole benchmark; ``source`` overrides the dataset named in ``options``."""
    started = time.perf_counter()
    if source is None:
        source = DatasetSource(options.dataset, options.data_dir, options.limit, options.seed)
    plan = build_plan(source.load(), train_fraction=options.split,
                      max_requests=options.max_requests)
    summary = plan.summary()
    chosen, skipped = select(options.contestants, baskets=plan.baskets)
    settings = ContestantSettings(seed=options.seed)
    if not source.retrains_daily:
        every = max(1, math.ceil(plan.n_test_events / RETRAINS_PER_STREAM))
        settings = replace(settings, retrain_every_events=every, retrain_every_seconds=None)
    del plan  # workers load their own copy

    # Stage 1: the grid searches, alongside the contestants that need none of their
    # results; stage 2: the contestants whose settings the searches decide.
    tuning_work = tuning_tasks(chosen, source, settings, options) if options.tune else []
    decided = {name for task in tuning_work for name in TUNED_BY[task.name]}
    first: list[Task] = [*tuning_work, *(
        ContestantTask(name, source, settings, options.max_requests, options.k,
                       split=options.split)
        for name in chosen if name not in decided)]
    first.sort(key=_priority)
    with progress_bars([t.label for t in first], console, show_progress) as sink:
        outcomes = run_tasks(first, jobs=options.jobs, on_progress=sink)
    tuning = merge_outcomes([t for t in first if isinstance(t, TuningTask)],
                            [o for t, o in zip(first, outcomes, strict=True)
                             if isinstance(t, TuningTask)], console)
    for outcome in tuning:
        settings = apply(settings, outcome)
    by_name = {t.name: o for t, o in zip(first, outcomes, strict=True)
               if isinstance(t, ContestantTask)}
    tuning_seconds = time.perf_counter() - started

    second: list[Task] = sorted(
        (ContestantTask(name, source, settings, options.max_requests, options.k,
                        split=options.split)
         for name in chosen if name in decided), key=_priority)
    if second:
        with progress_bars([t.label for t in second], console, show_progress) as sink:
            outcomes = run_tasks(second, jobs=options.jobs, on_progress=sink)
        by_name.update({t.name: o for t, o in zip(second, outcomes, strict=True)
                        if isinstance(t, ContestantTask)})
    baskets = bool(summary["baskets"])
    results = [_as_result(name, by_name[name], baskets) for name in chosen]
    return ReplayReport(options=options, plan=summary, settings=settings, results=results,
                        tuning=tuning, skipped=skipped, tuning_seconds=tuning_seconds,
                        wall_seconds=time.perf_counter() - started)


def _priority(task: Task) -> int:
    """Long tasks first, so that the workers finish close together."""
    return next((n for n, label in enumerate(SLOWEST_FIRST) if task.label.startswith(label)),
                len(SLOWEST_FIRST))


def tuning_tasks(chosen: Sequence[str], source: Source, settings: ContestantSettings,
                 options: ReplayOptions) -> list[TuningTask]:
    """One task per grid to search (ALS split in parts), for the contestants that run."""
    wanted = [name for name in ("als-once", "decayed-popularity", "purchase-history",
                                "river-biasedmf")
              if name in chosen or (name == "als-once" and
                                    {"als-retrained", "implicit-online"} & set(chosen))]
    tasks: list[TuningTask] = []
    for name in wanted:
        grid = candidates(name, settings)
        parts = max(1, min(SPLIT_TUNING.get(name, 1), options.jobs))
        for part in range(parts):
            label = f" {part + 1}/{parts}" if parts > 1 else ""
            tasks.append(TuningTask(name, source, grid[part::parts], label,
                                    options.tuning_requests, options.k, split=options.split))
    return tasks


def merge_outcomes(tasks: Sequence[TuningTask], outcomes: Sequence[Any],
                   console: Console | None) -> list[TuningOutcome]:
    """Put the parts of each grid back together, in grid order; failed parts are reported."""
    merged: dict[str, list[tuple[Any, float]]] = {}
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, Failure):
            (console or Console(stderr=True)).print(
                f"[red]tuning {task.name} failed[/red], keeping defaults:\n{outcome.error}")
            continue
        merged.setdefault(task.name, []).extend(zip(outcome.candidates, outcome.scores,
                                                    strict=True))
    results = []
    for name, pairs in merged.items():
        grid = candidates(name, pairs[0][0])
        order = {settings: n for n, settings in enumerate(grid)}
        pairs.sort(key=lambda pair: order.get(pair[0], len(order)))
        results.append(TuningOutcome(name, tuple(s for s, _ in pairs), [v for _, v in pairs]))
    return results


def _as_result(name: str, outcome: Any, baskets: bool) -> ContestantResult:
    if isinstance(outcome, ContestantResult):
        return outcome
    from freshrec.evaluation.metrics import CutTotals

    error = outcome.error if isinstance(outcome, Failure) else repr(outcome)
    names_ = variants(baskets)
    return ContestantResult(name=name, metrics={v: {c: CutTotals() for c in CUTS} for v in names_},
                            timelines={v: Timeline() for v in names_}, error=error)
