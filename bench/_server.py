"""Shared setup of the service benchmarks: servers in child processes, the data they load.

Run as a script (``python bench/_server.py floor --port N``) it serves the *floor*:
the same stack as ``freshrec serve`` (FastAPI + uvicorn, same process settings)
answering a constant JSON at the recommendations path, so the cost of the
framework can be told apart from the cost of recommending.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from freshrec.client import FreshrecClient
from freshrec.data import generate_shop, load_online_retail, shared_data_dir
from freshrec.local_server import LocalServer, free_port
from freshrec.records import Event, Item

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR.parent / "results" / "service"
KEY = "frk_" + secrets.token_urlsafe(32)
NO_TRAINING = {"FRESHREC_MIN_TRAIN_EVENTS": str(10**12),
               "FRESHREC_RETRAIN_EVERY_EVENTS": str(10**12)}
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


def freshrec_server(data_dir: Path, env: dict[str, str] | None = None) -> LocalServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    return LocalServer.freshrec(data_dir, admin_key=KEY, env=env,
                                log_path=data_dir.parent / f"{data_dir.name}.log")


def loaded_server(data: BenchData, workdir: Path, console: Console,
                  env: dict[str, str] | None = None) -> LocalServer:
    """A running server with the catalog and the history loaded and a training done.

    The history is posted with training off; then the server restarts with its
    default settings (plus ``env``), and recovery replays the log and trains once
    before /readyz answers 200, as after any restart of a deployment.
    """
    data_dir = workdir / "data"
    started = time.perf_counter()
    with freshrec_server(data_dir, NO_TRAINING) as server, \
            FreshrecClient(server.url, KEY) as client:
        for chunk in chunks(data.items, LOAD_BATCH):
            client.post_items(chunk)
        for chunk in chunks(data.history, LOAD_BATCH):
            client.post_events(chunk)
    loaded = time.perf_counter()
    server = freshrec_server(data_dir, env).start(timeout=1800)
    with FreshrecClient(server.url, KEY) as client:
        # Measure a trained server: wait for the first model, which the service trains
        # in the background after recovery.
        model = client.ready()["model"]
        while model == "untrained":
            time.sleep(1.0)
            model = client.ready()["model"]
    console.print(f"loaded {len(data.items):,} items and {len(data.history):,} events in "
                  f"{loaded - started:.0f}s; restart, replay and training took "
                  f"{time.perf_counter() - loaded:.0f}s (model {model})")
    return server


def server_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--server-env NAME=VALUE`` options as a dict (for diagnostics, e.g. BLAS threads)."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--server-env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def floor_server(workdir: Path) -> LocalServer:
    port = free_port()
    return LocalServer([sys.executable, str(BENCH_DIR / "_server.py"), "floor",
                        "--port", str(port)], port, log_path=workdir / "floor.log")


def chunks(records: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(records), size):
        yield records[start:start + size]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- reporting --------------------------------------------------------------------------
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
    from fastapi import FastAPI

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


def serve_floor(port: int) -> None:
    import uvicorn

    sys.setswitchinterval(0.001)  # as freshrec.service.server.run_server does
    uvicorn.run(floor_app(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["floor"])
    parser.add_argument("--port", type=int, required=True)
    serve_floor(parser.parse_args().port)
