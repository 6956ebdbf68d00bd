"""One SQLite connection shared by threads, behind a lock; the embedded stores build on it.

Threading model: each store owns ONE ``sqlite3`` connection opened with
``check_same_thread=False`` and serialises every use of it with a ``threading.Lock``.
SQLite runs one writer at a time anyway, and the statements here are short (a
batch insert, a keyed lookup, a page of a scan), so a per-thread connection would
buy little and make ``close()`` harder. Long reads are paged (keyset pagination),
so no cursor outlives a lock hold and no reader blocks the writer for long.

Durability: WAL journal and ``synchronous=FULL``, so a commit returns only after
the WAL is fsync'd. Every ``sqlite3.Error`` leaves as
:class:`~freshrec.errors.StoreUnavailable` with the original as its cause.

>>> db = SQLiteDatabase(":memory:", "CREATE TABLE t (x INTEGER);")
>>> with db.transaction() as conn:
...     _ = conn.execute("INSERT INTO t VALUES (1)")
>>> with db.reading() as conn:
...     conn.execute("SELECT x FROM t").fetchall()
[(1,)]
>>> db.close()
>>> with db.reading() as conn:  # doctest: +ELLIPSIS
...     pass
Traceback (most recent call last):
...
freshrec.errors.StoreUnavailable: ... is closed
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freshrec.errors import StoreUnavailable

log = logging.getLogger("freshrec")

# How long a writer waits for another process holding the write lock before failing.
BUSY_TIMEOUT_MS = 10_000
MAX_INTEGER = 2**63 - 1
"""SQLite's largest integer: a bigger Python int bound to a query raises OverflowError."""


class SQLiteDatabase:
    """A WAL-mode SQLite file with ``synchronous=FULL`` and a lock around its connection."""

    def __init__(
        self, path: str | os.PathLike[str], schema: str, *, secure_delete: bool = False
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        try:
            # isolation_level=None: no implicit transactions; we BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            conn.execute("PRAGMA journal_mode=WAL")  # ":memory:" stays "memory"; fine
            conn.execute("PRAGMA synchronous=FULL")
            if secure_delete:
                # Erased rows are overwritten with zeros instead of lingering in free pages.
                conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(schema)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._conn = conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction; commit (fsync) on success, else roll back.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so reads made inside
        (such as the next log position) cannot be invalidated by another process.
        """
        with self._lock:
            conn = self._open_connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise StoreUnavailable(f"SQLite write to {self.path} failed: {exc}") from exc

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock for a few reads (or a statement that commits itself)."""
        with self._lock:
            conn = self._open_connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite read from {self.path} failed: {exc}") from exc

    def truncate_wal(self) -> bool:
        """Copy the WAL back into the file and empty it; False if a reader prevented it.

        After an erasure: ``secure_delete`` zeroes the deleted rows in the pages it
        writes, but the WAL still holds older copies of those pages until a
        checkpoint copies the new ones back and the file is truncated. A reader in
        another process holding an old snapshot is waited for (the busy timeout).
        """
        with self.reading() as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("%s: a reader kept the WAL from being truncated; erased rows may "
                        "stay in it until the next checkpoint", self.path)
        return not busy

    def close(self) -> None:
        """Close the connection; later calls raise StoreUnavailable. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _open_connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable(f"SQLite database {self.path} is closed")
        return self._conn


def check_integrity(path: str | os.PathLike[str]) -> None:
    """Raise StoreUnavailable naming ``path`` if the file is not a sound SQLite database.

    ``quick_check`` reads every page (through the WAL, which opening replays), so a
    truncated or overwritten file is found at start, not by the first request that
    happens to touch a damaged page. It skips only the index-to-table cross checks
    of the full ``integrity_check``, which cost far more on a large log.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"the SQLite database {path} is damaged: {exc}") from exc
    finally:
        conn.close()
    if problems != ["ok"]:
        found = "; ".join(" ".join(problem.split()) for problem in problems)
        raise StoreUnavailable(f"the SQLite database {path} is damaged: {found}")
