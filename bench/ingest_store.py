"""Durable ingest into the event log: ``python bench/ingest_store.py [--seconds 3]``.

Every scenario appends events with ids (so the duplicate check runs) to a fresh
``SQLiteEventLog`` (WAL, ``synchronous=FULL``: each commit is fsync'd) for a fixed
wall-clock time, then reports events/s and per-call latency:

- sequential appends at batch sizes 1, 100 and 1000;
- batch 1 from 16 threads sharing the plain log (one commit per call);
- batch 1 from 8, 16 and 64 threads through ``GroupCommitLog`` (one commit per group).

The files live in a temporary folder under ``--dir`` (default: the current
directory, so on the real disk: fsync on tmpfs costs nothing and would flatter
the numbers). See bench/README.md for the hardware.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from freshrec.log import EventLog, GroupCommitLog, SQLiteEventLog
from freshrec.records import Event


@dataclass
class Outcome:
    scenario: str
    batch: int
    threads: int
    events: int
    seconds: float
    latencies: list[float]  # seconds per append call
    commits: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def make_batch(tag: str, size: int) -> list[Event]:
    now = time.time()
    return [Event(user=f"u{n % 5_000}", item=f"i{n % 2_000}", type="view", timestamp=now,
                  id=f"{tag}-{n}") for n in range(size)]


def drive(log: EventLog, *, batch: int, threads: int, seconds: float) -> tuple[int, list[float]]:
    """Append from ``threads`` threads until ``seconds`` pass; return events and latencies."""
    start = threading.Barrier(threads + 1)
    deadline = [0.0]
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def worker(index: int) -> None:
        start.wait()
        calls = 0
        while time.perf_counter() < deadline[0]:
            events = make_batch(f"t{index}-c{calls}", batch)
            began = time.perf_counter()
            log.append(events)
            latencies[index].append(time.perf_counter() - began)
            counts[index] += batch
            calls += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    start.wait()
    for thread in pool:
        thread.join()
    return sum(counts), [value for per_thread in latencies for value in per_thread]


def scenario(name: str, folder: Path, *, batch: int, threads: int, seconds: float,
             group: bool) -> Outcome:
    inner = SQLiteEventLog(folder / f"{name.replace(' ', '-')}-{batch}-{threads}.sqlite")
    log: EventLog = GroupCommitLog(inner) if group else inner
    began = time.perf_counter()
    events, latencies = drive(log, batch=batch, threads=threads, seconds=seconds)
    elapsed = time.perf_counter() - began
    commits = log.commits if isinstance(log, GroupCommitLog) else len(latencies)
    assert inner.count() == events, "every acknowledged event must be in the log"
    log.close()
    return Outcome(name, batch, threads, events, elapsed, latencies, commits)


def fsync_probe(folder: Path, rounds: int = 200) -> float:
    """Median ms of ``fsync`` after appending 100 bytes: the floor under a durable commit."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    timings = []
    try:
        for _ in range(rounds):
            os.write(fd, b"x" * 100)
            began = time.perf_counter()
            os.fsync(fd)
            timings.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(timings) * 1000


def filesystem_of(path: Path) -> str:
    """The mount's filesystem type, from /proc/mounts (``?`` elsewhere)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    resolved = str(path.resolve())
    matches = [(mount, kind) for mount, kind in mounts
               if resolved == mount or resolved.startswith(mount.rstrip("/") + "/")]
    return max(matches, key=lambda m: len(m[0]))[1] if matches else "?"


def percentile_ms(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per scenario (default 3)")
    parser.add_argument("--dir", type=Path, default=Path("."),
                        help="where the temporary databases go (default: .)")
    args = parser.parse_args()
    # Piped output would otherwise be cut to 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=110)
    plan: list[tuple[str, int, int, bool]] = [
        ("plain", 1, 1, False),
        ("plain", 100, 1, False),
        ("plain", 1_000, 1, False),
        ("plain", 1, 16, False),
        ("group commit", 1, 8, True),
        ("group commit", 1, 16, True),
        ("group commit", 1, 64, True),
    ]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        console.print(f"SQLiteEventLog in {folder} ({filesystem_of(folder)}), "
                      f"{os.cpu_count()} CPUs, {args.seconds:g} s per scenario")
        fsync_ms = fsync_probe(folder)
        for name, batch, threads, group in plan:
            with console.status(f"{name}, batch {batch}, {threads} thread(s)"):
                outcomes.append(scenario(name, folder, batch=batch, threads=threads,
                                         seconds=args.seconds, group=group))
    table = render(outcomes)
    table.caption = (f"raw fsync after a 100-byte append on this disk: p50 {fsync_ms:.2f} ms; "
                     "every commit pays one")
    console.print(table)


def render(outcomes: list[Outcome]) -> Table:
    table = Table(title="Durable appends to SQLiteEventLog (WAL, synchronous=FULL)")
    columns: list[tuple[str, Callable[[Outcome], str]]] = [
        ("log", lambda o: o.scenario),
        ("batch", lambda o: f"{o.batch:,}"),
        ("threads", lambda o: str(o.threads)),
        ("events/s", lambda o: f"{o.rate:,.0f}"),
        ("commits/s", lambda o: f"{o.commits / o.seconds:,.0f}"),
        ("ev/commit", lambda o: f"{o.events / max(o.commits, 1):,.1f}"),
        ("p50 ms", lambda o: f"{percentile_ms(o.latencies, 50):.2f}"),
        ("p99 ms", lambda o: f"{percentile_ms(o.latencies, 99):.2f}"),
    ]
    for header, _ in columns:
        table.add_column(header, justify="left" if header == "log" else "right")
    for outcome in outcomes:
        table.add_row(*(cell(outcome) for _, cell in columns))
    return table


if __name__ == "__main__":
    main()
