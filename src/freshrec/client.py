"""A small blocking client for the freshrec HTTP API.

Standard library only (``http.client``), so ``freshrec demo`` runs on a plain
install. One client holds one keep-alive connection: use one per thread. The
benchmarks use it for setup (catalogs, history), not to generate load.

>>> client = FreshrecClient("http://127.0.0.1:8000", key="frk_example")
>>> client.url("/v1/trending", {"k": 5, "category": None})
'/v1/trending?k=5'
>>> client.close()
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msgspec

from freshrec.errors import FreshrecError
from freshrec.records import Event, Item, User


class RequestFailed(FreshrecError):
    """The service answered with an error status (or not at all)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


class FreshrecClient:
    """Calls the API at ``base_url`` with ``Authorization: Bearer <key>``."""

    def __init__(self, base_url: str, key: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.key = key
        self.timeout = timeout
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._connection: http.client.HTTPConnection | None = None

    # -- the API ---------------------------------------------------------------------
    def post_items(self, items: Sequence[Item]) -> Any:
        return self.request("POST", "/v1/items", {"items": list(items)})

    def post_events(self, events: Sequence[Event]) -> Any:
        return self.request("POST", "/v1/events", {"events": list(events)})

    def post_users(self, users: Sequence[User]) -> Any:
        return self.request("POST", "/v1/users", {"users": list(users)})

    def recommendations(self, user: str, k: int = 10, **params: Any) -> Any:
        return self.request("GET", self.url(f"/v1/users/{quote(user, safe='')}/recommendations",
                                            {"k": k, **params}))

    def similar(self, item: str, k: int = 10, **params: Any) -> Any:
        return self.request("GET", self.url(f"/v1/items/{quote(item, safe='')}/similar",
                                            {"k": k, **params}))

    def trending(self, k: int = 10, **params: Any) -> Any:
        return self.request("GET", self.url("/v1/trending", {"k": k, **params}))

    def ready(self) -> Any:
        """The /readyz answer: ``{"status": "ready", "model": ..., "events": ...}``."""
        return self.request("GET", "/readyz")

    def metrics(self) -> str:
        return str(self.request("GET", "/metrics"))

    # -- plumbing --------------------------------------------------------------------
    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """``path`` with the query string of the ``params`` that are not ``None``."""
        query = {k: str(v).lower() if isinstance(v, bool) else v
                 for k, v in (params or {}).items() if v is not None}
        return f"{path}?{urlencode(query)}" if query else path

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; JSON answers are decoded, others returned as text.

        A kept-alive connection the server has closed meanwhile is reopened once.
        """
        payload = None if body is None else msgspec.json.encode(body)
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if payload is not None:
            headers["Content-Type"] = "application/json"
        while True:
            reused = self._connection is not None
            connection = self._connect()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, TimeoutError) as error:
                self.close()
                if not reused or isinstance(error, TimeoutError):
                    raise RequestFailed(0, f"{method} {path}: {error}") from error
        is_json = "json" in (response.getheader("content-type") or "")
        answer = msgspec.json.decode(raw) if is_json and raw else raw.decode()
        if response.status >= 400:
            message = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise RequestFailed(response.status, str(message))
        return answer

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port,
                                                          timeout=self.timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> FreshrecClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
