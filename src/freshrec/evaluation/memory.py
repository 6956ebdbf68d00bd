"""Resident memory of this process: now, and the peak since a chosen moment.

A worker measures a contestant's memory as peak RSS minus the RSS it had once
the data was loaded. On Linux the kernel's high-water mark is first reset to
the current RSS (writing ``5`` to ``/proc/self/clear_refs``), so that a spike
while loading the data is not charged to the contestant; elsewhere the peak
is ``getrusage``'s ``ru_maxrss``, which cannot be reset.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        return None
    return None


def current_rss_mb() -> float:
    """Resident set size now, in MB (the peak so far where /proc is missing)."""
    rss = _status_mb("VmRSS")
    return rss if rss is not None else peak_rss_mb()


def reset_peak() -> bool:
    """Make the peak equal to the current RSS; False where the OS cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set size, in MB: /proc's VmHWM, else ``ru_maxrss``."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0
