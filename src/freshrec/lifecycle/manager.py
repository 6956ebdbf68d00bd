"""The lifecycle manager: one training at a time, the gate's verdict, promotion, rollback.

Trainings run in a child process (``spawn``, lower CPU priority); the service
process only registers the result and, when the gate says yes, swaps the new
engine in after replaying the events that arrived while it was being built.

An erasure (:meth:`ModelLifecycle.erasing`) ends the running training and revokes
every version registered so far: each may hold the erased user's data, so none
may ever serve again, and their artifacts are deleted.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from freshrec.catalog.base import CatalogStore
from freshrec.config import EngineConfig
from freshrec.engine import Engine
from freshrec.errors import FreshrecError
from freshrec.lifecycle.training import (
    CandidateJob,
    config_as_dict,
    engine_config,
    run_candidate_job,
    train_candidate,
)
from freshrec.log.base import EventLog
from freshrec.registry.datasets import DatasetVersion
from freshrec.registry.models import (
    ArtifactRef,
    ModelRegistry,
    ModelVersion,
    UnknownModelVersion,
    load_artifact,
    previous_champion,
)
from freshrec.registry.snapshots import SnapshotStore

log = logging.getLogger("freshrec")
MIN_COMPARABLE = 50
"""Fewest holdout events worth comparing a candidate and the champion on."""
KILL_WAIT_S = 30.0
"""How long an erasure waits for a killed training process to be reported gone."""


class LifecycleError(FreshrecError):
    """A lifecycle request that cannot be carried out (the message says why)."""


@dataclass
class LifecycleSettings:
    tolerance: float = 0.02
    holdout_fraction: float = 0.1
    min_holdout: int = 200
    max_holdout: int = 20_000
    max_holdout_requests: int = 3000
    niceness: int = 10
    keep_refused_artifacts: int = 3
    """Refused candidates whose artifacts are kept (an admin may still promote one);
    older ones lose theirs, so a run of refusals cannot fill the disk."""


@dataclass
class Training:
    version_id: str
    trigger: str
    params: dict[str, Any]
    started: float
    future: Future[dict[str, Any]]
    revoked: str | None = None
    """Set by an erasure: the result is discarded, whatever the gate would say."""


@dataclass
class LifecycleStatus:
    running: Training | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None


class ModelLifecycle:
    """Starts trainings, applies the gate's decisions, promotes and rolls back.

    ``install`` is the runtime's callback that swaps an engine in: it receives the
    restored engine and the log position its artifact reflects, and replays the
    log after it before the swap.
    """

    def __init__(self, registry: ModelRegistry, artifacts: SnapshotStore,
                 base_config: EngineConfig, install: Callable[[Engine, int, str], None],
                 settings: LifecycleSettings | None = None, *,
                 data_dir: Path | None = None, log: EventLog | None = None,
                 catalog: CatalogStore | None = None, database_url: str | None = None) -> None:
        """With ``data_dir`` trainings run in a child process over the embedded stores
        there (the log and the catalog in the database at ``database_url`` if given);
        otherwise in a thread over ``log`` and ``catalog``."""
        if data_dir is None and (log is None or catalog is None):
            raise ValueError("give data_dir, or log and catalog")
        self.data_dir = data_dir
        self.database_url = database_url
        self.log = log
        self.catalog = catalog
        self.registry = registry
        self.artifacts = artifacts
        self.base_config = base_config
        self.install = install
        self.settings = settings or LifecycleSettings()
        self.status = LifecycleStatus()
        self._executor: Executor | None = None
        self._concluding = threading.Lock()
        """One decision at a time: the worker and a caller waiting on a training may
        both find it finished, and an erasure must not overlap a start or a conclusion."""

    # -- training --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.status.running is not None

    def start(self, end_position: int, trigger: str,
              params: dict[str, Any] | None = None) -> str | None:
        """Start a training on the log up to ``end_position``; None if one is running."""
        with self._concluding:  # not while an erasure is under way: it could read the data
            return self._start(end_position, trigger, params)

    def _start(self, end_position: int, trigger: str,
               params: dict[str, Any] | None) -> str | None:
        if self.running:
            return None
        params = dict(params or {})
        engine_config(self.base_config, params)  # refuse bad parameters before starting
        if end_position < 2:
            raise LifecycleError("not enough events to train on yet")
        s = self.settings
        holdout = min(s.max_holdout, max(s.min_holdout, int(end_position * s.holdout_fraction)))
        holdout = min(holdout, end_position // 2)
        champion = self.registry.champion()
        champion_ref = champion.artifacts[0] if champion and champion.artifacts else None
        champion_position = _artifact_position(self.artifacts, champion_ref)
        if champion is not None and champion_position is not None:
            # The holdout must be news to the champion too, or the comparison is rigged.
            unseen = end_position - champion_position
            if unseen < MIN_COMPARABLE:
                raise LifecycleError(
                    f"only {unseen} events arrived after the champion {champion.id} was "
                    f"trained (its holdout must be new to it); need at least {MIN_COMPARABLE}")
            holdout = min(holdout, unseen)
        version_id = self.registry.next_id()
        job = CandidateJob(
            data_dir=str(self.data_dir or ""), database_url=self.database_url or "",
            version_id=version_id, end_position=end_position,
            holdout_events=holdout, params=params, base_config=config_as_dict(self.base_config),
            champion_artifact=msgspec.to_builtins(champion_ref) if champion_ref else None,
            champion_position=champion_position,
            tolerance=s.tolerance, max_holdout_requests=s.max_holdout_requests,
            niceness=s.niceness)
        if self.data_dir is not None:
            future = self._pool().submit(run_candidate_job, job)
        else:
            assert self.log is not None and self.catalog is not None  # checked in __init__
            future = self._pool().submit(train_candidate, job, self.log, self.catalog,
                                         self.artifacts)
        self.status.running = Training(version_id, trigger, params, time.time(), future)
        # Reserve the id now, so a second training cannot take it.
        self.registry.register(ModelVersion(
            id=version_id, created=time.time(), status="candidate", params=params,
            dataset=DatasetVersion(start_position=0, end_position=0, events=0,
                                   content_hash="", created=time.time()),
            notes=f"training ({trigger})", trigger=trigger))
        log.info("training %s started (%s)", version_id, trigger)
        return version_id

    def poll(self) -> dict[str, Any] | None:
        """Finish a completed training: register, then promote or refuse. None if none done."""
        with self._concluding:
            training = self.status.running
            if training is None or not training.future.done():
                return None
            try:
                return self._finish(training)
            finally:
                # Only now: until the decision (and a promotion's swap) is made, the
                # training is still under way for anyone watching /v1/monitoring.
                self.status.running = None

    def _finish(self, training: Training) -> dict[str, Any]:
        if training.revoked is not None:
            return self._discard(training)
        try:
            result = training.future.result()
        except Exception as error:  # a failed training must not take the service down
            log.exception("training %s failed", training.version_id)
            self.status.last_error = f"{type(error).__name__}: {error}"
            self.registry.update(training.version_id, status="refused", decision="failed",
                                 notes=f"training failed ({training.trigger}): {error}")
            outcome = {"version": training.version_id, "trigger": training.trigger,
                       "decision": "failed", "error": str(error)}
            self.status.history.append(outcome)
            return outcome
        return self._conclude(training, result)

    def wait(self, timeout: float = 600.0) -> dict[str, Any] | None:
        """Block until the running training ends and conclude it (tests and the CLI)."""
        training = self.status.running
        if training is None:
            return None
        training.future.exception(timeout=timeout)
        return self.poll()

    def _conclude(self, training: Training, result: dict[str, Any]) -> dict[str, Any]:
        gate = result["gate"]
        champion = self.registry.champion()
        version = self.registry.update(
            training.version_id,
            dataset=msgspec.convert(result["dataset"], DatasetVersion),
            metrics=result["metrics"], gate=gate,
            artifacts=[msgspec.convert(result["artifact"], ArtifactRef)],
            parent=champion.id if champion else None,
            notes=f"trained ({training.trigger}): {gate['reason']}")
        decision = "refused"
        if gate["promote"] and champion is not None and champion.pinned:
            decision = "kept (champion pinned)"
            self.registry.update(version.id, decision=decision, notes=version.notes +
                                 f"; not promoted: champion {champion.id} is pinned")
        elif gate["promote"]:
            self._activate(version, result["end_position"], force=False)
            decision = "promoted"
            self.registry.update(version.id, decision=decision)
        else:
            self.registry.update(version.id, status="refused", decision=decision)
            self._prune_refused()
        outcome = {"version": version.id, "trigger": training.trigger, "decision": decision,
                   "reason": gate["reason"], "candidate": gate["candidate"],
                   "champion": gate["champion"], "finished": time.time()}
        self.status.history.append(outcome)
        log.info("training %s: %s (%s)", version.id, decision, gate["reason"])
        return outcome

    def _prune_refused(self) -> None:
        refused = self.registry.list(limit=1_000_000, status="refused")
        for version in refused[self.settings.keep_refused_artifacts:]:
            if not version.artifacts:
                continue
            for ref in version.artifacts:
                self.artifacts.delete(ref.snapshot_id)
            self.registry.update(version.id, artifacts=[],
                                 notes=f"{version.notes}; artifact deleted (older refusal)")

    def abandon_unfinished(self) -> int:
        """Refuse the candidates whose training ended with the process that ran it (a
        crash, or a worker that led the lifecycle and died): none will ever conclude.
        Called when this process takes the lifecycle over, with no training of its own."""
        abandoned = 0
        for version in self.registry.list(limit=1_000_000, status="candidate"):
            if self.status.running is not None and version.id == self.status.running.version_id:
                continue
            if version.gate is None and not version.artifacts:
                self.registry.update(version.id, status="refused",
                                     notes=f"{version.notes}; abandoned: the process "
                                           "training it ended before it finished")
                abandoned += 1
        return abandoned

    # -- erasure ---------------------------------------------------------------------
    @contextmanager
    def erasing(self, reason: str) -> Iterator[None]:
        """Around the deletion of a user's data: nothing trained before it serves again.

        On entry the running training, which may have read the data, is killed (a
        thread, which cannot be, has its result discarded), and every version
        registered so far is revoked with ``reason`` and loses its artifacts. Until
        exit no training starts or concludes, so none can read the data before it is
        deleted, nor promote a model that saw it.
        """
        with self._concluding:
            self._revoke_running(reason)
            self.revoke(reason)
            yield

    def revoke(self, reason: str) -> int:
        """Revoke every version not yet revoked and delete its artifacts; how many files."""
        removed = 0
        for version in self.registry.list(limit=1_000_000):
            if version.revoked is None:
                # Revoked before its files go: a worker taking up the champion meanwhile
                # sees it revoked, not a champion whose artifact has vanished.
                version = self.registry.update(
                    version.id, revoked=reason, pinned=False,
                    notes=f"{version.notes}; revoked, artifact deleted: {reason}")
            if not version.artifacts:
                continue
            # Also for a version revoked by an erasure that crashed before this step.
            for ref in version.artifacts:
                removed += self.artifacts.delete(ref.snapshot_id)
            self.registry.update(version.id, artifacts=[])
        return removed

    def _revoke_running(self, reason: str) -> None:
        training = self.status.running
        if training is None:
            return
        training.revoked = reason
        if isinstance(self._executor, ProcessPoolExecutor):
            # No public way to stop a running task before Python 3.14's kill_workers();
            # the pool is broken afterwards, and the next training starts a new one.
            for process in list((self._executor._processes or {}).values()):
                process.kill()
            try:
                training.future.exception(timeout=KILL_WAIT_S)
            except FutureTimeout:
                log.warning("training %s did not end after a kill", training.version_id)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if training.future.done():
            try:
                self._discard(training)
            finally:
                self.status.running = None

    def _discard(self, training: Training) -> dict[str, Any]:
        """Conclude a revoked training: delete whatever it saved, never promote it."""
        for info in self.artifacts.list(training.version_id):
            self.artifacts.delete(info.id)
        self.artifacts.remove_leftovers()  # a process killed mid-save leaves a temp file
        self.registry.update(training.version_id, status="refused", artifacts=[],
                             revoked=training.revoked, decision="cancelled",
                             notes=f"training cancelled ({training.trigger}): "
                                   f"{training.revoked}")
        outcome = {"version": training.version_id, "trigger": training.trigger,
                   "decision": "cancelled", "reason": training.revoked,
                   "finished": time.time()}
        self.status.history.append(outcome)
        log.info("training %s cancelled: %s", training.version_id, training.revoked)
        return outcome

    # -- by hand ---------------------------------------------------------------------
    def promote(self, version_id: str) -> ModelVersion:
        """Make ``version_id`` the champion now (an admin's decision overrides a pin)."""
        version = self.registry.get(version_id)
        if version is None:
            raise UnknownModelVersion(version_id)
        check_usable(version)
        if not version.artifacts:
            raise LifecycleError(f"{version_id} has no artifact (still training, or failed)")
        position = _artifact_position(self.artifacts, version.artifacts[0]) or 0
        self._activate(version, position, force=True)
        return self.registry.get(version_id)  # type: ignore[return-value]

    def rollback(self) -> ModelVersion:
        """Return to the champion before the current one."""
        previous = previous_champion(self.registry)
        if previous is None:
            raise LifecycleError("no earlier champion to roll back to")
        return self.promote(previous.id)

    def pin(self, version_id: str, pinned: bool) -> ModelVersion:
        # Not in the middle of a conclusion: between its look at the champion's pin and
        # the promotion, a pin would leave the new model serving and the old one champion.
        with self._concluding:
            return self._pin(version_id, pinned)

    def _pin(self, version_id: str, pinned: bool) -> ModelVersion:
        version = self.registry.get(version_id)
        if version is None:
            raise UnknownModelVersion(version_id)
        if pinned:
            check_usable(version)
        return self.registry.update(version_id, pinned=pinned)

    def adopt(self, engine: Engine, position: int, dataset: DatasetVersion,
              reason: str) -> ModelVersion:
        """Register an engine built outside a training (the erasure rebuild) as champion."""
        version_id = self.registry.next_id()
        engine.state.model_version = version_id
        info = self.artifacts.save(version_id, engine.snapshot(), {"log_position": position})
        self.registry.register(ModelVersion(
            id=version_id, created=time.time(), dataset=dataset,
            artifacts=[ArtifactRef.of(info, name="engine")], notes=reason,
            gate={"promote": True, "reason": reason}, trigger=reason, decision="adopted"))
        self.registry.set_champion(version_id, force=True)
        return self.registry.get(version_id)  # type: ignore[return-value]

    def _activate(self, version: ModelVersion, position: int, *, force: bool) -> None:
        check_usable(version)
        # Load and verify before touching anything: a corrupt artifact changes nothing.
        engine, _ = self.load(version)
        self.install(engine, position, version.id)
        self.registry.set_champion(version.id, force=force)

    def load(self, version: ModelVersion) -> tuple[Engine, int]:
        """``version``'s engine from its artifact (checked), and the log position it reflects."""
        engine = Engine.restore(load_artifact(self.artifacts, version.artifacts[0]))
        engine.state.model_version = version.id
        return engine, _artifact_position(self.artifacts, version.artifacts[0]) or 0

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _pool(self) -> Executor:
        if self._executor is None:
            self._executor = (ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=exit_with_parent, initargs=(os.getpid(),))
                if self.data_dir is not None else ThreadPoolExecutor(max_workers=1))
        return self._executor


def check_usable(version: ModelVersion) -> None:
    """Refuse (:class:`LifecycleError`, a 409) to make a revoked version serve."""
    if version.revoked is not None:
        raise LifecycleError(f"model version {version.id} can never serve again (no promotion, "
                             f"roll back or restore): {version.revoked}")


def exit_with_parent(parent: int, interval_s: float = 1.0) -> None:
    """In a training process: end when the service that started it is gone.

    A service killed (``kill -9``, OOM) cannot shut its pool down, and the training
    process would go on, or sit idle, for ever, holding memory and a core.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(0)

    threading.Thread(target=watch, name="freshrec-exit-with-parent", daemon=True).start()


def _artifact_position(artifacts: SnapshotStore, ref: ArtifactRef | None) -> int | None:
    if ref is None:
        return None
    for info in artifacts.list():
        if info.id == ref.snapshot_id:
            return int(info.log_position or 0)
    return None
