"""Durable ingest over HTTP: events/s and request latency by batch size and clients.

    .venv/bin/python bench/ingest.py                # about 2 minutes plus loading

The server is ``freshrec serve`` in a child process with a fresh data directory
on local disk, holding the Online Retail II catalog and the first half of its
events, trained once (the generated shop stands in without ../shared/data). An
ingest request is answered after its events are committed to the log (SQLite
WAL, ``synchronous=FULL``: an fsync per commit; concurrent requests share a
commit); the learner applies them from the log right after. Each configuration
posts events of the second half, each with an id never sent before, closed loop
from a separate process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import msgspec
from rich.console import Console

from _load import LoadProcess, closed_loop, http_request, percentiles
from _server import KEY, Report, bench_data, header, loaded_server, server_env
from freshrec.client import FreshrecClient
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.records import Event

CONFIGS = ((1, 1), (1, 8), (1, 32), (100, 1), (100, 4), (1000, 1), (1000, 4))
"""(events per request, concurrent clients)."""
MAX_EVENTS_PER_SECOND = 60_000
"""Bodies are prepared for at most this rate, so no event id is ever sent twice."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per configuration")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the server (diagnostics; repeatable)")
    args = parser.parse_args()
    console = Console(width=120)
    header(console, "freshrec service benchmark: durable ingest")
    data = bench_data()
    if data.note:
        console.print(f"[yellow]note:[/] {data.note}")
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-ingest-") as folder:
        server = loaded_server(data, Path(folder), console, server_env(args.server_env))
        rows = []
        try:
            for number, (batch, clients) in enumerate(CONFIGS):
                bodies = _bodies(data.stream, batch, number, args.seconds)
                before = _stored(Path(folder))
                run = LoadProcess(closed_loop, port=server.port, requests=bodies,
                                  connections=clients, duration=args.seconds,
                                  start_at=time.time() + 2.0).result()
                stored = _stored(Path(folder)) - before
                with FreshrecClient(server.url, KEY) as client:
                    behind = client.request("GET", "/v1/monitoring")["learner"]["lag"]
                ok = run["statuses"].get(200, 0)
                p50, p99 = percentiles(run["latency"], (50, 99))
                rows.append([str(batch), str(clients), f"{ok / run['elapsed']:,.0f}",
                             f"{stored / run['elapsed']:,.0f}", f"{p50:.2f}", f"{p99:.2f}",
                             str(run["completed"] - ok), f"{run['client_cpu']:.0%}",
                             f"{behind:,}"])
        finally:
            server.stop()
    Report("ingest", f"Durable ingest over HTTP, closed loop ({args.seconds:.0f} s per row, "
                     f"{data.name})",
           ["events/request", "clients", "requests/s", "events/s stored", "p50 ms", "p99 ms",
            "errors", "client CPU", "learner behind"], rows,
           ["events/s stored: growth of the log's last position over the run; every "
            "event id is new, so none is a duplicate.",
            "learner behind: records committed but not yet applied when the row ended "
            "(ingest answers after the commit; the learner applies them in order)."],
           server_env=args.server_env).show(console)


def _stored(workdir: Path) -> int:
    """The log's last position, read from the server's SQLite file (a second handle)."""
    log = SQLiteEventLog(workdir / "data" / "events.sqlite")
    try:
        return log.last_position()
    finally:
        log.close()


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
