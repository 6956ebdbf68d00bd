"""Shared test setup: access to the real datasets in ../shared/data.

Tests that read real data are marked ``@pytest.mark.realdata`` and take the
``shared_data`` fixture. Without the data they skip, so a fresh checkout still
tests green; with ``CI=true`` they fail instead, so CI cannot pass by silently
testing nothing. Tests marked ``@pytest.mark.seq`` need torch (the ``seq`` extra),
tests marked ``@pytest.mark.browser`` need Playwright and a Chromium (Debian's, at
``FRESHREC_CHROMIUM`` or /usr/bin/chromium); both are treated the same way.

The PostgreSQL fixtures (a private server started from the installed binaries, see
tests/_postgres.py) are here, for the stores' tests and the service's alike.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _postgres import PostgresServer, require_postgres
from freshrec.data import shared_data_dir

CHROMIUM = Path(os.environ.get("FRESHREC_CHROMIUM", "/usr/bin/chromium"))
"""Playwright's own browser download is not used: the system's Chromium is driven."""


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
    if item.get_closest_marker("browser") is not None:
        if importlib.util.find_spec("playwright") is None:
            _missing("playwright not installed (pip install -e '.[dev]')")
        if not CHROMIUM.is_file():
            _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets; a test that uses it skips (or fails in CI) without it."""
    return _data_root()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright, for the ``browser`` tests.

    ``--no-sandbox``: CI runs as root, where Chromium refuses its sandbox."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox", "--headless=new"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session; skips without PostgreSQL (fails
    under CI)."""
    server = PostgresServer(require_postgres())
    yield server
    server.destroy()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database for one test."""
    return postgres_server.new_url()


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A server of the test's own, for a test that stops it."""
    server = PostgresServer(require_postgres())
    yield server
    server.destroy()
