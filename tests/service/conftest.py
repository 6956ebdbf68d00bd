"""Fixtures of the HTTP tests: one shared real server, and fresh ones on demand."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._server import Server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server: most tests talk to it, each with its own ids.

    Training waits for many events, so answers come from the online models and stay
    predictable whatever order the tests run in.
    """
    running = Server(tmp_path_factory.mktemp("shared"),
                     {"FRESHREC_MIN_TRAIN_EVENTS": "1000000"}).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Any]:
    """A factory of servers with their own data directory, stopped after the test."""
    started: list[Server] = []

    def make(env: Mapping[str, str] | None = None, workers: int = 1) -> Server:
        running = Server(tmp_path / f"server{len(started)}", env, workers=workers)
        running.root.mkdir()
        started.append(running)
        return running.start()

    yield make
    for running in started:
        if running.process is not None:
            running.kill()
