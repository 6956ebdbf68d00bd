"""``KeyMirror``: a serving process's copy of the keys in a shared (PostgreSQL) store.

Every request checks its key, and the HTTP layer does so on the event loop: a round
trip to a database there would stall every request of the process behind it, and
an unreachable database would refuse reads that need nothing else from it. So a
serving process checks keys against a copy of the table (the hashes and their
scopes: a few rows), read again every :data:`REFRESH_S` by a thread of its own.

The cost is a delay: a key created, or revoked, elsewhere (the CLI, another worker,
another machine) takes effect here within about a second. A change made through
this process takes effect here at once (the copy is read again after it).

While the database cannot be read the copy keeps answering, for at most
:data:`MAX_STALE_S`: a revocation needs the database, so the copy misses at most
one committed just before the outage, or by someone who still reaches it. After
that keys are refused as the database's reads are (StoreUnavailable, a 503).
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Collection
from typing import Protocol

from freshrec.errors import StoreUnavailable
from freshrec.security.keys import KeyInfo, _candidate_hash

log = logging.getLogger("freshrec")
REFRESH_S = 1.0
MAX_STALE_S = 300.0


class HashedKeyStore(Protocol):
    """A key store that can hand over its whole table (:class:`PostgresKeyStore`)."""

    def hashes(self) -> dict[str, KeyInfo]: ...
    def create(self, scopes: Collection[str], name: str = "") -> str: ...
    def list(self) -> builtins.list[KeyInfo]: ...
    def revoke(self, key_id: str) -> bool: ...
    def ensure(self, key: str, scopes: Collection[str], name: str = "") -> KeyInfo: ...
    def close(self) -> None: ...


class KeyMirror:
    """A :class:`~freshrec.security.keys.KeyStore` that verifies from a copy of ``store``."""

    def __init__(self, store: HashedKeyStore, refresh_s: float = REFRESH_S,
                 max_stale_s: float = MAX_STALE_S) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self.max_stale_s = max_stale_s
        try:  # the first read fails loudly: there is no copy to fall back on
            self._copy = store.hashes()
        except BaseException:
            store.close()
            raise
        self._read_at = time.monotonic()
        self._failing = False
        self._reading = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="freshrec-keys",
                                        daemon=True)
        self._thread.start()

    def verify(self, key: str) -> KeyInfo | None:
        digest = _candidate_hash(key)
        if digest is None:
            return None
        age = time.monotonic() - self._read_at
        if age > self.max_stale_s:
            raise StoreUnavailable(f"the keys could not be read for {age:.0f}s")
        # Replaced whole, never changed in place. Looked up by the hash, as the stores'
        # indexes do: its timing tells at most something of a hash (security/keys.py).
        return self._copy.get(digest)

    def create(self, scopes: Collection[str], name: str = "") -> str:
        key = self._store.create(scopes, name=name)
        self._read()
        return key

    def list(self) -> builtins.list[KeyInfo]:
        return self._store.list()

    def revoke(self, key_id: str) -> bool:
        found = self._store.revoke(key_id)
        self._read()
        return found

    def ensure(self, key: str, scopes: Collection[str], name: str = "") -> KeyInfo:
        info = self._store.ensure(key, scopes, name=name)
        self._read()
        return info

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._store.close()

    def _read(self) -> None:
        # One at a time: a read the thread began before a revocation must not replace
        # the copy read after it.
        with self._reading:
            self._copy = self._store.hashes()
            self._read_at = time.monotonic()

    def _follow(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self._read()
            except StoreUnavailable as error:
                if not self._failing:
                    log.warning("cannot read the API keys (%s); checking keys against the "
                                "copy read %.0fs ago", error, time.monotonic() - self._read_at)
                self._failing = True
                continue
            if self._failing:
                log.info("reading the API keys again")
            self._failing = False
