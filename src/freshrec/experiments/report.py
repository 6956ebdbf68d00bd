"""An experiment as the API answers it: definition, per-arm metrics, the test.

Everything comes from the store (what the leader counted from the log), so every
worker gives the same answer.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from freshrec.experiments.outcomes import arm_stats, finite
from freshrec.experiments.sequential import Arm, SequentialTest
from freshrec.experiments.store import METRICS, ArmTotals, Experiment, ExperimentStore

DECISIONS = {"b better": "candidate better", "a better": "control better",
             "no difference yet": "no difference yet"}


def report(store: ExperimentStore, experiment: Experiment) -> dict[str, Any]:
    """The experiment's JSON (see docs/experiments.md)."""
    totals = store.totals(experiment.id)
    test = SequentialTest(alpha=experiment.alpha)
    per_metric = {metric: arm_stats(store, msgspec.structs.replace(experiment, metric=metric))
                  for metric in METRICS}
    arms = []
    for arm in experiment.arms:
        counted = totals.get(arm.name, ArmTotals())
        arms.append({
            "name": arm.name, "model": arm.model, "share": arm.share, "settings": arm.settings,
            "users": counted.users, "requests": counted.requests,
            "impressions": counted.impressions, "clicks": counted.clicks,
            "outcomes": counted.outcomes, "hits": counted.hits, "purchases": counted.purchases,
            **{metric: _interval(test, per_metric[metric][arm.name]) for metric in METRICS},
        })
    return {"id": experiment.id, "name": experiment.name, "kind": experiment.kind,
            "status": experiment.status, "started": experiment.started,
            "stopped": experiment.stopped, "metric": experiment.metric,
            "alpha": experiment.alpha, "winner": experiment.winner,
            **({"sample": experiment.sample} if experiment.kind == "shadow" else {}),
            "arms": arms, "test": best_test(store, experiment)}


def tests(store: ExperimentStore, experiment: Experiment) -> list[dict[str, Any]]:
    """Each arm against the control (the first arm), as its stored test state says."""
    stats = arm_stats(store, experiment)
    states = store.test_states(experiment.id)
    comparisons = max(len(experiment.arms) - 1, 1)
    test = SequentialTest(alpha=experiment.alpha / comparisons)
    control = experiment.arms[0].name
    found = []
    for arm in experiment.arms[1:]:
        p_value, low, high = states.get(arm.name, (1.0, -math.inf, math.inf))
        decision = DECISIONS[test.decide(p_value, low, high)]
        found.append({"metric": experiment.metric, "control": control, "arm": arm.name,
                      "difference": stats[arm.name].mean - stats[control].mean,
                      "low": finite(low), "high": finite(high), "p_value": p_value,
                      "decision": decision,
                      "winner": {"candidate better": arm.name,
                                 "control better": control}.get(decision)})
    return found


def best_test(store: ExperimentStore, experiment: Experiment) -> dict[str, Any]:
    """The comparison with the smallest p-value (the only one with two arms)."""
    return min(tests(store, experiment), key=lambda found: found["p_value"])


def _interval(test: SequentialTest, arm: Arm) -> dict[str, float | None]:
    interval = test.interval(arm)
    return {"value": finite(interval.value), "low": finite(interval.low),
            "high": finite(interval.high), "users": arm.n}
