"""Load generators for the service benchmarks; each runs in a process of its own.

* :func:`open_loop` sends requests at exact intervals whatever the server does, and
  measures each latency from the request's *scheduled* time, so a stall counts
  against every request it delays (no coordinated omission). ``lag`` is how late
  the generator itself started each request: if it grows, the generator (not the
  server) fell behind, and the run says so.
* :func:`closed_loop` keeps N connections busy: each sends its next request when
  the previous one is answered (throughput at a given concurrency).
* :func:`wrk` runs wrk (closed loop, C) and parses its report.

HTTP/1.1 is spoken over raw asyncio streams with keep-alive: a request is bytes
built once, a response is read by its Content-Length. That keeps the client's
cost per request to a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import re
import resource
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

HOST = "127.0.0.1"
WORKER_HEADER = b"x-freshrec-worker:"
"""Names the worker process that answered (``serve --workers N``); absent with one."""


def http_request(method: str, path: str, key: str | None, body: bytes | None = None) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.worker = 0
        """The worker that answered the last request (0 without the header)."""

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request, read its whole response: (status, body)."""
        self.writer.write(raw)
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        at = head.find(b"content-length:")
        if at < 0:
            raise ValueError("response without Content-Length")
        length = int(head[at + 15:head.index(b"\r\n", at)])
        at = head.find(WORKER_HEADER)
        if at >= 0:
            self.worker = int(head[at + len(WORKER_HEADER):head.index(b"\r\n", at)])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _wait_until(start_at: float) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))


async def _open_loop(port: int, requests: Sequence[bytes], rate: float, duration: float,
                     start_at: float, pool: int, max_connections: int) -> dict[str, Any]:
    n = int(rate * duration)
    latency = np.full(n, np.nan)
    lag = np.full(n, np.nan)
    statuses: Counter[int] = Counter()
    workers: Counter[int] = Counter()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await Connection.open(port))
    opened, failures, last_answer = pool, 0, 0.0

    async def one(i: int, scheduled: float) -> None:
        nonlocal opened, failures, last_answer
        lag[i] = time.perf_counter() - scheduled
        if idle.empty() and opened < max_connections:
            opened += 1
            connection = await Connection.open(port)
        else:  # a bounded pool, as a real client has: wait for a free connection
            connection = await idle.get()
        try:
            status, _ = await connection.send(requests[i % len(requests)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failures += 1
            connection.close()
            opened -= 1
            return
        last_answer = time.perf_counter()
        latency[i] = last_answer - scheduled
        statuses[status] += 1
        workers[connection.worker] += 1
        idle.put_nowait(connection)

    await _wait_until(start_at)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    tasks = set()
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30.0)
    elapsed = max(last_answer - t0, duration)
    cpu = (_cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    while not idle.empty():
        idle.get_nowait().close()
    done = ~np.isnan(latency)
    return {"scheduled": n, "completed": int(done.sum()), "failures": failures,
            "statuses": dict(statuses), "workers": dict(workers),
            "latency": latency[done], "lag": lag[~np.isnan(lag)],
            "elapsed": elapsed, "connections": opened, "client_cpu": cpu}


def open_loop(port: int, requests: Sequence[bytes], rate: float, duration: float,
              start_at: float, pool: int = 16, max_connections: int = 256) -> dict[str, Any]:
    """``rate`` requests/s for ``duration`` s from wall-clock time ``start_at``, over at
    most ``max_connections`` keep-alive connections (``pool`` opened beforehand)."""
    return asyncio.run(_open_loop(port, requests, rate, duration, start_at, pool,
                                  max_connections))


async def _closed_loop(port: int, requests: Sequence[bytes], connections: int,
                       duration: float, start_at: float) -> dict[str, Any]:
    clients = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    workers: Counter[int] = Counter()
    await _wait_until(start_at)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    deadline = t0 + duration

    async def worker(w: int, connection: Connection) -> None:
        i = w
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            status, _ = await connection.send(requests[i % len(requests)])
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
            workers[connection.worker] += 1
            i += connections

    await asyncio.gather(*(worker(w, c) for w, c in enumerate(clients)))
    elapsed = time.perf_counter() - t0
    for connection in clients:
        connection.close()
    return {"completed": len(latencies), "statuses": dict(statuses),
            "workers": dict(workers), "latency": np.asarray(latencies), "elapsed": elapsed,
            "client_cpu": (_cpu_seconds() - cpu0) / elapsed}


def closed_loop(port: int, requests: Sequence[bytes], connections: int, duration: float,
                start_at: float) -> dict[str, Any]:
    """``connections`` clients, each sending its next request on the previous answer."""
    return asyncio.run(_closed_loop(port, requests, connections, duration, start_at))


# -- connections pinned to a worker ------------------------------------------------------
class PinnedConnection:
    """One blocking keep-alive connection: every request on it reaches the worker process
    that accepted it, named in ``worker`` after the first answer (0 without the header).

    For measurements that must choose which worker acks and which one answers
    (freshness across workers); load generators use :class:`Connection`. uvicorn closes
    a keep-alive connection idle for 5 s: the next request then reconnects, opening new
    connections until one reaches the same worker, and is sent again (ingest is
    idempotent by id).
    """

    def __init__(self, port: int, key: str | None, timeout: float = 60.0,
                 attempts: int = 1000) -> None:
        self._port, self._timeout, self._attempts = port, timeout, attempts
        self._http = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._answered = False
        self.worker = 0
        self.headers: http.client.HTTPMessage | None = None
        """The last response's headers."""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body); ``body`` is JSON already encoded."""
        try:
            return self._send(method, path, body)
        except ConnectionError:  # reset, broken pipe, or closed without a response
            if not self._answered:
                raise
        self._reconnect()
        return self._send(method, path, body)

    def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        self._http.request(method, path, body=body, headers=headers)
        response = self._http.getresponse()
        raw = response.read()
        self.headers = response.headers
        self.worker = int(response.getheader(WORKER_HEADER[:-1].decode(), "0"))
        self._answered = True
        return response.status, msgspec.json.decode(raw) if raw else None

    def _reconnect(self) -> None:
        wanted = self.worker
        for _ in range(self._attempts):
            self._http.close()
            self._http = http.client.HTTPConnection(HOST, self._port, timeout=self._timeout)
            self._send("GET", "/readyz", None)
            if self.worker == wanted:
                return
        raise RuntimeError(f"{self._attempts} new connections did not reach worker {wanted}")

    def close(self) -> None:
        self._http.close()


def connections_to_every_worker(port: int, key: str | None, workers: int, each: int = 1,
                                attempts: int = 1000) -> dict[int, list[PinnedConnection]]:
    """``each`` connections to every worker 0..N-1, by worker.

    The kernel picks the worker of a new connection, so connections are opened (and
    asked GET /readyz, which needs no key) until every worker has its share; the rest
    are closed. ``attempts`` bounds the search if the kernel favours some workers.
    """
    pinned: dict[int, list[PinnedConnection]] = {w: [] for w in range(workers)}
    for _ in range(attempts):
        if all(len(group) >= each for group in pinned.values()):
            return pinned
        connection = PinnedConnection(port, key)
        connection.request("GET", "/readyz")
        group = pinned.get(connection.worker)
        if group is None or len(group) >= each:
            connection.close()
        else:
            group.append(connection)
    for group in pinned.values():
        for connection in group:
            connection.close()
    reached = sorted(w for w, group in pinned.items() if group)
    raise RuntimeError(f"{attempts} new connections reached only workers {reached} of "
                       f"0..{workers - 1}")


# -- processes --------------------------------------------------------------------------
def _run(queue: Any, function: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> None:
    queue.put(function(**kwargs))


class LoadProcess:
    """``function(**kwargs)`` in a fresh (spawned) process; ``result()`` waits for it."""

    def __init__(self, function: Callable[..., dict[str, Any]], **kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._process = context.Process(target=_run, args=(self._queue, function, kwargs),
                                        daemon=True)
        self._process.start()

    def result(self, timeout: float = 600.0) -> dict[str, Any]:
        answer: dict[str, Any] = self._queue.get(timeout=timeout)
        self._process.join(timeout=30)
        return answer


# -- wrk --------------------------------------------------------------------------------
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk(url: str, paths: Sequence[str], key: str | None, connections: int,
        duration: float) -> dict[str, Any]:
    """Run wrk against ``url`` with a random path of ``paths`` per request."""
    listed = ",".join(f'"{p}"' for p in paths)
    script = (f"local paths = {{{listed}}}\nmath.randomseed(7)\n"
              + (f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else "")
              + "request = function()\n"
                "  return wrk.format(\"GET\", paths[math.random(#paths)])\nend\n")
    with tempfile.TemporaryDirectory() as folder:
        lua = Path(folder) / "paths.lua"
        lua.write_text(script)
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s",
                              "--latency", "-s", str(lua), url],
                             capture_output=True, text=True, check=True).stdout
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in
                   re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)}
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rate": rate, "p50": percentiles[50], "p99": percentiles[99],
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "", "raw": out}


def percentiles(seconds: np.ndarray, points: Sequence[float] = (50, 95, 99)) -> list[float]:
    """Percentiles in milliseconds (nan for no data)."""
    if len(seconds) == 0:
        return [float("nan")] * len(points)
    return [float(v) * 1e3 for v in np.percentile(seconds, points)]
