"""The event log: every accepted event, durable before it is acknowledged.

``EventLog`` is the contract; ``MemoryEventLog`` and ``SQLiteEventLog`` are the
embedded backends, and ``GroupCommitLog`` wraps any of them so that many
concurrent small appends share one durable commit.
"""

from freshrec.log.base import (
    MAX_QUARANTINE_BYTES,
    AppendResult,
    EventLog,
    QuarantinedRecord,
)
from freshrec.log.group_commit import GroupCommitLog
from freshrec.log.memory import MemoryEventLog
from freshrec.log.sqlite import SQLiteEventLog

__all__ = [
    "MAX_QUARANTINE_BYTES",
    "AppendResult",
    "EventLog",
    "GroupCommitLog",
    "MemoryEventLog",
    "QuarantinedRecord",
    "SQLiteEventLog",
]
