"""Recommendations over HTTP: throughput, latency, and the target scenario.

    .venv/bin/python bench/serve.py                 # about 4 minutes plus loading
    .venv/bin/python bench/serve.py --profile results/service/serve.collapsed

The server is ``freshrec serve`` in a child process with a fresh data directory
holding the Online Retail II catalog and the first half of its events, trained
once (the generated shop stands in without ../shared/data). All load comes from
other processes on loopback.

1. Closed loop (wrk): requests/s and p50/p99 at several concurrencies for
   GET /v1/users/{id}/recommendations with random known users, and for the floor:
   the same FastAPI + uvicorn stack answering a constant JSON at the same path.
2. Target scenario (open loop): recommend at 500 requests/s while events are
   ingested at 1,000/s (batches of 50 every 50 ms), each from its own process,
   for 60 s; latencies are measured from each request's scheduled time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import msgspec
import numpy as np
from rich.console import Console

from _load import LoadProcess, http_request, open_loop, percentiles, wrk
from _server import (
    KEY,
    Report,
    bench_data,
    chunks,
    cpu_seconds,
    floor_server,
    header,
    loaded_server,
    server_env,
)
from freshrec.client import FreshrecClient
from freshrec.local_server import LocalServer
from freshrec.records import Event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,4,16,64",
                        help="closed-loop concurrencies (comma-separated; empty: skip)")
    parser.add_argument("--wrk-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="recommendations/s")
    parser.add_argument("--events-per-second", type=float, default=1000.0)
    parser.add_argument("--batch", type=int, default=50, help="events per ingest request")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="target scenario length (0: skip)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server with py-spy during the target scenario "
                             "(collapsed stacks written here)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the server (diagnostics; repeatable)")
    args = parser.parse_args()
    console = Console(width=120)
    if args.concurrency.strip() and shutil.which("wrk") is None:
        # Said before any loading, and nothing is installed behind the user's back.
        sys.exit("bench/serve.py needs wrk for its closed-loop rows: install it (Debian and "
                 "Ubuntu: 'apt-get install wrk'; macOS: 'brew install wrk'), or skip those "
                 "rows with --concurrency ''")
    header(console, "freshrec service benchmark: recommendations")
    data = bench_data()
    if data.note:
        console.print(f"[yellow]note:[/] {data.note}")
    rng = np.random.default_rng(0)
    users = data.users
    paths = [f"/v1/users/{quote(users[i], safe='')}/recommendations?k=10"
             for i in rng.integers(len(users), size=20_000)]
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-serve-") as folder:
        workdir = Path(folder)
        server = loaded_server(data, workdir, console, server_env(args.server_env))
        floor = floor_server(workdir).start()
        try:
            concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
            if concurrencies:
                closed_loop(console, server.url, floor.url, paths, concurrencies, data.name,
                            args)
            if args.seconds > 0:
                target(console, server, paths, data.stream, args)
        finally:
            floor.stop()
            server.stop()


def closed_loop(console: Console, url: str, floor_url: str, paths: list[str],
                concurrencies: list[int], dataset: str, args: argparse.Namespace) -> None:
    seconds = args.wrk_seconds
    for warm in (url, floor_url):
        wrk(warm, paths, KEY, 16, 3)
    rows = []
    for c in concurrencies:
        ours = wrk(url, paths, KEY, c, seconds)
        base = wrk(floor_url, paths, None, c, seconds)
        for run in (ours, base):
            if run["non_2xx"] or run["socket_errors"]:
                console.print(f"[red]errors[/]: {run['non_2xx']} non-2xx, "
                              f"socket errors {run['socket_errors'] or 'none'}")
        rows.append([str(c), f"{ours['rate']:,.0f}", f"{ours['p50'] * 1e3:.2f}",
                     f"{ours['p99'] * 1e3:.2f}", f"{base['rate']:,.0f}",
                     f"{base['p50'] * 1e3:.2f}", f"{base['p99'] * 1e3:.2f}"])
    Report("serve-closed-loop",
           f"Recommendations, closed loop (wrk, {seconds:.0f} s per row, {dataset})",
           ["connections", "recs/s", "p50 ms", "p99 ms",
            "floor req/s", "floor p50 ms", "floor p99 ms"], rows,
           ["recs: GET /v1/users/{id}/recommendations?k=10, random known users, with "
            "auth; floor: the same stack answering a constant JSON at the same path."],
           server_env=args.server_env).show(console)


def target(console: Console, server: LocalServer, paths: list[str], stream: list[Event],
           args: argparse.Namespace) -> None:
    port, pid = server.port, server.pid
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
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    spy = None
    if args.profile is not None:
        args.profile.parent.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        spy = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw",
                                "--rate", "200", "--duration", str(int(args.seconds)),
                                "--output", str(args.profile), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recs, events = recommend.result(), ingest.result()
    server_cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
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
        rows.append([name, f"{run['scheduled'] / args.seconds:,.0f} {unit}",
                     f"{ok / run['elapsed']:,.1f} {unit}", f"{run['scheduled'] - ok}",
                     f"{p50:.2f}", f"{p95:.2f}", f"{p99:.2f}",
                     f"{run['latency'].max() * 1e3:.1f}"])
    lag = percentiles(np.concatenate([recs["lag"], events["lag"]]), (50, 99, 100))
    notes = [
        f"{args.seconds:.0f} s; events acknowledged: "
        f"{after['events'] - before['events']:,} "
        f"({(after['events'] - before['events']) / args.seconds:,.0f}/s); "
        f"background trainings finished in the window: {trainings} "
        f"(model {before['model']} -> {after['model']}).",
        f"Server CPU {server_cpu:.0%} of one core; load generators "
        f"{recs['client_cpu']:.0%} + {events['client_cpu']:.0%}; "
        f"generators started requests {lag[0]:.1f} / {lag[1]:.1f} / {lag[2]:.1f} ms "
        f"(p50/p99/max) after their scheduled time (included in the latencies); "
        f"{recs['connections']} + {events['connections']} connections.",
    ]
    title = (f"Target scenario: {args.rate:.0f} recommendations/s while ingesting "
             f"{args.events_per_second:,.0f} events/s (open loop)")
    Report(f"serve-target-{args.rate:.0f}rps", title,
           ["stream", "scheduled", "achieved (200 OK)", "not OK", "p50 ms", "p95 ms",
            "p99 ms", "max ms"], rows, notes, server_env=args.server_env).show(console)


def _trainings(metrics: str) -> int:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("freshrec_trainings_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


if __name__ == "__main__":
    main()
