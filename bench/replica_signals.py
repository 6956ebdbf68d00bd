"""How replicas on several machines would learn what the log holds (the next step after
``--workers``): the numbers that choose between PostgreSQL alone and PostgreSQL + Redis.

    .venv/bin/python bench/replica_signals.py                 # about a minute
    .venv/bin/python bench/replica_signals.py --appends 2000

On one machine the workers share the committed position through an mmap'd file
(``service/positions.py``): a request reads it (read-your-writes) and a learner polls
it. Across machines there is no shared file. A private PostgreSQL (holding the event
log, ``PostgresEventLog``) and a private Redis are started from the installed binaries
on free ports, on loopback, and two things are measured:

* **per request**: what reading the highest committed position costs, the way a
  request must before it answers (``last_position()`` on the log, a Redis ``GET`` of a
  key the appender sets, and the mmap read of today's workers for scale);
* **per append**: how long after an append's acknowledgement a follower (another
  process: another machine's learner) knows of it, by polling the log every
  millisecond, by PostgreSQL ``LISTEN``/``NOTIFY``, and by Redis pub/sub, and what
  the signal costs the appender.

Loopback hides the network's round trip (0.1 to 0.5 ms inside a data centre), which
adds to every remote figure alike; the comparison is between them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _postgres import PostgresServer, find_binaries, free_port
from freshrec.log.postgres import PostgresEventLog
from freshrec.records import Event
from freshrec.service.positions import SharedPositions

CHANNEL = "freshrec_committed"
KEY = "freshrec:committed"


class RedisServer:
    """A private ``redis-server`` on a free port, nothing saved to disk."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="freshrec-redis-"))
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def percentiles(ns: list[int]) -> str:
    us = np.asarray(ns, dtype=np.float64) / 1000
    p50, p99 = np.percentile(us, [50, 99])
    return f"{p50:,.1f} | {p99:,.1f}"


# -- per request ------------------------------------------------------------------------
def request_costs(pg_url: str, redis_url: str, n: int) -> list[tuple[str, list[int]]]:
    import redis

    log = PostgresEventLog(pg_url)
    client = redis.Redis.from_url(redis_url)
    client.set(KEY, log.last_position())
    folder = Path(tempfile.mkdtemp(prefix="freshrec-positions-"))
    positions = SharedPositions.create(folder / "positions.bin")
    readers = [("PostgreSQL: the log's last_position()", log.last_position),
               ("Redis: GET of the committed position", lambda: int(client.get(KEY) or 0)),
               ("mmap'd file (today's workers, one machine)", positions.committed)]
    out = []
    for label, read in readers:
        for _ in range(100):  # warm the connection and the caches
            read()
        taken = []
        for _ in range(n):
            begin = time.perf_counter_ns()
            read()
            taken.append(time.perf_counter_ns() - begin)
        out.append((label, taken))
    log.close()
    shutil.rmtree(folder, ignore_errors=True)
    return out


# -- per append: the followers, each its own process ------------------------------------
def follow_by_polling(name: str, pg_url: str, until: int, ready: Any, found: Any) -> None:
    log = PostgresEventLog(pg_url)
    seen: dict[int, int] = {}
    known = log.last_position()
    ready.set()
    while known < until:
        now = log.last_position()
        stamp = time.perf_counter_ns()
        for position in range(known + 1, now + 1):
            seen[position] = stamp
        known = now
        time.sleep(0.001)
    found.put((name, seen))


def follow_by_listen(name: str, pg_url: str, until: int, ready: Any, found: Any) -> None:
    import psycopg

    seen: dict[int, int] = {}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        ready.set()
        for note in conn.notifies():
            position = int(note.payload)
            seen.setdefault(position, time.perf_counter_ns())
            if position >= until:
                break
    found.put((name, seen))


def follow_by_redis(name: str, redis_url: str, until: int, ready: Any, found: Any) -> None:
    import redis

    seen: dict[int, int] = {}
    subscription = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(CHANNEL)
    ready.set()
    for message in subscription.listen():
        position = int(message["data"])
        seen.setdefault(position, time.perf_counter_ns())
        if position >= until:
            break
    found.put((name, seen))


def propagation(pg_url: str, redis_url: str, appends: int, gap_s: float
                ) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    import psycopg
    import redis

    log = PostgresEventLog(pg_url)
    start = log.last_position()
    until = start + appends
    context = multiprocessing.get_context("spawn")
    found = context.Queue()
    followers = [("polling the log every 1 ms", follow_by_polling, pg_url),
                 ("PostgreSQL LISTEN/NOTIFY", follow_by_listen, pg_url),
                 ("Redis pub/sub", follow_by_redis, redis_url)]
    processes = []
    for label, target, url in followers:
        ready = context.Event()
        process = context.Process(target=target, args=(label, url, until, ready, found))
        process.start()
        ready.wait(30)
        processes.append(process)
    notifier = psycopg.connect(pg_url, autocommit=True)
    publisher = redis.Redis.from_url(redis_url)
    acked: dict[int, int] = {}
    sent: dict[str, dict[int, int]] = {"PostgreSQL LISTEN/NOTIFY": {}, "Redis pub/sub": {}}
    appended, notified, published = [], [], []
    for n in range(appends):
        event = Event(user=f"u{n % 50}", item=f"i{n % 200}", type="view",
                      timestamp=float(n), id=f"replica-{os.getpid()}-{n}")
        begin = time.perf_counter_ns()
        (position,) = log.append([event]).positions
        acked_at = time.perf_counter_ns()
        assert position is not None
        acked[position] = acked_at
        appended.append(acked_at - begin)
        begin = sent["PostgreSQL LISTEN/NOTIFY"][position] = time.perf_counter_ns()
        notifier.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(position)))
        notified.append(time.perf_counter_ns() - begin)
        begin = sent["Redis pub/sub"][position] = time.perf_counter_ns()
        with publisher.pipeline(transaction=False) as pipe:
            pipe.set(KEY, position).publish(CHANNEL, position).execute()
        published.append(time.perf_counter_ns() - begin)
        time.sleep(gap_s)
    seen_by = dict(found.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    notifier.close()
    log.close()
    latencies = []
    for label, _, _ in followers:
        since = sent.get(label, acked)  # a signal's delivery from its sending
        seen = seen_by[label]
        latencies.append((label, [seen[p] - since[p] for p in acked if p in seen]))
    return ([("append (the log's own ack)", appended),
             ("pg_notify after the ack", notified),
             ("Redis SET and PUBLISH, pipelined", published)], latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--gap-ms", type=float, default=5.0,
                        help="pause between appends (default 5 ms: 200 appends/s)")
    args = parser.parse_args()
    binaries = find_binaries()
    if binaries is None:
        raise SystemExit("no PostgreSQL binaries (apt-get install postgresql)")
    postgres, redis_server = PostgresServer(binaries), RedisServer()
    try:
        url = postgres.new_url()
        print(f"PostgreSQL and Redis on loopback; load average {os.getloadavg()[0]:.1f}; "
              f"{args.requests:,} reads, {args.appends:,} appends {args.gap_ms} ms apart\n")
        print("| per request: the committed position from | n | p50 µs | p99 µs |")
        print("|---|---|---|---|")
        for label, taken in request_costs(url, redis_server.url, args.requests):
            print(f"| {label} | {len(taken):,} | {percentiles(taken)} |")
        writer, followers = propagation(url, redis_server.url, args.appends,
                                        args.gap_ms / 1000)
        print("\n| per append: the appender's cost | n | p50 µs | p99 µs |")
        print("|---|---|---|---|")
        for label, taken in writer:
            print(f"| {label} | {len(taken):,} | {percentiles(taken)} |")
        print("\n| per append: a follower knows of it, by | seen | p50 µs | p99 µs |")
        print("|---|---|---|---|")
        for label, taken in followers:
            print(f"| {label} | {len(taken):,} | {percentiles(taken)} |")
        print("\n(polling: from the ack; the signals: from their sending, whose own cost "
              "is in the table above)")
    finally:
        redis_server.stop()
        postgres.destroy()


if __name__ == "__main__":
    main()
