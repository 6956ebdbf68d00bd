"""Freshness: time from the acknowledgement of an event through one connection to the
first recommendation response through another connection that reflects it.

    .venv/bin/python bench/freshness.py             # about a minute per worker count
    .venv/bin/python bench/freshness.py --quick     # 30 trials per scenario

The server is ``freshrec serve`` in a child process holding the Online Retail II
catalog and the first half of its events, trained once (the generated shop stands
in without ../shared/data); each worker count of ``--workers`` is measured in turn
on its own copy of it. For each trial the reflection is made detectable:

* setup: pairs of new items (A_i, B_i) are posted, and five users view A_i then
  B_i, so B_i is A_i's only co-view partner and is rarely shown otherwise;
* trial i: a never-seen user first asks for recommendations (B_i must not be
  among them, else the trial is void), then views A_i (POST /v1/events through
  one keep-alive connection); from the moment the acknowledgement is read,
  recommendations (k=10) are polled back to back through another connection
  until B_i appears. Freshness = arrival of that response - the ack
  (``time.perf_counter`` in the measuring process).

Each connection stays with the worker process that accepted it (the answers name
it in ``X-Freshrec-Worker``), so with N workers the trials cycle through every
(acking worker, answering worker) pair, and the table reports the pairs where
they differ apart from those where the same worker answered.

Trials run on a quiet server, then while another process ingests 1,000 events/s
(batches of 50 every 50 ms, open loop).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import msgspec
import numpy as np

from _load import (
    LoadProcess,
    PinnedConnection,
    connections_to_every_worker,
    http_request,
    open_loop,
    percentiles,
)
from _server import (
    KEY,
    Report,
    add_server_options,
    bench_run,
    chunks,
    copy_dir,
    log_position,
    wait_caught_up,
)
from freshrec.client import FreshrecClient
from freshrec.local_server import LocalServer
from freshrec.records import Event, Item

PLANTERS = 5
GIVE_UP_S = 5.0


@dataclass
class Trials:
    """The outcome of the trials of one group of (acking, answering) worker pairs."""

    waits: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    trials: int = 0
    void: int = 0
    missed: int = 0
    behind: int = 0
    """Answers flagged ``X-Freshrec-Behind`` (the learner had not caught up in time)."""

    def row(self) -> list[str]:
        p50, p99 = percentiles(np.asarray(self.waits), (50, 99))
        first = np.mean(np.asarray(self.polls) == 1) if self.polls else float("nan")
        return [str(self.trials), str(self.void), str(self.missed), f"{p50:.2f}",
                f"{p99:.2f}", f"{max(self.waits) * 1e3:.1f}" if self.waits else "-",
                f"{first:.0%}", str(self.behind)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=None,
                        help="per scenario (default 200; 30 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a short run: 30 trials")
    parser.add_argument("--events-per-second", type=float, default=1000.0,
                        help="background ingest of the second scenario")
    add_server_options(parser)
    args = parser.parse_args()
    trials = args.trials or (30 if args.quick else 200)
    rows: list[list[str]] = []
    notes: list[str] = []
    with bench_run("freshrec service benchmark: freshness", args) as run:
        clock = run.data.history[-1].timestamp
        for workers, server in run.servers(args.workers):
            rows += measure(server, workers, copy_dir(run.workdir, workers), run.data.stream,
                            clock, trials, args.events_per_second, notes)
    Report("freshness", f"Freshness: event acknowledged through one connection -> "
                        f"reflected in recommendations through another ({run.data.name})",
           ["workers", "server", "acked -> answered by", "trials", "void", "missed",
            "p50 ms", "p99 ms", "max ms", "reflected at 1st poll", "flagged behind"], rows,
           [*notes, "void: B_i was recommended before the trial; missed: not reflected "
            f"within {GIVE_UP_S:.0f} s; flagged behind: answers with X-Freshrec-Behind.",
            *run.failed]).show(run.console)


def measure(server: LocalServer, workers: int, data_dir: Path, stream: list[Event],
            clock: float, trials: int, events_per_second: float,
            notes: list[str]) -> list[list[str]]:
    """The rows of one worker count (``data_dir``: its own): quiet, then under background
    ingest. ``clock``: planted events keep the data's time, not today's."""
    pinned = connections_to_every_worker(server.port, KEY, workers, each=2)
    try:
        with FreshrecClient(server.url, KEY) as client:
            plant(client, 2 * trials, clock)
        wait_caught_up(server, workers, log_position(data_dir))  # quiet: no backlog
        rows = _rows(workers, "quiet", scenario(pinned, range(trials), clock))
        per_second = events_per_second / 50
        seconds = trials * 0.05 + 15.0  # outlasts the trials
        bodies = [http_request("POST", "/v1/events", KEY,
                               msgspec.json.encode({"events": list(b)}))
                  for b in chunks(stream, 50)][:int(per_second * seconds)]
        load = LoadProcess(open_loop, port=server.port, requests=bodies, rate=per_second,
                           duration=seconds, start_at=time.time() + 3.0)
        time.sleep(5.0)
        rows += _rows(workers, f"ingesting {events_per_second:,.0f} events/s",
                      scenario(pinned, range(trials, 2 * trials), clock))
        background = load.result()
    finally:
        for group in pinned.values():
            for connection in group:
                connection.close()
    ok = background["statuses"].get(200, 0)
    notes.append(f"workers={workers}: background ingest: {ok:,} of "
                 f"{background['scheduled']:,} requests answered 200 (p99 "
                 f"{percentiles(background['latency'], (99,))[0]:.1f} ms).")
    return rows


def _rows(workers: int, name: str, groups: dict[str, Trials]) -> list[list[str]]:
    shown = groups if workers > 1 else {"same worker": groups["all"]}
    return [[str(workers), name, group, *trials.row()] for group, trials in shown.items()]


def plant(client: FreshrecClient, pairs: int, clock: float) -> None:
    """Items A_i and B_i, and users who view A_i then B_i."""
    client.post_items([Item(id=f"bench-a-{i}", title=f"probe item a {i}") for i in range(pairs)]
                      + [Item(id=f"bench-b-{i}", title=f"probe item b {i}")
                         for i in range(pairs)])
    events = [Event(user=f"bench-planter-{i}-{j}", item=f"bench-{side}-{i}", type="view",
                    timestamp=clock, id=f"bench-plant-{i}-{j}-{side}")
              for i in range(pairs) for j in range(PLANTERS) for side in ("a", "b")]
    for batch in chunks(events, 1000):
        client.post_events(batch)


def scenario(pinned: dict[int, list[PinnedConnection]], trials: range,
             clock: float) -> dict[str, Trials]:
    """Trial i acks through a connection to worker i mod N and reads through another
    connection, to worker (i div N) mod N: every pair of workers in turn."""
    workers = len(pinned)
    groups = {"all": Trials(), "same worker": Trials(), "another worker": Trials()}
    for i in trials:
        poster = pinned[i % workers][0]
        reader = pinned[(i // workers) % workers][1]
        pair = groups["same worker" if poster.worker == reader.worker else "another worker"]
        user, target = f"bench-probe-{i}", f"bench-b-{i}"
        path = f"/v1/users/{quote(user, safe='')}/recommendations?k=10"
        if target in _ids(reader.request("GET", path)):
            for group in (groups["all"], pair):
                group.trials += 1
                group.void += 1
            continue
        body = msgspec.json.encode({"events": [Event(user=user, item=f"bench-a-{i}",
                                                     type="view", timestamp=clock,
                                                     id=f"bench-probe-{i}")]})
        status, answer = poster.request("POST", "/v1/events", body)
        acked = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"POST /v1/events answered {status}: {answer}")
        outcome = Trials(trials=1)
        for n in range(1, 1_000_000):
            answer = reader.request("GET", path)
            arrived = time.perf_counter()
            outcome.behind += reader.headers is not None and "x-freshrec-behind" in reader.headers
            if target in _ids(answer):
                outcome.waits.append(arrived - acked)
                outcome.polls.append(n)
                break
            if arrived - acked > GIVE_UP_S:
                outcome.missed += 1
                break
        for group in (groups["all"], pair):
            group.trials += 1
            group.waits += outcome.waits
            group.polls += outcome.polls
            group.missed += outcome.missed
            group.behind += outcome.behind
    return groups


def _ids(answer: tuple[int, dict]) -> set[str]:  # type: ignore[type-arg]
    status, body = answer
    if status != 200:
        raise RuntimeError(f"recommendations answered {status}: {body}")
    return {row["id"] for row in body["items"]}


if __name__ == "__main__":
    main()
