"""Recovery after ``kill -9``: time until /readyz answers 200, by log size and snapshot policy.

    .venv/bin/python bench/recovery.py                      # about 5 minutes
    .venv/bin/python bench/recovery.py --sizes 20000 50000  # quicker

For each log size, a fresh ``freshrec serve`` (training off) gets the Online
Retail II catalog and the first N events (the generated shop without
../shared/data), posted in batches of 1,000 as fast as it takes them, and is
killed with SIGKILL right after the last answer (with event-count snapshots, at
the worst moment: one event before the next snapshot would be due). Then the same command starts
again, and the time from its start to the first 200 of /readyz is what a user
waits: the interpreter's start, the integrity check of the SQLite files, the
newest snapshot loaded, and every event logged after it replayed.

Two policies run side by side on the same events: the old one (a snapshot every
``snapshot_interval_s`` = 300 s only, which a load this short never reaches) and
the new default (also every ``snapshot_every_events`` events). For the new one
the cost of one snapshot at that size is measured too, in this process over the
same data directory: the engine's copy under the exclusive gate (ingest waits
for it) and the file write after it (ingest goes on).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from _server import (
    KEY,
    LOAD_BATCH,
    NO_TRAINING,
    Report,
    bench_data,
    chunks,
    freshrec_server,
    header,
)
from freshrec._sqlite import check_integrity
from freshrec.client import FreshrecClient
from freshrec.local_server import LocalServer
from freshrec.records import Event, Item
from freshrec.registry.snapshots import LocalSnapshotStore
from freshrec.service.runtime import SNAPSHOT_NAME, Runtime, Stores
from freshrec.service.settings import Settings

SIZES = (20_000, 100_000, 200_000)
EVERY = Settings.snapshot_every_events
BEFORE = "interval only (before)"
NOW = f"every {EVERY:,} events (now)"
ONLY_BY_TIME = {"FRESHREC_SNAPSHOT_EVERY_EVENTS": str(10**12)}
"""The old policy: a snapshot every 300 s only, which none of these loads lasts."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                        help="log sizes in events")
    args = parser.parse_args()
    console = Console(width=140)
    header(console, "freshrec service benchmark: recovery after kill -9")
    data = bench_data()
    if data.note:
        console.print(f"[yellow]note:[/] {data.note}")
    events = [*data.history, *data.stream]
    rows = []
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-recovery-") as folder:
        for size in args.sizes:
            if size > len(events):
                raise SystemExit(f"--sizes: {size:,} is more than the {len(events):,} events")
            for policy in (BEFORE, NOW):
                data_dir = Path(folder) / f"{size}-{len(rows)}"
                if policy == BEFORE:
                    crash(data_dir, data.items, events[:size], ONLY_BY_TIME)
                else:
                    crash_with_the_longest_tail(data_dir, data.items, events[:size])
                tail = size - newest_snapshot_position(data_dir)
                ready_s = time_to_ready(data_dir, size)
                log_mb = sum(path.stat().st_size for path in data_dir.glob("events.sqlite*"))
                check_s = timed(lambda d=data_dir: check_integrity(d / "events.sqlite"))
                gate_s, write_s = snapshot_cost(data_dir) if policy == NOW else ("", "")
                rows.append([f"{size:,}", policy, f"{tail:,}", f"{log_mb / 2**20:.0f}",
                             f"{ready_s:.1f}", f"{check_s:.2f}", gate_s, write_s])
                console.print(" | ".join(rows[-1]))
    Report("recovery", "Time to ready after kill -9",
           ["log events", "snapshots", "events since last snapshot", "log MB",
            "time to ready (s)", "integrity check of the log (s)",
            "one snapshot: under the gate (s)", "one snapshot: write (s)"], rows,
           notes=["Time to ready: from the start of `freshrec serve` to the first 200 of "
                  "/readyz, after a SIGKILL right after the last acknowledged batch. With "
                  f"snapshots every {EVERY:,} events the kill comes at the worst moment: "
                  f"{EVERY - 1:,} events after the newest snapshot."]
           ).show(console)


def post(server: LocalServer, items: list[Item], events: list[Event]) -> None:
    with FreshrecClient(server.url, KEY) as client:
        for chunk in chunks(items, LOAD_BATCH):
            client.post_items(chunk)
        for chunk in chunks(events, LOAD_BATCH):
            client.post_events(chunk)


def crash(data_dir: Path, items: list[Item], events: list[Event],
          env: dict[str, str]) -> None:
    """Post everything, then SIGKILL right after the last answer."""
    server = freshrec_server(data_dir, {**NO_TRAINING, **env}).start()
    post(server, items, events)
    assert server.process is not None
    server.process.kill()
    server.stop()  # reaps it and closes its log


def crash_with_the_longest_tail(data_dir: Path, items: list[Item],
                                events: list[Event]) -> None:
    """A snapshot exactly ``EVERY - 1`` events before the end, then those events and a kill.

    The first part goes in with snapshots by time only and taken often, so the newest
    one is at its very end; the rest with the default policy, which is one event short
    of taking the next snapshot when the kill comes.
    """
    cut = max(1, len(events) - (EVERY - 1))
    server = freshrec_server(data_dir, {**NO_TRAINING, **ONLY_BY_TIME,
                                        "FRESHREC_SNAPSHOT_INTERVAL_S": "0.1"}).start()
    post(server, items, events[:cut])
    while newest_snapshot_position(data_dir) < cut:
        time.sleep(0.2)
    server.stop()
    crash(data_dir, [], events[cut:], {})


def newest_snapshot_position(data_dir: Path) -> int:
    snapshots = LocalSnapshotStore(data_dir / "snapshots").list(SNAPSHOT_NAME)
    return int(snapshots[-1].log_position or 0) if snapshots else 0


def time_to_ready(data_dir: Path, logged: int) -> float:
    """Seconds from starting ``freshrec serve`` to its first 200 of /readyz."""
    server = freshrec_server(data_dir, NO_TRAINING)
    started = time.perf_counter()
    server.start(timeout=1800)
    ready_s = time.perf_counter() - started
    with FreshrecClient(server.url, KEY) as client:
        assert client.ready()["events"] == logged, "acknowledged events were lost"
    server.stop()
    return ready_s


def snapshot_cost(data_dir: Path) -> tuple[str, str]:
    """Seconds of one snapshot of the recovered engine: the copy, then the file write."""
    runtime = Runtime(Settings.from_env(data_dir=data_dir), Stores.embedded(data_dir))
    try:
        runtime.recover()
        started = time.perf_counter()
        payload = runtime.engine.snapshot()  # what Runtime.snapshot does under the gate
        copied = time.perf_counter()
        info = runtime.stores.snapshots.save(SNAPSHOT_NAME, payload,
                                             {"log_position": runtime.applied_position})
        written = time.perf_counter()
        runtime.stores.snapshots.delete(info.id)
    finally:
        runtime.stop()
    return f"{copied - started:.2f}", f"{written - copied:.2f}"


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
