"""API keys: ``Authorization: Bearer <key>``, checked against hashed keys with scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from freshrec.security.keys import KeyInfo, KeyStore
from freshrec.service.errors import ApiError

SCOPES = ("ingest", "read", "admin")


def require(scope: str) -> Callable[[Request], Awaitable[KeyInfo]]:
    """A FastAPI dependency that admits keys holding ``scope`` (admin holds every scope).

    Async, so checking a key costs no thread hand-off; the key store answers from an
    indexed lookup in microseconds, and asking it every time means a revoked key is
    refused at once, even when another process (the CLI) revoked it. With the keys in
    PostgreSQL the store answers from this process's copy of them
    (:class:`~freshrec.security.key_mirror.KeyMirror`), never a round trip on the event
    loop, and another process's revocation takes effect within about a second.
    """

    async def check(request: Request) -> KeyInfo:
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        kind, _, key = header.partition(" ")
        if kind.lower() != "bearer" or not key.strip():
            raise ApiError(401, "malformed Authorization header: expected 'Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        keys: KeyStore = request.app.state.runtime.stores.keys
        info = keys.verify(key.strip())
        if info is None:
            raise ApiError(401, "unknown or revoked API key",
                           headers={"WWW-Authenticate": "Bearer"})
        if not info.allows(scope):
            raise ApiError(403, f"this key lacks the '{scope}' scope "
                                f"(it has: {', '.join(sorted(info.scopes))})")
        return info

    return check
