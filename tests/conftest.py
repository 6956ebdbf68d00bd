"""Shared test setup: access to the real datasets in ../shared/data.

Tests that read real data are marked ``@pytest.mark.realdata`` and take the
``shared_data`` fixture. Without the data they skip, so a fresh checkout still
tests green; with ``CI=true`` they fail instead, so CI cannot pass by silently
testing nothing. Tests marked ``@pytest.mark.seq`` need torch (the ``seq`` extra)
and are treated the same way.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from freshrec.data import shared_data_dir


def _missing(reason: str) -> None:
    """Skip, or fail under CI where real-data tests must run."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: real-data tests must not be skipped)", pytrace=False)
    pytest.skip(reason)


def _data_root() -> Path:
    root = shared_data_dir()
    if root is None or not root.is_dir():
        where = root or "no ../shared/data and FRESHREC_DATASETS_DIR unset"
        _missing(f"real data not found ({where})")
    assert root is not None
    return root


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("realdata") is not None:
        _data_root()
    if item.get_closest_marker("seq") is not None and importlib.util.find_spec("torch") is None:
        _missing("torch not installed (pip install 'freshrec[seq]')")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets; a test that uses it skips (or fails in CI) without it."""
    return _data_root()
