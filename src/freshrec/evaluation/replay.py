"""Replaying one contestant over a plan: fit, then request-and-learn through the stream.

Requests are scored in *variants* and *cuts*:

- without baskets (MovieLens) one variant, ``unseen``: the user's already seen
  items are excluded, the target is the event's item;
- with baskets (retail) two: ``repeats`` (nothing excluded, targets = the
  basket's items) and ``new-to-user`` (the user's earlier purchases excluded,
  targets = basket items the user never bought before; skipped when there
  are none);
- cuts: ``all``; ``new-items`` (scored against the targets that had no event
  before the split, for requests with at least one); ``new-users`` (requests
  of users with no event before the split).

Every event is fed with ``learn_one``, evaluated request or not. Wall-clock
costs are measured per call with ``perf_counter_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from freshrec.evaluation.contestants.base import Contestant
from freshrec.evaluation.metrics import CutTotals, score_request
from freshrec.evaluation.plan import ReplayPlan
from freshrec.records import Event
from freshrec.serving.heap import freeze_loaded_model, unfreeze

CUTS = ("all", "new-items", "new-users")
Progress = Callable[[int, int], None]
"""Called with (steps done, steps in total) now and then."""


def variants(baskets: bool) -> tuple[str, ...]:
    return ("repeats", "new-to-user") if baskets else ("unseen",)


@dataclass
class Timeline:
    """HR of each scored request (cut ``all``) at its data time, for the plot."""

    times: list[float] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)


@dataclass
class ContestantResult:
    """What one contestant's replay produced: metric sums, costs and the HR timeline."""

    name: str
    metrics: dict[str, dict[str, CutTotals]]
    timelines: dict[str, Timeline]
    fit_seconds: float = 0.0
    replay_seconds: float = 0.0
    update_us: dict[str, float] = field(default_factory=dict)
    recommend_us: dict[str, float] = field(default_factory=dict)
    updates: int = 0
    recommends: int = 0
    peak_mb: float | None = None
    error: str | None = None
    hits: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Per variant and cut, one mark per scored request in stream order: ``1`` hit,
    ``0`` miss, ``-`` not in the cut. Every contestant replays the same requests, so
    two runs (or two contestants) compare request by request: see
    ``bench/compare_replays.py``."""
    training: dict[str, object] | None = None
    """What the fit did, for contestants that say (``training_summary()``: SASRec's epochs,
    the epoch kept and why training stopped)."""

    def metric_means(self) -> dict[str, dict[str, dict[str, float | int | None]]]:
        return {variant: {cut: totals.means() for cut, totals in cuts.items()}
                for variant, cuts in self.metrics.items()}


def percentiles_us(durations_ns: list[int]) -> dict[str, float]:
    """p50 and p99 of durations, in microseconds (empty when nothing was timed)."""
    if not durations_ns:
        return {}
    values = np.asarray(durations_ns, dtype=np.float64) / 1000.0
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


def replay(contestant: Contestant, plan: ReplayPlan, *, k: int = 10,
           progress: Progress | None = None) -> ContestantResult:
    """Fit ``contestant`` on the plan's training half and replay the stream through it."""
    names = variants(plan.baskets)
    result = ContestantResult(
        name=contestant.name,
        metrics={v: {cut: CutTotals() for cut in CUTS} for v in names},
        timelines={v: Timeline() for v in names},
    )
    seen: dict[str, set[str]] = {}
    for record in plan.training:
        if isinstance(record, Event):
            seen.setdefault(record.user, set()).add(record.item)

    started = time.perf_counter()
    contestant.fit(plan.training)
    result.fit_seconds = time.perf_counter() - started
    summary = getattr(contestant, "training_summary", None)
    if callable(summary):
        result.training = summary()
    # Every contestant alike: collector pauses over the loaded model and the plan would
    # otherwise show up in whichever request they happen to interrupt.
    freeze_loaded_model()
    try:
        _stream(contestant, plan, result, seen, k, progress)
    finally:
        unfreeze()
    return result


def _stream(contestant: Contestant, plan: ReplayPlan, result: ContestantResult,
            seen: dict[str, set[str]], k: int, progress: Progress | None) -> None:
    clock = time.perf_counter_ns
    update_ns: list[int] = []
    recommend_ns: list[int] = []
    total = len(plan.steps)
    every = max(1, total // 200)
    started = time.perf_counter()
    for n, step in enumerate(plan.steps):
        for item in step.items:
            contestant.add_item(item)
        if step.events:
            user = step.events[0].user
            history = seen.setdefault(user, set())
            if step.evaluate:
                basket = list(dict.fromkeys(e.item for e in step.events))
                when = step.events[0].timestamp
                if plan.baskets:
                    requests = [("repeats", basket, ()),
                                ("new-to-user", [i for i in basket if i not in history], history)]
                else:
                    requests = [("unseen", basket, history)]
                for variant, targets, exclude in requests:
                    if not targets:
                        continue
                    begin = clock()
                    ranked = contestant.recommend(user, k, exclude)
                    recommend_ns.append(clock() - begin)
                    _score(result, plan, variant, user, ranked, set(targets), k, when)
            for event in step.events:
                begin = clock()
                contestant.learn_one(event)
                update_ns.append(clock() - begin)
                history.add(event.item)
        if progress is not None and (n % every == 0 or n == total - 1):
            progress(n + 1, total)
    result.replay_seconds = time.perf_counter() - started
    result.update_us = percentiles_us(update_ns)
    result.recommend_us = percentiles_us(recommend_ns)
    result.updates = len(update_ns)
    result.recommends = len(recommend_ns)


def _score(result: ContestantResult, plan: ReplayPlan, variant: str, user: str,
           ranked: list[str], targets: set[str], k: int, when: float) -> None:
    cuts = result.metrics[variant]
    marks = result.hits.setdefault(variant, {cut: [] for cut in CUTS})
    overall = score_request(ranked, targets, k)
    cuts["all"].add(overall)
    marks["all"].append(_mark(overall.hit))
    timeline = result.timelines[variant]
    timeline.times.append(when)
    timeline.hits.append(overall.hit)
    new = targets & plan.new_items
    if new:
        on_new = score_request(ranked, new, k)
        cuts["new-items"].add(on_new)
    marks["new-items"].append(_mark(on_new.hit) if new else "-")
    new_user = user in plan.new_users
    if new_user:
        cuts["new-users"].add(overall)
    marks["new-users"].append(_mark(overall.hit) if new_user else "-")


def _mark(hit: float) -> str:
    return "1" if hit > 0 else "0"
