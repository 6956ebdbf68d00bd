"""Routes of A/B experiments and shadow models (see docs/experiments.md).

Starting and stopping go to the leader (``worker_http.LEADER_ROUTES``), which tells
every worker before it answers; reads answer from the shared store on any worker.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from freshrec.experiments.report import report
from freshrec.experiments.store import ArmSpec
from freshrec.service.auth import require
from freshrec.service.errors import ApiError
from freshrec.service.experiments import ExperimentError
from freshrec.service.openapi import WITH_BODY, WITH_PATH_ID, errors
from freshrec.service.runtime import Runtime

EXPERIMENT_ID = r"^[A-Za-z0-9_-]{1,64}$"
ExperimentId = Annotated[str, Path(pattern=EXPERIMENT_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Metric = Annotated[str, Field(description="ctr, hit_rate or purchases_per_user")]


class ArmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    model: Annotated[str, Field(min_length=1, max_length=200,
                                description="'champion' or a model version id")] = "champion"
    share: Annotated[float, Field(gt=0, le=1)] = 0.5
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Engine settings overrides, e.g. {\"sources\": [\"popularity\"]}")


class ExperimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    metric: Metric = "ctr"
    alpha: Annotated[float, Field(gt=0, le=0.5)] = 0.05
    arms: Annotated[list[ArmRequest], Field(min_length=2, max_length=4)]


class StopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    promote_winner: bool = False


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, Field(min_length=1, max_length=200)]
    sample: Annotated[float, Field(gt=0, le=1)] = 0.1
    name: Annotated[str | None, Field(max_length=200)] = None
    alpha: Annotated[float, Field(gt=0, le=0.5)] = 0.05


def experiments_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["experiments"])
    service = runtime.experiments
    store = runtime.stores.experiments
    read = [Depends(require("read"))]
    admin = [Depends(require("admin"))]

    async def call(function: Any, *args: Any) -> Any:
        try:
            return await run_in_threadpool(function, *args)
        except ExperimentError as error:
            raise ApiError(error.status, error.message) from None

    @router.post("/v1/experiments", dependencies=admin, responses=errors(*WITH_BODY, 409))
    async def start(body: ExperimentRequest) -> dict[str, Any]:
        """Start an A/B experiment: users split by a stable hash of their id, by share."""
        arms = [ArmSpec(a.name, a.model, a.share, a.settings) for a in body.arms]
        return await call(service.start, body.name, "ab", arms, body.metric, body.alpha)  # type: ignore[no-any-return]

    @router.get("/v1/experiments", dependencies=read)
    def list_experiments() -> dict[str, Any]:
        """Every experiment, newest first, with its arms' metrics and the test."""
        return {"experiments": [report(store, e) for e in store.find(kind="ab")]}

    @router.get("/v1/experiments/{experiment_id}", dependencies=read,
                responses=errors(*WITH_PATH_ID))
    async def show(experiment_id: ExperimentId) -> dict[str, Any]:
        """One experiment: per-arm metrics with confidence sequences, the sequential test."""
        experiment = await call(service.get, experiment_id, "ab")
        # Off the event loop: with the store in PostgreSQL these are round trips.
        return await run_in_threadpool(report, store, experiment)

    @router.post("/v1/experiments/{experiment_id}/stop", dependencies=admin,
                 responses=errors(*WITH_PATH_ID, *WITH_BODY, 409))
    async def stop(experiment_id: ExperimentId, body: StopRequest | None = None
                   ) -> dict[str, Any]:
        """Stop; with ``promote_winner`` the winning arm's model version becomes champion."""
        promote = body.promote_winner if body else False
        return await call(service.stop, experiment_id, "ab", promote)  # type: ignore[no-any-return]

    @router.get("/v1/shadow", dependencies=read)
    def shadows() -> dict[str, Any]:
        """Shadow models: each one's hit rate on its unshown lists beside the champion's."""
        return {"champion": runtime.engine.model_version,
                "shadows": [report(store, e) for e in store.find(kind="shadow")]}

    @router.post("/v1/shadow", dependencies=admin, responses=errors(*WITH_BODY, 409))
    async def start_shadow(body: ShadowRequest) -> dict[str, Any]:
        """A candidate also answers a sample of live requests, unseen, to be scored."""
        arms = [ArmSpec("champion", "champion", 1.0), ArmSpec(body.model, body.model, 1.0)]
        return await call(service.start, body.name or f"shadow {body.model}", "shadow",  # type: ignore[no-any-return]
                          arms, "hit_rate", body.alpha, body.sample)

    @router.post("/v1/shadow/{experiment_id}/stop", dependencies=admin,
                 responses=errors(*WITH_PATH_ID, 409))
    async def stop_shadow(experiment_id: ExperimentId) -> dict[str, Any]:
        return await call(service.stop, experiment_id, "shadow", False)  # type: ignore[no-any-return]

    return router
