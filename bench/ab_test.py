"""An A/B test on a replayed log: does the experiment find the better arm, and only then?

    .venv/bin/python bench/ab_test.py                 # MovieLens small, ~5 min on 2 cores
    .venv/bin/python bench/ab_test.py --aa-runs 100   # more A/A runs

MovieLens small (../shared/data) is split as ``freshrec replay`` splits it: the engine
is fitted on the first half of the ratings, and then every later rating is replayed
in order, none skipped, with a recommendation request before each (the service's
default filters: what the user rated is left out). Each request is served through the
experiment machinery the service runs, in-process:

* the **A/B experiment**: users split 50/50 by the stable hash; the control arm gets
  the champion (the fitted engine), the other arm a deliberately weakened one, the same
  engine with its sources cut to popularity only (an engine-settings arm,
  ``{"sources": ["popularity"]}``). As in the service, only the champion's lists teach
  its rankers;
* **A/A experiments**: ``--aa-runs`` more experiments, each its own salt (so its own
  split of the users), both arms the champion. They ride on the same replay: their
  arms serve the same list, so however the users are split the engine evolves alike,
  and one replay is as good as one per run.

Every served list is a ``ServedList`` record in a real event log, between the rating
events; the :class:`~freshrec.experiments.outcomes.OutcomeTracker` counts them into a
real SQLite experiment store and takes a look with the sequential test after every
``--batch`` requests, exactly as the leader does each background round. The metric
is the hit rate (does the user's next rating fall in the list: a replay has no
clicks). The replay cannot change what people did, so the A/B answer is "which list
predicts the next rating better"; that is what the known difference is. The
sources' time budget is off, so the lists depend on the data, not on the load.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from freshrec.config import EngineConfig
from freshrec.data.movielens import load_movielens
from freshrec.engine import Engine
from freshrec.evaluation.plan import build_plan
from freshrec.evaluation.runner import limit_threads
from freshrec.experiments.assignment import arm_of
from freshrec.experiments.outcomes import OutcomeTracker
from freshrec.experiments.report import best_test, report
from freshrec.experiments.store import ArmSpec, Experiment, SQLiteExperimentStore
from freshrec.log.memory import MemoryEventLog
from freshrec.records import ServedList
from freshrec.serving.results import Filters
from freshrec.serving.sources import PopularitySource

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-small"
WEAK = {"sources": ["popularity"]}
K = 10


@dataclass
class Run:
    experiment: Experiment
    first_decision: tuple[int, str] | None = None
    """(requests so far, decision) at the first look that declared a difference."""
    looks: int = 0
    decisions: list[str] = field(default_factory=list)


def _experiment(experiment_id: str, arms: tuple[ArmSpec, ...], alpha: float) -> Experiment:
    return Experiment(id=experiment_id, name=experiment_id, kind="ab", status="running",
                      started=time.time(), arms=arms, metric="hit_rate", alpha=alpha)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--aa-runs", type=int, default=40)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=1000,
                        help="requests between two looks at the tests")
    parser.add_argument("--salt", default="ab-bench", help="the A/B experiment's id")
    args = parser.parse_args()
    limit_threads()  # one BLAS thread, as the replay harness runs its contestants
    console = Console(width=140)
    started = time.perf_counter()
    plan = build_plan(load_movielens(args.data))
    # A budget that never trips: on a loaded machine the circuit breaker (wall time)
    # would skip slow sources and make the arms' lists depend on the load.
    engine = Engine(EngineConfig(num_threads=1, random_state=0, source_budget_ms=1e9))
    engine.fit(plan.training)
    fitted = time.perf_counter() - started
    console.print(f"MovieLens small: fitted on {plan.n_train_events:,} ratings in "
                  f"{fitted:.0f} s; replaying {plan.n_test_events:,} ratings "
                  f"({plan.n_requests:,} requests), none skipped")

    ab = Run(_experiment(args.salt, (ArmSpec("champion", "champion", 0.5),
                                     ArmSpec("popularity", "champion", 0.5, WEAK)), args.alpha))
    aa = [Run(_experiment(f"aa-{n}", (ArmSpec("a", "champion", 0.5),
                                      ArmSpec("b", "champion", 0.5)), args.alpha))
          for n in range(args.aa_runs)]
    runs = [ab, *aa]
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteExperimentStore(Path(folder) / "experiments.sqlite")
        for run in runs:
            store.create(run.experiment)
        log = MemoryEventLog()
        tracker = OutcomeTracker(store, log)
        weak_chain = [PopularitySource()]
        filters = Filters()
        requests = 0
        replay_started = time.perf_counter()
        for step in plan.steps:
            if step.items:
                engine.add_items(step.items)
            if not step.events:
                continue
            user = step.events[0].user
            requests += 1
            request_id = f"r{requests}"
            champion, impression = engine.rank(user, K, filters)
            champion_items = tuple(r.item for r in champion)
            arms = [(a.name, a.share) for a in ab.experiment.arms]
            arm = arm_of(ab.experiment.id, user, arms)
            clock = engine.state.clock
            if arm == "champion":
                items = champion_items
                if impression is not None:  # only the champion's lists teach its rankers
                    engine.learn_impression(impression)
            else:
                weak, _ = engine.rank(user, K, filters, chain=weak_chain)
                items = tuple(r.item for r in weak)
            served = [ServedList(request_id, user, clock, items, ab.experiment.id, arm,
                                 engine.model_version)]
            for run in aa:
                aa_arm = arm_of(run.experiment.id, user, [("a", 0.5), ("b", 0.5)])
                served.append(ServedList(request_id, user, clock, champion_items,
                                         run.experiment.id, aa_arm, engine.model_version))
            log.append(served)
            log.append(step.events)
            for event in step.events:
                engine.learn_one(event)
            if requests % args.batch == 0:
                _look(tracker, store, runs, requests)
        _look(tracker, store, runs, requests)
        replayed = time.perf_counter() - replay_started
        _print(console, store, ab, aa, args.alpha, requests, replayed)
        store.close()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    console.print(f"run on {when}; command: .venv/bin/python bench/ab_test.py "
                  f"--aa-runs {args.aa_runs} --alpha {args.alpha} --batch {args.batch}")
    return 0


def _look(tracker: OutcomeTracker, store: SQLiteExperimentStore, runs: list[Run],
          requests: int) -> None:
    """Count the log so far and read every test, as a person looking at the page would."""
    tracker.update()
    for run in runs:
        decision = best_test(store, run.experiment)["decision"]
        run.looks += 1
        run.decisions.append(decision)
        if run.first_decision is None and decision != "no difference yet":
            run.first_decision = (requests, decision)


def _print(console: Console, store: SQLiteExperimentStore, ab: Run, aa: list[Run],
           alpha: float, requests: int, replayed: float) -> None:
    table = Table(title="A/B: champion against the same engine cut to popularity "
                        "(metric: hit rate of the next rating, per user)")
    for column in ("arm", "users", "requests", "outcomes", "hit rate [95% CS]"):
        table.add_column(column)
    found = report(store, ab.experiment)
    for arm in found["arms"]:
        rate = arm["hit_rate"]
        table.add_row(arm["name"], f"{arm['users']:,}", f"{arm['requests']:,}",
                      f"{arm['outcomes']:,}",
                      f"{rate['value']:.4f} [{rate['low']:.4f}, {rate['high']:.4f}]")
    console.print(table)
    test = found["test"]
    first = ab.first_decision
    console.print(f"difference (popularity - champion): {test['difference']:+.4f} "
                  f"[{_num(test['low'])}, {_num(test['high'])}], always-valid p = "
                  f"{test['p_value']:.2g}: {test['decision']}"
                  + (f"; first declared after {first[0]:,} of {requests:,} requests "
                     f"(look {ab.decisions.index(first[1]) + 1} of {ab.looks})"
                     if first else "; never declared"))
    false_positives = [run for run in aa if run.first_decision is not None]
    rate = len(false_positives) / len(aa) if aa else math.nan
    summary = Table(title=f"A/A: {len(aa)} runs, both arms the champion, tests read after "
                          f"each of {ab.looks} looks")
    for column in ("runs", "declared a difference (any look)", "false-positive rate",
                   "alpha", "smallest final p", "replay"):
        summary.add_column(column)
    finals = [best_test(store, run.experiment)["p_value"] for run in aa]
    summary.add_row(str(len(aa)), str(len(false_positives)), f"{rate:.3f}", f"{alpha}",
                    f"{min(finals):.3f}" if finals else "", f"{replayed:.0f} s")
    console.print(summary)
    verdict = ("PASS" if ab.first_decision is not None
               and test["decision"] == "control better" and rate <= alpha else "FAIL")
    console.print(f"{verdict}: the better arm (champion) "
                  f"{'found' if test['decision'] == 'control better' else 'NOT found'}; "
                  f"A/A false-positive rate {rate:.3f} {'<=' if rate <= alpha else '>'} "
                  f"alpha {alpha}")


def _num(value: float | None) -> str:
    return "inf" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
