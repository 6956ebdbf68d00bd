"""API keys over HTTP: 401 without a live key, 403 without the scope, admin holds them all."""

from __future__ import annotations

import httpx
import pytest

from ._server import Server

EVENT = {"events": [{"user": "auth-u", "item": "auth-i", "type": "view"}]}
# (method, path, json body, scope it needs)
ROUTES = [
    ("POST", "/v1/events", EVENT, "ingest"),
    ("POST", "/v1/items", {"items": [{"id": "auth-i"}]}, "ingest"),
    ("POST", "/v1/users", {"users": [{"id": "auth-u"}]}, "ingest"),
    ("GET", "/v1/users/auth-u/recommendations", None, "read"),
    ("GET", "/v1/items/auth-i/similar", None, "read"),
    ("GET", "/v1/trending", None, "read"),
    ("POST", "/v1/recommendations", {"recent_items": ["auth-i"]}, "read"),
    ("GET", "/metrics", None, "read"),
    ("GET", "/v1/quarantine", None, "admin"),
    ("DELETE", "/v1/users/auth-nobody", None, "admin"),
]


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    """One key per scope, made with ``freshrec keys create`` while the server runs."""
    made = {scope: server.create_key(scope) for scope in ("ingest", "read", "admin")}
    made["ingest+read"] = server.create_key("ingest", "read")
    with server.client() as admin:  # auth-i must exist for the similar route
        assert admin.post("/v1/items", json={"items": [{"id": "auth-i"}]}).status_code == 200
    return made


def call(server: Server, method: str, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_missing_key_is_401_with_a_message(server: Server, method: str, path: str,
                                           body: object, scope: str) -> None:
    answer = call(server, method, path, body)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in answer.json()["error"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "frk_only"])
def test_malformed_header_is_401(server: Server, header: str) -> None:
    answer = call(server, "GET", "/v1/trending", None, Authorization=header)
    assert answer.status_code == 401
    assert "expected 'Bearer <key>'" in answer.json()["error"]


@pytest.mark.parametrize("key", ["frk_not-a-real-key-at-all-0000000000000000", "x" * 5000])
def test_unknown_key_is_401(server: Server, key: str) -> None:
    answer = call(server, "GET", "/v1/trending", None, Authorization=f"Bearer {key}")
    assert answer.status_code == 401
    assert answer.json() == {"error": "unknown or revoked API key", "status": 401}


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_each_scope_opens_its_routes_only(server: Server, keys: dict[str, str], method: str,
                                          path: str, body: object, scope: str) -> None:
    for held in ("ingest", "read", "ingest+read"):
        answer = call(server, method, path, body, Authorization=f"Bearer {keys[held]}")
        if scope in held.split("+"):
            assert answer.status_code == 200, (held, answer.text)
        else:
            assert answer.status_code == 403, (held, answer.text)
            error = answer.json()["error"]
            assert f"lacks the '{scope}' scope" in error
            assert f"it has: {held.replace('+', ', ')}" in error


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_admin_key_holds_every_scope(server: Server, keys: dict[str, str], method: str,
                                     path: str, body: object, scope: str) -> None:
    for key in (keys["admin"], server.admin_key):  # made by the CLI, and from the env
        answer = call(server, method, path, body, Authorization=f"Bearer {key}")
        assert answer.status_code == 200, answer.text


def test_health_needs_no_key(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"


def test_the_cli_refuses_an_unknown_scope(server: Server) -> None:
    done = server.cli("keys", "create", "--scope", "write")
    assert done.returncode == 2
    assert "unknown scope 'write' (known: admin, ingest, read)" in done.stderr


def test_a_revoked_key_is_refused_at_once(server: Server) -> None:
    key = server.create_key("read")
    assert call(server, "GET", "/v1/trending", None,
                Authorization=f"Bearer {key}").status_code == 200
    (line,) = [row for row in server.cli("keys", "list").stdout.splitlines()
               if key[:12] in row]
    key_id = line.split()[1]
    done = server.cli("keys", "revoke", key_id)
    assert done.returncode == 0, done.stderr
    answer = call(server, "GET", "/v1/trending", None, Authorization=f"Bearer {key}")
    assert answer.status_code == 401


def test_keys_are_stored_hashed_and_never_logged(server: Server, keys: dict[str, str]) -> None:
    wrong = "frk_wrong-key-that-should-not-be-logged-123456"
    call(server, "GET", "/v1/trending", None, Authorization=f"Bearer {wrong}")
    logs = server.logs()
    stored = (server.data_dir / "keys.sqlite").read_bytes()
    wal = server.data_dir / "keys.sqlite-wal"
    stored += wal.read_bytes() if wal.exists() else b""
    for key in (*keys.values(), server.admin_key, wrong):
        assert key not in logs
        assert key.encode() not in stored
