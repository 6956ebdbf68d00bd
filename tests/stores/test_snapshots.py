"""The SnapshotStore contract, run against every backend."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from freshrec.errors import CorruptSnapshot, StoreUnavailable
from freshrec.registry import (
    LocalSnapshotStore,
    MemorySnapshotStore,
    SnapshotInfo,
    SnapshotStore,
)


class SnapshotStoreContract:
    """Subclasses supply ``make_store`` and ways to damage a saved payload."""

    def make_store(self, tmp_path: Path) -> SnapshotStore:
        raise NotImplementedError

    def flip_a_byte(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        raise NotImplementedError

    def remove_payload(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> SnapshotStore:
        return self.make_store(tmp_path)

    def test_satisfies_the_protocol(self, store: SnapshotStore) -> None:
        assert isinstance(store, SnapshotStore)

    def test_save_then_load(self, store: SnapshotStore) -> None:
        payload = bytes(range(256)) * 100
        info = store.save("engine", payload, {"log_position": 1234, "events": 99})
        assert info.sha256 == hashlib.sha256(payload).hexdigest()
        assert (info.name, info.size, info.log_position) == ("engine", len(payload), 1234)
        assert info.metadata == {"log_position": 1234, "events": 99}
        assert info.created > 1_600_000_000
        assert store.load(info) == payload

    def test_latest_and_list(self, store: SnapshotStore) -> None:
        assert store.latest() is None and store.list() == []
        first = store.save("engine", b"one", {"log_position": 1})
        other = store.save("ranker", b"r", {})
        second = store.save("engine", b"two", {"log_position": 2})
        assert store.latest() == second
        assert store.latest("ranker") == other
        assert store.latest("nothing") is None
        assert store.list() == [first, other, second]
        assert store.list("engine") == [first, second]
        assert other.log_position is None

    def test_a_flipped_byte_is_detected(self, store: SnapshotStore) -> None:
        info = store.save("engine", b"model bytes", {})
        self.flip_a_byte(store, info)
        with pytest.raises(CorruptSnapshot, match=f"snapshot {info.id} is corrupt"):
            store.load(info)

    def test_a_missing_payload_is_detected(self, store: SnapshotStore) -> None:
        info = store.save("engine", b"model bytes", {})
        self.remove_payload(store, info)
        with pytest.raises(CorruptSnapshot, match="missing"):
            store.load(info)
        assert issubclass(CorruptSnapshot, StoreUnavailable)

    def test_delete_removes_one_snapshot(self, store: SnapshotStore) -> None:
        kept, doomed = store.save("m1", b"a", {}), store.save("m2", b"b", {})
        assert store.delete(doomed.id)
        assert not store.delete(doomed.id)
        assert store.list() == [kept]
        with pytest.raises(CorruptSnapshot):
            store.load(doomed)

    def test_prune_keeps_the_newest_of_each_name(self, store: SnapshotStore) -> None:
        engines = [store.save("engine", f"e{n}".encode(), {}) for n in range(4)]
        ranker = store.save("ranker", b"r", {})
        assert store.prune(keep=2) == 2
        assert store.list() == [engines[2], engines[3], ranker]
        assert store.load(engines[3]) == b"e3"
        assert store.prune(keep=2) == 0
        assert store.prune(keep=0) == 3
        assert store.latest() is None
        with pytest.raises(ValueError, match="keep"):
            store.prune(keep=-1)

    def test_bad_input_is_refused(self, store: SnapshotStore) -> None:
        with pytest.raises(ValueError, match="snapshot name"):
            store.save("../escape", b"x", {})
        with pytest.raises(ValueError, match="log_position"):
            store.save("engine", b"x", {"log_position": "12"})
        with pytest.raises(TypeError):
            store.save("engine", b"x", {"weights": object()})
        assert store.list() == []


class TestMemorySnapshotStore(SnapshotStoreContract):
    def make_store(self, tmp_path: Path) -> SnapshotStore:
        return MemorySnapshotStore()

    def flip_a_byte(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        payload = bytearray(store._payloads[info.id])  # type: ignore[attr-defined]
        payload[0] ^= 0xFF
        store._payloads[info.id] = bytes(payload)  # type: ignore[attr-defined]

    def remove_payload(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        del store._payloads[info.id]  # type: ignore[attr-defined]


class TestLocalSnapshotStore(SnapshotStoreContract):
    def make_store(self, tmp_path: Path) -> SnapshotStore:
        return LocalSnapshotStore(tmp_path / "snapshots")

    def flip_a_byte(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        path = tmp_payload(store, info)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    def remove_payload(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        tmp_payload(store, info).unlink()

    def test_a_save_leaves_exactly_a_payload_and_a_sidecar(self, tmp_path: Path) -> None:
        store = LocalSnapshotStore(tmp_path / "snapshots")
        info = store.save("engine", b"abc", {"log_position": 7})
        names = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
        assert names == [f"{info.id}.json", f"{info.id}.snap"]
        assert info.id == "0000000001-engine"

    def test_a_new_instance_sees_the_snapshots_and_continues(self, tmp_path: Path) -> None:
        first = LocalSnapshotStore(tmp_path / "snapshots")
        saved = first.save("engine", b"abc", {"log_position": 7, "note": "é"})
        second = LocalSnapshotStore(tmp_path / "snapshots")
        assert second.latest() == saved
        assert second.load(saved) == b"abc"
        assert second.save("engine", b"def", {}).id == "0000000002-engine"

    def test_a_failed_save_leaves_nothing_behind(self, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        store = LocalSnapshotStore(tmp_path / "snapshots")
        good = store.save("engine", b"good", {})

        def broken_fsync(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fsync", broken_fsync)
        with pytest.raises(StoreUnavailable, match="cannot save snapshot"):
            store.save("engine", b"never", {})
        monkeypatch.undo()
        assert store.latest() == good
        assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
            f"{good.id}.json", f"{good.id}.snap"]

    def test_prune_removes_crash_leftovers(self, tmp_path: Path) -> None:
        directory = tmp_path / "snapshots"
        store = LocalSnapshotStore(directory)
        kept = store.save("engine", b"ok", {})
        (directory / ".0000000009-engine.snap.1234abcd.tmp").write_bytes(b"half")
        (directory / "0000000008-engine.snap").write_bytes(b"no sidecar")
        assert store.prune(keep=5) == 0
        assert sorted(p.name for p in directory.iterdir()) == [f"{kept.id}.json",
                                                              f"{kept.id}.snap"]

    def test_an_unreadable_sidecar_is_skipped(self, tmp_path: Path) -> None:
        directory = tmp_path / "snapshots"
        store = LocalSnapshotStore(directory)
        older = store.save("engine", b"old", {})
        newer = store.save("engine", b"new", {})
        (directory / f"{newer.id}.json").write_text("{not json")
        assert store.latest() == older

    def test_load_refuses_an_id_that_is_not_a_snapshot_id(self, tmp_path: Path) -> None:
        store = LocalSnapshotStore(tmp_path / "snapshots")
        info = store.save("engine", b"x", {})
        forged = SnapshotInfo(id="../../etc/passwd", name="engine", sha256=info.sha256,
                              size=1, created=0.0, log_position=None)
        with pytest.raises(CorruptSnapshot, match="not a snapshot id"):
            store.load(forged)


def tmp_payload(store: SnapshotStore, info: SnapshotInfo) -> Path:
    assert isinstance(store, LocalSnapshotStore)
    return store.directory / f"{info.id}.snap"


class TestPostgresSnapshotStore(SnapshotStoreContract):
    """On a private server (tests/_postgres.py), a new database per test."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> SnapshotStore:
        from freshrec.registry.postgres_snapshots import PostgresSnapshotStore

        return PostgresSnapshotStore(self.url, namespace="state")

    def flip_a_byte(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        self._sql("UPDATE snapshot_chunks SET data = set_byte(data, 0, get_byte(data, 0) # 1) "
                  "WHERE snapshot = (SELECT key FROM snapshots WHERE id = %s) AND n = 0",
                  info.id)

    def remove_payload(self, store: SnapshotStore, info: SnapshotInfo) -> None:
        self._sql("DELETE FROM snapshot_chunks "
                  "WHERE snapshot = (SELECT key FROM snapshots WHERE id = %s)", info.id)

    def _sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def test_payloads_of_several_chunks_round_trip_exactly(self, tmp_path: Path) -> None:
        from freshrec.registry.postgres_snapshots import PostgresSnapshotStore

        store = PostgresSnapshotStore(self.url, namespace="artifacts", chunk_bytes=1000)
        payloads = [os.urandom(size) for size in (0, 1, 999, 1000, 1001, 3000, 12_345)]
        infos = [store.save("model", payload, {"size": len(payload)}) for payload in payloads]
        assert [store.load(info) for info in infos] == payloads
        counts = self._sql("SELECT s.size, count(*), max(length(c.data)) FROM snapshots s "
                           "JOIN snapshot_chunks c ON c.snapshot = s.key "
                           "GROUP BY s.key ORDER BY s.seq")
        assert counts == [(0, 1, 0), (1, 1, 1), (999, 1, 999), (1000, 1, 1000),
                          (1001, 2, 1000), (3000, 3, 1000), (12_345, 13, 1000)]
        store.close()

    def test_a_payload_larger_than_a_default_chunk_round_trips_in_bounded_memory(
            self, tmp_path: Path) -> None:
        import tracemalloc

        from freshrec.registry.postgres_snapshots import CHUNK_BYTES, PostgresSnapshotStore

        store = PostgresSnapshotStore(self.url, namespace="artifacts")
        payload = os.urandom(2 * CHUNK_BYTES + 12_345)
        tracemalloc.start()
        try:
            info = store.save("model", payload, {})
            _, saving_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            loaded = store.load(info)
            _, loading_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert loaded == payload
        # No copy of the payload while saving; one (the result) while loading, plus chunks.
        assert saving_peak < 2 * CHUNK_BYTES, saving_peak
        assert loading_peak < len(payload) + 2 * CHUNK_BYTES, loading_peak
        store.close()

    def test_a_corrupted_chunk_in_the_middle_is_refused(self, tmp_path: Path) -> None:
        from freshrec.registry.postgres_snapshots import PostgresSnapshotStore

        store = PostgresSnapshotStore(self.url, namespace="state", chunk_bytes=100)
        info = store.save("engine", bytes(1000), {})
        self._sql("UPDATE snapshot_chunks SET data = set_byte(data, 50, 7) WHERE n = 5")
        with pytest.raises(CorruptSnapshot, match=f"snapshot {info.id} is corrupt"):
            store.load(info)
        self._sql("DELETE FROM snapshot_chunks WHERE n = 9")
        with pytest.raises(CorruptSnapshot, match="missing chunks: 9 of its 10"):
            store.load(info)
        store.close()

    def test_every_chunk_gone_is_a_missing_payload(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        info = store.save("engine", b"model bytes", {})
        self.remove_payload(store, info)
        with pytest.raises(CorruptSnapshot, match="missing chunks: 0 of its 1 are stored"):
            store.load(info)

    def test_two_machines_saving_at_once_get_distinct_ids_in_order(
            self, tmp_path: Path) -> None:
        import threading

        from freshrec.registry.postgres_snapshots import PostgresSnapshotStore

        machines = [PostgresSnapshotStore(self.url, namespace="state", chunk_bytes=100)
                    for _ in range(2)]
        start = threading.Barrier(2)
        saved: list[list[SnapshotInfo]] = [[], []]
        payloads: dict[str, bytes] = {}

        def save_many(machine: int) -> None:
            start.wait()
            for n in range(40):
                payload = f"machine {machine} save {n}".encode() * 20
                saved[machine].append(machines[machine].save("engine", payload, {}))
                payloads[saved[machine][-1].id] = payload

        threads = [threading.Thread(target=save_many, args=(m,)) for m in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        listed = machines[0].list()
        assert [info.id for info in listed] == [f"{n:010d}-engine" for n in range(1, 81)]
        assert sorted(listed, key=lambda info: info.id) == sorted(
            saved[0] + saved[1], key=lambda info: info.id)
        for machine in (0, 1):  # each machine's own saves in its order
            assert [info.id for info in saved[machine]] == sorted(
                info.id for info in saved[machine])
        assert {info.id: machines[1].load(info) for info in listed} == payloads
        for machine in machines:
            machine.close()

    def test_namespaces_do_not_see_each_other(self, tmp_path: Path) -> None:
        from freshrec.registry.postgres_snapshots import PostgresSnapshotStore

        state = PostgresSnapshotStore(self.url, namespace="state")
        artifacts = PostgresSnapshotStore(self.url, namespace="artifacts")
        engine = state.save("engine", b"state", {"log_position": 3})
        model = artifacts.save("engine", b"artifact", {})
        assert engine.id == model.id == "0000000001-engine"  # a sequence each
        assert (state.list(), artifacts.list()) == ([engine], [model])
        assert (state.load(engine), artifacts.load(model)) == (b"state", b"artifact")
        assert artifacts.prune(keep=0) == 1
        assert state.latest() == engine and artifacts.latest() is None
        assert not artifacts.delete(engine.id)
        with pytest.raises(CorruptSnapshot, match="missing"):
            artifacts.load(engine)
        with pytest.raises(ValueError, match="namespace"):
            PostgresSnapshotStore(self.url, namespace="")
        state.close()
        artifacts.close()

    def test_a_new_instance_sees_the_snapshots_and_continues(self, tmp_path: Path) -> None:
        first = self.make_store(tmp_path)
        saved = first.save("engine", b"abc", {"log_position": 7, "note": "é"})
        second = self.make_store(tmp_path)
        assert second.latest() == saved
        assert second.load(saved) == b"abc"
        assert second.save("engine", b"def", {}).id == "0000000002-engine"
        second.remove_leftovers()
        assert [info.id for info in first.list()] == ["0000000001-engine",
                                                      "0000000002-engine"]

    def test_a_save_cut_off_mid_transaction_leaves_no_snapshot(self, tmp_path: Path) -> None:
        import threading
        import time

        import psycopg

        from freshrec.registry.postgres_snapshots import (
            NAMESPACE_LOCK_KEY,
            PostgresSnapshotStore,
        )

        store = PostgresSnapshotStore(self.url, namespace="state", chunk_bytes=1000)
        good = store.save("engine", b"good", {})
        # Holding the namespace's lock stops the next save after it sent every chunk,
        # just before its row: the latest point at which it can be cut.
        holder = psycopg.connect(self.url, autocommit=True)
        holder.execute(f"SELECT pg_advisory_lock({NAMESPACE_LOCK_KEY})", ("state",))
        failures: list[BaseException] = []

        def save() -> None:
            try:
                store.save("engine", os.urandom(50_000), {})
            except BaseException as exc:
                failures.append(exc)

        saver = threading.Thread(target=save)
        saver.start()
        deadline = time.monotonic() + 60
        while not (waiting := self._sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")):
            assert time.monotonic() < deadline, "the save never reached the lock"
            time.sleep(0.005)
        [(pid,)] = waiting
        assert self._sql("SELECT count(*) FROM snapshot_chunks") == [(1,)]  # not committed
        holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
        saver.join()
        holder.close()

        [failure] = failures
        assert isinstance(failure, StoreUnavailable)
        assert isinstance(failure.__cause__, psycopg.OperationalError)
        assert store.list() == [good]
        assert self._sql("SELECT count(*) FROM snapshot_chunks") == [(1,)]
        again = store.save("engine", b"again", {})  # a new connection, the next number
        assert again.id == "0000000002-engine" and store.load(again) == b"again"
        store.close()
