"""The read routes behind the console's pages: quality, drift, a user explained, an item's
insight, the quarantine searched and counted.

Thin, like the rest of the API: each route asks the module that owns the data
(``Engine.explain``, ``monitoring/quality.py``, ``monitoring/drift.py``, the event log)
and only reads. With ``--workers N`` the questions about the whole service are not
answered from one worker's memory: the quality counts of every worker are added up
(``/internal/console/quality``), drift and trainings are the leader's (forwarded, see
``worker_http.LEADER_ROUTES``), and histories, trends and the quarantine come from the
shared stores.
"""

# No ``from __future__ import annotations``: the ``k`` parameters are annotated with
# ``Query(le=settings.max_k)``, which FastAPI cannot resolve from a string (see app.py).
import time
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from freshrec._sqlite import MAX_INTEGER
from freshrec.ingest.quarantine import MAX_POINTS, reasons_over_time
from freshrec.log.base import QuarantineFilter, bucket_start
from freshrec.monitoring.drift import drift_signals
from freshrec.monitoring.quality import HISTORY_BUCKET_S, merge_histories, quality_over_time
from freshrec.records import Item
from freshrec.registry.models import ModelVersion
from freshrec.service import schemas
from freshrec.service.auth import require
from freshrec.service.errors import ApiError
from freshrec.service.openapi import KEYED, WITH_PATH_ID, errors
from freshrec.service.params import PathId, checked_id, user_filters
from freshrec.service.runtime import Runtime
from freshrec.service.worker_http import from_workers_only
from freshrec.serving.results import Filters

MONITOR_TRIGGERS = ("drift", "quality")
"""Trainings the monitors started (their trigger starts with one of these)."""
GATES_LISTED = 200
"""Model versions whose gate numbers the quality page shows beside the online ones."""
HISTORY_LENGTH = 50


def console_router(runtime: Runtime) -> APIRouter:
    """The console's read routes (and, with workers, the internal one they add up)."""
    router = APIRouter()
    read = [Depends(require("read"))]
    admin = [Depends(require("admin"))]
    settings = runtime.settings
    cluster = runtime.cluster

    @router.get("/v1/console/quality", dependencies=read, responses=errors(*KEYED, 422),
                tags=["console"])
    def quality(minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 24 * 60) -> dict[str, Any]:
        """Online hit rate and click-through per minute, by model version (beside its
        offline gate numbers) and by source, over every worker."""
        histories = [runtime.quality.history()]
        missing = []
        if cluster is not None:
            for worker, answer in cluster.call_peers("GET", "/internal/console/quality").items():
                if isinstance(answer, str) or answer.status_code != 200:
                    missing.append(worker)
                else:
                    histories.append(answer.json())
        gates = {version.id: _gate(version)
                 for version in runtime.stores.registry.list(limit=GATES_LISTED)
                 if version.gate is not None}
        since = time.time() - minutes * 60.0
        return {**quality_over_time(merge_histories(histories), since, gates),
                "workers": len(histories), "workers_missing": missing}

    @router.get("/v1/console/drift", dependencies=read, responses=errors(*KEYED),
                tags=["console"])
    def drift() -> dict[str, Any]:
        """Each monitored input signal: its reference and current counts, the distance,
        the detector's state; and the trainings the monitors triggered (the leader's)."""
        report = runtime.drift.report()
        trainings = [
            {"version": v.id, "trigger": v.trigger, "started": v.created,
             "status": v.status, "decision": v.decision}
            for v in runtime.stores.registry.list(limit=GATES_LISTED)
            if v.trigger is not None and v.trigger.startswith(MONITOR_TRIGGERS)]
        running = runtime.lifecycle.status.running
        return {"ready": report["ready"], "drifted": report["drifted"],
                "reasons": report["reasons"], "events_seen": report["events_seen"],
                "reference_events": report["reference_events"],
                "current_events": report["current_events"],
                "signals": drift_signals(report, runtime.drift.histograms()),
                "trainings": trainings,
                "running": None if running is None else {
                    "version": running.version_id, "trigger": running.trigger,
                    "started": running.started}}

    @router.get("/v1/users/{user_id:path}/explain", dependencies=read,
                responses=errors(*KEYED, *WITH_PATH_ID), tags=["console"])
    def explain(
        user_id: PathId,
        filters: Annotated[Filters, Depends(user_filters)],
        k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
        history: Annotated[int, Query(ge=0, le=1000)] = HISTORY_LENGTH,
    ) -> dict[str, Any]:
        """The user's recent events, and the recommendations the API answers now (same
        parameters), each with its score, source and the rankers' feature contributions."""
        user = checked_id(user_id)
        runtime.reflect_acknowledged()
        engine = runtime.engine
        events = runtime.stores.events.user_events(user, history)
        if (not events and engine.state.users.get(user) is None
                and runtime.stores.catalog.get_user(user) is None):
            raise ApiError(404, f"unknown user {user!r}: no events or attributes of theirs")
        items, why = engine.explain(user, k, filters)
        return {
            "user": user, "model_version": engine.model_version,
            "history": [{"item": e.item, "type": e.type, "timestamp": e.timestamp,
                         "value": e.value, "position": position} for position, e in events],
            "recommendations": [
                {"id": r.item, "score": r.score, "source": r.source, "ranker": x.ranker,
                 "contributions": x.contributions, "bias": x.bias,
                 "ranker_score": x.ranker_score}
                for r, x in zip(items, why, strict=True)]}

    @router.get("/v1/items/{item_id:path}/insight", dependencies=read,
                responses=errors(*KEYED, *WITH_PATH_ID), tags=["console"])
    def insight(
        item_id: PathId,
        k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
        bucket_s: Annotated[float, Query(ge=1.0, le=365 * 86400.0)] = 86400.0,
        buckets: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 30,
    ) -> dict[str, Any]:
        """The item's catalog record, its similar items (as ``/similar`` answers) and its
        events per ``bucket_s`` of event time over the last ``buckets`` (ending now, on
        the service's clock: the newest event's time)."""
        item = checked_id(item_id)
        runtime.reflect_acknowledged()
        engine = runtime.engine
        record = runtime.stores.catalog.get_item(item)
        if record is None and engine.state.items.get(item) is None:
            raise ApiError(404, f"unknown item {item!r}")
        similar = engine.similar(item, k, Filters(exclude_seen=False))
        end = bucket_start(engine.state.clock, bucket_s)
        first = end - (buckets - 1) * bucket_s
        counts = dict(runtime.stores.events.item_activity(item, bucket_s, first - 1e-9))
        times = [first + n * bucket_s for n in range(buckets)]
        return {"item": _catalog_record(record, item),
                "similar": [{"id": r.item, "score": r.score, "source": r.source}
                            for r in similar],
                "trend": {"bucket_s": bucket_s, "t": times,
                          "count": [counts.get(moment, 0) for moment in times]}}

    @router.get("/v1/quarantine", dependencies=admin, response_model=schemas.QuarantinePage,
                responses=errors(*KEYED, 422), tags=["admin"])
    def quarantine(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=MAX_INTEGER)] = 0,
                   q: Annotated[str | None, Query(max_length=1000, description=(
                       "Only records whose raw text or reason holds this (any case)"))] = None,
                   reason: Annotated[str | None, Query(max_length=1000, description=(
                       "Only records whose reason holds this (any case)"))] = None,
                   ) -> dict[str, Any]:
        """Rejected records, newest first, with the reason each was refused; searchable."""
        records, total = runtime.list_quarantine(limit, offset,
                                                 QuarantineFilter(q or None, reason or None))
        return {"total": total, "records": [
            {"id": r.id, "kind": r.kind, "raw": r.raw, "reason": r.reason,
             "created": r.created} for r in records]}

    @router.get("/v1/quarantine/reasons", dependencies=admin, responses=errors(*KEYED, 422),
                tags=["admin"])
    async def quarantine_reasons(
            bucket_s: Annotated[float, Query(ge=HISTORY_BUCKET_S, le=365 * 86400.0)] = 3600.0
    ) -> dict[str, Any]:
        """Rejected records counted by kind of reason, in total and per ``bucket_s`` of
        wall time (when they were quarantined)."""
        rows = await run_in_threadpool(runtime.stores.events.quarantine_reasons, bucket_s)
        return reasons_over_time(rows, bucket_s)

    if cluster is not None:
        internal = APIRouter(prefix="/internal", include_in_schema=False,
                             dependencies=[from_workers_only(cluster)])

        @internal.get("/console/quality")
        def worker_quality() -> dict[str, Any]:
            return runtime.quality.history()

        router.include_router(internal)
    return router


def _gate(version: ModelVersion) -> dict[str, Any]:
    """A version's offline gate: both sets of holdout numbers and what was decided."""
    gate = version.gate or {}
    return {"candidate": gate.get("candidate"), "champion": gate.get("champion"),
            "decision": version.decision, "promote": gate.get("promote"),
            "reason": gate.get("reason"), "status": version.status}


def _catalog_record(record: Item | None, item: str) -> dict[str, Any]:
    """The catalog's record of the item (only its id if it was never listed, only seen
    in events)."""
    return {"id": item} if record is None else msgspec.to_builtins(record)  # type: ignore[no-any-return]

