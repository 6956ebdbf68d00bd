"""Durable ingest over HTTP: events/s and request latency by batch size and clients.

    .venv/bin/python bench/ingest.py                # about 2 minutes per worker count
    .venv/bin/python bench/ingest.py --quick        # about 20 s per worker count

The server is ``freshrec serve`` in a child process with a fresh data directory
on local disk, holding the Online Retail II catalog and the first half of its
events, trained once (the generated shop stands in without ../shared/data); each
worker count of ``--workers`` is measured in turn on its own copy of it. An
ingest request is answered after its events are committed to the log (SQLite
WAL, ``synchronous=FULL``: an fsync per commit; concurrent requests share a
commit); the learner applies them from the log right after. Each configuration
posts events of the second half, each with an id never sent before, closed loop
from a separate process.
"""

from __future__ import annotations

import argparse
import time

import msgspec

from _load import LoadProcess, closed_loop, http_request, percentiles
from _server import (
    KEY,
    Report,
    add_server_options,
    bench_run,
    by_worker,
    copy_dir,
    log_position,
    wait_caught_up,
)
from freshrec.client import FreshrecClient
from freshrec.records import Event

CONFIGS = ((1, 1), (1, 8), (1, 32), (100, 1), (100, 4), (1000, 1), (1000, 4))
"""(events per request, concurrent clients)."""
QUICK_CONFIGS = ((1, 8), (100, 4), (1000, 1), (1000, 4))
MAX_EVENTS_PER_SECOND = 60_000
"""Bodies are prepared for at most this rate, so no event id is ever sent twice."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None,
                        help="per configuration (default 10; 3 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: configurations {QUICK_CONFIGS} (events per "
                             "request, clients), 3 s each")
    add_server_options(parser)
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    configs = QUICK_CONFIGS if args.quick else CONFIGS
    rows = []
    with bench_run("freshrec service benchmark: durable ingest", args) as run:
        workdir = run.workdir
        for workers, server in run.servers(args.workers):
            for number, (batch, clients) in enumerate(configs):
                bodies = _bodies(run.data.stream, batch, number, seconds)
                before = log_position(copy_dir(workdir, workers))
                load = LoadProcess(closed_loop, port=server.port, requests=bodies,
                                   connections=clients, duration=seconds,
                                   start_at=time.time() + 2.0).result()
                last = log_position(copy_dir(workdir, workers))
                with FreshrecClient(server.url, KEY) as client:
                    behind = client.request("GET", "/v1/monitoring")["learner"]["lag"]
                caught_up = time.perf_counter()
                wait_caught_up(server, workers, last)  # the next row starts without a backlog
                catch_up = time.perf_counter() - caught_up
                ok = load["statuses"].get(200, 0)
                p50, p99 = percentiles(load["latency"], (50, 99))
                rows.append([str(batch), str(clients), str(workers),
                             f"{ok / load['elapsed']:,.0f}",
                             f"{(last - before) / load['elapsed']:,.0f}",
                             f"{p50:.2f}", f"{p99:.2f}", str(load["completed"] - ok),
                             f"{load['client_cpu']:.0%}", f"{behind:,}", f"{catch_up:.1f}",
                             by_worker(load["workers"])])
    rows.sort(key=lambda row: (configs.index((int(row[0]), int(row[1]))), int(row[2])))
    Report("ingest", f"Durable ingest over HTTP, closed loop ({seconds:.0f} s per row, "
                     f"{run.data.name})",
           ["events/req", "clients", "workers", "req/s", "events/s stored", "p50 ms",
            "p99 ms", "errors", "client CPU", "learner behind", "catch-up s",
            "req by worker"], rows,
           ["events/s stored: growth of the log's last position over the run; every "
            "event id is new, so none is a duplicate.",
            "learner behind: records committed but not yet applied when the row ended, as "
            "the worker that answered GET /v1/monitoring saw it (ingest answers after the "
            "commit; the learner applies them in order); catch-up s: how long every "
            "worker's learner then took to apply them (before the next row starts).",
            *run.failed],
           server_env=args.server_env).show(run.console)


def _bodies(stream: list[Event], batch: int, run: int, seconds: float) -> list[bytes]:
    """Enough request bodies for ``MAX_EVENTS_PER_SECOND``; ids unique to this run."""
    total = int(MAX_EVENTS_PER_SECOND * seconds) if batch > 1 else int(10_000 * seconds)
    events = [msgspec.structs.replace(stream[i % len(stream)], id=f"r{run}-{i}")
              for i in range(total)]
    return [http_request("POST", "/v1/events", KEY,
                         msgspec.json.encode({"events": events[i:i + batch]}))
            for i in range(0, total, batch)]


if __name__ == "__main__":
    main()
