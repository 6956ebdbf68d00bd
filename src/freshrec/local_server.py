"""Run ``freshrec serve`` (or any HTTP server command) as a child process on loopback.

Used by ``freshrec demo`` and the service benchmarks: start, wait until /readyz
answers 200, and stop cleanly (SIGTERM lets uvicorn finish in-flight requests
and the runtime close its stores).

>>> free_port() > 0
True
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from freshrec.client import FreshrecClient, RequestFailed

HOST = "127.0.0.1"


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it can be bound on loopback, else a port the kernel picks."""
    for port in ((preferred, 0) if preferred else (0,)):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port on loopback")


class LocalServer:
    """A server in a child process (its own session, so Ctrl-C reaches only us).

    ``command`` must serve on ``port`` and answer GET /readyz with 200 once ready.
    Its output goes to ``log_path`` (or is discarded).
    """

    def __init__(self, command: Sequence[str], port: int, *,
                 env: Mapping[str, str] | None = None, log_path: Path | None = None) -> None:
        self.command = list(command)
        self.port = port
        self.env = dict(env or {})
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def freshrec(cls, data_dir: Path, *, port: int = 0, admin_key: str | None = None,
                 env: Mapping[str, str] | None = None, log_path: Path | None = None,
                 log_level: str = "warning", workers: int | None = None) -> LocalServer:
        """``freshrec serve`` on ``data_dir``; ``env`` adds ``FRESHREC_*`` settings;
        ``workers`` is ``--workers`` (None: the default, one per CPU)."""
        port = port or free_port()
        settings = dict(env or {})
        if admin_key:
            settings["FRESHREC_ADMIN_KEY"] = admin_key
        command = [sys.executable, "-m", "freshrec.cli", "serve", "--data-dir", str(data_dir),
                   "--host", HOST, "--port", str(port), "--log-level", log_level]
        if workers is not None:
            command += ["--workers", str(workers)]
        return cls(command, port, env=settings, log_path=log_path)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 300.0) -> LocalServer:
        """Start the process and return once /readyz answers 200."""
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        output = self._log if self._log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command, env={**os.environ, **self.env},
                                        stdout=output, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:  # Ctrl-C or a failed start: never leave the child behind
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with FreshrecClient(self.url, timeout=5.0) as client:
            while True:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"the server exited before it was ready{self._tail()}")
                try:
                    client.ready()
                    return
                except RequestFailed:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server was not ready after {timeout:.0f}s"
                                       f"{self._tail()}")
                time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, wait for a clean exit (kill after ``timeout``); the exit code (0: clean)."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
            # uvicorn re-raises the signal after its graceful shutdown: that is a clean exit.
            code = 0 if code == -signal.SIGTERM else code
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def _tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return ":\n" + "\n".join(text) if text else ""

    def __enter__(self) -> LocalServer:
        return self.start() if self.process is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()
