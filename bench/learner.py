"""What the learner pays per record, with the vector flushes it now runs by log position.

    .venv/bin/python bench/learner.py retail --events 20000
    .venv/bin/python bench/learner.py movielens --events 20000

The engine is fitted on the stream up to the last ``--events`` events, which then go
through the service's path: ``rank`` before each user's event (not timed), the
impression applied with ``learn_impression``, then ``learn_one``, each timed. It runs
twice on the same records: with the flushes every ``item_batch_size`` dirty items
(the state after N records depends on the records alone), and with flushes never due
(what the ingest path paid when a timer ran them elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from freshrec.config import EngineConfig
from freshrec.engine import NATURAL, Engine
from freshrec.evaluation.datasets import DatasetSource
from freshrec.records import Event, Item

NEVER = 10**9


def run(engine: Engine, tail: list[Item | Event]) -> dict[str, list[int]]:
    clock = time.perf_counter_ns
    costs: dict[str, list[int]] = {"event": [], "impression": []}
    shown: dict[str, float] = {}
    for record in tail:
        if isinstance(record, Item):
            engine.add_item(record)
            continue
        if shown.get(record.user) != record.timestamp:
            shown[record.user] = record.timestamp
            _, impression = engine.rank(record.user, k=10, filters=NATURAL)
            if impression is not None:
                begin = clock()
                engine.learn_impression(impression)
                costs["impression"].append(clock() - begin)
        begin = clock()
        engine.learn_one(record)
        costs["event"].append(clock() - begin)
    return costs


def summary(name: str, values: list[int]) -> str:
    us = np.array(values) / 1000.0
    return (f"| {name} | {len(values):,} | {np.percentile(us, 50):,.0f} | "
            f"{np.percentile(us, 99):,.0f} | {np.percentile(us, 99.9):,.0f} | "
            f"{us.max():,.0f} | {us.mean():,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=("movielens", "retail", "synthetic"))
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    records = list(DatasetSource(args.dataset).load().stream())
    events = [n for n, r in enumerate(records) if isinstance(r, Event)]
    split = events[-args.events]
    engine = Engine(EngineConfig(num_threads=1))
    engine.fit(records[:split])
    fitted = engine.snapshot()
    print(f"{args.dataset}: fitted on {len(events) - args.events:,} events, "
          f"timing the next {args.events:,}\n")
    print("| flushes | record | n | p50 µs | p99 µs | p99.9 µs | max µs | mean µs |")
    print("|---|---|---|---|---|---|---|---|")
    for label, batch in (("every item_batch_size dirty items", None), ("never", NEVER)):
        engine = Engine.restore(fitted)
        if batch is not None:
            engine.state.config = dataclasses.replace(engine.state.config, item_batch_size=batch)
        costs = run(engine, records[split:])
        for name, values in costs.items():
            print(summary(f"{label} | {name}", values))


if __name__ == "__main__":
    main()
