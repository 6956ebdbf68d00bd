"""A training job: build a candidate from the log, score it and the champion, save it.

With embedded stores it runs in a separate process at lower CPU priority
(:func:`run_candidate_job`), so a training never takes the interpreter lock or the
core that serving needs; with in-memory stores it runs in a thread
(:func:`train_candidate`). Either way it only reads the stores and writes one
artifact; the service registers the result and swaps models.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import msgspec

from freshrec.catalog.base import CatalogStore
from freshrec.catalog.sqlite import SQLiteCatalogStore
from freshrec.config import EngineConfig
from freshrec.engine import Engine
from freshrec.lifecycle.gate import decide
from freshrec.lifecycle.holdout import holdout_metrics
from freshrec.log.base import EventLog
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.registry.datasets import dataset_version
from freshrec.registry.models import ArtifactRef, load_artifact
from freshrec.registry.snapshots import LocalSnapshotStore, SnapshotStore

TUNABLE = frozenset(f.name for f in fields(EngineConfig)) - {"weights"}


def engine_config(base: EngineConfig, params: dict[str, Any]) -> EngineConfig:
    """``base`` with ``params`` applied; unknown names or wrong types are a clear error.

    >>> engine_config(EngineConfig(), {"factors": 8}).factors
    8
    """
    unknown = sorted(set(params) - TUNABLE)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(TUNABLE))}")
    values = {**{f.name: getattr(base, f.name) for f in fields(base)}, **params}
    for name, value in params.items():
        expected = type(getattr(base, name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
        elif expected is tuple and isinstance(value, list):  # JSON has no tuples
            values[name] = tuple(float(v) for v in value)
        elif getattr(base, name) is not None and not isinstance(value, expected):
            raise ValueError(f"parameter {name} must be {expected.__name__}, "
                             f"got {type(value).__name__}")
    return EngineConfig(**values)


@dataclass(frozen=True)
class CandidateJob:
    data_dir: str
    version_id: str
    end_position: int
    holdout_events: int
    params: dict[str, Any] = field(default_factory=dict)
    base_config: dict[str, Any] = field(default_factory=dict)
    champion_artifact: dict[str, Any] | None = None
    champion_position: int | None = None
    tolerance: float = 0.02
    max_holdout_requests: int = 3000
    niceness: int = 10
    database_url: str = ""
    """Where the log, the catalog and the artifacts are, if not in ``data_dir`` (scaled
    stores)."""


def run_candidate_job(job: CandidateJob) -> dict[str, Any]:
    """The child-process entry point: open the stores (the embedded ones read-only) and
    train."""
    if job.niceness:
        os.nice(job.niceness)
    root = Path(job.data_dir)
    log: EventLog
    catalog: CatalogStore
    artifacts: SnapshotStore
    if job.database_url:
        from freshrec.catalog.postgres import PostgresCatalogStore
        from freshrec.log.postgres import PostgresEventLog
        from freshrec.registry.postgres_snapshots import MODEL_ARTIFACTS, PostgresSnapshotStore

        log = PostgresEventLog(job.database_url)
        catalog = PostgresCatalogStore(job.database_url)
        artifacts = PostgresSnapshotStore(job.database_url, namespace=MODEL_ARTIFACTS)
    else:
        log = SQLiteEventLog(root / "events.sqlite")
        catalog = SQLiteCatalogStore(root / "catalog.sqlite")
        artifacts = LocalSnapshotStore(root / "models")
    try:
        return train_candidate(job, log, catalog, artifacts)
    finally:
        log.close()
        catalog.close()
        artifacts.close()


def train_candidate(job: CandidateJob, log: EventLog, catalog: CatalogStore,
                    artifacts: SnapshotStore) -> dict[str, Any]:
    """Train, evaluate against the champion, save the artifact; return what to register."""
    started = time.time()
    events = [(at, event) for at, event in log.iterate(after=0) if at <= job.end_position]
    holdout = events[len(events) - job.holdout_events:] if job.holdout_events else []
    training = events[: len(events) - len(holdout)]
    cut = training[-1][0] if training else 0
    dataset = dataset_version(log, cut, catalog=catalog)
    items = list(catalog.iter_items())
    config = engine_config(EngineConfig(**job.base_config), job.params)
    candidate = Engine(config)
    candidate.fit([*items, *(event for _, event in training)])
    candidate.state.model_version = job.version_id
    # The artifact is the model as trained, before it learns the holdout: a later gate
    # must be able to compare it on events it has never seen.
    payload = candidate.snapshot()
    trained_at = time.time()

    champion = None
    if job.champion_artifact is not None:
        champion = Engine.restore(load_artifact(artifacts, ArtifactRef(**job.champion_artifact)))
        for at, event in training:
            if at > (job.champion_position or 0):
                champion.learn_one(event)
    holdout_events = [event for _, event in holdout]
    candidate_metrics = holdout_metrics(candidate, holdout_events,
                                        max_requests=job.max_holdout_requests)
    champion_metrics = (holdout_metrics(champion, holdout_events,
                                        max_requests=job.max_holdout_requests)
                        if champion is not None else None)
    description = {"first_position": holdout[0][0] if holdout else None,
                   "last_position": holdout[-1][0] if holdout else None,
                   "events": len(holdout),
                   "first_timestamp": holdout[0][1].timestamp if holdout else None,
                   "last_timestamp": holdout[-1][1].timestamp if holdout else None}
    decision = decide(candidate_metrics, champion_metrics, tolerance=job.tolerance,
                      holdout=description)
    info = artifacts.save(job.version_id, payload, {"log_position": cut})
    return {
        "version_id": job.version_id,
        "dataset": msgspec.to_builtins(dataset),
        "params": job.params,
        "metrics": {**{f"holdout_{k}": v for k, v in candidate_metrics.items()},
                    "train_events": float(len(training)),
                    "train_seconds": trained_at - started,
                    "sequence_items": float(candidate.state.sequence.size),
                    "sequence_seconds": candidate.retrainer.sequence_seconds or 0.0,
                    "total_seconds": time.time() - started},
        "gate": decision.as_dict(),
        "artifact": asdict_ref(ArtifactRef.of(info, name="engine")),
        "end_position": cut,
    }


def asdict_ref(ref: ArtifactRef) -> dict[str, Any]:
    return msgspec.to_builtins(ref)  # type: ignore[no-any-return]


def config_as_dict(config: EngineConfig) -> dict[str, Any]:
    """The config as plain values for a job (the event weights stay at their defaults)."""
    values = asdict(config)
    values.pop("weights", None)
    return values
