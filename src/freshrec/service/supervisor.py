"""``freshrec serve --workers N``: N serving processes on one port, kept running.

The supervisor holds the data directory's lock, prepares the stores once (schemas,
WAL mode; with ``--database-url`` the PostgreSQL tables too, and a bad URL or an
unreachable server ends the start here) so that N processes never race to create
them, binds the port, and starts the workers (:mod:`freshrec.service.worker`),
passing each the listening socket and the locked descriptor (and the database URL in
its environment). The kernel hands each new connection to whichever worker accepts
first. A worker that dies is started again; it recovers from the newest
snapshot and the log like any restart, and meanwhile the others answer. SIGTERM or
SIGINT stops every worker gracefully and ends with exit code 0.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from freshrec.service.cluster import POSITIONS_FILE, run_dir
from freshrec.service.data_lock import DataDirLock
from freshrec.service.positions import MAX_WORKERS, SharedPositions
from freshrec.service.server import DATABASE_URL_ENV, open_stores, where_stores_are
from freshrec.service.worker import TOKEN_ENV

log = logging.getLogger("freshrec")
BACKLOG = 2048
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
"""Waits before restarting a worker that died again soon after its last start."""
STABLE_S = 60.0
"""A worker that ran this long before dying is restarted at once."""
STOP_WAIT_S = 30.0


class Supervisor:
    def __init__(self, data_dir: Path, host: str, port: int, workers: int, log_level: str,
                 lock: DataDirLock, database_url: str | None = None) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"--workers must be between 1 and {MAX_WORKERS}")
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.count = workers
        self.log_level = log_level
        self.lock = lock
        self.database_url = database_url
        self._token = secrets.token_urlsafe(32)
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._started: dict[int, float] = {}
        self._quick_deaths: dict[int, int] = {}
        self._stopping = threading.Event()

    def run(self) -> None:
        # Schemas and WAL mode, once, before N opens; every worker opens its own.
        open_stores(self.data_dir, self.database_url).close()
        shared = run_dir(self.data_dir)
        shutil.rmtree(shared, ignore_errors=True)  # what it held belongs to ended processes
        shared.mkdir(mode=0o700)
        self._positions = SharedPositions.create(shared / POSITIONS_FILE)
        listener = socket.create_server((self.host, self.port), backlog=BACKLOG)
        listener.set_inheritable(True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        log.info("freshrec serving on http://%s:%d with %d workers (pid %d)",
                 self.host, self.port, self.count, os.getpid())
        if self.database_url:
            log.info("%s", where_stores_are(self.database_url))
        try:
            for index in range(self.count):
                self._start(index, listener)
            while not self._stopping.wait(0.2):
                self._restart_dead(listener)
        finally:
            self._stop_all()
            listener.close()
            self._positions.close()
            # Sockets in the data directory would break a plain copy of it (a backup).
            shutil.rmtree(shared, ignore_errors=True)

    def _start(self, index: int, listener: socket.socket) -> None:
        command = [sys.executable, "-m", "freshrec.service.worker",
                   "--data-dir", str(self.data_dir), "--index", str(index),
                   "--workers", str(self.count), "--fd", str(listener.fileno()),
                   "--parent", str(os.getpid()), "--log-level", self.log_level]
        env = {**os.environ, TOKEN_ENV: self._token}
        env.pop(DATABASE_URL_ENV, None)
        if self.database_url:
            env[DATABASE_URL_ENV] = self.database_url
        self._processes[index] = subprocess.Popen(
            command, pass_fds=(listener.fileno(), self.lock.fileno()), env=env)
        self._started[index] = time.monotonic()

    def _restart_dead(self, listener: socket.socket) -> None:
        for index, process in list(self._processes.items()):
            code = process.poll()
            if code is None:
                continue
            # Its slot says it serves until it is told otherwise: a peer would call it.
            self._positions.set_ready(index, 0)
            ran = time.monotonic() - self._started[index]
            deaths = 0 if ran >= STABLE_S else self._quick_deaths.get(index, 0) + 1
            self._quick_deaths[index] = deaths
            wait = 0.0 if deaths == 0 else RESTART_BACKOFF_S[min(deaths,
                                                                 len(RESTART_BACKOFF_S)) - 1]
            log.warning("worker %d (pid %d) ended with code %s after %.0f s; starting it "
                        "again in %.1f s", index, process.pid, code, ran, wait)
            if self._stopping.wait(wait):
                return
            self._start(index, listener)

    def _stop_all(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for index, process in self._processes.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in %.0f s; killing it", index, STOP_WAIT_S)
                process.kill()
                process.wait()
