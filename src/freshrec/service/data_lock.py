"""One ``freshrec serve`` per data directory: an exclusive lock on ``<data_dir>/serve.lock``.

Two servers on one directory would each replay the log into their own engine,
snapshot over each other and prune each other's files. The lock is an
``fcntl.flock`` on an open file, so the kernel releases it when the holder ends,
however it ends (``kill -9`` included): there is never a stale lock to remove by
hand. The file also records the holder's pid, for the message the next one prints.

Training processes open the stores by path and never take this lock; they are
started with ``spawn``, so they do not inherit its file descriptor either. Serving
workers (``--workers N``) do inherit it: the lock is held until the last of them ends,
so a new server cannot start beside workers that outlive their supervisor for a moment.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO

LOCK_NAME = "serve.lock"
ORPHAN_WAIT_S = 10.0
"""How long to wait for a lock whose recorded holder is dead: its workers are ending."""


class DataDirLocked(RuntimeError):
    """Another process serves this data directory; the message names it and its pid."""


class DataDirLock:
    """Hold the data directory's lock from ``acquire()`` until ``release()`` or exit."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "a+": never truncate the holder's pid before we know the lock is ours.
        file = open(self.path, "a+")  # noqa: SIM115 (held until release)
        deadline = time.monotonic() + ORPHAN_WAIT_S
        while True:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "unknown"
            if not _alive(holder) and time.monotonic() < deadline:
                time.sleep(0.05)  # a killed supervisor's workers hold it a moment longer
                continue
            file.close()
            raise DataDirLocked(
                f"the data directory {self.path.parent} is in use by another freshrec "
                f"serve (pid {holder}, holding {self.path}); stop it first, or give this "
                f"one another --data-dir") from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def fileno(self) -> int:
        """The locked descriptor, for the workers to inherit."""
        assert self._file is not None, "not acquired"
        return self._file.fileno()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # unknown holder: do not wait on it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
