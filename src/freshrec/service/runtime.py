"""The running service's state: stores, the engine, and the background worker.

Everything the HTTP layer does goes through one method here, and the CLI calls
the same methods, so both behave alike.

Recovery: on start the engine is restored from the newest snapshot whose hash
checks out, the catalog is re-applied, and every logged event after the
snapshot's log position is replayed. Because an ingest request answers only
after its events are committed to the log, a crash at any moment loses nothing
that was acknowledged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from freshrec.catalog.base import CatalogStore
from freshrec.catalog.sqlite import SQLiteCatalogStore
from freshrec.config import EngineConfig
from freshrec.engine import Engine
from freshrec.errors import CorruptSnapshot, StoreUnavailable
from freshrec.experiments.store import ExperimentStore, SQLiteExperimentStore
from freshrec.learner.log_follower import LogFollower
from freshrec.lifecycle.manager import LifecycleError, LifecycleSettings, ModelLifecycle
from freshrec.log.background import BackgroundAppender
from freshrec.log.base import (
    ANY_RECORD,
    AppendResult,
    EventLog,
    LogRecord,
    QuarantinedRecord,
    QuarantineFilter,
    learned,
)
from freshrec.log.group_commit import GroupCommitLog
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.monitoring.drift import InputDriftMonitor
from freshrec.monitoring.prometheus import register_monitoring_gauges
from freshrec.monitoring.quality import OnlineQualityMonitor
from freshrec.records import Event, Item, User
from freshrec.registry.datasets import dataset_version
from freshrec.registry.models import (
    MemoryModelRegistry,
    ModelRegistry,
    ModelVersion,
    SQLiteModelRegistry,
    load_artifact,
)
from freshrec.registry.snapshots import LocalSnapshotStore, MemorySnapshotStore, SnapshotStore
from freshrec.security.key_mirror import KeyMirror
from freshrec.security.keys import KeyStore, SQLiteKeyStore
from freshrec.service.cluster import Cluster
from freshrec.service.experiments import ExperimentService
from freshrec.service.gate import Gate
from freshrec.service.live import LiveCounters
from freshrec.service.metrics import ServiceMetrics
from freshrec.service.settings import Settings
from freshrec.serving.heap import freeze_loaded_model, unfreeze
from freshrec.serving.results import Filters, Recommendation

log = logging.getLogger("freshrec")
SNAPSHOT_NAME = "engine"
NEW_ITEM_AGE_S = 7 * 86400.0
"""An event on an item whose first event is younger than this counts as a new-item event."""
MAX_BACKOFF_DOUBLINGS = 3
"""A refused candidate doubles the wait for the next triggered training, at most this often."""
IMPRESSION_PRUNE_EVERY_S = 60.0
REPLAY_PAGE = 4096
"""Records read and applied at a time when an engine catches up on the log."""
SNAPSHOT_RETRY_S = 30.0
"""After a failed snapshot (a full disk), wait this long before the next try: each try
pauses ingest for the copy and writes a large file that fails again."""
TAKE_OVER_RETRY_S = 1.0
"""A worker given the lease while a store is down tries to take over this often."""
_Store = TypeVar("_Store")


@dataclass
class Stores:
    events: EventLog
    catalog: CatalogStore
    keys: KeyStore
    snapshots: SnapshotStore
    registry: ModelRegistry = field(default_factory=MemoryModelRegistry)
    artifacts: SnapshotStore = field(default_factory=MemorySnapshotStore)
    """Model versions and their artifact files."""
    data_dir: Path | None = None
    """Set for embedded stores, which a training process can open by path."""
    experiments: ExperimentStore = field(
        default_factory=lambda: SQLiteExperimentStore(":memory:"))
    """A/B experiments and shadow models, and their outcomes."""
    database_url: str | None = None
    """Set for scaled stores: where a training process opens the log, the catalog and
    the artifacts (it never reads the registry: its job names the champion's artifact)."""

    @classmethod
    def embedded(cls, data_dir: Path) -> Stores:
        """SQLite files and local snapshot files under ``data_dir``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            events=GroupCommitLog(SQLiteEventLog(data_dir / "events.sqlite")),
            catalog=SQLiteCatalogStore(data_dir / "catalog.sqlite"),
            keys=SQLiteKeyStore(data_dir / "keys.sqlite"),
            snapshots=LocalSnapshotStore(data_dir / "snapshots"),
            registry=SQLiteModelRegistry(data_dir / "registry.sqlite"),
            artifacts=LocalSnapshotStore(data_dir / "models"),
            data_dir=data_dir,
            experiments=SQLiteExperimentStore(data_dir / "experiments.sqlite"),
        )

    @classmethod
    def scaled(cls, data_dir: Path, database_url: str) -> Stores:
        """Every store (the event log, the catalog, the keys, the model registry, the
        experiments, the state's snapshots and the models' artifacts) in the PostgreSQL
        database at ``database_url``; ``data_dir`` keeps one machine's locks."""
        try:
            from freshrec.catalog.postgres import PostgresCatalogStore
            from freshrec.experiments.postgres import PostgresExperimentStore
            from freshrec.log.postgres import PostgresEventLog
            from freshrec.registry.postgres import PostgresModelRegistry
            from freshrec.registry.postgres_snapshots import (
                MODEL_ARTIFACTS,
                STATE_SNAPSHOTS,
                PostgresSnapshotStore,
            )
            from freshrec.security.postgres_keys import PostgresKeyStore
        except ImportError as error:  # psycopg is the optional "postgres" extra
            raise StoreUnavailable(f"a PostgreSQL database needs psycopg ({error}); "
                                   "pip install 'freshrec[postgres]'") from None
        opened: list[Any] = []  # to close again if a later one fails

        def open_(kind: Callable[[str], _Store]) -> _Store:
            store = kind(database_url)
            opened.append(store)
            return store

        try:  # the database first: a bad URL fails before any file is made
            events = open_(PostgresEventLog)
            catalog = open_(PostgresCatalogStore)
            # Checked from a copy: no database round trip on the event loop per request.
            keys = open_(lambda url: KeyMirror(PostgresKeyStore(url)))
            registry, experiments = open_(PostgresModelRegistry), open_(PostgresExperimentStore)
            # The state's snapshots and the models' artifacts too: a machine keeps nothing
            # a replica on another machine would need (the data directory holds locks).
            snapshots = open_(lambda url: PostgresSnapshotStore(url, namespace=STATE_SNAPSHOTS))
            artifacts = open_(lambda url: PostgresSnapshotStore(url, namespace=MODEL_ARTIFACTS))
        except BaseException:
            for store in opened:
                store.close()
            raise
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            events=GroupCommitLog(events),
            catalog=catalog,
            keys=keys,
            snapshots=snapshots,
            registry=registry,
            artifacts=artifacts,
            data_dir=data_dir,
            experiments=experiments,
            database_url=database_url,
        )

    def close(self) -> None:
        for store in (self.events, self.catalog, self.keys, self.registry, self.experiments,
                      self.snapshots, self.artifacts):
            store.close()


class Runtime:
    """Owns the stores and the engine; applies, recovers, snapshots and retrains."""

    def __init__(self, settings: Settings, stores: Stores,
                 engine_config: EngineConfig | None = None,
                 cluster: Cluster | None = None) -> None:
        """With ``cluster`` this is one of several serving workers (each a full replica):
        only the one holding the lifecycle's lease trains, snapshots and erases, and
        the others take up each champion it installs."""
        self.settings = settings
        self.stores = stores
        self.cluster = cluster
        self.engine_config = engine_config or EngineConfig(num_threads=settings.training_threads)
        self.metrics = ServiceMetrics(lambda: self.engine.breaker.failures)
        self.live = LiveCounters()
        """This worker's last hour for the console (events, recommendations, lag...)."""
        self.gate = Gate()
        self.engine = Engine(self.engine_config)
        self._applied_position = 0
        self.committed_position = 0
        """The last position this process committed: what a read must reflect."""
        self.follower = LogFollower(stores.events, self._apply_records, position=0,
                                    poll_s=settings.learner_poll_s)
        self.impressions = BackgroundAppender(stores.events, appended=self.follower.notify)
        """What requests showed, logged without making them wait."""
        self._impressions_pruned = time.monotonic()
        self.ready = False
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._last_training_events = 0
        """Events the model had learned from when the last training started: positions
        also count catalog changes and impressions, which are no reason to retrain."""
        self._last_training_time = time.monotonic()
        self._refusals_in_row = 0
        self._last_snapshot_position = 0
        self._last_snapshot_model = "untrained"
        self._last_snapshot_time = time.monotonic()
        self._snapshot_failed_at = float("-inf")
        self._rebuild_requested = threading.Event()
        self._erasing = threading.Lock()
        """Held by an erasure and while a snapshot or a rebuild is written, so that no
        state copied before an erasure reaches the disk after it."""
        self._erasures = 0
        self._following = threading.Lock()
        """One take-up of the registry's champion at a time (background and peer call)."""
        self._unloadable: str | None = None
        """A champion whose artifact failed to load here: not tried again every round."""
        self.drift = InputDriftMonitor(settings.drift_window, settings.drift_window,
                                       min_current=max(100, settings.drift_window // 5))
        self.quality = OnlineQualityMonitor()
        self.monitoring_gauges = register_monitoring_gauges(self.metrics.registry)
        self._drift_report: dict[str, Any] = {}
        self._drift_checked = 0.0
        isolated = settings.training_isolation == "process" and stores.data_dir is not None
        self.lifecycle = ModelLifecycle(
            stores.registry, stores.artifacts, self.engine_config, self._swap_in,
            LifecycleSettings(tolerance=settings.gate_tolerance,
                              holdout_fraction=settings.holdout_fraction,
                              niceness=settings.training_niceness,
                              keep_refused_artifacts=settings.keep_refused_artifacts),
            data_dir=stores.data_dir if isolated else None,
            database_url=stores.database_url,
            log=stores.events, catalog=stores.catalog)
        self.experiments = ExperimentService(self)

    @property
    def applied_position(self) -> int:
        """The last log position the live engine reflects (written by the learner only)."""
        return self._applied_position

    @applied_position.setter
    def applied_position(self, position: int) -> None:
        self._applied_position = position
        if self.cluster is not None:
            self.cluster.applied(position)

    @property
    def leads(self) -> bool:
        """Whether this process runs the lifecycle (always, unless one of several workers)."""
        return self.cluster is None or self.cluster.is_leader

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self.settings.admin_key:
            self.stores.keys.ensure(self.settings.admin_key, ["admin"], name="FRESHREC_ADMIN_KEY")
        self.recover()
        # Before the first answer, not at the first background round: a restart must not
        # serve a running experiment's users from outside their arm in between.
        self.experiments.refresh()
        self._worker = threading.Thread(target=self._work, name="freshrec-worker", daemon=True)
        self._worker.start()
        if self.cluster is None:
            self._take_over_lifecycle()
        else:
            self.cluster.serving(os.getpid())
            self.cluster.campaign(elected=self._take_over_when_stores_answer)

    def _take_over_when_stores_answer(self) -> None:
        """The lease came because the leader died; the outage that ended it may keep a
        store down too (a database): lead once the registry answers, retrying, rather
        than with an unknown champion or a traceback in the campaign's thread."""
        while not self._stop.is_set():
            try:
                self._take_over_lifecycle()
                return
            except StoreUnavailable as error:
                log.error("taking over the lifecycle once the stores answer: %s", error)
                self._stop.wait(TAKE_OVER_RETRY_S)

    def _take_over_lifecycle(self) -> None:
        """Before leading: serve the registry's champion (the previous leader may have
        installed it just before it died, unseen here; a snapshot may predate it), take
        up an erasure's rebuild it left undone, and refuse its unfinished trainings
        (their process is gone)."""
        # Also for a single process: the newest snapshot can predate the champion (a stop
        # soon after a training concluded, or a rollback since).
        self.follow_champion()
        if self.cluster is not None:
            champion = self.stores.registry.champion()
            if champion is not None and champion.revoked is not None:
                # The previous leader died between an erasure and its rebuild.
                self._rebuild_requested.set()
        abandoned = self.lifecycle.abandon_unfinished()
        if abandoned:
            log.info("%d training(s) left unfinished by an ended process refused", abandoned)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.serving(0)
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
        self.experiments.close()
        self.impressions.close()
        self.follower.stop()
        self.engine.retrainer.wait(timeout=60)
        self.lifecycle.close()
        self.stores.close()
        if self.cluster is not None:
            self.cluster.close()
        unfreeze()

    def recover(self) -> None:
        """Snapshot + catalog + log tail: the state as of the last acknowledged event."""
        # A revoked champion: an erasure's rebuild never finished. Every snapshot may
        # predate the erasure, so start from the log (which no longer holds the user)
        # and rebuild.
        champion = self.stores.registry.champion()
        erasure_pending = champion is not None and champion.revoked is not None
        engine, position = ((Engine(self.engine_config), 0) if erasure_pending
                            else self._restore_snapshot())
        if erasure_pending:
            self._rebuild_requested.set()
        self._last_snapshot_model = engine.model_version
        self._install_engine(self._catch_up(engine, position))
        freeze_loaded_model()
        # The replayed tail counts towards the next snapshot: were it not, each crash
        # could add up to ``snapshot_every_events`` to the replay of the next restart.
        self._last_snapshot_position = position
        # With a model, the count of new events towards the next training starts here;
        # without one, the whole log is new (a history loaded with training off must
        # still get its first model after a restart, without waiting for more events).
        trained = self.stores.registry.champion() is not None
        self._last_training_events = self._events_learned() if trained else 0
        self.committed_position = self.applied_position
        self.follower.moved_to(self.applied_position)
        self.follower.start()
        self.ready = True

    def _restore_snapshot(self) -> tuple[Engine, int]:
        for info in reversed(self.stores.snapshots.list(SNAPSHOT_NAME)):
            try:
                engine = Engine.restore(self.stores.snapshots.load(info))
            except (CorruptSnapshot, TypeError, ValueError, EOFError) as error:
                log.warning("snapshot %s unusable (%s); trying an older one", info.id, error)
                continue
            log.info("restored snapshot %s at log position %s", info.id, info.log_position)
            return engine, int(info.log_position or 0)
        return self._restore_champion()

    def _restore_champion(self) -> tuple[Engine, int]:
        """Without a usable snapshot, start from the champion's artifact if it loads."""
        champion = self.stores.registry.champion()
        if champion is not None and champion.artifacts:
            ref = champion.artifacts[0]
            try:
                engine = Engine.restore(load_artifact(self.stores.artifacts, ref))
            except (CorruptSnapshot, TypeError, ValueError, EOFError) as error:
                log.warning("champion %s unusable (%s); starting from the log", champion.id,
                            error)
            else:
                position = next((int(info.log_position or 0)
                                 for info in self.stores.artifacts.list()
                                 if info.id == ref.snapshot_id), 0)
                log.info("restored champion %s at log position %s", champion.id, position)
                return engine, position
        return Engine(self.engine_config), 0

    def _catch_up(self, engine: Engine, position: int) -> Engine:
        """Apply every logged record after ``position`` to ``engine``.

        Catalog items the engine does not know are added first: a data directory
        written before catalog changes were logged has them only in the catalog store.
        """
        for item in self.stores.catalog.iter_items():
            if engine.state.items.get(item.id) is None:
                engine.add_item(item)
        # No training here: without a model to restore, the background worker starts the
        # first one through the lifecycle (gated, registered) as soon as recovery is done.
        self.applied_position = self._replay(engine, position)
        return engine

    def _replay(self, engine: Engine, after: int) -> int:
        """Apply the log's records after ``after`` to ``engine``; the last position."""
        while page := self.stores.events.read_records(after=after, limit=REPLAY_PAGE):
            engine.apply_many(learned([record for _, record in page]))
            after = page[-1][0]
        return after

    def _apply_records(self, records: Sequence[tuple[int, LogRecord]]) -> None:
        """The learner's step: apply records to the live engine, in position order."""
        with self.gate.shared():
            engine = self.engine
            # A swap may have installed an engine that already reflects some of these.
            fresh = [(at, record) for at, record in records if at > self.applied_position]
            if not fresh:
                return
            engine.apply_many(learned([record for _, record in fresh]),
                              before_event=lambda event: self._observe_drift(engine, event))
            self.experiments.learn(fresh)
            self.applied_position = fresh[-1][0]

    def _install_engine(self, engine: Engine) -> None:
        self.engine = engine
        self.metrics.set_model_version(engine.model_version)

    # -- ingest ----------------------------------------------------------------------
    def ingest_events(self, events: Sequence[Event]) -> AppendResult:
        """Store durably and answer; the learner applies them from the log.

        A read after the answer reflects them: it waits for the learner
        (:meth:`reflect_acknowledged`).
        """
        # What requests showed before these events must be logged before them: the
        # rankers learn from the list a user saw before acting, in log order.
        self.impressions.flush(timeout=self.settings.read_wait_s)
        with self.gate.shared():
            result = self.stores.events.append(events)
            self._committed(result.positions)
        for event, position in zip(events, result.positions, strict=True):
            if position is not None:  # click-through: the request ids are not logged
                self.quality.observed(event, request_id=event.request_id)
        self.metrics.events_ingested.inc(result.accepted)
        self.live.events(result.accepted)
        self.metrics.events_duplicate.inc(result.duplicates)
        return result

    def _observe_drift(self, engine: Engine, event: Event) -> None:
        """Feed the drift monitor what the models knew just before this event (the
        learner calls it, in log order, so it sees exactly that state)."""
        state = engine.state
        item = state.items.get(event.item)
        first = state.items.first_event[item] if item is not None else float("nan")
        known_item = item is not None and first == first  # NaN: listed, never touched
        new_item = not known_item or event.timestamp - first < NEW_ITEM_AGE_S
        self.drift.learn_one(event, known_user=state.users.get(event.user) is not None,
                             known_item=known_item, new_item=new_item)

    # -- serving (reads only) ---------------------------------------------------------
    def recommend(self, user: str, k: int, filters: Filters,
                  request_id: str | None = None) -> list[Recommendation]:
        """The user's top ``k``; what it showed goes to the log for the learner."""
        engine = self.engine
        items, impression = engine.rank(user, k, filters)
        if request_id:  # for the quality by model version and by source
            self.quality.attribute(request_id, engine.model_version,
                                   {r.item: r.source for r in items})
        if impression is not None:
            self.impressions.submit(msgspec.structs.replace(impression, request_id=request_id)
                                    if request_id else impression)
        return items

    def served(self, request_id: str, user: str, items: Sequence[str]) -> None:
        """Remember what a user was shown, to score it against what they do next."""
        self.quality.served(request_id, user, list(items), self.engine.state.clock)

    def ingest_items(self, items: Sequence[Item]) -> None:
        """Keep the catalog, log the change for the learner, answer after both."""
        with self.gate.shared():
            self.stores.catalog.upsert_items(items)
            self._committed(self.stores.events.append(items).positions)

    def _committed(self, positions: Sequence[int | None]) -> None:
        last = max((p for p in positions if p is not None), default=0)
        if last > self.committed_position:
            self.committed_position = last
        if self.cluster is not None:
            self.cluster.committed(last)  # before the answer: other workers' reads wait on it
        self.follower.notify()

    def acknowledged_position(self) -> int:
        """The last position acknowledged by this process, or by any worker."""
        if self.cluster is None:
            return self.committed_position
        return max(self.committed_position, self.cluster.acknowledged())

    def reflect_acknowledged(self) -> bool:
        """Wait (at most ``read_wait_s``) until the engine reflects every record that was
        acknowledged (by any worker); False if the learner is still behind (the read
        goes on)."""
        target = self.acknowledged_position()
        if self.applied_position >= target:
            return True
        if self.follower.wait_for(target, self.settings.read_wait_s):
            return True
        self.metrics.reads_behind.inc()
        return False

    def ingest_users(self, users: Sequence[User]) -> None:
        self.stores.catalog.upsert_users(users)

    def quarantine(self, kind: str, rejected: Sequence[tuple[str, str]]) -> None:
        """Keep rejected records (raw text, reason) for a person to look at."""
        if rejected:
            self.stores.events.quarantine([(kind, raw, reason) for raw, reason in rejected])
            self.metrics.records_rejected.labels(kind=kind).inc(len(rejected))

    def list_quarantine(self, limit: int, offset: int, where: QuarantineFilter = ANY_RECORD
                        ) -> tuple[list[QuarantinedRecord], int]:
        """A page of the records ``where`` matches, newest first, and how many match."""
        return (self.stores.events.list_quarantine(limit, offset, where),
                self.stores.events.quarantine_count(where))

    def erase_user(self, user: str) -> dict[str, Any]:
        """Delete a user's events, attributes and model state, then purge aggregates.

        First the running training is killed and every model version so far is
        revoked (never to serve again) and loses its artifacts: each may have read
        the user's data. Then their events, quarantined records and attributes are
        deleted (zeroed on disk) and their profile, vector and served-list memories
        forgotten; every engine snapshot is deleted. Counts they contributed to
        (co-occurrence, trending) are purged by rebuilding the models from the log,
        which no longer holds their events, in the background.
        """
        when = datetime.now(UTC).isoformat(timespec="seconds")
        reason = f"trained before a user's data was erased at {when}; it may hold that data"
        with self._erasing, self.lifecycle.erasing(reason):
            with self.gate.exclusive():
                erased = self.stores.events.erase_user(user)
                known = self.stores.catalog.delete_user(user)
                forgotten = self.engine.forget_user(user)
                self.quality.forget_user(user)
                self.experiments.forget_user(user)
                self._erasures += 1
            self.stores.experiments.erase_user(user)
            # Until the rebuild, a restart replays the whole log, which no longer has them.
            self.stores.snapshots.prune(0)
            self._rebuild_requested.set()
        if self.cluster is not None:
            # Every worker holds the user in its own engine; each forgets them before the
            # answer, once its learner has applied everything read before the deletion.
            self.cluster.tell_peers("POST", "/internal/forget",
                                    {"user": user, "position": self.stores.events.last_position()})
        return {"user": user, "events_erased": erased,
                "found": bool(erased or known or forgotten)}

    def forget(self, user: str, position: int) -> None:
        """Another worker erased ``user`` when the log ended at ``position``: forget them.

        Waiting for the learner first matters: a page it read before the deletion could
        otherwise teach this engine the user again after they were forgotten.
        """
        self.follower.wait_for(position, timeout=self.settings.read_wait_s * 30)
        with self.gate.exclusive():
            self.engine.forget_user(user)
            self.quality.forget_user(user)
            self.experiments.forget_user(user)
            self._erasures += 1

    # -- a champion installed elsewhere ------------------------------------------------
    def promote(self, version_id: str) -> ModelVersion:
        version = self.lifecycle.promote(version_id)
        self._champion_changed()
        return version

    def rollback(self) -> ModelVersion:
        version = self.lifecycle.rollback()
        self._champion_changed()
        return version

    def _champion_changed(self) -> None:
        """Every other worker takes up the new champion before the leader goes on (so
        that an admin's next request, wherever it lands, is answered by it)."""
        if self.cluster is not None:
            self.cluster.tell_peers("POST", "/internal/champion")

    def follow_champion(self) -> str:
        """Serve the registry's champion if this engine is another version (a worker
        that does not lead: the leader promoted, rolled back or rebuilt). Returns the
        version serving."""
        with self._following:
            champion = self.stores.registry.champion()
            if (champion is None or champion.revoked is not None or not champion.artifacts
                    or champion.id in (self.engine.model_version, self._unloadable)):
                return self.engine.model_version
            try:
                engine, position = self.lifecycle.load(champion)
            except (CorruptSnapshot, TypeError, ValueError, EOFError, OSError) as error:
                now = self.stores.registry.get(champion.id)
                if now is None or now.revoked is not None or now.status != "champion":
                    # An erasure revoked it (and deleted its artifact) while it loaded:
                    # nothing is wrong, the next champion comes from the rebuild.
                    log.info("champion %s was replaced while it loaded here", champion.id)
                    return self.engine.model_version
                log.error("champion %s cannot be loaded here (%s); %s keeps serving",
                          champion.id, error, self.engine.model_version)
                self._unloadable = champion.id
                return self.engine.model_version
            self._swap_in(engine, position, champion.id)
            return champion.id

    # -- background work -------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.wait(self.settings.settle_interval_s):
            try:
                self.step()
            except StoreUnavailable as error:  # a full disk, a store down: said, not dumped
                log.error("background step skipped: %s", error)
            except Exception:  # the worker must outlive any one failure
                log.exception("background step failed")

    def step(self) -> None:
        """One round of background work (also callable directly, e.g. from tests)."""
        if not self.leads:
            # The leader tells this worker of each new champion; this is the backstop
            # for a call that failed or came while this worker was starting.
            self.follow_champion()
            self.experiments.step()
            self._measure_lag()
            return
        if self._rebuild_requested.is_set():
            self._rebuild_requested.clear()
            try:
                self.rebuild()
            except BaseException:
                self._rebuild_requested.set()  # an erasure's rebuild must not be forgotten
                raise
            return
        outcome = self.lifecycle.poll()
        # A promotion re-bases the monitors (in the swap). A refusal does not: the
        # shift is still there and the serving model still predates it, so it keeps
        # asking for a training, at the growing interval of the back-off.
        if outcome is not None and outcome["decision"] == "promoted":
            self._refusals_in_row = 0
            self._champion_changed()
        elif outcome is not None:
            self._refusals_in_row += 1
        self._maybe_train()
        self._maybe_snapshot()
        self.experiments.step()  # before the pruning: it counts the served lists
        self._maybe_prune_impressions()
        self._measure_lag()

    def _measure_lag(self) -> None:
        lag = self.learner_lag()
        self.metrics.learner_lag.set(lag)
        self.live.lag(lag)

    def learner_lag(self) -> int:
        """Records in the log this engine has not applied yet."""
        return max(0, self.stores.events.last_position() - self.applied_position)

    def _maybe_train(self) -> None:
        if self.lifecycle.running:
            return
        trigger = self.training_trigger()
        if trigger is not None:
            self.retrain(background=True, trigger=trigger)

    def training_trigger(self) -> str | None:
        """Why a training is due now, or None: first model, schedule, drift, quality drop."""
        settings = self.settings
        learned = self._events_learned()
        new_events = learned - self._last_training_events
        if self.stores.registry.champion() is None:
            if learned >= settings.min_train_events and new_events > 0:
                return "initial: first model"
            return None
        if new_events >= settings.retrain_every_events:
            return f"schedule: {new_events} new events"
        if new_events > 0 and time.monotonic() - self._last_training_time \
                >= settings.retrain_interval_s:
            return "schedule: interval"
        if new_events < self.retrain_backoff_events():
            return None
        report = self.drift_report()
        if report.get("drifted"):
            return "drift: " + "; ".join(report.get("reasons", []))[:300]
        if self.quality.report().get("dropped"):
            return "quality: online hit rate dropped"
        return None

    def _events_learned(self) -> int:
        return self.engine.state.events_seen

    def retrain_backoff_events(self) -> int:
        """New events a drift- or quality-triggered training waits for.

        One drift window normally (the current window must be all new traffic);
        doubled after each refused candidate in a row, up to 8 windows: when fresh
        candidates keep losing to the online-updated champion, retraining at every
        wobble of a lumpy log would only burn the CPU that serving needs.
        """
        return self.settings.drift_window * 2 ** min(self._refusals_in_row,
                                                      MAX_BACKOFF_DOUBLINGS)

    def drift_report(self) -> dict[str, Any]:
        """The drift monitor's report, recomputed at most every ``drift_check_s``."""
        now = time.monotonic()
        if not self._drift_report or now - self._drift_checked >= self.settings.drift_check_s:
            self._drift_report = self.drift.report()
            self._drift_checked = now
        return self._drift_report

    def retrain(self, background: bool = True, trigger: str = "manual",
                params: dict[str, Any] | None = None) -> str | None:
        """Train a candidate, gate it, promote or refuse it; returns its version id."""
        self.reflect_acknowledged()  # on what was acknowledged, like every read
        if self.applied_position < 2:
            raise LifecycleError("not enough events to train on yet")
        version = self.lifecycle.start(self.applied_position, trigger, params)
        if version is None:
            return None
        self._last_training_events = self._events_learned()
        self._last_training_time = time.monotonic()
        if not background:
            self.lifecycle.wait()
        return version

    def monitoring(self) -> dict[str, Any]:
        status = self.lifecycle.status
        running = status.running
        return {
            "drift": self.drift_report(),
            "quality": self.quality.report(),
            "training": {
                "running": None if running is None else {
                    "version": running.version_id, "trigger": running.trigger,
                    "started": running.started},
                "last": status.history[-1] if status.history else None,
                "last_error": status.last_error,
                "due": self.training_trigger() if running is None else None,
                "refusals_in_row": self._refusals_in_row,
                "backoff_events": self.retrain_backoff_events(),
            },
            "learner": {
                "position": self.applied_position,
                "committed": self.committed_position,
                "lag": max(0, self.committed_position - self.applied_position),
                "last_error": self.follower.last_error,
            },
            "model": self.engine.model_version,
            **({"workers": self.cluster.workers()} if self.cluster is not None else {}),
        }

    def _swap_in(self, engine: Engine, position: int, version: str) -> None:
        """Replay the log after ``position`` into ``engine`` and make it the live one.

        Most of the catch-up runs while ingest goes on; only the last events are
        applied under the exclusive gate, so ingest pauses for a moment at most.
        """
        position = self._replay(engine, position)
        with self.gate.exclusive():
            position = self._replay(engine, position)
            self._install_engine(engine)
            self.applied_position = max(self.applied_position, position)
        self.follower.moved_to(position)
        freeze_loaded_model()  # outside the gate: a full collection takes tens of ms
        self.drift.rebase()
        self.quality.rebase()
        self._drift_report = {}
        log.info("model %s is now serving", version)

    def _maybe_prune_impressions(self) -> None:
        """Impressions teach only within the rankers' ``impression_ttl`` of being shown:
        the log keeps them ``impression_retention_s`` (wall time), enough for a replay
        from any snapshot kept, and no longer."""
        now = time.monotonic()
        if now - self._impressions_pruned < IMPRESSION_PRUNE_EVERY_S:
            return
        self._impressions_pruned = now
        pruned = self.stores.events.prune_impressions(
            time.time() - self.settings.impression_retention_s)
        if pruned:
            log.info("pruned %d impression record(s) past their retention", pruned)

    def _maybe_snapshot(self) -> None:
        """Snapshot by event count or by time, so a restart replays a bounded log tail."""
        new_events = self.applied_position - self._last_snapshot_position
        # A finished training is worth a snapshot too, even if no event came after it.
        if new_events == 0 and self.engine.model_version == self._last_snapshot_model:
            return
        now = time.monotonic()
        if now - self._snapshot_failed_at < SNAPSHOT_RETRY_S:
            return
        if (new_events >= self.settings.snapshot_every_events
                or now - self._last_snapshot_time >= self.settings.snapshot_interval_s):
            try:
                self.snapshot()
            except Exception:
                self._snapshot_failed_at = now
                raise

    def snapshot(self) -> None:
        """Write the engine and the exact log position it reflects."""
        with self._erasing:
            if self._rebuild_requested.is_set():
                return  # the engine still holds an erased user's counts: the rebuild saves
            with self.gate.exclusive():
                model = self.engine.model_version  # before the payload: never newer than it
                payload = self.engine.snapshot()
                position = self.applied_position
            self.stores.snapshots.save(SNAPSHOT_NAME, payload,
                                       {"log_position": position, "model": model})
        self.stores.snapshots.prune(self.settings.snapshots_kept)
        self._last_snapshot_position = position
        self._last_snapshot_model = model
        self._last_snapshot_time = time.monotonic()
        self.metrics.snapshots.inc()

    def rebuild(self) -> None:
        """Rebuild the models from the catalog and the log, swap them in, re-snapshot.

        Events that arrive during the rebuild are applied before the swap, under
        the exclusive gate, so none is lost.
        """
        erasures = self._erasures
        fresh = Engine(self.engine_config)
        position = self.stores.events.last_position()
        fresh.fit([*self.stores.catalog.iter_items(),
                   *(event for at, event in self.stores.events.iterate(after=0)
                     if at <= position)])
        with self._erasing:
            if self._erasures != erasures:
                # Another erasure came while fitting: this engine may hold that user.
                # Its request stands, so the next round rebuilds again.
                log.info("rebuild discarded: a user was erased while it ran")
                return
            with self.gate.exclusive():
                position = self._replay(fresh, position)
                self._install_engine(fresh)
                self.applied_position = max(self.applied_position, position)
                self.follower.moved_to(position)
                model = fresh.model_version
                payload = fresh.snapshot()
                snapshot_position = self.applied_position
            old = self.stores.snapshots.list(SNAPSHOT_NAME)
            self.stores.snapshots.save(SNAPSHOT_NAME, payload,
                                       {"log_position": snapshot_position, "model": model})
            self.stores.snapshots.prune(1)
            version = self.lifecycle.adopt(
                fresh, snapshot_position, dataset_version(self.stores.events, snapshot_position),
                "rebuilt from the log after a user's data was erased")
        freeze_loaded_model()
        self.metrics.set_model_version(version.id)
        self._champion_changed()
        self._last_snapshot_position = snapshot_position
        self._last_snapshot_model = model
        log.info("rebuilt models from the log; %d older snapshot(s) removed", len(old))
