"""An erasure during a training in a thread: the result is discarded, every version revoked."""

from __future__ import annotations

import pytest

from freshrec.engine import Engine
from freshrec.lifecycle.manager import LifecycleError

from .test_conclusion import _lifecycle

REASON = "trained before a user's data was erased"


def test_a_thread_training_is_discarded_and_every_earlier_version_revoked() -> None:
    installed: list[str] = []

    def install(engine: Engine, position: int, version: str) -> None:
        installed.append(version)

    lifecycle, registry = _lifecycle(install)
    try:
        first = lifecycle.start(1000, "first")
        assert lifecycle.wait()["decision"] == "promoted"  # type: ignore[index]
        second = lifecycle.start(2000, "second")
        with lifecycle.erasing(REASON):
            # A thread cannot be killed: the training stays under way, its result void.
            assert lifecycle.running
        outcome = lifecycle.wait()
    finally:
        lifecycle.close()
    assert outcome is not None and outcome["decision"] == "cancelled"
    assert installed == [first]
    assert lifecycle.artifacts.list() == []  # the champion's and the candidate's
    for version in (first, second):
        revoked = registry.get(version)
        assert revoked is not None and revoked.revoked == REASON and not revoked.artifacts
        with pytest.raises(LifecycleError, match="erased"):
            lifecycle.promote(version)
        with pytest.raises(LifecycleError, match="erased"):
            lifecycle.pin(version, True)
