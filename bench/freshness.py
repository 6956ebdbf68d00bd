"""Freshness: time from the acknowledgement of an event to the first recommendation
response that reflects it.

    .venv/bin/python bench/freshness.py             # about a minute plus loading

The server is ``freshrec serve`` in a child process holding the Online Retail II
catalog and the first half of its events, trained once (the generated shop stands
in without ../shared/data). For each trial the reflection is made detectable:

* setup: pairs of new items (A_i, B_i) are posted, and five users view A_i then
  B_i, so B_i is A_i's only co-view partner and is rarely shown otherwise;
* trial i: a never-seen user first asks for recommendations (B_i must not be
  among them, else the trial is void), then views A_i (POST /v1/events); from the
  moment the acknowledgement is read, recommendations (k=10) are polled back to
  back until B_i appears. Freshness = arrival of that response - the ack
  (``time.perf_counter`` in the measuring process).

Trials run on a quiet server, then while another process ingests 1,000 events/s
(batches of 50 every 50 ms, open loop).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np
from rich.console import Console

from _load import LoadProcess, http_request, open_loop, percentiles
from _server import KEY, Report, bench_data, chunks, header, loaded_server, server_env
from freshrec.client import FreshrecClient
from freshrec.records import Event, Item

PLANTERS = 5
GIVE_UP_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="per scenario")
    parser.add_argument("--events-per-second", type=float, default=1000.0,
                        help="background ingest of the second scenario")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the server (diagnostics; repeatable)")
    args = parser.parse_args()
    console = Console(width=120)
    header(console, "freshrec service benchmark: freshness")
    data = bench_data()
    if data.note:
        console.print(f"[yellow]note:[/] {data.note}")
    clock = data.history[-1].timestamp  # planted events keep the data's time, not today's
    rows = []
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-freshness-") as folder:
        server = loaded_server(data, Path(folder), console, server_env(args.server_env))
        try:
            with FreshrecClient(server.url, KEY) as client:
                plant(client, 2 * args.trials, clock)
                rows.append(scenario(client, "quiet", range(args.trials), clock))
                per_second = args.events_per_second / 50
                seconds = args.trials * 0.05 + 15.0  # outlasts the trials
                bodies = [http_request("POST", "/v1/events", KEY,
                                       msgspec.json.encode({"events": list(b)}))
                          for b in chunks(data.stream, 50)][:int(per_second * seconds)]
                load = LoadProcess(open_loop, port=server.port, requests=bodies,
                                   rate=per_second, duration=seconds,
                                   start_at=time.time() + 3.0)
                time.sleep(5.0)
                rows.append(scenario(client, f"ingesting {args.events_per_second:,.0f} events/s",
                                     range(args.trials, 2 * args.trials), clock))
                background = load.result()
        finally:
            server.stop()
    ok = background["statuses"].get(200, 0)
    Report("freshness", f"Freshness: event acknowledged -> reflected in recommendations "
                        f"({data.name})",
           ["server", "trials", "void", "missed", "p50 ms", "p99 ms", "max ms",
            "reflected at 1st poll"], rows,
           [f"Background ingest: {ok:,} of {background['scheduled']:,} requests answered "
            f"200 (p99 {percentiles(background['latency'], (99,))[0]:.1f} ms)."],
           server_env=args.server_env).show(console)


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


def scenario(client: FreshrecClient, name: str, trials: range, clock: float) -> list[str]:
    waits, polls, void, missed = [], [], 0, 0
    for i in trials:
        user, target = f"bench-probe-{i}", f"bench-b-{i}"
        if target in _ids(client.recommendations(user)):
            void += 1
            continue
        client.post_events([Event(user=user, item=f"bench-a-{i}", type="view",
                                  timestamp=clock, id=f"bench-probe-{i}")])
        acked = time.perf_counter()
        for n in range(1, 1_000_000):
            answer = client.recommendations(user)
            arrived = time.perf_counter()
            if target in _ids(answer):
                waits.append(arrived - acked)
                polls.append(n)
                break
            if arrived - acked > GIVE_UP_S:
                missed += 1
                break
    p50, p99 = percentiles(np.asarray(waits), (50, 99))
    first = np.mean(np.asarray(polls) == 1) if polls else float("nan")
    return [name, str(len(trials)), str(void), str(missed), f"{p50:.2f}", f"{p99:.2f}",
            f"{max(waits) * 1e3:.1f}" if waits else "-", f"{first:.0%}"]


def _ids(answer: dict) -> set[str]:  # type: ignore[type-arg]
    return {row["id"] for row in answer["items"]}


if __name__ == "__main__":
    main()
