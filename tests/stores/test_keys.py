"""The KeyStore contract, run against every backend."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from _postgres import PostgresServer
from freshrec.errors import StoreUnavailable
from freshrec.security import KeyStore, MemoryKeyStore, SQLiteKeyStore

ENV_KEY = "a-long-operator-chosen-admin-key"


class KeyStoreContract:
    """Subclasses supply ``make_keys``."""

    def make_keys(self, tmp_path: Path) -> KeyStore:
        raise NotImplementedError

    @pytest.fixture
    def keys(self, tmp_path: Path) -> Iterator[KeyStore]:
        store = self.make_keys(tmp_path)
        yield store
        store.close()

    def test_satisfies_the_protocol(self, keys: KeyStore) -> None:
        assert isinstance(keys, KeyStore)

    def test_a_created_key_verifies_with_its_scopes(self, keys: KeyStore) -> None:
        key = keys.create(["ingest", "read"], name="shop backend")
        assert key.startswith("frk_") and len(key) >= 40
        info = keys.verify(key)
        assert info is not None
        assert (info.name, info.scopes) == ("shop backend", frozenset({"ingest", "read"}))
        assert info.allows("ingest") and info.allows("read") and not info.allows("admin")
        assert key.startswith(info.prefix) and len(info.prefix) == 12

    def test_keys_are_unique(self, keys: KeyStore) -> None:
        assert keys.create(["read"]) != keys.create(["read"])

    def test_wrong_or_malformed_keys_do_not_verify(self, keys: KeyStore) -> None:
        key = keys.create(["read"])
        assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert keys.verify("") is None
        assert keys.verify("frk_" + "x" * 10_000) is None
        assert keys.verify(None) is None  # type: ignore[arg-type]

    def test_admin_implies_every_scope(self, keys: KeyStore) -> None:
        info = keys.verify(keys.create(["admin"]))
        assert info is not None
        assert all(info.allows(scope) for scope in ("admin", "ingest", "read"))

    def test_scopes_are_checked(self, keys: KeyStore) -> None:
        with pytest.raises(ValueError, match=r"unknown scope 'write' \(known: admin, ingest"):
            keys.create(["read", "write"])
        with pytest.raises(ValueError, match="at least one scope"):
            keys.create([])
        with pytest.raises(ValueError, match="not a single string"):
            keys.create("read")
        assert keys.list() == []

    def test_list_never_shows_a_key_or_its_hash(self, keys: KeyStore) -> None:
        first = keys.create(["read"], name="first")
        second = keys.create(["admin"], name="second")
        listed = keys.list()
        assert [info.name for info in listed] == ["first", "second"]
        secrets = {first, second} | {hashlib.sha256(k.encode()).hexdigest() for k in (first,
                                                                                      second)}
        for info in listed:
            shown = " ".join(map(str, dataclasses.astuple(info))) + repr(info)
            assert not any(secret in shown for secret in secrets)

    def test_revoke(self, keys: KeyStore) -> None:
        key = keys.create(["read"])
        other = keys.create(["read"])
        info = keys.verify(key)
        assert info is not None
        assert keys.revoke(info.id) is True
        assert keys.verify(key) is None
        assert keys.revoke(info.id) is False
        assert keys.verify(other) is not None

    def test_ensure_is_idempotent_and_updates_scopes(self, keys: KeyStore) -> None:
        first = keys.ensure(ENV_KEY, ["admin"], name="env")
        again = keys.ensure(ENV_KEY, ["admin"], name="env")
        assert first == again
        assert keys.verify(ENV_KEY) == first
        changed = keys.ensure(ENV_KEY, ["read"], name="env (read only)")
        assert (changed.id, changed.scopes, changed.name) == (first.id, frozenset({"read"}),
                                                              "env (read only)")
        assert [info.id for info in keys.list()] == [first.id]
        assert first.prefix == ENV_KEY[:4]  # an operator-chosen key shows less

    def test_ensure_refuses_a_short_key_without_echoing_it(self, keys: KeyStore) -> None:
        with pytest.raises(ValueError, match="20 to 256 characters") as caught:
            keys.ensure("hunter2", ["admin"])
        assert "hunter2" not in str(caught.value)
        with pytest.raises(ValueError, match="unknown scope"):
            keys.ensure(ENV_KEY, ["root"])

    def test_a_closed_store_refuses_work(self, tmp_path: Path) -> None:
        keys = self.make_keys(tmp_path)
        keys.close()
        with pytest.raises(StoreUnavailable):
            keys.list()


class TestMemoryKeyStore(KeyStoreContract):
    def make_keys(self, tmp_path: Path) -> KeyStore:
        return MemoryKeyStore()


class TestSQLiteKeyStore(KeyStoreContract):
    def make_keys(self, tmp_path: Path) -> KeyStore:
        return SQLiteKeyStore(tmp_path / "keys.sqlite")

    def test_the_plaintext_key_is_never_written_to_disk(self, tmp_path: Path) -> None:
        path = tmp_path / "keys.sqlite"
        keys = SQLiteKeyStore(path)
        created = keys.create(["admin"], name="ops")
        keys.ensure(ENV_KEY, ["admin"])
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # db, -wal, -shm
        keys.close()
        on_disk += b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert hashlib.sha256(created.encode()).hexdigest().encode() in on_disk  # sanity
        assert created.encode() not in on_disk
        assert created[len("frk_"):].encode() not in on_disk
        assert ENV_KEY.encode() not in on_disk

    def test_keys_survive_a_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "keys.sqlite"
        keys = SQLiteKeyStore(path)
        key = keys.create(["ingest"], name="pipeline")
        keys.close()
        reopened = SQLiteKeyStore(path)
        try:
            info = reopened.verify(key)
            assert info is not None and info.scopes == {"ingest"}
        finally:
            reopened.close()


class TestPostgresKeyStore(KeyStoreContract):
    """On a private server (tests/_postgres.py), a new database per test."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_keys(self, tmp_path: Path) -> KeyStore:
        from freshrec.security.postgres_keys import PostgresKeyStore

        return PostgresKeyStore(self.url)

    def test_keys_survive_a_reopen_and_are_shared(self, tmp_path: Path) -> None:
        first, second = self.make_keys(tmp_path), self.make_keys(tmp_path)
        key = first.create(["ingest"], name="pipeline")
        assert second.ensure(ENV_KEY, ["admin"]) == first.ensure(ENV_KEY, ["admin"])
        first.close()
        info = second.verify(key)
        assert info is not None and info.scopes == {"ingest"}
        second.close()


def test_the_plaintext_key_never_reaches_the_postgres_server(
        own_postgres_server: PostgresServer) -> None:
    from freshrec.security.postgres_keys import PostgresKeyStore

    keys = PostgresKeyStore(own_postgres_server.new_url())
    created = keys.create(["admin"], name="ops")
    keys.ensure(ENV_KEY, ["admin"])
    keys.close()
    own_postgres_server.stop()  # every table page and the WAL are on disk now
    on_disk = b"".join(path.read_bytes() for path in own_postgres_server.data.rglob("*")
                       if path.is_file())
    assert hashlib.sha256(created.encode()).hexdigest().encode() in on_disk  # sanity
    assert created.encode() not in on_disk
    assert created[len("frk_"):].encode() not in on_disk
    assert ENV_KEY.encode() not in on_disk
