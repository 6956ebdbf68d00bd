"""The learner's thread: the one writer, applying the log to the model in position order.

Ingest only commits to the log; this thread reads every record after the position it
has applied (events, impressions, catalog changes), hands them in order to ``apply``
(which owns the engine and its locks), and moves its position on. Requests never
write the model: a read that must reflect an acknowledged record waits, briefly, for
:meth:`LogFollower.wait_for` to see the learner reach that record's position.

It is woken by :meth:`notify` after a local commit, and otherwise polls the log every
``poll_s``, so records committed by another process (another serving worker) are
applied too.

>>> from freshrec.log.memory import MemoryEventLog
>>> from freshrec.records import Event
>>> log, applied = MemoryEventLog(), []
>>> follower = LogFollower(log, lambda records: applied.extend(records), position=0)
>>> follower.start()
>>> last = log.append([Event(user="u", item="i", type="view", timestamp=0.0)]).positions[-1]
>>> follower.notify()
>>> follower.wait_for(last, timeout=5.0), [position for position, _ in applied]
(True, [1])
>>> follower.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from freshrec.errors import StoreUnavailable
from freshrec.log.base import EventLog, LogRecord

log = logging.getLogger("freshrec")
CHUNK = 256
"""Records applied per round: the learner lets requests in between chunks."""
FAILURE_BACKOFF_S = 1.0


class LogFollower:
    """Applies ``log``'s records after ``position`` through ``apply``, in order, in a thread."""

    def __init__(self, log: EventLog,
                 apply: Callable[[Sequence[tuple[int, LogRecord]]], None], *,
                 position: int, poll_s: float = 0.005, chunk: int = CHUNK) -> None:
        self.log = log
        self.apply = apply
        self.poll_s = poll_s
        self.chunk = chunk
        self._position = position
        self._changed = threading.Condition()
        self._wakeup = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def position(self) -> int:
        """The last log position whose record has been applied."""
        return self._position

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="freshrec-learner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def notify(self) -> None:
        """Something was committed: look at the log now rather than at the next poll."""
        self._wakeup.set()

    def moved_to(self, position: int) -> None:
        """The engine was replaced by one that reflects the log up to ``position``."""
        with self._changed:
            self._position = max(self._position, position)
            self._changed.notify_all()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until ``position`` is applied (True) or ``timeout`` seconds pass (False)."""
        if self._position >= position:
            return True
        self.notify()
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._position < position:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if self._round():
                    continue  # more may be waiting: no sleep between full chunks
                self.last_error = None
            except Exception as error:  # the learner must outlive a failing store
                self.last_error = f"{type(error).__name__}: {error}"
                if isinstance(error, StoreUnavailable):  # a store down: said, not dumped
                    log.error("the learner could not read the log: %s", error)
                else:
                    log.exception("the learner could not apply the log")
                self._stopped.wait(FAILURE_BACKOFF_S)
                continue
            self._wakeup.wait(self.poll_s)
            self._wakeup.clear()

    def _round(self) -> bool:
        """Apply the next chunk; True if it was full (more may follow)."""
        records = self.log.read_records(after=self._position, limit=self.chunk)
        if not records:
            return False
        self.apply(records)
        with self._changed:
            self._position = max(self._position, records[-1][0])
            self._changed.notify_all()
        return len(records) == self.chunk
