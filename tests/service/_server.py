"""Real servers for the HTTP tests: ``freshrec serve`` in a subprocess, driven with httpx.

:class:`Server` starts the CLI on a free port with its own data directory, waits for
``/readyz`` (failing with the server's log if it never gets there), and can be
stopped (SIGTERM), killed (SIGKILL) and started again on the same data directory.
The server's stdout and stderr go to files next to (not inside) the data
directory, so tests can search the logs and the data directory holds only data.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from freshrec.catalog.sqlite import SQLiteCatalogStore
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.registry.datasets import DatasetVersion, dataset_version
from freshrec.service.cluster import socket_path

ADMIN_KEY = "test-admin-key-0123456789abcdef"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 90.0  # a clean stop waits for a running training
# The CLI through the interpreter running the tests, so it is the same venv.
CLI = [sys.executable, "-m", "freshrec.cli"]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``freshrec serve`` process at a time over one data directory."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None,
                 admin_key: str = ADMIN_KEY, workers: int = 1) -> None:
        """``workers``: ``--workers`` (one process unless a test is about several)."""
        self.root = root
        self.workers = workers
        self.data_dir = root / "data"
        self.admin_key = admin_key
        self.env = {**os.environ, "FRESHREC_ADMIN_KEY": admin_key,
                    # Quick background rounds so polls for background work end soon.
                    "FRESHREC_SETTLE_INTERVAL_S": "0.1", **(env or {})}
        self.env.pop("FRESHREC_DATA_DIR", None)
        if "FRESHREC_DATABASE_URL" not in (env or {}):  # the machine's own: not for tests
            self.env.pop("FRESHREC_DATABASE_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Server:
        assert self.process is None, "already running"
        self.port = free_port()
        with open(self.root / "stdout.log", "ab") as out, \
                open(self.root / "stderr.log", "ab") as err:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port),
                 "--workers", str(self.workers)],
                stdout=out, stderr=err, env=self.env, cwd=self.root)
        self.wait_ready()
        return self

    def start_refused(self, timeout: float = READY_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """``freshrec serve`` expected to refuse to start: its exit code and output."""
        assert self.process is None, "already running"
        return subprocess.run(
            [*CLI, "serve", "--data-dir", str(self.data_dir), "--port", str(free_port()),
             "--workers", str(self.workers)],
            capture_output=True, text=True, env=self.env, cwd=self.root, timeout=timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"freshrec serve exited with {self.process.returncode} before it "
                            f"was ready:\n{self.log_tail()}", pytrace=False)
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if answer.status_code == 200:
                    return dict(answer.json())
                last = f"{answer.status_code} {answer.text}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"freshrec serve was not ready after {timeout}s (last: {last}):\n"
                    f"{self.log_tail()}", pytrace=False)

    def stop(self) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        return self._end(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs at all."""
        return self._end(signal.SIGKILL)

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def _end(self, sig: signal.Signals) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"freshrec serve ignored {sig.name} for {STOP_TIMEOUT_S}s:\n"
                        f"{self.log_tail()}", pytrace=False)

    # -- talking to it ---------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client; ``key`` defaults to the admin key, ``""`` sends none."""
        key = self.admin_key if key is None else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)

    def worker(self, index: int, key: str | None = None) -> httpx.Client:
        """A client to one worker of ``--workers N`` (its own Unix socket, same app)."""
        key = self.admin_key if key is None else key
        path = socket_path(self.data_dir, index)
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(path)),
                            base_url="http://worker", timeout=60.0,
                            headers={"Authorization": f"Bearer {key}"} if key else {})

    def wait_workers(self, timeout: float = READY_TIMEOUT_S) -> list[dict[str, Any]]:
        """Every worker serving and one leading; their entries from /v1/monitoring."""
        def all_serving() -> list[dict[str, Any]] | None:
            with self.client() as client:
                answer = client.get("/v1/monitoring")
            if answer.status_code != 200:
                return None
            workers = answer.json()["workers"]
            serving = all(w["pid"] for w in workers) and any(w["leader"] for w in workers)
            return list(workers) if serving else None

        return list(wait_for(all_serving, timeout=timeout, message="every worker serving"))

    def logs(self) -> str:
        parts = []
        for name in ("stdout.log", "stderr.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``freshrec <args> --data-dir <this server's data>``."""
        return subprocess.run([*CLI, *args, "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, env=self.env, timeout=60)

    def create_key(self, *scopes: str) -> str:
        """A key made by ``freshrec keys create`` against this server's data directory."""
        done = self.cli("keys", "create", *(arg for s in scopes for arg in ("--scope", s)))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def query(self, sql: str, *params: Any, database: str = "events") -> list[tuple[Any, ...]]:
        """Rows from one of the server's SQLite files, opened read-only."""
        with closing(open_readonly(self.data_dir / f"{database}.sqlite")) as db:
            return db.execute(sql, params).fetchall()

    def event_ids(self) -> set[str]:
        """Every event id in the log."""
        return {row[0] for row in self.query("SELECT id FROM events WHERE id IS NOT NULL")}

    def dataset_version(self, end_position: int) -> DatasetVersion:
        """The dataset version of the log up to ``end_position``, read back from disk."""
        log = SQLiteEventLog(self.data_dir / "events.sqlite")
        catalog = SQLiteCatalogStore(self.data_dir / "catalog.sqlite")
        try:
            return dataset_version(log, end_position, catalog=catalog)
        finally:
            log.close()
            catalog.close()


def open_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def wait_for(condition: Any, timeout: float = 60.0, interval: float = 0.1,
             message: str = "condition") -> Any:
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}", pytrace=False)
        time.sleep(interval)


def ingest(client: httpx.Client, events: list[dict[str, Any]]) -> dict[str, Any]:
    answer = client.post("/v1/events", json={"events": events})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def recommended(client: httpx.Client, user: str, **params: Any) -> list[str]:
    answer = client.get(f"/v1/users/{user}/recommendations", params=params)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]
