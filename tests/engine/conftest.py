"""Fixtures for engine tests."""

from __future__ import annotations

import pytest

from freshrec.engine import Engine

from .shops import catalog, history, small_config


@pytest.fixture
def trained() -> Engine:
    engine = Engine(small_config())
    engine.fit([*catalog(), *history()])
    return engine
