"""Admin routes for the model lifecycle: versions, training, promotion, rollback, monitoring."""

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from freshrec.errors import CorruptSnapshot
from freshrec.lifecycle.manager import LifecycleError
from freshrec.registry.models import (
    VERSION_ID_PATTERN,
    ChampionPinned,
    ModelStatus,
    ModelVersion,
    UnknownModelVersion,
)
from freshrec.service.errors import ApiError
from freshrec.service.openapi import WITH_BODY, WITH_PATH_ID, errors
from freshrec.service.runtime import Runtime

Version = Annotated[str, Path(json_schema_extra={"pattern": VERSION_ID_PATTERN.pattern})]


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Engine settings to override for this candidate, e.g. {\"factors\": 32}")


def admin_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["admin"])
    registry = runtime.stores.registry
    lifecycle = runtime.lifecycle

    @router.get("/v1/models", responses=errors(422))
    def list_models(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    status: ModelStatus | None = None) -> dict[str, Any]:
        """Model versions, newest first, with lineage to the data they were trained on."""
        return {"models": [_public(v) for v in registry.list(limit=limit, status=status)],
                "serving": runtime.engine.model_version}

    @router.get("/v1/models/{version}", responses=errors(*WITH_PATH_ID))
    def show_model(version: Version) -> dict[str, Any]:
        """One version: parameters, code, dataset, metrics, the gate's numbers, artifacts."""
        return _public(_get(runtime, version))

    @router.post("/v1/models/train", status_code=202, responses=errors(*WITH_BODY, 409))
    async def train(body: TrainRequest | None = None) -> dict[str, Any]:
        """Train a candidate in the background; the gate decides if it replaces the champion."""
        params = body.params if body else {}
        try:
            version = await run_in_threadpool(runtime.retrain, True, "manual", params)
        except (ValueError, LifecycleError) as error:
            raise ApiError(422, str(error)) from None
        if version is None:
            raise ApiError(409, "a training is already running; see GET /v1/monitoring")
        return {"version": version, "status": "training"}

    @router.post("/v1/models/{version}/promote", responses=errors(*WITH_PATH_ID, 409))
    async def promote(version: Version) -> dict[str, Any]:
        """Make this version the champion now (overrides the gate and any pin)."""
        return _public(await _lifecycle_call(runtime.promote, version))

    @router.post("/v1/models/rollback", responses=errors(409))
    async def rollback() -> dict[str, Any]:
        """Go back to the previous champion; takes effect for the next request."""
        return _public(await _lifecycle_call(runtime.rollback))

    @router.post("/v1/models/{version}/pin", responses=errors(*WITH_PATH_ID, 409))
    def pin(version: Version) -> dict[str, Any]:
        """Pin a version: while it is champion, automatic trainings cannot replace it."""
        return _public(_call(lifecycle.pin, version, True))

    @router.post("/v1/models/{version}/unpin", responses=errors(*WITH_PATH_ID, 409))
    def unpin(version: Version) -> dict[str, Any]:
        return _public(_call(lifecycle.pin, version, False))

    @router.get("/v1/monitoring")
    def monitoring() -> dict[str, Any]:
        """Online quality, input drift against the reference window, and training status."""
        return runtime.monitoring()

    return router


def _public(version: ModelVersion) -> dict[str, Any]:
    """The version as JSON, its dataset named by id (``ds-<end>-<hash>``) as well."""
    public: dict[str, Any] = msgspec.to_builtins(version)
    public["dataset"]["id"] = version.dataset.id
    return public


def _get(runtime: Runtime, version: str) -> ModelVersion:
    found = runtime.stores.registry.get(version)
    if found is None:
        raise ApiError(404, f"unknown model version {version!r}")
    return found


def _call(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except UnknownModelVersion as error:
        raise ApiError(404, str(error)) from None
    except (LifecycleError, ChampionPinned) as error:
        raise ApiError(409, str(error)) from None
    except CorruptSnapshot as error:
        raise ApiError(409, f"refused: the artifact failed its integrity check ({error}); "
                            "the current model keeps serving") from None


async def _lifecycle_call(function: Any, *args: Any) -> Any:
    return await run_in_threadpool(_call, function, *args)
