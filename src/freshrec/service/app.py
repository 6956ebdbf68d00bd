"""The HTTP API: thin routes that parse input, call one runtime method, map errors.

Build it with :func:`create_app` from a :class:`~freshrec.service.runtime.Runtime`;
``freshrec serve`` does that with embedded stores in a data directory.
"""

# No ``from __future__ import annotations`` here: the ``k`` parameters are annotated
# with ``Query(le=settings.max_k)``, a closure variable that FastAPI cannot resolve
# from a string annotation (every ``?k=`` request then failed with a 500).
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import msgspec
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from freshrec.errors import StoreUnavailable
from freshrec.ingest.batches import ParsedBatch, Rejection, parse_batch
from freshrec.records import parse_event, parse_item, parse_user
from freshrec.service import schemas
from freshrec.service.admin import admin_router
from freshrec.service.auth import require
from freshrec.service.console import install_console
from freshrec.service.console_api import console_router
from freshrec.service.errors import install_error_handlers
from freshrec.service.experiments_api import experiments_router
from freshrec.service.limits import BodySizeLimit
from freshrec.service.metrics import RequestMetrics
from freshrec.service.metrics_merge import merged_exposition
from freshrec.service.openapi import KEYED, WITH_BODY, WITH_PATH_ID, ApiDocument, errors
from freshrec.service.params import PathId, checked_id, user_filters
from freshrec.service.runtime import Runtime
from freshrec.service.worker_http import LeaderForwarding, WorkerHeader, internal_router
from freshrec.serving.results import Filters, Recommendation

NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False,
                   "auto_configure": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})
"""Nothing leaves the machine: FastAPI 0.16x traces requests with OpenTelemetry by
default and exports them wherever ``FASTAPI_OTEL_AUTO_CONFIGURE`` and the OTLP
variables point; off, whatever the environment says."""
log = logging.getLogger("freshrec")


def create_app(runtime: Runtime, *, manage_lifecycle: bool = True) -> FastAPI:
    """The FastAPI app over ``runtime``; with ``manage_lifecycle`` it starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await run_in_threadpool(runtime.start)
        yield
        if manage_lifecycle:
            await run_in_threadpool(runtime.stop)

    public_docs = runtime.settings.public_docs
    app = FastAPI(
        title="freshrec", version="0.1.0", lifespan=lifespan,
        description="Recommendations that learn from every event. Every route except "
                    "/healthz and /readyz needs 'Authorization: Bearer <key>'.",
        docs_url="/docs" if public_docs else None,
        openapi_url="/openapi.json" if public_docs else None, redoc_url=None,
        **NO_TELEMETRY,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    if runtime.cluster is not None:  # innermost: a forwarded body is size-limited first
        app.add_middleware(LeaderForwarding, cluster=runtime.cluster)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=runtime.metrics, live=runtime.live)
    if runtime.cluster is not None:
        app.add_middleware(WorkerHeader, worker=runtime.cluster.index)
    ingest = [Depends(require("ingest"))]
    read = [Depends(require("read"))]
    admin = [Depends(require("admin"))]
    settings = runtime.settings
    document = ApiDocument()
    ingest_errors = errors(*KEYED, *WITH_BODY, ingest=True)

    @app.post("/v1/events", dependencies=ingest, response_model=schemas.IngestAnswer,
              openapi_extra=document.body(schemas.EventBatch), responses=ingest_errors,
              tags=["ingest"])
    async def post_events(request: Request) -> dict[str, Any] | JSONResponse:
        """Store events durably (answered after the commit), then learn from them."""
        batch = parse_batch(await request.body(), "events", parse_event, settings.max_batch)

        def store(events: list[Any]) -> tuple[int, int]:
            result = runtime.ingest_events(events)
            return result.accepted, result.duplicates

        return _ingest_answer(*await _store_then_quarantine(runtime, "event", batch, store),
                              batch.rejected)

    @app.post("/v1/items", dependencies=ingest, response_model=schemas.IngestAnswer,
              openapi_extra=document.body(schemas.ItemBatch), responses=ingest_errors,
              tags=["ingest"])
    async def post_items(request: Request) -> dict[str, Any] | JSONResponse:
        """Add or replace catalog items; a new item is recommendable at once."""
        batch = parse_batch(await request.body(), "items", parse_item, settings.max_batch)

        def store(items: list[Any]) -> tuple[int, int]:
            runtime.ingest_items(items)
            return len(items), 0

        return _ingest_answer(*await _store_then_quarantine(runtime, "item", batch, store),
                              batch.rejected)

    @app.post("/v1/users", dependencies=ingest, response_model=schemas.IngestAnswer,
              openapi_extra=document.body(schemas.UserBatch), responses=ingest_errors,
              tags=["ingest"])
    async def post_users(request: Request) -> dict[str, Any] | JSONResponse:
        """Add or replace user attributes."""
        batch = parse_batch(await request.body(), "users", parse_user, settings.max_batch)

        def store(users: list[Any]) -> tuple[int, int]:
            runtime.ingest_users(users)
            return len(users), 0

        return _ingest_answer(*await _store_then_quarantine(runtime, "user", batch, store),
                              batch.rejected)

    # ``:path``: ids may hold a '/' (sent as %2F); without it such a user could be
    # ingested but never asked about, nor erased.
    @app.delete("/v1/users/{user_id:path}", dependencies=admin, response_model=schemas.Erased,
                responses=errors(*KEYED, *WITH_PATH_ID), tags=["admin"])
    async def delete_user(user_id: PathId) -> dict[str, Any]:
        """Erase a user: their events, attributes and model state."""
        return await run_in_threadpool(runtime.erase_user, checked_id(user_id))

    @app.get("/v1/users/{user_id:path}/recommendations", dependencies=read,
             response_model=schemas.Recommendations,
             responses=errors(*KEYED, *WITH_PATH_ID), tags=["serve"])
    def user_recommendations(
        user_id: PathId,
        filters: Annotated[Filters, Depends(user_filters)],
        k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
    ) -> Response:
        """Personalised top-k; an unknown user gets session/trending items, never an error."""
        user = checked_id(user_id)
        fresh = runtime.reflect_acknowledged()
        request_id = uuid.uuid4().hex
        served = runtime.experiments.answer(user, k, filters, request_id)
        answer = _answer(runtime, served.items, request_id)
        answer["model"] = served.model  # an experiment's arm may serve another version
        if served.experiment is not None:
            answer["experiment"] = served.experiment
        runtime.served(request_id, user, [item["id"] for item in answer["items"]])
        return _json(answer, fresh)

    @app.get("/v1/items/{item_id:path}/similar", dependencies=read,
             response_model=schemas.Recommendations,
             responses=errors(*KEYED, *WITH_PATH_ID), tags=["serve"])
    def similar_items(
        item_id: PathId,
        k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
        category: str | None = None,
        available_only: bool = True,
    ) -> Response:
        """Items bought or watched together with this one, or close in taste or content."""
        filters = Filters(exclude_seen=False, category=category or None,
                          available_only=available_only)
        item = checked_id(item_id)
        fresh = runtime.reflect_acknowledged()
        return _json(_answer(runtime, runtime.engine.similar(item, k, filters)), fresh)

    @app.get("/v1/trending", dependencies=read, response_model=schemas.Recommendations,
             responses=errors(*KEYED, 422), tags=["serve"])
    def trending(
        k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
        category: str | None = None,
        available_only: bool = True,
    ) -> Response:
        """What is popular right now, overall or in one category."""
        filters = Filters(exclude_seen=False, available_only=available_only)
        fresh = runtime.reflect_acknowledged()
        return _json(_answer(runtime, runtime.engine.trending(k, category or None, filters)),
                     fresh)

    @app.post("/v1/recommendations", dependencies=read, response_model=schemas.Recommendations,
              responses=errors(*KEYED, *WITH_BODY), tags=["serve"])
    def session_recommendations(body: schemas.SessionRequest) -> Response:
        """Recommendations for an anonymous session from the items it touched."""
        filters = Filters(exclude_seen=body.exclude_seen, category=body.category or None,
                          available_only=body.available_only, exclude=frozenset(body.exclude))
        fresh = runtime.reflect_acknowledged()
        items = runtime.engine.recommend_for_session(body.recent_items, body.k, filters)
        return _json(_answer(runtime, items), fresh)

    @app.get("/healthz", response_model=schemas.Health, tags=["operate"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=schemas.Readiness, response_model_exclude_none=True,
             responses={503: {"model": schemas.Readiness,
                              "description": "Recovering: replaying the log"}},
             tags=["operate"])
    def readyz(response: Response) -> dict[str, Any]:
        """Ready once recovery finished: the models reflect every acknowledged event."""
        if not runtime.ready:
            response.status_code = 503
            return {"status": "recovering"}
        # Like every read, after the learner has applied what was acknowledged.
        runtime.reflect_acknowledged()
        return {"status": "ready", "model": runtime.engine.model_version,
                "events": runtime.engine.state.events_seen,
                "position": runtime.applied_position}

    @app.get("/metrics", dependencies=read, response_class=PlainTextResponse,
             responses={200: {"description": "Prometheus text exposition format"},
                        **errors(*KEYED)}, tags=["operate"])
    def metrics() -> Response:
        """Prometheus metrics (of every worker, each sample labelled with its ``worker``)."""
        cluster = runtime.cluster
        if cluster is None:
            return Response(local_metrics(), media_type=CONTENT_TYPE_LATEST)
        texts = {cluster.index: local_metrics()}
        for worker, answer in cluster.call_peers("GET", "/internal/metrics").items():
            if not isinstance(answer, str) and answer.status_code == 200:
                texts[worker] = answer.text
        return Response(merged_exposition(texts), media_type=CONTENT_TYPE_LATEST)

    def local_metrics() -> str:
        runtime.metrics.learner_lag.set(runtime.learner_lag())
        runtime.monitoring_gauges.update(drift=runtime.drift_report(),
                                         quality=runtime.quality.report())
        return generate_latest(runtime.metrics.registry).decode()

    app.include_router(admin_router(runtime), dependencies=admin, responses=errors(*KEYED))
    install_console(app, runtime)
    app.include_router(console_router(runtime))  # the console's pages: quality, users, ...
    app.include_router(experiments_router(runtime), responses=errors(*KEYED))
    if runtime.cluster is not None:
        app.include_router(internal_router(runtime, local_metrics))
    document.install(app)
    return app


def _answer(runtime: Runtime, items: list[Recommendation],
            request_id: str | None = None) -> dict[str, Any]:
    return {"items": [{"id": r.item, "score": r.score, "source": r.source} for r in items],
            "model": runtime.engine.model_version,
            "request_id": request_id or uuid.uuid4().hex}


def _json(answer: dict[str, Any], fresh: bool = True) -> Response:
    """The answer as JSON, encoded by msgspec: returning a Response skips FastAPI's
    re-validation of a dict we built ourselves (the schema still documents it).

    ``fresh=False``: the learner had not reached every acknowledged record within the
    read's wait; the answer says so in ``X-Freshrec-Behind`` instead of failing."""
    headers = None if fresh else {"X-Freshrec-Behind": "true"}
    return Response(msgspec.json.encode(answer), media_type="application/json",
                    headers=headers)


def _ingest_answer(accepted: int, duplicates: int,
                   rejected: list[Rejection]) -> dict[str, Any] | JSONResponse:
    """The batch answer; 422 (same body, plus the error) when no record was usable."""
    answer = {"accepted": accepted, "duplicates": duplicates,
              "rejected": [{"index": r.index, "error": r.error} for r in rejected]}
    if rejected and not accepted and not duplicates:
        more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
        message = (f"no record was accepted: record {rejected[0].index}: "
                   f"{rejected[0].error}{more}")
        return JSONResponse({"error": message, "status": 422, **answer}, status_code=422)
    return answer


async def _store_then_quarantine(runtime: Runtime, kind: str, batch: ParsedBatch[Any],
                                 store: Callable[[list[Any]], tuple[int, int]]
                                 ) -> tuple[int, int]:
    """Store the valid records, then keep the rejected ones; (accepted, duplicates).

    A 503 must mean "nothing of this batch was stored", so a failing store raises before
    anything is kept. Once the valid records are stored, a quarantine that fails no
    longer turns the answer into a 503 (the client would send the stored records
    again): the answer still gives every rejected record with its reason.
    """
    stored = await run_in_threadpool(store, batch.valid) if batch.valid else (0, 0)
    if batch.rejected:
        try:
            await run_in_threadpool(runtime.quarantine, kind,
                                    [(r.raw, r.error) for r in batch.rejected])
        except StoreUnavailable as error:
            if not batch.valid:
                raise
            log.warning("%d rejected %s record(s) answered but not quarantined: %s",
                        len(batch.rejected), kind, error)
    return stored
