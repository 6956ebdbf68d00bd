"""A private PostgreSQL server for tests, started from the installed binaries.

``PostgresServer`` runs ``initdb`` and ``pg_ctl`` (the newest of
``/usr/lib/postgresql/*/bin``, or ``FRESHREC_PG_BIN``) on a data directory of its own,
listening on 127.0.0.1 at a free port with trust authentication and no Unix socket,
so it never meets the machine's own cluster. As root it runs as the ``postgres``
user (PostgreSQL refuses to run as root). Tests that need it skip where the binaries
or psycopg are missing, and fail instead when ``CI=true``, so CI cannot pass by
testing nothing.

``fsync=off``: the tests check what the stores do, not that the disk keeps it, and
the machine is shared.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_names = itertools.count(1)


def missing(reason: str) -> None:
    """Skip, or fail under CI where the PostgreSQL tests must run."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must not be skipped)",
                    pytrace=False)
    pytest.skip(reason)


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: the newest major version installed."""
    chosen = os.environ.get("FRESHREC_PG_BIN")
    if chosen:
        return Path(chosen) if (Path(chosen) / "pg_ctl").is_file() else None
    found = [Path(p) for p in Path("/").glob(PG_BIN_GLOB.lstrip("/"))
             if (Path(p) / "initdb").is_file() and (Path(p) / "pg_ctl").is_file()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
               default=None)


def require_postgres() -> Path:
    """The binaries' folder; skips (or fails in CI) without them or without psycopg."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed (pip install -e '.[dev]')")
    binaries = find_binaries()
    if binaries is None:
        missing(f"no PostgreSQL binaries in {PG_BIN_GLOB} (apt-get install postgresql)")
    assert binaries is not None
    return binaries


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One private server: ``start``, ``stop``, and a new database per ``new_url``."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        # Not pytest's tmp_path: its parents are private to root, and the server runs
        # as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="freshrec-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        self.start()

    @property
    def base_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l",
                  str(self.root / "server.log"), "-o", options)

    def stop(self) -> None:
        """Stop at once (``-m fast``: open connections are cut, as in a crash of the link)."""
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def new_url(self) -> str:
        """A URL to a new, empty database on this server."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_names)}"
        with psycopg.connect(f"{self.base_url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.base_url}/{name}"

    def destroy(self) -> None:
        """Stop the server (if running) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data))
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.binaries / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{tail}")
