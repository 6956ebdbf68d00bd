"""What only the PostgreSQL stores face: appenders on several connections (as on several
machines), and a server that goes away and comes back.

The contracts themselves run in test_event_log.py, test_catalog.py, test_keys.py,
test_model_registry.py, test_experiment_store.py and test_snapshots.py. No timing
assertions: where a test needs an append to be waiting, it watches the server's
``pg_stat_activity`` until the append's backend waits for a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from _postgres import PostgresServer
from freshrec.errors import StoreUnavailable
from freshrec.records import Event, Item, User


def event(n: int, *, id: str | None = None, user: str = "u1") -> Event:
    return Event(user=user, item=f"i{n}", type="view", timestamp=float(n), id=id)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.005)


def waiting_for_a_lock(url: str) -> list[int]:
    """The backends of ``url``'s database that wait for a lock (an append at the counter)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as watcher:
        return [row[0] for row in watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")]


def assert_unavailable(call: Callable[[], object], server: PostgresServer) -> None:
    """``call`` fails as StoreUnavailable naming the server, never the URL's password."""
    import psycopg

    with pytest.raises(StoreUnavailable) as caught:
        call()
    assert f"127.0.0.1:{server.port}/" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


@pytest.fixture
def open_log(postgres_url: str) -> Iterator[Callable[[], Any]]:
    """Opens PostgresEventLogs on the test's database (each its own connection)."""
    from freshrec.log.postgres import PostgresEventLog

    opened: list[PostgresEventLog] = []

    def open_one() -> PostgresEventLog:
        opened.append(PostgresEventLog(postgres_url))
        return opened[-1]

    yield open_one
    for log in opened:
        log.close()


def test_two_connections_appending_at_once_get_distinct_gap_free_positions(
        open_log: Callable[[], Any]) -> None:
    writers, reader = [open_log(), open_log()], open_log()
    rounds, shared = 150, 20
    results: dict[int, list[list[int | None]]] = {0: [], 1: []}
    start = threading.Barrier(3)
    done = threading.Event()
    seen: list[int] = []

    def write(n: int) -> None:
        start.wait()
        for k in range(rounds):
            batch: list[Event | Item] = [event(k, id=f"w{n}-{k}"), Item(id=f"w{n}-{k}")]
            if k < shared:  # both writers send these ids: exactly one copy may be stored
                batch.append(event(k, id=f"shared-{k}"))
            results[n].append(writers[n].append(batch).positions)

    def read() -> None:
        # A learner's loop: it resumes after the last position it saw and must see
        # every record, so a record committed late at a smaller position would be lost.
        start.wait()
        after = 0
        while True:
            finished = done.is_set()
            page = reader.read_records(after=after, limit=37)
            seen.extend(position for position, _ in page)
            if page:
                after = page[-1][0]
            elif finished:
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in (0, 1)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads[:2]:
        thread.join()
    done.set()
    threads[2].join()

    every = [p for mine in results.values() for positions in mine for p in positions]
    stored = sorted(p for p in every if p is not None)
    total = 2 * rounds * 2 + shared
    assert stored == list(range(1, total + 1))  # distinct, and no gap
    assert every.count(None) == shared
    assert seen == stored  # the reader missed none and saw them in order
    assert reader.last_position() == total
    ids = [e.id for _, e in reader.read() if e.id and e.id.startswith("shared")]
    assert sorted(ids) == sorted(f"shared-{k}" for k in range(shared))


def test_an_append_waits_for_another_machines_open_append(
        open_log: Callable[[], Any], postgres_url: str) -> None:
    import psycopg

    log = open_log()
    log.append([event(0)])
    other = psycopg.connect(postgres_url)  # another machine, mid-append: lock, insert
    other.execute("SELECT last FROM log_position FOR UPDATE")
    other.execute("""INSERT INTO events (position, "user", item, type, timestamp)
                     VALUES (2, 'u9', 'i9', 'view', 9.0)""")
    other.execute("UPDATE log_position SET last = 2")
    answer: list[list[int | None]] = []
    appender = threading.Thread(target=lambda: answer.append(log.append([event(3)]).positions))
    appender.start()

    wait_until(lambda: len(waiting_for_a_lock(postgres_url)) == 1)
    assert [p for p, _ in open_log().read()] == [1]  # nothing uncommitted shows
    other.commit()
    appender.join()
    other.close()
    assert answer == [[3]]
    assert [p for p, _ in log.read()] == [1, 2, 3]


def test_a_connection_lost_inside_an_append_stores_nothing_and_the_next_one_works(
        open_log: Callable[[], Any], postgres_url: str) -> None:
    import psycopg

    log = open_log()
    log.append([event(0)])
    holder = psycopg.connect(postgres_url)  # another appender, keeping the counter locked
    holder.execute("SELECT last FROM log_position FOR UPDATE")
    failures: list[BaseException] = []

    def append() -> None:
        try:
            log.append([event(1, id="lost")])
        except BaseException as exc:
            failures.append(exc)

    appender = threading.Thread(target=append)
    appender.start()
    wait_until(lambda: len(waiting_for_a_lock(postgres_url)) == 1)
    [pid] = waiting_for_a_lock(postgres_url)
    holder.execute("SELECT pg_terminate_backend(%s)", (pid,))  # the link breaks mid-append
    appender.join()
    holder.rollback()
    holder.close()

    [failure] = failures
    assert isinstance(failure, StoreUnavailable)
    assert isinstance(failure.__cause__, psycopg.OperationalError)
    assert log.append([event(1, id="lost")]).positions == [2]
    assert [p for p, _ in log.read()] == [1, 2]


def test_a_dropped_connection_is_replaced_on_the_next_call(
        open_log: Callable[[], Any], postgres_url: str) -> None:
    import psycopg

    from freshrec.catalog.postgres import PostgresCatalogStore

    log = open_log()
    catalog = PostgresCatalogStore(postgres_url)
    log.append([event(1)])
    catalog.upsert_items([Item(id="i1")])

    def cut_every_connection() -> None:  # as a server restart or an idle timeout would
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    cut_every_connection()
    assert [p for p, _ in log.read()] == [1]  # a read is retried on a new connection
    cut_every_connection()
    assert log.append([event(2)]).positions == [2]  # so is a write whose BEGIN failed
    cut_every_connection()
    assert catalog.get_item("i1") == Item(id="i1")
    catalog.close()


def test_a_stopped_server_is_store_unavailable_until_it_returns(
        own_postgres_server: PostgresServer) -> None:
    from freshrec.catalog.postgres import PostgresCatalogStore
    from freshrec.log.postgres import PostgresEventLog

    # A password in the URL (trust ignores it) must never reach a message.
    url = own_postgres_server.new_url().replace("postgres@", "postgres:s3cret@")
    log, catalog = PostgresEventLog(url), PostgresCatalogStore(url)
    log.append([event(1, id="a"), event(9)])
    catalog.upsert_items([Item(id="i1")])
    pages = log.iterate(batch=1)
    assert next(pages)[0] == 1

    own_postgres_server.stop()
    with pytest.raises(StoreUnavailable):
        next(pages)  # a learner's stream, stopped mid-way
    calls: list[Callable[[], object]] = [
        lambda: log.append([event(2, id="b")]), log.read, log.read_records, log.last_position,
        log.count, lambda: log.erase_user("u1"), lambda: log.quarantine([("event", "{}", "x")]),
        log.list_quarantine, lambda: catalog.get_item("i1"),
        lambda: catalog.upsert_items([Item(id="i2")]), lambda: PostgresEventLog(url)]
    for call in calls:
        assert_unavailable(call, own_postgres_server)

    own_postgres_server.start()
    assert log.append([event(2, id="b"), event(3, id="a")]).positions == [3, None]
    assert [e.id for _, e in log.read()] == ["a", None, "b"]
    assert catalog.get_item("i1") == Item(id="i1")
    log.close()
    catalog.close()


def test_quarantined_text_with_nul_is_kept_readable(open_log: Callable[[], Any]) -> None:
    log = open_log()
    log.quarantine([("event", '{"user": "a\x00b"}', "bad\x00reason")])
    [record] = log.list_quarantine()
    assert (record.raw, record.reason) == ('{"user": "a\ufffdb"}', "bad\ufffdreason")


@dataclass(frozen=True)
class StoreCase:
    """A store to cut off: how to open it, give it data, call it, and check it afterwards."""

    open: Callable[[str], Any]
    seed: Callable[[Any], None]
    calls: Callable[[Any], list[Callable[[], object]]]
    check: Callable[[Any], None]


def _keys() -> StoreCase:
    from freshrec.security.postgres_keys import PostgresKeyStore

    key = "an-operator-chosen-key-of-some-length"

    def seed(keys: Any) -> None:
        keys.ensure(key, ["admin"])

    def check(keys: Any) -> None:
        assert keys.verify(keys.create(["read"])) is not None
        assert keys.verify(key) is not None and len(keys.list()) == 2

    return StoreCase(
        PostgresKeyStore, seed,
        lambda keys: [lambda: keys.verify(key), keys.list, lambda: keys.create(["read"]),
                      lambda: keys.ensure(key, ["read"]), lambda: keys.revoke("key_1")],
        check)


def _registry() -> StoreCase:
    from freshrec.registry.datasets import DatasetVersion
    from freshrec.registry.models import ModelVersion
    from freshrec.registry.postgres import PostgresModelRegistry

    data = DatasetVersion(start_position=0, end_position=1, events=1, content_hash="ab" * 32,
                          created=0.0)

    def seed(registry: Any) -> None:
        for version_id in ("m0001", "m0002"):
            registry.register(ModelVersion(id=version_id, created=0.0, dataset=data))
        registry.set_champion("m0001")

    def check(registry: Any) -> None:
        registry.set_champion("m0002")
        assert registry.champion().id == "m0002"
        assert [v.status for v in registry.list()] == ["champion", "retired"]

    return StoreCase(
        PostgresModelRegistry, seed,
        lambda registry: [registry.champion, registry.list, registry.next_id,
                          lambda: registry.get("m0001"), lambda: registry.set_champion("m0002"),
                          lambda: registry.update("m0001", notes="x")],
        check)


def _experiments() -> StoreCase:
    from freshrec.experiments.postgres import PostgresExperimentStore
    from freshrec.experiments.store import ArmSpec, Experiment, OutcomeUpdate

    def seed(store: Any) -> None:
        store.create(Experiment(id="e1", name="e1", kind="ab", status="running", started=0.0,
                                arms=(ArmSpec("a"), ArmSpec("b", "m0002"))))

    def check(store: Any) -> None:
        store.commit(OutcomeUpdate(cursor=4))
        assert (store.cursor(), [e.id for e in store.find()]) == (4, ["e1"])

    return StoreCase(
        PostgresExperimentStore, seed,
        lambda store: [store.cursor, store.find, lambda: store.get("e1"),
                       lambda: store.totals("e1"), lambda: store.pending(["u1"]),
                       lambda: store.commit(OutcomeUpdate(cursor=3)),
                       lambda: store.stop("e1", 1.0, None), lambda: store.erase_user("u1")],
        check)


def _snapshots() -> StoreCase:
    from freshrec.registry.postgres_snapshots import PostgresSnapshotStore

    payload = bytes(range(256)) * 40  # several chunks
    seeded: list[Any] = []

    def open_store(url: str) -> Any:
        return PostgresSnapshotStore(url, namespace="artifacts", chunk_bytes=1000)

    def seed(store: Any) -> None:
        seeded.append(store.save("model", payload, {"log_position": 5}))

    def check(store: Any) -> None:
        [first] = seeded
        assert store.latest() == first
        second = store.save("model", payload[::-1], {})
        assert [info.id for info in store.list()] == [first.id, second.id]
        assert (store.load(first), store.load(second)) == (payload, payload[::-1])
        assert store.prune(keep=1) == 1 and store.list() == [second]

    return StoreCase(
        open_store, seed,
        lambda store: [lambda: store.save("model", payload, {}), store.latest, store.list,
                       lambda: store.load(seeded[0]), lambda: store.prune(keep=0),
                       lambda: store.delete("0000000001-model")],
        check)


@pytest.mark.parametrize("case", [_keys, _registry, _experiments, _snapshots],
                         ids=["keys", "registry", "experiments", "snapshots"])
def test_each_store_is_unavailable_while_the_server_is_stopped_and_works_after(
        own_postgres_server: PostgresServer, case: Callable[[], StoreCase]) -> None:
    chosen = case()
    # A password in the URL (trust ignores it) must never reach a message.
    url = own_postgres_server.new_url().replace("postgres@", "postgres:s3cret@")
    store = chosen.open(url)
    chosen.seed(store)

    own_postgres_server.stop()
    for call in [*chosen.calls(store), lambda: chosen.open(url)]:
        assert_unavailable(call, own_postgres_server)

    own_postgres_server.start()
    chosen.check(store)
    store.close()


def test_every_store_shares_one_database(postgres_url: str) -> None:
    """One URL for all: no two stores' tables may collide (the catalog has ``users``)."""
    from freshrec.catalog.postgres import PostgresCatalogStore
    from freshrec.log.postgres import PostgresEventLog

    opened = [PostgresEventLog(postgres_url), PostgresCatalogStore(postgres_url)]
    cases = (_keys, _registry, _experiments, _snapshots)
    opened += [case().open(postgres_url) for case in cases]
    for case, store in zip(cases, opened[2:], strict=True):
        case().seed(store)
    opened[1].upsert_users([User(id="u1")])
    assert opened[1].get_user("u1") == User(id="u1")
    assert opened[4].find()[0].id == "e1"
    for store in opened:
        store.close()
