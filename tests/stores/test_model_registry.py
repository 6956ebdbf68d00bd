"""The ModelRegistry contract, run against every backend, and artifact checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freshrec.errors import CorruptSnapshot, StoreUnavailable
from freshrec.registry.datasets import DatasetVersion
from freshrec.registry.models import (
    ArtifactRef,
    ChampionPinned,
    MemoryModelRegistry,
    ModelRegistry,
    ModelVersion,
    SQLiteModelRegistry,
    UnknownModelVersion,
    code_version,
    load_artifact,
    previous_champion,
)
from freshrec.registry.snapshots import LocalSnapshotStore, MemorySnapshotStore

DATA = DatasetVersion(start_position=0, end_position=120, events=118,
                      content_hash="ab" * 32, created=10.0, first_timestamp=1.0,
                      last_timestamp=99.0)


def version(version_id: str, **fields: object) -> ModelVersion:
    return ModelVersion(id=version_id, created=float(len(version_id)), dataset=DATA,
                        **fields)  # type: ignore[arg-type]


class ModelRegistryContract:
    """Subclasses supply ``make_registry``."""

    def make_registry(self, tmp_path: Path) -> ModelRegistry:
        raise NotImplementedError

    @pytest.fixture
    def registry(self, tmp_path: Path) -> Iterator[ModelRegistry]:
        store = self.make_registry(tmp_path)
        yield store
        store.close()

    def test_satisfies_the_protocol(self, registry: ModelRegistry) -> None:
        assert isinstance(registry, ModelRegistry)

    def test_a_new_registry_is_empty(self, registry: ModelRegistry) -> None:
        assert (registry.list(), registry.champion(), registry.get("m0001")) == ([], None, None)
        assert registry.next_id() == "m0001"

    def test_every_field_round_trips(self, registry: ModelRegistry) -> None:
        full = version(
            "m0001", params={"factors": 64, "regularization": 0.01, "sources": ["als", "pop"]},
            code_version="freshrec 0.1.0+gabc", metrics={"recall@10": 0.21, "ndcg@10": 0.13},
            gate={"decision": "promote", "tolerance": 0.02, "candidate": {"recall@10": 0.21},
                  "champion": None, "reason": "no champion yet", "holdout": "last 10%"},
            artifacts=[ArtifactRef(name="engine", snapshot_id="0000000003-engine",
                                   sha256="cd" * 32, size=1234)],
            parent="m0000", notes="first", status="refused", pinned=True,
        )
        registry.register(full)
        assert registry.get("m0001") == full

    def test_defaults_record_the_code_version(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001"))
        stored = registry.get("m0001")
        assert stored is not None
        assert (stored.status, stored.pinned, stored.gate, stored.artifacts) == (
            "candidate", False, None, [])
        assert stored.code_version == code_version()
        assert stored.code_version.startswith("freshrec ")

    def test_ids_are_unique_and_well_formed(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001"))
        with pytest.raises(ValueError, match="already registered"):
            registry.register(version("m0001", notes="again"))
        for bad in ("", "../m1", "m 1", "x" * 65):
            with pytest.raises(ValueError, match="id"):
                registry.register(version(bad))
        assert [v.notes for v in registry.list()] == [""]

    def test_badly_typed_fields_are_refused(self, registry: ModelRegistry) -> None:
        with pytest.raises(ValueError, match="m0001"):
            registry.register(version("m0001", metrics={"recall": "high"}))
        with pytest.raises(ValueError):
            registry.register(version("m0001", status="deployed"))
        with pytest.raises(ValueError, match="finite"):
            registry.register(version("m0001", metrics={"ndcg": float("nan")}))
        assert registry.list() == []

    def test_a_version_cannot_be_registered_as_champion(self, registry: ModelRegistry) -> None:
        with pytest.raises(ValueError, match="set_champion"):
            registry.register(version("m0001", status="champion"))

    def test_next_id_counts_up_and_skips_taken_ids(self, registry: ModelRegistry) -> None:
        for _ in range(3):
            registry.register(version(registry.next_id()))
        assert registry.next_id() == "m0004"
        registry.register(version("m0005"))
        registry.register(version("custom"))
        assert registry.next_id() == "m0006"  # 5 registered; m0006 is free

    def test_list_is_newest_first_with_limit_and_status(self, registry: ModelRegistry) -> None:
        for n in range(1, 6):
            registry.register(version(f"m{n:04d}", status="refused" if n % 2 else "candidate"))
        assert [v.id for v in registry.list()] == ["m0005", "m0004", "m0003", "m0002", "m0001"]
        assert [v.id for v in registry.list(limit=2)] == ["m0005", "m0004"]
        assert [v.id for v in registry.list(status="candidate")] == ["m0004", "m0002"]
        assert [v.id for v in registry.list(limit=1, status="refused")] == ["m0005"]
        assert registry.list(limit=0) == []
        with pytest.raises(ValueError, match="unknown status"):
            registry.list(status="deployed")  # type: ignore[arg-type]

    def test_update_replaces_fields_and_returns_the_version(
        self, registry: ModelRegistry
    ) -> None:
        registry.register(version("m0001"))
        gate = {"decision": "refuse", "reason": "recall@10 fell by 0.05 > tolerance 0.02"}
        updated = registry.update("m0001", status="refused", gate=gate,
                                  metrics={"recall@10": 0.1})
        assert (updated.status, updated.gate, updated.metrics) == (
            "refused", gate, {"recall@10": 0.1})
        assert registry.get("m0001") == updated
        assert registry.list(status="refused") == [updated]
        assert registry.list(status="candidate") == []

    def test_update_refuses_bad_changes(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001"))
        with pytest.raises(UnknownModelVersion, match="m0404"):
            registry.update("m0404", notes="x")
        with pytest.raises(KeyError):  # UnknownModelVersion is a KeyError too
            registry.update("m0404", notes="x")
        with pytest.raises(ValueError, match="unknown model version field"):
            registry.update("m0001", colour="blue")
        with pytest.raises(ValueError, match="id cannot change"):
            registry.update("m0001", id="m0002")
        with pytest.raises(ValueError, match="set_champion"):
            registry.update("m0001", status="champion")
        with pytest.raises(ValueError):
            registry.update("m0001", metrics={"recall": "high"})
        assert registry.get("m0001") == version("m0001", code_version=code_version())

    def test_a_caller_mutating_its_dicts_does_not_change_the_store(
        self, registry: ModelRegistry
    ) -> None:
        params: dict[str, object] = {"factors": 64}
        registry.register(version("m0001", params=params))
        params["factors"] = 1
        fetched = registry.get("m0001")
        assert fetched is not None
        fetched.params["factors"] = 2
        assert registry.get("m0001").params == {"factors": 64}  # type: ignore[union-attr]

    def test_set_champion_keeps_exactly_one(self, registry: ModelRegistry) -> None:
        for n in (1, 2, 3):
            registry.register(version(f"m{n:04d}"))
        registry.set_champion("m0001")
        champion = registry.champion()
        assert champion is not None and champion.id == "m0001"
        assert champion.promoted is not None
        registry.set_champion("m0002")
        statuses = {v.id: v.status for v in registry.list()}
        assert statuses == {"m0001": "retired", "m0002": "champion", "m0003": "candidate"}
        assert len(registry.list(status="champion")) == 1

    def test_set_champion_is_idempotent(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001"))
        registry.set_champion("m0001")
        promoted = registry.champion().promoted  # type: ignore[union-attr]
        registry.set_champion("m0001")
        assert registry.champion().promoted == promoted  # type: ignore[union-attr]
        assert [v.status for v in registry.list()] == ["champion"]

    def test_set_champion_of_an_unknown_id_changes_nothing(
        self, registry: ModelRegistry
    ) -> None:
        registry.register(version("m0001"))
        registry.set_champion("m0001")
        with pytest.raises(UnknownModelVersion):
            registry.set_champion("m0404")
        assert registry.champion().id == "m0001"  # type: ignore[union-attr]

    def test_championship_cannot_be_dropped_by_update(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001"))
        registry.set_champion("m0001")
        with pytest.raises(ValueError, match="set_champion"):
            registry.update("m0001", status="retired")
        assert registry.update("m0001", notes="still serving").status == "champion"

    def test_a_pinned_champion_needs_force(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001"))
        registry.register(version("m0002"))
        registry.set_champion("m0001")
        registry.update("m0001", pinned=True)
        with pytest.raises(ChampionPinned, match="pinned"):
            registry.set_champion("m0002")
        assert registry.champion().id == "m0001"  # type: ignore[union-attr]
        registry.set_champion("m0002", force=True)
        old = registry.get("m0001")
        assert (old.status, old.pinned) == ("retired", False)  # type: ignore[union-attr]
        assert registry.champion().id == "m0002"  # type: ignore[union-attr]

    def test_roll_back_to_the_previous_champion(self, registry: ModelRegistry) -> None:
        for n in (1, 2, 3):
            registry.register(version(f"m{n:04d}"))
        assert previous_champion(registry) is None
        registry.set_champion("m0001")
        registry.set_champion("m0002")
        registry.update("m0003", status="retired")  # retired without ever serving
        previous = previous_champion(registry)
        assert previous is not None and previous.id == "m0001"
        registry.set_champion(previous.id)
        assert registry.champion().id == "m0001"  # type: ignore[union-attr]
        assert previous_champion(registry).id == "m0002"  # type: ignore[union-attr]

    def test_a_refused_candidate_can_be_promoted_by_hand(self, registry: ModelRegistry) -> None:
        registry.register(version("m0001", status="refused"))
        registry.set_champion("m0001")
        assert registry.champion().id == "m0001"  # type: ignore[union-attr]

    def test_a_closed_registry_refuses_work(self, tmp_path: Path) -> None:
        registry = self.make_registry(tmp_path)
        registry.close()
        registry.close()
        with pytest.raises(StoreUnavailable):
            registry.get("m0001")
        with pytest.raises(StoreUnavailable):
            registry.register(version("m0001"))


class DatabaseRegistryContract(ModelRegistryContract):
    """For the backends on a SQL database (``_db``): the database itself keeps the rule."""

    def test_the_database_itself_refuses_a_second_champion(self, tmp_path: Path) -> None:
        registry: Any = self.make_registry(tmp_path)
        registry.register(version("m0001"))
        registry.register(version("m0002"))
        registry.set_champion("m0001")
        with pytest.raises(StoreUnavailable), registry._db.transaction() as conn:
            conn.execute("UPDATE model_versions SET status = 'champion' WHERE id = 'm0002'")
        assert [v.status for v in registry.list()] == ["candidate", "champion"]
        registry.close()


class TestMemoryModelRegistry(ModelRegistryContract):
    def make_registry(self, tmp_path: Path) -> ModelRegistry:
        return MemoryModelRegistry()


class TestSQLiteModelRegistry(DatabaseRegistryContract):
    def make_registry(self, tmp_path: Path) -> ModelRegistry:
        return SQLiteModelRegistry(tmp_path / "models.sqlite")

    def test_everything_survives_a_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "models.sqlite"
        registry = SQLiteModelRegistry(path)
        registry.register(version("m0001", metrics={"recall@10": 0.2}))
        registry.register(version("m0002"))
        registry.set_champion("m0001")
        registry.close()
        reopened = SQLiteModelRegistry(path)
        try:
            assert reopened.champion().metrics == {"recall@10": 0.2}  # type: ignore[union-attr]
            assert [v.id for v in reopened.list()] == ["m0002", "m0001"]
            assert reopened.next_id() == "m0003"
        finally:
            reopened.close()



class TestPostgresModelRegistry(DatabaseRegistryContract):
    """On a private server (tests/_postgres.py), a new database per test."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_registry(self, tmp_path: Path) -> ModelRegistry:
        from freshrec.registry.postgres import PostgresModelRegistry

        return PostgresModelRegistry(self.url)

    def test_two_machines_promoting_at_once_always_leave_exactly_one_champion(
            self, tmp_path: Path) -> None:
        import psycopg

        promoters = [self.make_registry(tmp_path), self.make_registry(tmp_path)]
        ids = [f"m{n:04d}" for n in range(1, 7)]
        for version_id in ids:
            promoters[0].register(version(version_id))
        rounds = 150
        start = threading.Barrier(3)
        done = threading.Event()
        failures: list[BaseException] = []
        champions_seen: list[tuple[int, int]] = []

        def promote(n: int) -> None:
            start.wait()
            try:
                for k in range(rounds):  # each machine its own sequence of versions
                    promoters[n].set_champion(ids[(k + 3 * n) % len(ids)])
            except BaseException as exc:
                failures.append(exc)

        def watch() -> None:
            # Every snapshot in between: one champion, by column and by document alike.
            with psycopg.connect(self.url, autocommit=True) as watcher:
                start.wait()
                while not done.is_set():
                    row = watcher.execute(
                        "SELECT count(*) FILTER (WHERE status = 'champion'), count(*) "
                        "FILTER (WHERE convert_from(data, 'UTF8')::jsonb->>'status' "
                        "= 'champion') FROM model_versions").fetchone()
                    assert row is not None
                    champions_seen.append((row[0], row[1]))

        threads = [threading.Thread(target=promote, args=(n,)) for n in (0, 1)]
        watcher = threading.Thread(target=watch)
        for thread in (*threads, watcher):
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()

        assert failures == []
        assert champions_seen and set(champions_seen) <= {(0, 0), (1, 1)}
        assert champions_seen[-1] == (1, 1)
        statuses = [v.status for v in promoters[0].list()]
        assert statuses.count("champion") == 1
        assert set(statuses) == {"champion", "retired"}
        for registry in promoters:
            registry.close()


class TestArtifacts:
    def test_a_good_artifact_loads(self) -> None:
        snapshots = MemorySnapshotStore()
        ref = ArtifactRef.of(snapshots.save("engine", b"weights"))
        assert (ref.name, ref.size) == ("engine", 7)
        assert load_artifact(snapshots, ref) == b"weights"
        assert ArtifactRef.of(snapshots.latest(), name="ranker").name == "ranker"  # type: ignore[arg-type]

    def test_a_missing_artifact_is_refused(self) -> None:
        snapshots = MemorySnapshotStore()
        ref = ArtifactRef.of(snapshots.save("engine", b"weights"))
        snapshots.prune(keep=0)
        with pytest.raises(CorruptSnapshot, match="missing"):
            load_artifact(snapshots, ref)

    def test_a_hash_the_registry_did_not_record_is_refused(self) -> None:
        snapshots = MemorySnapshotStore()
        ref = ArtifactRef.of(snapshots.save("engine", b"weights"))
        forged = ArtifactRef(name="engine", snapshot_id=ref.snapshot_id, sha256="0" * 64,
                             size=ref.size)
        with pytest.raises(CorruptSnapshot, match="registry recorded"):
            load_artifact(snapshots, forged)

    def test_damaged_bytes_on_disk_are_refused(self, tmp_path: Path) -> None:
        snapshots = LocalSnapshotStore(tmp_path / "snapshots")
        ref = ArtifactRef.of(snapshots.save("engine", b"weights"))
        (tmp_path / "snapshots" / f"{ref.snapshot_id}.snap").write_bytes(b"weightz")
        with pytest.raises(CorruptSnapshot, match="corrupt"):
            load_artifact(snapshots, ref)
