"""The operator's console: its static page at ``/console`` and its own API routes.

The page is plain HTML and JavaScript modules shipped in the package
(``freshrec/console/static``); it holds no data. Everything it shows comes from keyed
API calls made by the browser with the key the operator pasted, so serving the files
needs no key and a visitor without one sees the login form only.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from freshrec.security.keys import KeyInfo
from freshrec.service.auth import require
from freshrec.service.live import MAX_MINUTES, merged_live
from freshrec.service.openapi import KEYED, errors
from freshrec.service.runtime import Runtime

STATIC = Path(str(files("freshrec.console") / "static"))
PAGE_HEADERS = {
    # Scripts and styles from the console's own files only: a record shown on a page
    # (a quarantined raw body, an item title) can never run as code.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # An upgrade must reach the browser at once, not after a cache's guess.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """The static files, with the headers above on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def install_console(app: FastAPI, runtime: Runtime) -> None:
    """Serve the page at ``/console/`` and add the console's API routes."""

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.mount("/console", ConsoleFiles(directory=STATIC, html=True), name="console")
    app.include_router(live_router(runtime))


def live_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(prefix="/v1/console", tags=["console"], responses=errors(*KEYED))

    @router.get("/session")
    def session(key: Annotated[KeyInfo, Depends(require("read"))]) -> dict[str, Any]:
        """What the key in use may do: the console enables the admin buttons by it."""
        return {"name": key.name, "prefix": key.prefix, "scopes": sorted(key.scopes),
                "admin": key.allows("admin")}

    @router.get("/live", dependencies=[Depends(require("read"))], responses=errors(422))
    async def live(minutes: Annotated[int, Query(ge=1, le=MAX_MINUTES)] = MAX_MINUTES
                   ) -> dict[str, Any]:
        """Events/s, recommendations/s, latency p50/p99, errors/s and learner lag in
        10-second buckets over the last ``minutes``, for all workers and for each."""
        return await run_in_threadpool(live_view, runtime, minutes)

    return router


def live_view(runtime: Runtime, minutes: int) -> dict[str, Any]:
    """This worker's buckets merged with every other serving worker's."""
    cluster = runtime.cluster
    if cluster is None:
        workers = [{"worker": "0", "pid": os.getpid(), "leader": True,
                    "applied": runtime.applied_position, "lag": runtime.learner_lag()}]
        return merged_live({"0": runtime.live.snapshot()}, minutes, workers)
    snapshots = {str(cluster.index): runtime.live.snapshot()}
    for worker, answer in cluster.call_peers("GET", "/internal/live").items():
        if not isinstance(answer, str) and answer.status_code == 200:
            snapshots[str(worker)] = answer.json()
    last = runtime.stores.events.last_position()
    workers = [{"worker": str(w["worker"]), "pid": w["pid"], "leader": w["leader"],
                "applied": w["position"],
                "lag": max(0, last - w["position"]) if w["pid"] else None}
               for w in cluster.workers()]
    return merged_live(snapshots, minutes, workers)
