"""Shared setup of the service benchmarks: servers in child processes, the data they load.

Run as a script (``python bench/_server.py floor --port N``) it serves the *floor*:
the same stack as ``freshrec serve`` (FastAPI + uvicorn, same process settings)
answering a constant JSON at the recommendations path, so the cost of the
framework can be told apart from the cost of recommending.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from _load import connections_to_every_worker
from freshrec.client import FreshrecClient
from freshrec.data import generate_shop, load_online_retail, shared_data_dir
from freshrec.local_server import LocalServer, free_port
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.records import Event, Item

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR.parent / "results" / "service"
KEY = "frk_" + secrets.token_urlsafe(32)
NO_TRAINING = {"FRESHREC_MIN_TRAIN_EVENTS": str(10**12),
               "FRESHREC_RETRAIN_EVERY_EVENTS": str(10**12)}
SNAPSHOT_OFTEN = {"FRESHREC_SNAPSHOT_INTERVAL_S": "1"}
LOAD_BATCH = 1000


@dataclass
class BenchData:
    """A catalog, a history to load before measuring, and a stream to send while measuring."""

    name: str
    items: list[Item]
    history: list[Event]
    stream: list[Event]
    note: str = ""

    @property
    def users(self) -> list[str]:
        """Users of the history, in first-seen order (the "known users")."""
        return list(dict.fromkeys(event.user for event in self.history))


def bench_data() -> BenchData:
    """Online Retail II split in half by event count; the synthetic shop without it."""
    root = shared_data_dir()
    if root is not None and (root / "online-retail-ii").is_dir():
        dataset = load_online_retail(root / "online-retail-ii")
        note = ""
    else:
        dataset = generate_shop(n_users=4000, n_items=4000, n_events=400_000, seed=0)
        note = ("../shared/data is absent: the generated shop (4,000 users, 4,000 items, "
                "400,000 events) stands in for Online Retail II")
    half = len(dataset.events) // 2
    return BenchData(dataset.name, dataset.items, dataset.events[:half],
                     dataset.events[half:], note)


def freshrec_server(data_dir: Path, env: dict[str, str] | None = None,
                    workers: int = 1) -> LocalServer:
    """``freshrec serve --workers N`` on ``data_dir`` (1: the single process; the
    option must be given, the default being one worker per CPU)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return LocalServer.freshrec(data_dir, admin_key=KEY, env=env, workers=workers,
                                log_path=data_dir.parent / f"{data_dir.name}.log")


def prepared_data(data: BenchData, workdir: Path, console: Console,
                  env: dict[str, str] | None = None) -> Path:
    """A data directory with the catalog and the history loaded and a model trained.

    The history is posted with training off; then the server restarts with its
    default settings (plus ``env``), and recovery replays the log and trains once,
    as after any restart of a deployment. The server is stopped: every configuration
    measured starts on a copy of this directory (:func:`started_server`), so each
    worker count sees the same state and none sees what another ingested.
    """
    data_dir = workdir / "prepared"
    started = time.perf_counter()
    with freshrec_server(data_dir, NO_TRAINING) as server, \
            FreshrecClient(server.url, KEY) as client:
        for chunk in chunks(data.items, LOAD_BATCH):
            client.post_items(chunk)
        for chunk in chunks(data.history, LOAD_BATCH):
            client.post_events(chunk)
    loaded = time.perf_counter()
    # Snapshots every second: a restart restores the newest snapshot, and the one the
    # trained model is in must exist before this server stops.
    with freshrec_server(data_dir, {**(env or {}), **SNAPSHOT_OFTEN}).start(timeout=1800) \
            as server:
        model = wait_trained(server, 1)
        wait_snapshot_of(data_dir, model)
    console.print(f"loaded {len(data.items):,} items and {len(data.history):,} events in "
                  f"{loaded - started:.0f}s; restart, replay and training took "
                  f"{time.perf_counter() - loaded:.0f}s (model {model})")
    return data_dir


def copy_dir(workdir: Path, workers: int) -> Path:
    """The data directory of the server with ``workers`` workers (:func:`started_server`)."""
    return workdir / f"data-{workers}w"


def log_position(data_dir: Path) -> int:
    """The log's last position, read from the server's SQLite file (a second handle)."""
    log = SQLiteEventLog(data_dir / "events.sqlite")
    try:
        return log.last_position()
    finally:
        log.close()


def wait_snapshot_of(data_dir: Path, model: str, timeout: float = 600) -> None:
    """Wait until a snapshot of the engine serving ``model`` is written in ``data_dir``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for info in (data_dir / "snapshots").glob("*.json"):
            try:
                if json.loads(info.read_text())["metadata"]["model"] == model:
                    return
            except (OSError, ValueError, KeyError):  # being written
                continue
        time.sleep(0.5)
    raise TimeoutError(f"no snapshot of model {model} after {timeout:.0f}s")


def started_server(prepared: Path, workdir: Path, workers: int,
                   env: dict[str, str] | None = None) -> LocalServer:
    """``freshrec serve`` with ``workers`` workers on a fresh copy of ``prepared``,
    returned once every worker answers /readyz with a trained model."""
    data_dir = copy_dir(workdir, workers)
    shutil.rmtree(data_dir, ignore_errors=True)
    # Not the workers' run directory (Unix sockets, if the preparing server was killed).
    shutil.copytree(prepared, data_dir, ignore=shutil.ignore_patterns("run", "serve.lock"))
    server = freshrec_server(data_dir, env, workers).start(timeout=1800)
    try:
        wait_trained(server, workers)
    except BaseException:
        server.stop()
        raise
    return server


def wait_every_worker(server: LocalServer, workers: int,
                      until: Callable[[dict[str, Any]], bool] = lambda answer: True,
                      what: str = "ready", timeout: float = 1800) -> list[dict[str, Any]]:
    """Wait until the /readyz answer of each worker satisfies ``until``; the answers.

    /readyz is asked over new connections until every worker index has answered,
    since one keep-alive connection stays with the worker that accepted it; a worker
    still recovering answers 503 ``{"status": "recovering"}``, never satisfying it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            pinned = connections_to_every_worker(server.port, KEY, workers, each=1)
        except RuntimeError as error:  # a worker still starting: not listening yet
            problem = str(error)
        else:
            try:
                answers = [connection.request("GET", "/readyz")
                           for group in pinned.values() for connection in group]
            finally:
                for group in pinned.values():
                    for connection in group:
                        connection.close()
            if all(status == 200 and until(answer) for status, answer in answers):
                return [answer for _, answer in answers]
            problem = f"not every worker {what}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"{problem} after {timeout:.0f}s")
        time.sleep(0.5)


def wait_trained(server: LocalServer, workers: int) -> str:
    """Wait until every worker serves a trained model (the service trains in the
    background after recovery); the models' versions."""
    answers = wait_every_worker(server, workers, lambda a: a["model"] != "untrained",
                                "serves a trained model")
    return ", ".join(sorted({answer["model"] for answer in answers}))


def wait_caught_up(server: LocalServer, workers: int, position: int,
                   timeout: float = 600) -> None:
    """Wait until every worker's learner has applied the log up to ``position``, so a
    measurement does not pay for the backlog of the one before."""
    wait_every_worker(server, workers, lambda a: a["position"] >= position,
                      f"reached position {position:,}", timeout)


@dataclass
class Configurations:
    """The servers of one run, one worker count after the other, each on a fresh copy of
    the prepared data; a count whose server does not start is noted, and the run goes on
    with the next (so ``--workers 1,2`` still reports one worker on a server without
    ``--workers``)."""

    prepared: Path
    workdir: Path
    console: Console
    data: BenchData
    env: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def servers(self, counts: Sequence[int]) -> Iterator[tuple[int, LocalServer]]:
        for workers in counts:
            self.console.print(f"[bold]workers={workers}[/]")
            try:
                server = started_server(self.prepared, self.workdir, workers, self.env)
            except (RuntimeError, TimeoutError, OSError) as error:
                reason = _last_words(str(error)) or type(error).__name__
                self.failed.append(f"workers={workers}: the server did not start ({reason}).")
                self.console.print(f"[red]{self.failed[-1]}[/]")
                continue
            try:
                yield workers, server
            finally:
                alive = server.process is not None and server.process.poll() is None
                code = server.stop()
                if not alive:  # it died during the measurement: say how, from its log
                    self.failed.append(f"workers={workers}: the server exited (code {code}) "
                                       "during the measurement.")
                    self.console.print(f"[red]{self.failed[-1]}[/] Its log ends:\n"
                                       + _tail(server.log_path))


@contextmanager
def bench_run(title: str, args: argparse.Namespace) -> Iterator[Configurations]:
    """The frame of a service benchmark: the header, the data, and a work folder with the
    prepared data directory; the configurations to measure (with the run's console and
    data, still there after the folder is gone)."""
    console = Console(width=120)
    header(console, title)
    data = bench_data()
    if data.note:
        console.print(f"[yellow]note:[/] {data.note}")
    env = server_env(args.server_env)
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-") as folder:
        workdir = Path(folder)
        yield Configurations(prepared_data(data, workdir, console, env), workdir, console,
                             data, env)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--server-env``, the options every service benchmark takes."""
    cpus = os.cpu_count() or 1
    default = ",".join(str(n) for n in (1, 2) if n <= cpus)
    parser.add_argument("--workers", type=worker_counts, default=worker_counts(default),
                        help="worker counts to measure side by side, comma-separated "
                             f"(default: {default}, i.e. 1 and 2 capped at the CPUs)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the server (diagnostics; repeatable)")


def worker_counts(text: str) -> list[int]:
    """``"1,2"`` as ``[1, 2]`` (each count once, in the order given)."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected worker counts like 1,2; got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts of at least 1; got {text!r}")
    return list(dict.fromkeys(counts))


def _last_words(text: str) -> str:
    """The last line of ``text`` with words in it, without the frame a CLI drew around it
    (the error of a server that did not start ends with its log)."""
    lines = [re.sub(r"[\u2500-\u257f\s]+", " ", line).strip() for line in text.splitlines()]
    return next((line for line in reversed(lines) if re.search(r"\w", line)), "")


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def server_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--server-env NAME=VALUE`` options as a dict (for diagnostics, e.g. BLAS threads)."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--server-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def floor_server(workdir: Path, workers: int = 1) -> LocalServer:
    port = free_port()
    return LocalServer([sys.executable, str(BENCH_DIR / "_server.py"), "floor",
                        "--port", str(port), "--workers", str(workers)], port,
                       log_path=workdir / f"floor-{workers}w.log")


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds so far of ``pid`` and each of its descendants (a supervisor's workers,
    a training process), by pid: subtract two of these with :func:`cpu_between`."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, of in parents.items() if of == parent]
        tree.update(children)
        frontier += children
    seconds = {}
    for member in tree:
        try:
            seconds[member] = cpu_seconds(member)
        except OSError:
            continue
    return seconds


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two :func:`tree_cpu_seconds` readings (a process born
    in between counts from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def chunks(records: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(records), size):
        yield records[start:start + size]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- reporting --------------------------------------------------------------------------
def by_worker(counts: dict[int, int]) -> str:
    """Answers per worker, e.g. ``0: 14,980, 1: 15,020``."""
    return ", ".join(f"{w}: {n:,}" for w, n in sorted(counts.items())) or "none"


def machine() -> str:
    """CPU model, cores, RAM and Python: one line for the report."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.*)", lscpu)
    cpus = re.search(r"^CPU\(s\):\s+(\d+)", lscpu, re.MULTILINE)
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    parts = [model.group(1).strip() if model else platform.processor(),
             f"{cpus.group(1) if cpus else os.cpu_count()} vCPUs",
             f"{int(memory.group(1)) / 2**20:.1f} GiB RAM" if memory else "RAM unknown",
             f"Python {platform.python_version()}", f"Linux {platform.release()}"]
    return ", ".join(parts)


def header(console: Console, title: str) -> None:
    """Title, machine, date and the command line, printed before a run."""
    command = " ".join([".venv/bin/python", *sys.argv])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"[bold]{title}[/]\n{machine()}\n{when} (load average {load})\n$ {command}")


@dataclass
class Report:
    """A result table: shown with rich, saved as markdown in results/service/<name>.md."""

    name: str
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: Sequence[str] = ()
    server_env: Sequence[str] = ()
    """``--server-env`` settings: named in the title and the file, apart from default runs."""

    def show(self, console: Console) -> Path:
        title, name = self.title, self.name
        if self.server_env:
            title += f" [server env: {' '.join(self.server_env)}]"
            name += "-" + "-".join(re.sub(r"\W+", "_", pair) for pair in self.server_env)
        table = Table(*self.columns, title=title)
        for row in self.rows:
            table.add_row(*row)
        console.print(table)
        for note in self.notes:
            console.print(note)
        command = " ".join([".venv/bin/python", *sys.argv])
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = os.getloadavg()[0]
        lines = [f"### {title}", "",
                 f"`{command}` ({when}; {machine()}; load average {load:.1f} at the end)", "",
                 "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns),
                 *("| " + " | ".join(row) + " |" for row in self.rows), "", *self.notes]
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{name}.md"
        path.write_text("\n".join(lines) + "\n")
        console.print(f"saved {path}")
        return path


# -- the floor --------------------------------------------------------------------------
def floor_app() -> Any:
    """The floor's app (a factory: each uvicorn worker process builds its own)."""
    from fastapi import FastAPI

    sys.setswitchinterval(0.001)  # as freshrec.service.server does, in every worker
    app = FastAPI()
    answer = {"items": [{"id": f"item-{i}", "score": 1.0 - i / 10, "source": "constant"}
                        for i in range(10)], "model": "constant", "request_id": "0" * 32}

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/v1/users/{user_id}/recommendations")
    def recommendations(user_id: str, k: int = 10) -> dict[str, Any]:
        return answer

    return app


def serve_floor(port: int, workers: int) -> None:
    """The floor with ``workers`` uvicorn worker processes on one listening socket (uvicorn's
    own supervisor); one worker serves in this process, as ``freshrec serve`` does."""
    import uvicorn

    # An import string, so that uvicorn's spawned workers can build the app (this
    # folder is on their sys.path, as on ours).
    uvicorn.run("_server:floor_app", factory=True, workers=workers, host="127.0.0.1",
                port=port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["floor"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args()
    serve_floor(options.port, options.workers)
