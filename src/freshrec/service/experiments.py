"""The runtime's part of experiments: which arm answers, the engines arms need, shadows.

Every worker keeps the running experiments cached from the store (refreshed every
background round, and at once when the leader starts or stops one), routes each
request to its user's arm, and logs the list it served
(:class:`~freshrec.records.ServedList`). An arm that serves another model version than
the champion needs that version's engine beside the champion's: a *side engine*,
loaded from the version's artifact, caught up on the log, and then kept up to date by
the learner thread with the same events and catalog changes, in position order
(requests stay read-only). Side engines do not learn from impressions: the champion's
rankers learn from the lists the champion showed, with its features; an arm's lists
are logged only as served lists. The leader alone counts outcomes from the log
(:class:`~freshrec.experiments.outcomes.OutcomeTracker`).

Shadow models are side engines too: a sample of the requests the champion answers is
handed to one background thread, which ranks them with the shadow and logs both
lists (the shadow's as not shown), so the request does not wait for the shadow.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from freshrec.engine import Engine
from freshrec.errors import CorruptSnapshot
from freshrec.experiments.assignment import arm_of, sampled
from freshrec.experiments.outcomes import LIST_RETENTION_S, OutcomeTracker
from freshrec.experiments.report import best_test, report
from freshrec.experiments.store import METRICS, ArmSpec, Experiment
from freshrec.lifecycle.manager import LifecycleError
from freshrec.log.base import LogRecord
from freshrec.records import Event, Item, ServedList
from freshrec.serving.results import Filters, Recommendation
from freshrec.serving.sources import DEFAULT_CHAIN, Source

if TYPE_CHECKING:
    from freshrec.service.runtime import Runtime

log = logging.getLogger("freshrec")
SOURCES: dict[str, type] = {source().name: source for source in DEFAULT_CHAIN}
SETTINGS = ("sources",)
"""The engine settings an arm may override (per request, on the engine it serves from)."""
MAX_ARMS = 4
SHADOW_QUEUE = 1000
"""Shadow requests waiting at most; more are dropped (the shadow falls behind)."""
PRUNE_EVERY_S = 60.0


class ExperimentError(Exception):
    """A definition or an operation that cannot be done; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SideEngine:
    engine: Engine
    position: int


@dataclass(frozen=True, slots=True)
class Answer:
    items: list[Recommendation]
    model: str
    experiment: dict[str, str] | None = None


class ExperimentService:
    """See the module docstring; one per runtime (worker)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store = runtime.stores.experiments
        self.tracker = OutcomeTracker(self.store, runtime.stores.events)
        self._running: list[Experiment] = []
        self._side: dict[str, SideEngine] = {}
        self._loading = threading.Lock()
        # A start loads its versions before it stores the experiment: a round in between
        # would read the store without it and drop the engine just loaded.
        self._refreshing = threading.RLock()
        self._unloadable: set[str] = set()
        self._pruned = time.monotonic()
        self._shadow_queue: queue.Queue[
            tuple[Experiment, str, int, Filters, str, float] | None] = queue.Queue(SHADOW_QUEUE)
        self._shadow_thread: threading.Thread | None = None

    # -- serving ---------------------------------------------------------------------
    def answer(self, user: str, k: int, filters: Filters, request_id: str) -> Answer:
        """The user's recommendations from their arm (or the champion), logged for it."""
        runtime = self.runtime
        experiment = next((e for e in self._running if e.kind == "ab"), None)
        arm = None if experiment is None else self._arm(experiment, user)
        engine = None if arm is None else self._engine_for(arm.model)
        if experiment is None or arm is None or engine is None:
            items = runtime.recommend(user, k, filters, request_id)
            self._shadow(user, k, filters, request_id, items)
            return Answer(items, runtime.engine.model_version)
        if engine is runtime.engine and not arm.settings:
            items = runtime.recommend(user, k, filters, request_id)
        else:
            # Not the champion's list: logged as served only, so the champion's rankers
            # do not learn from another model's lists and features.
            items, _ = engine.rank(user, k, filters, chain=chain_for(arm.settings))
        runtime.impressions.submit(ServedList(
            request_id=request_id, user=user, timestamp=runtime.engine.state.clock,
            items=tuple(r.item for r in items), experiment=experiment.id, arm=arm.name,
            model=engine.model_version))
        return Answer(items, engine.model_version, {"id": experiment.id, "arm": arm.name})

    def _arm(self, experiment: Experiment, user: str) -> ArmSpec:
        name = arm_of(experiment.id, user, [(a.name, a.share) for a in experiment.arms])
        return next(a for a in experiment.arms if a.name == name)

    def _engine_for(self, model: str) -> Engine | None:
        """The engine of ``model`` here, or None while it is not loaded (the request is
        then answered by the champion and not counted in the experiment)."""
        engine = self.runtime.engine
        if model in ("champion", engine.model_version):
            return engine
        side = self._side.get(model)
        return None if side is None else side.engine

    def _shadow(self, user: str, k: int, filters: Filters, request_id: str,
                items: Sequence[Recommendation]) -> None:
        """Log the champion's list for each shadow sampling this request, now (before the
        user's next event, which an ingest logs after it), and queue the shadow's."""
        runtime = self.runtime
        shown = tuple(r.item for r in items)
        clock = runtime.engine.state.clock
        for shadow in self._running:
            if shadow.kind != "shadow" or not sampled(shadow.id, request_id, shadow.sample):
                continue
            if self._engine_for(shadow.arms[1].model) is None:
                continue  # not loaded here yet: neither list is logged
            try:
                # A shadow that is behind skips requests rather than delay any.
                self._shadow_queue.put_nowait((shadow, user, k, filters, request_id, clock))
            except queue.Full:
                continue
            runtime.impressions.submit(ServedList(
                request_id=request_id, user=user, timestamp=clock,
                items=shown, experiment=shadow.id, arm=shadow.arms[0].name,
                model=runtime.engine.model_version))

    def _run_shadows(self) -> None:
        while (job := self._shadow_queue.get()) is not None:
            try:
                self._shadow_one(*job)
            except Exception:  # a shadow must never take anything down
                log.exception("shadow %s failed on a request", job[0].id)

    def _shadow_one(self, shadow: Experiment, user: str, k: int, filters: Filters,
                    request_id: str, clock: float) -> None:
        """The shadow's list of a request; it may reach the log after the user's next
        event: it is then scored against the event that settled the champion's list."""
        candidate = shadow.arms[1]
        engine = self._engine_for(candidate.model)
        if engine is None:  # dropped since (the shadow stopped)
            return
        items, _ = engine.rank(user, k, filters)
        self.runtime.impressions.submit(ServedList(
            request_id=request_id, user=user, timestamp=clock,
            items=tuple(r.item for r in items), experiment=shadow.id, arm=candidate.name,
            model=engine.model_version, shown=False))

    # -- the learner's side ------------------------------------------------------------
    def learn(self, records: Sequence[tuple[int, LogRecord]]) -> None:
        """Apply the learner's records to every side engine (in the learner's thread)."""
        for side in list(self._side.values()):
            if records[0][0] > side.position + 1:
                self._catch_up(side, records[0][0] - 1)
            side.engine.apply_many(_taught([r for at, r in records if at > side.position]))
            side.position = max(side.position, records[-1][0])

    def _catch_up(self, side: SideEngine, until: int) -> None:
        events = self.runtime.stores.events
        while side.position < until and (page := events.read_records(
                after=side.position, limit=4096)):
            page = [(at, record) for at, record in page if at <= until]
            if not page:
                break
            side.engine.apply_many(_taught([record for _, record in page]))
            side.position = page[-1][0]

    def forget_user(self, user: str) -> None:
        for side in list(self._side.values()):
            side.engine.forget_user(user)

    # -- background ------------------------------------------------------------------
    def step(self) -> None:
        """Every worker: refresh the definitions and the side engines. The leader also
        counts outcomes from the log and stops experiments whose versions were revoked."""
        self.refresh()
        if not self.runtime.leads:
            return
        self._stop_revoked()
        self.tracker.update()
        now = time.monotonic()
        if now - self._pruned >= PRUNE_EVERY_S:
            self._pruned = now
            self.store.prune_lists(self.runtime.engine.state.clock - LIST_RETENTION_S)

    def refresh(self) -> None:
        """Take up the store's running experiments and load or drop side engines."""
        with self._refreshing:
            self._refresh()

    def _refresh(self) -> None:
        running = self.store.find(status="running")
        wanted = {arm.model for experiment in running for arm in experiment.arms
                  if arm.model != "champion"}
        for version in sorted(wanted - set(self._side) - self._unloadable):
            if version != self.runtime.engine.model_version:
                self._load(version)
        for version in set(self._side) - wanted:
            del self._side[version]
        self._running = running
        if any(e.kind == "shadow" for e in running) and self._shadow_thread is None:
            self._shadow_thread = threading.Thread(target=self._run_shadows,
                                                   name="freshrec-shadow", daemon=True)
            self._shadow_thread.start()

    def _load(self, version_id: str) -> None:
        runtime = self.runtime
        version = runtime.stores.registry.get(version_id)
        if version is None or version.revoked is not None or not version.artifacts:
            self._unloadable.add(version_id)
            return
        with self._loading:
            if version_id in self._side:  # loaded meanwhile (a start and a round at once)
                return
            try:
                engine, position = runtime.lifecycle.load(version)
            except (CorruptSnapshot, TypeError, ValueError, EOFError, OSError) as error:
                log.error("model %s cannot be loaded for an experiment (%s)", version_id, error)
                self._unloadable.add(version_id)
                return
            side = SideEngine(engine, position)
            self._catch_up(side, runtime.applied_position)
            with runtime.gate.exclusive():  # the learner is between batches
                self._catch_up(side, runtime.applied_position)
                self._side[version_id] = side
        log.info("model %s loaded beside the champion for an experiment", version_id)

    def _stop_revoked(self) -> None:
        """An erasure revokes every version: its arms can never serve again."""
        registry = self.runtime.stores.registry
        for experiment in self._running:
            for arm in experiment.arms:
                version = None if arm.model == "champion" else registry.get(arm.model)
                if version is not None and version.revoked is not None:
                    log.info("experiment %s stopped: %s was revoked", experiment.id, arm.model)
                    self.store.stop(experiment.id, time.time(), None)
                    break

    def close(self) -> None:
        if self._shadow_thread is not None:
            self._shadow_queue.put(None)
            self._shadow_thread.join(timeout=10)

    # -- operations (on the leader) ----------------------------------------------------
    def start(self, name: str, kind: str, arms: Sequence[ArmSpec], metric: str, alpha: float,
              sample: float = 1.0) -> dict[str, Any]:
        """Check and store a new experiment, load its engines everywhere, report it."""
        with self._refreshing:
            self._check(kind, arms, metric, alpha, sample)
            prefix = "exp" if kind == "ab" else "shadow"
            experiment = Experiment(
                id=f"{prefix}-{uuid.uuid4().hex[:10]}", name=name, kind=kind,
                status="running", started=time.time(), arms=tuple(arms), metric=metric,
                alpha=alpha, sample=sample,
                start_position=self.runtime.stores.events.last_position())
            self.store.create(experiment)
            self.refresh()
        self._tell_peers()
        return report(self.store, experiment)

    def stop(self, experiment_id: str, kind: str, promote_winner: bool) -> dict[str, Any]:
        """Count what the log holds, stop, and promote the winner if asked and there is one."""
        experiment = self.get(experiment_id, kind)
        if experiment.status != "running":
            raise ExperimentError(409, f"experiment {experiment_id} is already stopped")
        self.tracker.update()
        test = best_test(self.store, experiment)
        winner = test["winner"]
        self.store.stop(experiment_id, time.time(), winner)
        promoted = None
        note = None
        if promote_winner:
            promoted, note = self._promote(experiment, winner)
        self._changed()
        stopped = self.store.get(experiment_id)
        assert stopped is not None
        return {**report(self.store, stopped), "promoted": promoted,
                **({"note": note} if note else {})}

    def _promote(self, experiment: Experiment, winner: str | None) -> tuple[str | None, str]:
        if winner is None:
            return None, "no arm won: nothing promoted"
        arm = next(a for a in experiment.arms if a.name == winner)
        if arm.settings:
            return None, (f"the winner {winner} overrides engine settings, which a "
                          "promotion cannot carry: nothing promoted")
        if arm.model in ("champion", self.runtime.engine.model_version):
            return None, f"the winner {winner} is the champion already"
        try:
            self.runtime.promote(arm.model)
        except LifecycleError as error:
            return None, f"{arm.model} was not promoted: {error}"
        return arm.model, f"{arm.model} ({winner}) promoted"

    def get(self, experiment_id: str, kind: str) -> Experiment:
        experiment = self.store.get(experiment_id)
        if experiment is None or experiment.kind != kind:
            what = "experiment" if kind == "ab" else "shadow model"
            raise ExperimentError(404, f"no {what} {experiment_id}")
        return experiment

    def _changed(self) -> None:
        """Every worker takes up the change before the answer (as with a champion)."""
        self.refresh()
        self._tell_peers()

    def _tell_peers(self) -> None:
        if self.runtime.cluster is not None:
            self.runtime.cluster.tell_peers("POST", "/internal/experiments")

    def _check(self, kind: str, arms: Sequence[ArmSpec], metric: str, alpha: float,
               sample: float) -> None:
        if not 2 <= len(arms) <= MAX_ARMS:
            raise ExperimentError(422, f"an experiment has 2 to {MAX_ARMS} arms")
        names = [arm.name for arm in arms]
        if len(set(names)) != len(names):
            raise ExperimentError(422, "arm names must differ")
        if metric not in METRICS:
            raise ExperimentError(422, f"metric must be one of {', '.join(METRICS)}")
        if not 0 < alpha <= 0.5:
            raise ExperimentError(422, "alpha must be in (0, 0.5]")
        if not 0 < sample <= 1:
            raise ExperimentError(422, "sample must be in (0, 1]")
        for arm in arms:
            unknown = set(arm.settings) - set(SETTINGS)
            if unknown:
                raise ExperimentError(422, f"arm {arm.name}: unknown setting(s) "
                                           f"{', '.join(sorted(unknown))} (known: "
                                           f"{', '.join(SETTINGS)})")
            chain_for(arm.settings, arm.name)
            if arm.model != "champion":
                self._check_version(arm)
        if kind == "ab" and any(e.kind == "ab" for e in self.store.find(status="running")):
            raise ExperimentError(409, "an experiment is already running: stop it first "
                                       "(one at a time, so each user is in one arm)")
        for arm in arms:
            self._load_or_fail(arm)

    def _check_version(self, arm: ArmSpec) -> None:
        version = self.runtime.stores.registry.get(arm.model)
        if version is None:
            raise ExperimentError(422, f"arm {arm.name}: no model version {arm.model}")
        if version.revoked is not None:
            raise ExperimentError(409, f"arm {arm.name}: {arm.model} can never serve again: "
                                       f"{version.revoked}")
        if not version.artifacts:
            raise ExperimentError(409, f"arm {arm.name}: {arm.model} has no artifact "
                                       "(still training, or failed)")

    def _load_or_fail(self, arm: ArmSpec) -> None:
        if arm.model == "champion" or arm.model == self.runtime.engine.model_version:
            return
        self._unloadable.discard(arm.model)
        if arm.model not in self._side:
            self._load(arm.model)
        if arm.model not in self._side:
            raise ExperimentError(409, f"arm {arm.name}: {arm.model} cannot be loaded")


def chain_for(settings: dict[str, Any], arm: str = "") -> list[Source] | None:
    """The sources an arm's ``settings`` ask for (None: the engine's own chain)."""
    wanted = settings.get("sources")
    if wanted is None:
        return None
    if (not isinstance(wanted, list) or not wanted
            or not all(isinstance(name, str) and name in SOURCES for name in wanted)):
        raise ExperimentError(422, f"arm {arm}: sources must be a non-empty list of "
                                   f"{', '.join(SOURCES)}")
    return [SOURCES[name]() for name in wanted]


def _taught(records: Sequence[LogRecord]) -> list[Event | Item]:
    """What a side engine learns: events and catalog changes (see the module docstring)."""
    return [record for record in records if isinstance(record, Event | Item)]
