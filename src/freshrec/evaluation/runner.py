"""Running replay tasks, each in a fresh worker process, with progress and memory accounting.

Every task runs in its own process (``forkserver`` where available, else
``spawn``; never a plain fork of a parent that holds data), at most ``jobs``
at a time. The worker loads the dataset itself, builds the plan, notes its
RSS, resets the kernel's peak-RSS mark, and only then builds the contestant:
peak minus that RSS is the contestant's own memory. BLAS is limited to one
thread per worker so that two workers share two cores without
oversubscription. ``jobs=0`` runs tasks in this process (no memory figure),
for debugging and tests.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from freshrec.evaluation.contestants import build
from freshrec.evaluation.contestants.base import ContestantSettings
from freshrec.evaluation.datasets import Source
from freshrec.evaluation.memory import current_rss_mb, peak_rss_mb, reset_peak
from freshrec.evaluation.plan import DEFAULT_SPLIT, ReplayPlan, build_plan
from freshrec.evaluation.replay import ContestantResult, Progress, replay
from freshrec.evaluation.tuning import TuningOutcome, tune, validation_plan


class Task(Protocol):
    """A unit of work for one worker: a label for the progress bar and a ``run``."""

    @property
    def label(self) -> str: ...

    def run(self, progress: Progress, measure_memory: bool) -> Any: ...


@dataclass(frozen=True)
class ContestantTask:
    """Replay one contestant over the dataset's stream after the split."""

    name: str
    source: Source
    settings: ContestantSettings
    max_requests: int | None = None
    k: int = 10
    split: float = DEFAULT_SPLIT

    @property
    def label(self) -> str:
        return self.name

    def run(self, progress: Progress, measure_memory: bool) -> ContestantResult:
        plan = build_plan(self.source.load(), train_fraction=self.split,
                          max_requests=self.max_requests)
        baseline = current_rss_mb()
        measured = measure_memory and reset_peak()
        result = replay(build(self.name, self.settings), plan, k=self.k, progress=progress)
        if measured:
            result.peak_mb = max(0.0, peak_rss_mb() - baseline)
        return result


@dataclass(frozen=True)
class TuningTask:
    """Score some candidate settings of one contestant on the validation slice."""

    name: str
    source: Source
    candidates: tuple[ContestantSettings, ...]
    part: str = ""
    max_requests: int | None = 5000
    k: int = 10
    split: float = DEFAULT_SPLIT
    """The benchmark's split: the validation slice is cut from the part before it."""

    @property
    def label(self) -> str:
        return f"tune {self.name}{self.part}"

    def plan(self) -> ReplayPlan:
        """The validation plan: a slice of the events before the benchmark's split."""
        dataset = self.source.load()
        return validation_plan(build_plan(dataset, train_fraction=self.split), dataset,
                               max_requests=self.max_requests)

    def run(self, progress: Progress, measure_memory: bool) -> TuningOutcome:
        return tune(self.name, self.candidates, self.plan(), k=self.k, progress=progress)


@dataclass
class Failure:
    """A task that raised (or whose worker died): the formatted error."""

    label: str
    error: str


ProgressSink = Callable[[int, int, int], None]
"""Receives (task position, steps done, steps in total)."""


def run_tasks(tasks: Sequence[Task], *, jobs: int,
              on_progress: ProgressSink | None = None) -> list[Any]:
    """Run ``tasks`` (in worker processes unless ``jobs == 0``); results in task order.

    A task that fails yields a :class:`Failure` instead of stopping the others.
    """
    if jobs <= 0:
        return [_run_here(n, task, on_progress) for n, task in enumerate(tasks)]
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    context: Any = mp.get_context(method)
    messages = context.Queue()
    results: dict[int, Any] = {}
    waiting = list(range(len(tasks)))
    running: dict[int, Any] = {}
    while waiting or running:
        while waiting and len(running) < jobs:
            n = waiting.pop(0)
            process = context.Process(target=_worker, args=(n, tasks[n], messages), daemon=True)
            process.start()
            running[n] = process
        try:
            kind, n, *payload = messages.get(timeout=0.5)
        except queue.Empty:
            for n, process in list(running.items()):
                if process.exitcode not in (None, 0):
                    results[n] = Failure(tasks[n].label,
                                         f"worker died with exit code {process.exitcode}")
                    del running[n]
            continue
        if kind == "progress":
            if on_progress is not None:
                on_progress(n, *payload)
            continue
        results[n] = payload[0]
        process = running.pop(n, None)
        if process is not None:
            process.join()
    return [results[n] for n in range(len(tasks))]


def limit_threads() -> Any:
    """One thread for BLAS and OpenMP in this process (libraries are loaded first)."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    import implicit.cpu.als  # noqa: F401  (loads scipy's and implicit's thread pools)
    import numpy  # noqa: F401
    import scipy.linalg
    import scipy.sparse  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _run_here(n: int, task: Task, on_progress: ProgressSink | None) -> Any:
    def progress(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(n, done, total)

    try:
        return task.run(progress, measure_memory=False)
    except Exception:
        return Failure(task.label, traceback.format_exc())


def _worker(n: int, task: Task, messages: Any) -> None:
    limits = limit_threads()

    def progress(done: int, total: int) -> None:
        messages.put(("progress", n, done, total))

    try:
        result: Any = task.run(progress, measure_memory=True)
    except Exception:
        result = Failure(task.label, traceback.format_exc())
    finally:
        del limits
    messages.put(("result", n, result))
