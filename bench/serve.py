"""Recommendations over HTTP: throughput, latency, and the target scenario.

    .venv/bin/python bench/serve.py                 # about 5 minutes per worker count
    .venv/bin/python bench/serve.py --quick         # about 1 minute per worker count
    .venv/bin/python bench/serve.py --workers 1,2 --profile results/service/serve.collapsed

The server is ``freshrec serve`` in a child process with a fresh data directory
holding the Online Retail II catalog and the first half of its events, trained
once (the generated shop stands in without ../shared/data). Each worker count of
``--workers`` (``serve --workers N``) is measured in turn on its own copy of that
directory, and the tables put them side by side. All load comes from other
processes on loopback.

1. Closed loop (wrk): requests/s and p50/p99 at several concurrencies for
   GET /v1/users/{id}/recommendations with random known users, and for the floor:
   the same FastAPI + uvicorn stack with the same number of worker processes
   answering a constant JSON at the same path.
2. Target scenario (open loop): recommend at 500 requests/s while events are
   ingested at 1,000/s (batches of 50 every 50 ms), each from its own process,
   for 60 s; latencies are measured from each request's scheduled time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import msgspec
import numpy as np
from rich.console import Console

from _load import LoadProcess, http_request, open_loop, percentiles, wrk
from _server import (
    KEY,
    Report,
    add_server_options,
    bench_run,
    by_worker,
    chunks,
    cpu_between,
    floor_server,
    tree_cpu_seconds,
)
from freshrec.client import FreshrecClient
from freshrec.local_server import LocalServer
from freshrec.records import Event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a short run: connections 1 and 16, 3 s per wrk row, a 10 s "
                             "target scenario (unless given explicitly)")
    parser.add_argument("--concurrency", default=None,
                        help="closed-loop concurrencies (comma-separated; empty: skip; "
                             "default 1,4,16,64)")
    parser.add_argument("--wrk-seconds", type=float, default=None, help="default 10")
    parser.add_argument("--rate", type=float, default=500.0, help="recommendations/s")
    parser.add_argument("--events-per-second", type=float, default=1000.0)
    parser.add_argument("--batch", type=int, default=50, help="events per ingest request")
    parser.add_argument("--seconds", type=float, default=None,
                        help="target scenario length (0: skip; default 60)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server (all its processes) with py-spy during the "
                             "target scenario; collapsed stacks in this path with -<N>w "
                             "added to its name for N workers")
    add_server_options(parser)
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = "1,16" if args.quick else "1,4,16,64"
    if args.wrk_seconds is None:
        args.wrk_seconds = 3.0 if args.quick else 10.0
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 60.0
    if args.concurrency.strip() and shutil.which("wrk") is None:
        # Said before any loading, and nothing is installed behind the user's back.
        sys.exit("bench/serve.py needs wrk for its closed-loop rows: install it (Debian and "
                 "Ubuntu: 'apt-get install wrk'; macOS: 'brew install wrk'), or skip those "
                 "rows with --concurrency ''")
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    closed_rows: list[list[str]] = []
    target_rows: list[list[str]] = []
    target_notes: list[str] = []
    with bench_run("freshrec service benchmark: recommendations", args) as run:
        rng = np.random.default_rng(0)
        users = run.data.users
        paths = [f"/v1/users/{quote(users[i], safe='')}/recommendations?k=10"
                 for i in rng.integers(len(users), size=20_000)]
        for workers, server in run.servers(args.workers):
            if concurrencies:
                closed_rows += closed_loop(run.console, server.url, run.workdir, workers,
                                           paths, concurrencies, args)
            if args.seconds > 0:
                rows, notes = target(server, workers, paths, run.data.stream, args)
                target_rows += rows
                target_notes += notes
    console, data = run.console, run.data
    if concurrencies:
        closed_rows.sort(key=lambda row: (int(row[0]), int(row[1])))  # worker counts adjacent
        Report("serve-closed-loop",
               f"Recommendations, closed loop (wrk, {args.wrk_seconds:.0f} s per row, "
               f"{data.name})",
               ["connections", "workers", "recs/s", "p50 ms", "p99 ms",
                "floor req/s", "floor p50 ms", "floor p99 ms", "floor/recs"], closed_rows,
               ["recs: GET /v1/users/{id}/recommendations?k=10, random known users, with "
                "auth; floor: the same stack (FastAPI + uvicorn, the same process settings) "
                "answering a constant JSON at the same path, with as many worker processes "
                "(uvicorn's workers= on one listening socket); floor/recs: how many times "
                "the service's requests/s the floor does.", *run.failed],
               server_env=args.server_env).show(console)
    if args.seconds > 0:
        title = (f"Target scenario: {args.rate:.0f} recommendations/s while ingesting "
                 f"{args.events_per_second:,.0f} events/s (open loop, {data.name})")
        Report(f"serve-target-{args.rate:.0f}rps", title,
               ["workers", "stream", "scheduled", "achieved (200 OK)", "not OK", "p50 ms",
                "p95 ms", "p99 ms", "max ms"], target_rows, [*target_notes, *run.failed],
               server_env=args.server_env).show(console)


def closed_loop(console: Console, url: str, workdir: Path, workers: int, paths: list[str],
                concurrencies: list[int], args: argparse.Namespace) -> list[list[str]]:
    """A row per concurrency: the service, then the floor with as many workers."""
    seconds = args.wrk_seconds
    rows = []
    with floor_server(workdir, workers) as floor:
        for warm in (url, floor.url):
            wrk(warm, paths, KEY, 16, 3)
        for c in concurrencies:
            ours = wrk(url, paths, KEY, c, seconds)
            base = wrk(floor.url, paths, None, c, seconds)
            for run in (ours, base):
                if run["non_2xx"] or run["socket_errors"]:
                    console.print(f"[red]errors[/]: {run['non_2xx']} non-2xx, "
                                  f"socket errors {run['socket_errors'] or 'none'}")
            rows.append([str(c), str(workers), f"{ours['rate']:,.0f}",
                         f"{ours['p50'] * 1e3:.2f}", f"{ours['p99'] * 1e3:.2f}",
                         f"{base['rate']:,.0f}", f"{base['p50'] * 1e3:.2f}",
                         f"{base['p99'] * 1e3:.2f}", f"{base['rate'] / ours['rate']:.1f}x"])
    return rows


def target(server: LocalServer, workers: int, paths: list[str], stream: list[Event],
           args: argparse.Namespace) -> tuple[list[list[str]], list[str]]:
    """The two streams' rows and the notes of one worker count."""
    port, pid = server.port, server.pid
    assert pid is not None
    per_second = args.events_per_second / args.batch
    needed = int(per_second * args.seconds) + 1
    batches = list(chunks(stream, args.batch))[:needed]
    if len(batches) < needed:
        raise SystemExit(f"the stream holds {len(stream):,} events; need "
                         f"{needed * args.batch:,}")
    bodies = [http_request("POST", "/v1/events", KEY, msgspec.json.encode({"events": b}))
              for b in batches]
    gets = [http_request("GET", p, KEY) for p in paths]
    with FreshrecClient(server.url, KEY) as client:
        before = client.ready()
        trainings_before = _trainings(client.metrics())
    start_at = time.time() + 5.0
    recommend = LoadProcess(open_loop, port=port, requests=gets, rate=args.rate,
                            duration=args.seconds, start_at=start_at)
    ingest = LoadProcess(open_loop, port=port, requests=bodies, rate=per_second,
                         duration=args.seconds, start_at=start_at)
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, t0 = tree_cpu_seconds(pid), time.perf_counter()
    spy = _profile(pid, workers, args.profile, args.seconds)
    recs, events = recommend.result(), ingest.result()
    server_cpu = cpu_between(cpu0, tree_cpu_seconds(pid)) / (time.perf_counter() - t0)
    if spy is not None:
        spy.wait()
    with FreshrecClient(server.url, KEY) as client:
        after = client.ready()
        trainings = _trainings(client.metrics()) - trainings_before
    rows = []
    for name, run, unit in (("recommend", recs, "req/s"),
                            (f"ingest ({args.batch} events/request)", events, "req/s")):
        ok = run["statuses"].get(200, 0)
        p50, p95, p99 = percentiles(run["latency"], (50, 95, 99))
        rows.append([str(workers), name, f"{run['scheduled'] / args.seconds:,.0f} {unit}",
                     f"{ok / run['elapsed']:,.1f} {unit}", f"{run['scheduled'] - ok}",
                     f"{p50:.2f}", f"{p95:.2f}", f"{p99:.2f}",
                     f"{run['latency'].max() * 1e3:.1f}" if len(run["latency"]) else "-"])
    lag = percentiles(np.concatenate([recs["lag"], events["lag"]]), (50, 99, 100))
    acked = after["events"] - before["events"]
    notes = [
        f"workers={workers}: {args.seconds:.0f} s; events acknowledged: {acked:,} "
        f"({acked / args.seconds:,.0f}/s); background trainings finished in the window: "
        f"{trainings} (model {before['model']} -> {after['model']}). Server CPU (all its "
        f"processes) {server_cpu:.0%} of one core; load generators "
        f"{recs['client_cpu']:.0%} + {events['client_cpu']:.0%}; generators started "
        f"requests {lag[0]:.1f} / {lag[1]:.1f} / {lag[2]:.1f} ms (p50/p99/max) after their "
        f"scheduled time (included in the latencies); {recs['connections']} + "
        f"{events['connections']} connections; recommendations answered by worker: "
        f"{by_worker(recs['workers'])}.",
    ]
    return rows, notes


def _profile(pid: int, workers: int, path: Path | None,
             seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy recording ``pid`` (and its worker processes) for ``seconds``, if asked."""
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    output = path.with_name(f"{path.stem}-{workers}w{path.suffix}")
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    command: Sequence[str] = [py_spy, "record", "--pid", str(pid), "--format", "raw",
                              "--rate", "200", "--duration", str(int(seconds)),
                              "--output", str(output), "--nonblocking",
                              *(["--subprocesses"] if workers > 1 else [])]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _trainings(metrics: str) -> int:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("freshrec_trainings_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


if __name__ == "__main__":
    main()
