"""Security: API keys with scopes, stored as hashes."""

from freshrec.security.keys import (
    SCOPES,
    KeyInfo,
    KeyStore,
    MemoryKeyStore,
    SQLiteKeyStore,
    generate_key,
)

__all__ = ["SCOPES", "KeyInfo", "KeyStore", "MemoryKeyStore", "SQLiteKeyStore", "generate_key"]
