"""Crash safety: every append SQLiteEventLog acknowledged survives a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from freshrec.log import SQLiteEventLog
from freshrec.records import Event

WRITER = """
import sys
from freshrec.log import SQLiteEventLog
from freshrec.records import Event

log = SQLiteEventLog(sys.argv[1])
batch = 0
while True:
    events = [Event(user=f"u{batch % 7}", item=f"i{j}", type="view", timestamp=float(batch),
                    id=f"b{batch}-{j}") for j in range(5)]
    positions = log.append(events).positions
    print(batch, *positions, flush=True)  # printed only once the commit is durable
    batch += 1
"""
ACKS_BEFORE_KILL = 200


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert child.stdout is not None
        while len(lines) < ACKS_BEFORE_KILL:
            line = child.stdout.readline()
            assert line, f"writer died early: {child.stderr.read() if child.stderr else ''}"
            lines.append(line)
        os.kill(child.pid, signal.SIGKILL)  # mid-run: the writer never stops on its own
        rest = child.stdout.read()
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # Lines printed before the kill were acknowledged too; a torn last line was not.
    lines += [line + "\n" for line in rest.split("\n")[:-1]]

    log = SQLiteEventLog(path)
    try:
        stored = dict(log.read())
        for line in lines:
            batch, *positions = map(int, line.split())
            for j, position in enumerate(positions):
                assert stored[position].id == f"b{batch}-{j}"
                assert stored[position].timestamp == float(batch)
        # No torn transaction: positions are contiguous and the sequence agrees.
        assert sorted(stored) == list(range(1, log.last_position() + 1))
        acked = [Event(user="u0", item=f"i{j}", type="view", timestamp=0.0, id=f"b0-{j}")
                 for j in range(5)]
        assert log.append(acked).duplicates == 5
    finally:
        log.close()
