"""What one in-process request costs, and how long the learner keeps requests out.

    .venv/bin/python bench/recommend.py movielens retail
    .venv/bin/python bench/recommend.py retail --steps 3000
    .venv/bin/python bench/recommend.py movielens --no-whole --without-sequence

Each dataset is fitted on the first half of its events as ``freshrec replay`` fits
(``build_plan``), the loaded model is frozen out of the collector's reach (as the
service and the replay do), then the next ``--steps`` steps of the stream go the
service's way: the catalog records and, before each request's events, the replay's
requests (``unseen`` for MovieLens; ``repeats`` and ``new-to-user`` for retail, the
harness's exclusions passed as ``exclude``) through :meth:`Engine.rank`, each
impression applied as the replay applies it, then the events through
:meth:`Engine.apply_many`, as the learner applies the log.

Timed: ``rank`` per request, ``learn_impression`` per impression (the replay's
"recommend" figure is the two together), and every hold of the engine lock while the
learner applies records (the wait a request arriving then can suffer), apart for
events (with the item flushes they start) and catalog records. Wall time is
what a caller waits; the thread's CPU time leaves out the time the process was not
running, which on a shared machine is most of the wall time's tail. The stream runs
twice from the same fitted state: the item micro-batch flush in slices that let
requests in between (today's engine), and in one hold (``--no-whole`` skips that run).

``--filters api`` asks as the API does by default instead: the user's own items left
out by ``exclude_seen`` (the engine's index of what the user did, the same items as the
harness's list: every event of the stream is applied) and only available items. The
harness's default passes the same items as an explicit ``exclude`` list of ids, which a
heavy user makes thousands long (looked up id by id on every request).

``--digest`` also prints a hash of every answer (items, scores, sources) and every
impression (candidates, feature bytes) of each run: a speed change that leaves it equal
has left what requests return unchanged. It lifts the sources' time budget, which
reads the wall clock: on a busy machine the breaker would otherwise skip a source
and change answers by chance.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from freshrec.config import EngineConfig
from freshrec.engine import Engine
from freshrec.evaluation.datasets import DatasetSource
from freshrec.evaluation.plan import ReplayPlan, build_plan
from freshrec.records import Event, Impression, Item
from freshrec.serving.heap import freeze_loaded_model, unfreeze
from freshrec.serving.results import Filters

TOP_K = 10


class TimedLock:
    """The engine's re-entrant lock, recording how long each outermost hold lasted."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.depth = 0
        self.taken = 0
        self.taken_cpu = 0
        self.recording: str | None = None
        """What the holds being recorded apply (None: not recording)."""
        self.holds_ns: dict[str, list[int]] = {}
        self.holds_cpu_ns: dict[str, list[int]] = {}

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = bool(self.lock.acquire(blocking, timeout))
        if got:
            self.depth += 1
            if self.depth == 1:
                self.taken = time.perf_counter_ns()
                self.taken_cpu = time.thread_time_ns()
        return got

    def release(self) -> None:
        if self.depth == 1 and self.recording is not None:
            what = self.recording
            self.holds_ns.setdefault(what, []).append(time.perf_counter_ns() - self.taken)
            self.holds_cpu_ns.setdefault(what, []).append(time.thread_time_ns() - self.taken_cpu)
        self.depth -= 1
        self.lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


@dataclass
class Run:
    label: str
    rank_ns: list[int] = field(default_factory=list)
    rank_cpu_ns: list[int] = field(default_factory=list)
    impression_ns: list[int] = field(default_factory=list)
    holds_ns: dict[str, list[int]] = field(default_factory=dict)
    holds_cpu_ns: dict[str, list[int]] = field(default_factory=dict)
    digest: Any = field(default_factory=hashlib.sha256)
    """Every answer and impression, in order (see ``--digest``)."""


def use_timed_lock(engine: Engine) -> TimedLock:
    timed = TimedLock(engine.lock)
    engine.lock = timed  # type: ignore[assignment]
    engine.retrainer.lock = timed  # type: ignore[assignment]
    return timed


def whole_flush(engine: Engine) -> bool:
    """Make the item flush hold the lock throughout (False if this engine cannot slice)."""
    if not hasattr(engine, "flush_slice_ms"):
        return False
    engine.flush_slice_ms = float("inf")
    return True


def stream(engine: Engine, plan: ReplayPlan, steps: int, label: str,
           api_filters: bool = False) -> Run:
    run = Run(label)
    lock = use_timed_lock(engine)
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    seen: dict[str, set[str]] = {}
    for record in plan.training:
        if isinstance(record, Event):
            seen.setdefault(record.user, set()).add(record.item)

    def apply(records: list[Item | Event | Impression], what: str) -> None:
        lock.recording = what
        engine.apply_many(records)
        lock.recording = None

    for step in plan.steps[:steps]:
        if step.items:
            apply(list(step.items), "catalog records")
        if not step.events:
            continue
        user = step.events[0].user
        history = seen.setdefault(user, set())
        requests = [frozenset(history)]
        if plan.baskets:
            requests = [frozenset(), frozenset(history)]
        for exclude in requests:
            filters = (Filters(exclude_seen=bool(exclude)) if api_filters else
                       Filters(exclude_seen=False, available_only=False, exclude=exclude))
            begin, begin_cpu = clock(), cpu()
            answer, impression = engine.rank(user, TOP_K, filters=filters)
            run.rank_ns.append(clock() - begin)
            run.rank_cpu_ns.append(cpu() - begin_cpu)
            run.digest.update(repr([(r.item, r.score, r.source) for r in answer]).encode())
            if impression is not None:
                run.digest.update(repr(impression.items).encode() + impression.features)
            if impression is not None:
                begin = clock()
                engine.learn_impression(impression)
                run.impression_ns.append(clock() - begin)
        apply(list(step.events), "events")
        history.update(event.item for event in step.events)
    run.holds_ns, run.holds_cpu_ns = lock.holds_ns, lock.holds_cpu_ns
    return run


def percentiles_us(values: list[int]) -> str:
    if not values:
        return "- | - | - | -"
    us = np.asarray(values) / 1000.0
    p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
    return f"{p50:,.0f} | {p99:,.0f} | {p999:,.0f} | {us.max():,.0f}"


def measure(name: str, steps: int, whole: bool, sequence: bool = True,
            digest: bool = False, api_filters: bool = False) -> list[Run]:
    plan = build_plan(DatasetSource(name).load(), train_fraction=0.5)
    engine = Engine(EngineConfig(num_threads=1, sequence_model=sequence))
    started = time.perf_counter()
    engine.fit(plan.training)
    fitted = engine.snapshot()
    source = "with" if sequence else "without"
    spent = engine.retrainer.sequence_seconds
    print(f"{name}: fitted on {plan.n_train_events:,} events in "
          f"{time.perf_counter() - started:.0f}s ({source} the sequence model"
          + (f", {spent:.1f}s of its last training" if spent is not None else "")
          + f"); streaming {steps:,} steps\n", flush=True)
    runs = []
    modes = [("sliced flush", False)] + ([("whole flush", True)] if whole else [])
    if not sequence:
        modes = [(f"{label}, no sequence model", hold) for label, hold in modes]
    for label, one_hold in modes:
        engine = Engine.restore(fitted)
        if digest:
            engine.recommender.budget_ms = float("inf")
        if one_hold and not whole_flush(engine):
            label = "flush (this engine cannot slice it)"
        gc.collect()
        freeze_loaded_model()
        try:
            runs.append(stream(engine, plan, steps, label, api_filters))
        finally:
            unfreeze()
    return runs


def show(name: str, runs: list[Run], digest: bool = False) -> None:
    print(f"### {name}\n")
    if digest:
        for run in runs:
            print(f"answers and impressions of {run.label}: {run.digest.hexdigest()[:16]}")
        print()
    print("| flush | what | n | p50 µs | p99 µs | p99.9 µs | max µs |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        rows = [("rank, wall", run.rank_ns), ("rank, CPU", run.rank_cpu_ns),
                ("learn_impression, wall", run.impression_ns)]
        for what in sorted(run.holds_ns):
            rows += [(f"lock held for {what}, wall", run.holds_ns[what]),
                     (f"lock held for {what}, CPU", run.holds_cpu_ns[what])]
        for what, values in rows:
            print(f"| {run.label} | {what} | {len(values):,} | {percentiles_us(values)} |")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+",
                        choices=("movielens", "retail", "synthetic", "sequential"))
    parser.add_argument("--steps", type=int, default=6000,
                        help="steps of the second half to stream (default 6000)")
    parser.add_argument("--no-whole", dest="whole", action="store_false",
                        help="skip the run with the flush in one lock hold")
    parser.add_argument("--without-sequence", action="store_true",
                        help="also run the engine without its sequence model, side by side")
    parser.add_argument("--digest", action="store_true",
                        help="print a hash of every answer and impression of each run")
    parser.add_argument("--filters", choices=("harness", "api"), default="harness",
                        help="the user's items as an explicit exclude list (harness, the "
                             "default) or by exclude_seen, as the API asks by default")
    args = parser.parse_args()
    api = args.filters == "api"
    # One BLAS thread, as the service and the replay run: a second one only spins for
    # the core the next request needs (a 10,000 x 64 product's p99 goes from 60 µs to
    # 16 ms on a busy 2-core machine).
    threadpool_limits(1)
    for name in args.datasets:
        runs = measure(name, args.steps, args.whole, digest=args.digest, api_filters=api)
        if args.without_sequence:
            runs += measure(name, args.steps, args.whole, sequence=False, digest=args.digest,
                            api_filters=api)
        show(name, runs, args.digest)


if __name__ == "__main__":
    main()
