"""The stores' PostgreSQL backends run against a private server (see tests/_postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _postgres import PostgresServer, require_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private server for the session; skips without PostgreSQL (fails under CI)."""
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
