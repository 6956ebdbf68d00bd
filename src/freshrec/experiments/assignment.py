"""Which arm a user is in: a stable hash of the user id, salted by the experiment's id.

The same user lands in the same arm on every worker, after every restart and on every
machine, without storing the assignment; a new experiment (another salt) splits the
users afresh, independently of earlier ones.

>>> arms = [("control", 0.5), ("candidate", 0.5)]
>>> arm_of("exp-1", "ann", arms) == arm_of("exp-1", "ann", arms)
True
>>> sorted({arm_of("exp-1", f"u{n}", arms) for n in range(100)})
['candidate', 'control']
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SCALE = float(2**64)


def unit_hash(salt: str, key: str) -> float:
    """A number in [0, 1) that depends only on ``salt`` and ``key`` (SHA-256)."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / SCALE


def arm_of(experiment: str, user: str, arms: Sequence[tuple[str, float]]) -> str:
    """The arm of ``user``: the arms cover [0, 1) in order, each by its share."""
    point = unit_hash(experiment, user) * sum(share for _, share in arms)
    reached = 0.0
    for name, share in arms:
        reached += share
        if point < reached:
            return name
    return arms[-1][0]


def sampled(salt: str, key: str, rate: float) -> bool:
    """Whether ``key`` (a request id) is in a sample of ``rate`` (a shadow's share)."""
    return unit_hash(salt, key) < rate
