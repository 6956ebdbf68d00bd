"""A readers-writer gate: many ingest requests at once, or one snapshot alone.

Ingest requests hold the shared side from their commit until their events are
applied to the engine; a snapshot takes the exclusive side, so at that moment
every committed event is applied and the log position it records is exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    """Writer-preferring readers-writer lock (a waiting writer blocks new readers).

    >>> gate = Gate()
    >>> with gate.shared():
    ...     with gate.shared():
    ...         pass
    >>> with gate.exclusive():
    ...     pass
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            while self._writer or self._writers_waiting:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                if self._readers == 0:
                    self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._condition.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._condition.notify_all()
