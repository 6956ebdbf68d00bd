"""``BackgroundAppender``: records a request must log but must not wait for.

What a recommendation showed (an :class:`~freshrec.records.Impression`) is part of
what the models learn from, so it goes into the log like an event, but no client
waits for it to be durable: a request hands it over and answers, and this thread
appends what has gathered in one call (one commit, shared with concurrent ingest
through :class:`~freshrec.log.group_commit.GroupCommitLog`). The queue is bounded:
when the log cannot keep up, or is down, the newest records are dropped and counted
rather than holding requests or memory. A lost impression costs one lesson, never an
acknowledged record.

>>> from freshrec.log.memory import MemoryEventLog
>>> from freshrec.records import Item
>>> log = MemoryEventLog()
>>> appender = BackgroundAppender(log)
>>> appender.submit(Item(id="i1"))
True
>>> appender.flush(timeout=5.0), [record.id for _, record in log.read_records()]
(True, ['i1'])
>>> appender.close()
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from freshrec.log.base import EventLog, LogRecord

log = logging.getLogger("freshrec")
MAX_QUEUED = 10_000
MAX_PER_APPEND = 1_000


class BackgroundAppender:
    """Appends submitted records to ``log`` from its own thread, in submission order."""

    def __init__(self, log: EventLog, *, appended: Callable[[], None] = lambda: None,
                 max_queued: int = MAX_QUEUED) -> None:
        self.log = log
        self.appended = appended
        """Called after each append (the learner's wake-up)."""
        self.max_queued = max_queued
        self.dropped = 0
        self._queue: deque[LogRecord] = deque()
        self._busy = 0  # records taken off the queue and not yet appended
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="freshrec-appender",
                                        daemon=True)
        self._thread.start()

    def submit(self, record: LogRecord) -> bool:
        """Queue ``record``; False (and counted in ``dropped``) if the queue is full."""
        with self._changed:
            if self._closed or len(self._queue) >= self.max_queued:
                self.dropped += 1
                return False
            self._queue.append(record)
            self._changed.notify_all()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far has been appended (or dropped)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._busy,
                                          timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Append what is queued, then stop."""
        self.flush(timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                batch = [self._queue.popleft()
                         for _ in range(min(len(self._queue), MAX_PER_APPEND))]
                self._busy = len(batch)
            try:
                self.log.append(batch)
            except Exception as error:  # the log is down: these lessons are lost
                self.dropped += len(batch)
                log.warning("%d record(s) not logged: %s", len(batch), error)
            else:
                self.appended()
            with self._changed:
                self._busy = 0
                self._changed.notify_all()
