"""Catalog ingest over HTTP: items/s in batches of 1,000, and how soon a new item is
recommendable after its acknowledgement.

    .venv/bin/python bench/catalog.py               # about a minute per worker count
    .venv/bin/python bench/catalog.py --quick       # 5 batches, 3 trials

The server is ``freshrec serve`` in a child process holding the Online Retail II
catalog and the first half of its events, trained once (the generated shop stands
in without ../shared/data); each worker count of ``--workers`` is measured in turn
on its own copy of it. New items copy the text and categories of catalog items
(so the content model does its usual work), under ids never sent before, plus one
category of their own batch, ``bench-cat-<batch>``.

* Throughput: batches are posted back to back through one keep-alive connection
  (POST /v1/items, closed loop, one client); items/s = items acknowledged / time.
* Recommendable: an item is recommendable once a recommendation asked with its
  batch's category (GET /v1/users/{id}/recommendations?category=bench-cat-<batch>)
  returns an item of the batch; before the engine has it, none can be. Polled back
  to back through another connection (with N workers, to another worker than the one
  that acked) from the moment the ack is read: once after the throughput run for its
  last batch (what a backlog costs), then for batches posted one at a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import msgspec
import numpy as np

from _load import PinnedConnection, connections_to_every_worker, percentiles
from _server import (
    KEY,
    Report,
    add_server_options,
    bench_run,
    copy_dir,
    log_position,
    wait_caught_up,
)
from freshrec.local_server import LocalServer
from freshrec.records import Item

BATCH = 1000
GIVE_UP_S = 900.0
"""Generous: today's learner applies new items at about a hundred a second."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=None,
                        help="batches of the throughput run (default 20; 3 with --quick)")
    parser.add_argument("--trials", type=int, default=None,
                        help="batches posted one at a time, each polled until "
                             "recommendable (default 10; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a short run")
    add_server_options(parser)
    args = parser.parse_args()
    batches = args.batches or (3 if args.quick else 20)
    trials = args.trials or (2 if args.quick else 10)
    rows = []
    with bench_run("freshrec service benchmark: catalog ingest", args) as run:
        probe = run.data.users[0]  # a known user: the category filter picks what it may see
        for workers, server in run.servers(args.workers):
            rows.append([str(workers), *measure(server, workers, copy_dir(run.workdir, workers),
                                                run.data.items, probe, batches, trials)])
    Report("catalog", f"Catalog ingest over HTTP, batches of {BATCH:,} ({run.data.name})",
           ["workers", "batches", "items/s acked", "batch p50 ms", "batch max ms",
            "last batch seen ms", "polls behind", "trials", "seen p50 ms", "seen max ms",
            "ack -> read"], rows,
           [f"items/s acked and batch latency: {batches} batches back to back, one "
            "client. Seen (recommendable): from the ack to the first recommendation with "
            "the batch's category holding an item of the batch, through another connection "
            "('ack -> read': to the same or another worker); 'last batch' right after the "
            "throughput run (polls behind: its polls answered with X-Freshrec-Behind, the "
            "learner still applying the backlog), then trials of one batch at a time, each "
            "on a learner caught up.",
            *run.failed]).show(run.console)


def measure(server: LocalServer, workers: int, data_dir: Path, catalog: Sequence[Item],
            probe: str, batches: int, trials: int) -> list[str]:
    """The row of one worker count (after the workers column); ``data_dir``: its own."""
    pinned = connections_to_every_worker(server.port, KEY, workers, each=2)
    poster, reader = pinned[0][0], pinned[workers - 1][1]
    try:
        bodies = [_batch_body(catalog, b) for b in range(batches + trials)]
        latencies = []
        started = time.perf_counter()
        for body in bodies[:batches]:
            sent = time.perf_counter()
            _post(poster, body)
            latencies.append(time.perf_counter() - sent)
        acked = time.perf_counter()
        elapsed = acked - started
        last, behind = _recommendable_after(reader, probe, batches - 1, acked)
        waits = []
        for b in range(batches, batches + trials):
            # Each trial on a learner that has applied everything before it.
            wait_caught_up(server, workers, log_position(data_dir))
            _post(poster, bodies[b])
            waits.append(_recommendable_after(reader, probe, b, time.perf_counter())[0])
        pair = "same worker" if poster.worker == reader.worker else "another worker"
    finally:
        for group in pinned.values():
            for connection in group:
                connection.close()
    p50, = percentiles(np.asarray(latencies), (50,))
    seen = [wait for wait in waits if wait is not None]
    wait50, = percentiles(np.asarray(seen), (50,))
    return [str(batches), f"{batches * BATCH / elapsed:,.0f}", f"{p50:.0f}",
            f"{max(latencies) * 1e3:.0f}", _ms(last), f"{behind}", str(trials),
            f"{wait50:,.1f}", _ms(max(seen) if len(seen) == len(waits) else None), pair]


def _ms(seconds: float | None) -> str:
    return f"> {GIVE_UP_S * 1e3:,.0f}" if seconds is None else f"{seconds * 1e3:,.1f}"


def _batch_body(catalog: Sequence[Item], batch: int) -> bytes:
    """``BATCH`` new items copying catalog items' content, with their batch's category."""
    items = [msgspec.structs.replace(source, id=f"bench-cat-{batch}-{j}",
                                     categories=(f"bench-cat-{batch}", *source.categories))
             for j, source in ((j, catalog[(batch * BATCH + j) % len(catalog)])
                               for j in range(BATCH))]
    return msgspec.json.encode({"items": items})


def _post(connection: PinnedConnection, body: bytes) -> None:
    status, answer = connection.request("POST", "/v1/items", body)
    if status != 200 or answer["accepted"] != BATCH:
        raise RuntimeError(f"POST /v1/items answered {status}: {answer}")


def _recommendable_after(reader: PinnedConnection, probe: str, batch: int,
                         acked: float) -> tuple[float | None, int]:
    """Seconds from ``acked`` to the first answer through ``reader`` with an item of
    ``batch`` among the recommendations filtered to its category (None: not within
    ``GIVE_UP_S``), and how many answers meanwhile said ``X-Freshrec-Behind``."""
    path = (f"/v1/users/{quote(probe, safe='')}/recommendations?k=10"
            f"&category=bench-cat-{batch}")
    prefix = f"bench-cat-{batch}-"
    behind = 0
    while True:
        status, answer = reader.request("GET", path)
        arrived = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"recommendations answered {status}: {answer}")
        behind += reader.headers is not None and "x-freshrec-behind" in reader.headers
        if any(row["id"].startswith(prefix) for row in answer["items"]):
            return arrived - acked, behind
        if arrived - acked > GIVE_UP_S:
            return None, behind


if __name__ == "__main__":
    main()
