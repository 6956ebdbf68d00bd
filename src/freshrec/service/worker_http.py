"""HTTP between the serving workers of one machine (``freshrec serve --workers N``).

- :class:`LeaderForwarding` carries the lifecycle's requests (train, promote, roll back,
  pin, erase, monitoring, start and stop experiments) from whichever worker they
  reached to the one that leads, over its Unix socket, and hands its answer back
  unchanged. Keys are checked by the leader,
  like any request.
- :class:`WorkerHeader` names the worker that answered (``X-Freshrec-Worker``), for
  benchmarks and for a person reading a trace.
- :func:`internal_router`: what the leader asks of the others (take up the champion,
  forget an erased user, take up started or stopped experiments, their metrics and
  console counters). Only requests with the run's token reach it; for anyone else it
  does not exist (404), and it is not in the schema.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from freshrec.service.cluster import WORKER_HEADER, Cluster
from freshrec.service.errors import ApiError, error_response

LEADER_ROUTES = (
    ("POST", re.compile(r"/v1/models/(train|rollback|[^/]+/(promote|pin|unpin))")),
    ("POST", re.compile(r"/v1/(experiments|shadow)(/[^/]+/stop)?")),
    ("DELETE", re.compile(r"/v1/users/.+")),
    ("GET", re.compile(r"/v1/monitoring")),
    # The leader's drift monitor is the one that triggers trainings, and it knows them.
    ("GET", re.compile(r"/v1/console/drift")),
)
HOP_HEADERS = {b"host", b"content-length", b"transfer-encoding", b"connection"}


def leads_route(method: str, path: str) -> bool:
    """Whether the request is the lifecycle's: carried out by the leader only."""
    return any(method == wanted and pattern.fullmatch(path) for wanted, pattern in LEADER_ROUTES)


class LeaderForwarding:
    """Send the lifecycle's requests to the leading worker; answer with its answer."""

    def __init__(self, app: ASGIApp, cluster: Cluster) -> None:
        self.app = app
        self.cluster = cluster

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or self.cluster.is_leader
                or not leads_route(scope["method"], scope["path"])):
            await self.app(scope, receive, send)
            return
        if self.cluster.internal(Headers(scope=scope)):
            # Forwarded here by a worker that took us for the leader, which we no longer
            # are (or never were): do not pass it on again, let the client retry.
            await _unavailable(send, "the lifecycle's leader is changing; retry")
            return
        client = self.cluster.leader_client()
        if client is None:
            await _unavailable(send, "no worker leads the lifecycle yet (the workers are "
                                     "starting); retry")
            return
        body = b""
        try:
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        except ApiError as error:  # the body size limit, raised while reading
            await _refuse(send, error.status, error.message)
            return
        headers = [(name, value) for name, value in scope["headers"]
                   if name.lower() not in HOP_HEADERS]
        # The path as the client sent it, still percent-encoded: the decoded one can hold
        # characters no URL may carry (an id with a control character, say).
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope["query_string"]
        target = (raw_path + (b"?" + query if query else b"")).decode("latin-1")
        try:
            async with client:
                answer = await client.request(scope["method"], target, content=body,
                                              headers=headers)
        except httpx.InvalidURL as error:
            await _refuse(send, 400, f"the request's URL cannot be carried to the leader: {error}")
            return
        except httpx.HTTPError:
            await _unavailable(send, "the lifecycle's leader did not answer; retry")
            return
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": [(name.encode(), value.encode())
                                for name, value in answer.headers.items()
                                if name.encode() not in HOP_HEADERS]
                    + [(b"content-length", str(len(answer.content)).encode())]})
        await send({"type": "http.response.body", "body": answer.content})


async def _unavailable(send: Send, message: str) -> None:
    await _refuse(send, 503, message, {"Retry-After": "1"})


async def _refuse(send: Send, status: int, message: str,
                  headers: dict[str, str] | None = None) -> None:
    """The API's one error shape, sent from below the router (no request to answer)."""
    await error_response(status, message, headers)({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class WorkerHeader:
    """Add ``X-Freshrec-Worker: <index>`` to every answer."""

    def __init__(self, app: ASGIApp, worker: int) -> None:
        self.app = app
        self.header = (WORKER_HEADER.lower().encode(), str(worker).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                # A forwarded answer already names the leader that made it.
                if all(name != self.header[0] for name, _ in headers):
                    message["headers"] = [*headers, self.header]
            await send(message)

        await self.app(scope, receive, named)


class Forget(BaseModel):
    user: str
    position: int


def from_workers_only(cluster: Cluster) -> Any:
    """A dependency that lets only requests carrying the run's token in: for anyone
    else an internal route does not exist (404)."""
    def from_a_worker(request: Request) -> None:
        if not cluster.internal(request.headers):
            raise ApiError(404, "Not Found")

    return Depends(from_a_worker)


def internal_router(runtime: Any, local_metrics: Any) -> APIRouter:
    """The calls between workers; ``runtime`` is the worker's Runtime."""
    router = APIRouter(prefix="/internal", include_in_schema=False,
                       dependencies=[from_workers_only(runtime.cluster)])

    @router.post("/champion")
    async def champion() -> dict[str, str]:
        return {"model": await run_in_threadpool(runtime.follow_champion)}

    @router.post("/experiments")
    async def experiments() -> dict[str, int]:
        def refresh() -> int:  # off the event loop: the store may be a database's
            runtime.experiments.refresh()
            return len(runtime.stores.experiments.find(status="running"))

        return {"running": await run_in_threadpool(refresh)}

    @router.post("/forget")
    async def forget(body: Forget) -> dict[str, str]:
        await run_in_threadpool(runtime.forget, body.user, body.position)
        return {"user": body.user}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(await run_in_threadpool(local_metrics), media_type="text/plain")

    @router.get("/live")
    def live() -> dict[str, Any]:
        """This worker's console buckets, for the worker merging them."""
        return runtime.live.snapshot()  # type: ignore[no-any-return]

    return router
