"""``KeyMirror``: the KeyStore contract over PostgreSQL, and what its copy adds.

A change made elsewhere (another process's store) is seen once the copy is read
again; while the database is down the copy keeps answering, up to ``max_stale_s``.
Real servers (tests/_postgres.py); the waits poll for an outcome, they time nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _postgres import PostgresServer
from freshrec.errors import StoreUnavailable
from freshrec.security import KeyStore

from .test_keys import KeyStoreContract

QUICK_S = 0.05


def eventually(condition: Callable[[], Any], message: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}", pytrace=False)
        time.sleep(QUICK_S)


def mirror(url: str, **options: float) -> Any:
    from freshrec.security.key_mirror import KeyMirror
    from freshrec.security.postgres_keys import PostgresKeyStore

    return KeyMirror(PostgresKeyStore(url), **options)


class TestKeyMirror(KeyStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_keys(self, tmp_path: Path) -> KeyStore:
        keys: KeyStore = mirror(self.url)
        return keys


def test_a_key_created_or_revoked_elsewhere_is_seen_at_the_next_read(
        postgres_url: str) -> None:
    from freshrec.security.postgres_keys import PostgresKeyStore

    copy, elsewhere = mirror(postgres_url, refresh_s=QUICK_S), PostgresKeyStore(postgres_url)
    try:
        key = elsewhere.create(["read"], name="cli")
        eventually(lambda: copy.verify(key) is not None, "the new key in the copy")
        assert copy.verify(key).scopes == {"read"}
        (info,) = elsewhere.list()
        elsewhere.revoke(info.id)
        eventually(lambda: copy.verify(key) is None, "the revocation in the copy")
    finally:
        copy.close()
        elsewhere.close()


def test_the_copy_answers_while_the_database_is_down_for_a_while(
        own_postgres_server: PostgresServer) -> None:
    from freshrec.security.postgres_keys import PostgresKeyStore

    url = own_postgres_server.new_url()
    copy = mirror(url, refresh_s=QUICK_S)
    try:
        key = copy.create(["ingest"], name="pipeline")
        own_postgres_server.stop()
        info = copy.verify(key)
        assert info is not None and info.name == "pipeline"
        assert copy.verify("frk_not-a-key-of-this-store-0123456789") is None
        copy.max_stale_s = 0.0  # the outage outlasted what a copy may answer for
        with pytest.raises(StoreUnavailable):
            copy.verify(key)
        copy.max_stale_s = 300.0
        own_postgres_server.start()
        elsewhere = PostgresKeyStore(url)
        try:
            later = elsewhere.create(["read"])
        finally:
            elsewhere.close()
        eventually(lambda: copy.verify(later) is not None, "the copy read again")
    finally:
        copy.close()
