"""API keys with scopes: ``KeyStore`` stores only a hash of each key, never the key.

A key is ``frk_`` followed by 32 random bytes (urlsafe base64). ``create`` returns
it once; afterwards the store knows only its SHA-256, a short non-secret prefix for
listing (``frk_`` and the first 8 random characters), its name and its scopes.

A plain SHA-256 is the right hash here, unlike for passwords: the keys carry 256
bits of randomness, so a leaked hash cannot be brute-forced and slow salted hashes
(bcrypt, argon2) would only slow down every request. The hash doubles as the
lookup key, and the final comparison uses ``hmac.compare_digest``; timing of the
lookup reveals at most something about a hash, which does not help find a key.

Scopes: ``ingest`` (send events and catalog records), ``read`` (ask for
recommendations), ``admin`` (everything, including managing keys).

>>> keys = MemoryKeyStore()
>>> key = keys.create(["read"], name="web shop")
>>> key.startswith("frk_")
True
>>> info = keys.verify(key)
>>> (info.name, sorted(info.scopes), info.allows("read"), info.allows("ingest"))
('web shop', ['read'], True, False)
>>> keys.verify("frk_guess") is None
True
>>> keys.create(["write"])
Traceback (most recent call last):
...
ValueError: unknown scope 'write' (known: admin, ingest, read)
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from freshrec._sqlite import SQLiteDatabase
from freshrec.errors import StoreUnavailable

SCOPES = ("admin", "ingest", "read")
ADMIN = "admin"
KEY_PREFIX = "frk_"
# A key given from the environment (FRESHREC_ADMIN_KEY) must be long enough that
# its unsalted SHA-256 cannot be brute-forced; generated keys are 47 characters.
MIN_KEY_LENGTH = 20
MAX_KEY_LENGTH = 256  # longer input is refused without hashing it
_VISIBLE_RANDOM_CHARS = 8


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the store tells about a key: never the key itself, nor its hash."""

    id: str
    name: str
    prefix: str
    scopes: frozenset[str]
    created: float

    def allows(self, scope: str) -> bool:
        """Whether the key may act in ``scope``; ``admin`` allows everything."""
        return ADMIN in self.scopes or scope in self.scopes


@runtime_checkable
class KeyStore(Protocol):
    """API keys and their scopes."""

    def create(self, scopes: Collection[str], name: str = "") -> str:
        """Make a new key and return it; this is the only time the plaintext exists."""
        ...

    def verify(self, key: str) -> KeyInfo | None:
        """The key's info if it is a live key, else ``None``."""
        ...

    def list(self) -> builtins.list[KeyInfo]:
        """Every live key, oldest first."""
        ...

    def revoke(self, key_id: str) -> bool:
        """Delete the key with this id; ``True`` if it existed."""
        ...

    def ensure(self, key: str, scopes: Collection[str], name: str = "") -> KeyInfo:
        """Register a key chosen elsewhere (the environment); idempotent.

        Registering it again updates its scopes and name, so the environment stays
        the source of truth across restarts.
        """
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...


def generate_key() -> str:
    """A new random key: ``frk_`` plus 32 random bytes, urlsafe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The hex SHA-256 of ``key`` (see the module docstring for why unsalted is fine)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_scopes(scopes: Collection[str]) -> frozenset[str]:
    """Validate scope names, with a message that lists the known ones.

    >>> sorted(check_scopes(["read", "ingest"]))
    ['ingest', 'read']
    """
    if isinstance(scopes, str):
        raise ValueError(f"scopes must be a collection of names such as [{scopes!r}], "
                         "not a single string")
    chosen = frozenset(scopes)
    if not chosen:
        raise ValueError(f"a key needs at least one scope (known: {', '.join(SCOPES)})")
    for scope in sorted(chosen):
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} (known: {', '.join(SCOPES)})")
    return chosen


def display_prefix(key: str) -> str:
    """The non-secret start of a key shown in listings.

    Generated keys show ``frk_`` and 8 of their 43 random characters; other keys
    show only 4 characters, since they may hold much less randomness.
    """
    if key.startswith(KEY_PREFIX) and len(key) >= 40:
        return key[: len(KEY_PREFIX) + _VISIBLE_RANDOM_CHARS]
    return key[:4]


def _check_given_key(key: str) -> None:
    # Never put the key itself in a message: messages end up in logs.
    if not isinstance(key, str) or not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        raise ValueError(
            f"an API key must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters; generate one "
            "with: python -c \"import secrets; print('frk_' + secrets.token_urlsafe(32))\""
        )


def _new_id() -> str:
    return "key_" + secrets.token_hex(6)


def _candidate_hash(key: object) -> str | None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return None
    return hash_key(key)


class MemoryKeyStore:
    """A :class:`KeyStore` in memory (tests, demos); thread-safe via one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, KeyInfo] = {}
        self._closed = False

    def create(self, scopes: Collection[str], name: str = "") -> str:
        chosen = check_scopes(scopes)
        key = generate_key()
        info = KeyInfo(_new_id(), name, display_prefix(key), chosen, time.time())
        with self._lock:
            self._check_open()
            self._by_hash[hash_key(key)] = info
        return key

    def verify(self, key: str) -> KeyInfo | None:
        digest = _candidate_hash(key)
        if digest is None:
            return None
        with self._lock:
            self._check_open()
            for stored, info in self._by_hash.items():
                if hmac.compare_digest(stored, digest):
                    return info
        return None

    def list(self) -> builtins.list[KeyInfo]:
        with self._lock:
            self._check_open()
            return sorted(self._by_hash.values(), key=lambda info: (info.created, info.id))

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            self._check_open()
            for stored, info in list(self._by_hash.items()):
                if info.id == key_id:
                    del self._by_hash[stored]
                    return True
        return False

    def ensure(self, key: str, scopes: Collection[str], name: str = "") -> KeyInfo:
        chosen = check_scopes(scopes)
        _check_given_key(key)
        digest = hash_key(key)
        with self._lock:
            self._check_open()
            current = self._by_hash.get(digest)
            if current is None:
                current = KeyInfo(_new_id(), name, display_prefix(key), chosen, time.time())
            else:
                current = replace(current, name=name, scopes=chosen)
            self._by_hash[digest] = current
            return current

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the in-memory key store is closed")


SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id      TEXT PRIMARY KEY,
    hash    TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the key; the key is never stored
    prefix  TEXT NOT NULL,
    name    TEXT NOT NULL,
    scopes  TEXT NOT NULL,         -- space-separated
    created REAL NOT NULL
);
"""
_COLUMNS = "id, name, prefix, scopes, created"


class SQLiteKeyStore:
    """A :class:`KeyStore` in a SQLite file (WAL, ``synchronous=FULL``, one locked connection)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        # secure_delete: a revoked key's hash is overwritten, not left in a free page.
        self._db = SQLiteDatabase(path, SCHEMA, secure_delete=True)

    def create(self, scopes: Collection[str], name: str = "") -> str:
        chosen = check_scopes(scopes)
        key = generate_key()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, hash, prefix, name, scopes, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_new_id(), hash_key(key), display_prefix(key), name, " ".join(sorted(chosen)),
                 time.time()),
            )
        return key

    def verify(self, key: str) -> KeyInfo | None:
        digest = _candidate_hash(key)
        if digest is None:
            return None
        with self._db.reading() as conn:
            row = conn.execute(
                f"SELECT hash, {_COLUMNS} FROM api_keys WHERE hash = ?", (digest,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return _info(row[1:])

    def list(self) -> builtins.list[KeyInfo]:
        with self._db.reading() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, id")
            return [_info(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0

    def ensure(self, key: str, scopes: Collection[str], name: str = "") -> KeyInfo:
        chosen = check_scopes(scopes)
        _check_given_key(key)
        digest = hash_key(key)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, hash, prefix, name, scopes, created) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (hash) DO UPDATE SET name = excluded.name, scopes = excluded.scopes",
                (_new_id(), digest, display_prefix(key), name, " ".join(sorted(chosen)),
                 time.time()),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE hash = ?", (digest,)
            ).fetchone()
        return _info(row)

    def close(self) -> None:
        self._db.close()


def _info(row: tuple[str, str, str, str, float]) -> KeyInfo:
    key_id, name, prefix, scopes, created = row
    return KeyInfo(key_id, name, prefix, frozenset(scopes.split()), created)
