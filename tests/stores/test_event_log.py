"""The EventLog contract, run against every backend (and GroupCommitLog over each)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from freshrec.errors import StoreUnavailable
from freshrec.log import (
    MAX_QUARANTINE_BYTES,
    EventLog,
    GroupCommitLog,
    MemoryEventLog,
    SQLiteEventLog,
)
from freshrec.log.base import QuarantineFilter, bucket_start
from freshrec.records import Event, Impression, Item


def shown(user: str = "u1", n_items: int = 3) -> Impression:
    items = tuple(f"i{n}" for n in range(n_items))
    features = np.arange(n_items * 2, dtype=np.float32).tobytes()
    return Impression(user=user, timestamp=5.0, items=items, features=features,
                      n_features=2, cold=True, request_id="r1")


def event(n: int, *, user: str = "u1", id: str | None = None, item: str | None = None) -> Event:
    return Event(user=user, item=item or f"i{n}", type="view", timestamp=float(n), id=id)


def stored(positions: list[int | None]) -> list[int]:
    """The positions, asserting none is a duplicate."""
    assert None not in positions
    return [p for p in positions if p is not None]


class EventLogContract:
    """Subclasses supply ``make_log``; every backend must pass every test here."""

    def make_log(self, tmp_path: Path) -> EventLog:
        raise NotImplementedError

    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[EventLog]:
        store = self.make_log(tmp_path)
        yield store
        store.close()

    def test_satisfies_the_protocol(self, log: EventLog) -> None:
        assert isinstance(log, EventLog)

    def test_a_new_log_is_empty(self, log: EventLog) -> None:
        assert (log.last_position(), log.count(), log.read()) == (0, 0, [])
        assert list(log.iterate()) == []

    def test_positions_strictly_increase_across_batches(self, log: EventLog) -> None:
        first = log.append([event(1), event(2), event(3)])
        second = log.append([event(4)])
        positions = first.positions + second.positions
        assert all(isinstance(p, int) for p in positions)
        assert positions == sorted(set(positions))  # type: ignore[type-var]
        assert (first.accepted, first.duplicates) == (3, 0)
        assert log.last_position() == positions[-1]
        assert log.count() == 4

    def test_an_empty_append_stores_nothing(self, log: EventLog) -> None:
        result = log.append([])
        assert (result.positions, result.accepted, result.duplicates) == ([], 0, 0)
        assert log.last_position() == 0

    def test_duplicates_across_batches(self, log: EventLog) -> None:
        first = stored(log.append([event(1, id="a"), event(2, id="b")]).positions)
        again = log.append([event(3, id="b"), event(4, id="c"), event(5, id="a")])
        assert again.positions[0] is None and again.positions[2] is None
        assert stored(again.positions[1:2])[0] > first[1]
        assert (again.accepted, again.duplicates) == (1, 2)
        assert log.count() == 3

    def test_within_a_batch_the_first_occurrence_wins(self, log: EventLog) -> None:
        result = log.append([event(1, id="x", item="first"), event(2, id="x", item="second"),
                             event(3, id="y")])
        assert result.positions[1] is None
        assert (result.accepted, result.duplicates) == (2, 1)
        assert [e.item for _, e in log.read()] == ["first", "i3"]

    def test_events_without_id_are_never_duplicates(self, log: EventLog) -> None:
        same = event(1)
        result = log.append([same, same])
        again = log.append([same])
        assert None not in result.positions + again.positions
        assert log.count() == 3

    def test_events_round_trip_every_field(self, log: EventLog) -> None:
        full = Event(user="u é", item="i/1", type="rating", timestamp=1_700_000_000.25,
                     value=4.5, id="evt-1", session="s1")
        bare = Event(user="u2", item="i2", type="view", timestamp=0.0)
        log.append([full, bare])
        assert [e for _, e in log.read()] == [full, bare]

    def test_read_after_and_limit(self, log: EventLog) -> None:
        positions = stored(log.append([event(n) for n in range(10)]).positions)
        assert [p for p, _ in log.read()] == positions
        assert [p for p, _ in log.read(after=positions[3])] == positions[4:]
        assert [p for p, _ in log.read(after=positions[3], limit=2)] == positions[4:6]
        assert log.read(after=positions[-1]) == []
        assert log.read(limit=0) == []

    def test_iterate_streams_every_event_in_order_across_pages(self, log: EventLog) -> None:
        for start in range(0, 10, 4):
            log.append([event(n) for n in range(start, min(start + 4, 10))])
        everything = log.read()
        assert list(log.iterate(batch=3)) == everything
        assert list(log.iterate(after=everything[6][0], batch=2)) == everything[7:]
        assert list(log.iterate(batch=10)) == everything  # exactly one full page

    def test_iterate_refuses_an_empty_batch(self, log: EventLog) -> None:
        with pytest.raises(ValueError, match="batch"):
            list(log.iterate(batch=0))

    def test_erase_user_deletes_all_their_events_and_nothing_else(self, log: EventLog) -> None:
        log.append([event(1, user="alice", id="a1"), event(2, user="bob"),
                    event(3, user="alice"), event(4, user="bob", id="b4")])
        last = log.last_position()
        assert log.erase_user("alice") == 2
        assert [e.user for _, e in log.read()] == ["bob", "bob"]
        assert log.count() == 2
        assert log.erase_user("alice") == 0
        assert log.erase_user("nobody") == 0
        # Positions are never reused, so learners' checkpoints stay meaningful.
        assert log.last_position() == last
        assert log.append([event(5, user="carol")]).positions == [last + 1]

    def test_erasure_forgets_the_users_event_ids(self, log: EventLog) -> None:
        log.append([event(1, user="alice", id="a1"), event(2, user="bob", id="b1")])
        log.erase_user("alice")
        assert log.append([event(1, user="alice", id="a1")]).accepted == 1
        assert log.append([event(2, user="bob", id="b1")]).duplicates == 1

    def test_erasure_drops_quarantined_records_naming_the_user(self, log: EventLog) -> None:
        log.quarantine([("event", '{"user": "alice", "item": 3}', "item: must be a string"),
                        ("event", '{"user": "bob"}', "item: is required")])
        log.erase_user("alice")
        assert [r.raw for r in log.list_quarantine()] == ['{"user": "bob"}']

    def test_quarantine_lists_newest_first_with_paging(self, log: EventLog) -> None:
        assert (log.quarantine_count(), log.list_quarantine()) == (0, [])
        log.quarantine([("event", "{}", "user: is required"), ("item", "[]", "not an object")])
        log.quarantine([("event", '{"user": 1}', "item: is required")])
        records = log.list_quarantine()
        assert [r.raw for r in records] == ['{"user": 1}', "[]", "{}"]
        assert [(r.kind, r.reason) for r in records][1] == ("item", "not an object")
        assert records[0].id > records[1].id > records[2].id
        assert all(r.created > 1_600_000_000 for r in records)
        assert [r.raw for r in log.list_quarantine(limit=1, offset=1)] == ["[]"]
        assert log.quarantine_count() == 3

    def test_quarantine_is_searched_by_text_and_by_reason_in_any_case(
            self, log: EventLog) -> None:
        log.quarantine([("event", '{"type": "Wink"}', "type: unknown event type 'Wink'"),
                        ("event", '{"item": "wink-7"}', "user: is required"),
                        ("event", '{"user": "x"}', "item: is required")])

        def raws(where: QuarantineFilter) -> list[str]:
            return [r.raw for r in log.list_quarantine(where=where)]

        assert raws(QuarantineFilter(text="WINK")) == ['{"item": "wink-7"}', '{"type": "Wink"}']
        assert raws(QuarantineFilter(reason="REQUIRED")) == ['{"user": "x"}', '{"item": "wink-7"}']
        assert raws(QuarantineFilter(text="wink", reason="required")) == ['{"item": "wink-7"}']
        assert raws(QuarantineFilter(text="100%_")) == []  # no wildcards
        assert log.quarantine_count(QuarantineFilter(reason="is required")) == 2
        [first] = log.list_quarantine(limit=1, offset=1, where=QuarantineFilter(text="wink"))
        assert first.raw == '{"type": "Wink"}'

    def test_quarantine_reasons_count_per_reason_and_bucket(self, log: EventLog) -> None:
        log.quarantine([("event", "{}", "user: is required")] * 2
                       + [("event", "[]", "not an object")])
        bucket = bucket_start(time.time(), 3600)
        rows = log.quarantine_reasons(3600)
        assert sorted(rows) == [("not an object", bucket, 1), ("user: is required", bucket, 2)]

    def test_a_users_events_newest_first_and_an_items_events_per_bucket(
            self, log: EventLog) -> None:
        positions = stored(log.append([event(n, user="ann" if n % 2 else "bob", item="x")
                                       for n in range(1, 8)]).positions)
        ann = log.user_events("ann", limit=3)
        assert [(p, e.timestamp) for p, e in ann] == [(positions[6], 7.0), (positions[4], 5.0),
                                                      (positions[2], 3.0)]
        assert log.user_events("nobody", limit=3) == []
        # Timestamps 1..7 in buckets of 3 s, after time 1: [0, 3) holds 2, [3, 6) 3-5, [6, 9) 6-7.
        assert log.item_activity("x", 3.0, since=1.0) == [(0.0, 1), (3.0, 3), (6.0, 2)]
        assert log.item_activity("x", 3.0, since=2.0) == [(3.0, 3), (6.0, 2)]
        assert log.item_activity("y", 3.0, since=0.0) == []

    def test_quarantine_truncates_raw_text_to_10_kb(self, log: EventLog) -> None:
        log.quarantine([("event", "x" * 50_000, "too big"), ("event", "é" * 9_000, "wide")])
        sizes = [len(r.raw.encode()) for r in log.list_quarantine()]
        assert sizes == [MAX_QUARANTINE_BYTES, MAX_QUARANTINE_BYTES]

    def test_a_closed_log_refuses_work(self, tmp_path: Path) -> None:
        log = self.make_log(tmp_path)
        log.close()
        log.close()  # idempotent
        with pytest.raises(StoreUnavailable):
            log.append([event(1)])
        with pytest.raises(StoreUnavailable):
            log.read()


class RecordsContract(EventLogContract):
    """Impressions and catalog changes share the events' positions (the learner's order)."""

    def test_records_take_positions_in_order_with_events(self, log: EventLog) -> None:
        item = Item(id="i9", title="tea", categories=("drinks",), properties={"p": 1})
        positions = log.append([event(1), shown(), item, event(2, id="e2")]).positions
        assert positions == [1, 2, 3, 4]
        assert [p for p, _ in log.read()] == [1, 4]  # a training reads events only
        assert log.read_records() == [(1, event(1)), (2, shown()), (3, item),
                                      (4, event(2, id="e2"))]
        assert log.last_position() == 4
        assert log.append([event(3)]).positions == [5]

    def test_a_log_that_starts_with_a_record_goes_on_from_it(self, log: EventLog) -> None:
        assert log.append([shown()]).positions == [1]
        assert log.append([event(1)]).positions == [2]
        assert log.append([shown(), shown()]).positions == [3, 4]
        assert log.last_position() == 4

    def test_read_records_after_and_limit_and_iterate_across_pages(
            self, log: EventLog) -> None:
        records = [event(n) if n % 3 else shown(user=f"u{n}") for n in range(1, 31)]
        log.append(records)
        assert [r for _, r in log.read_records(after=10, limit=5)] == records[10:15]
        assert [r for _, r in log.iterate_records(after=2, batch=4)] == records[2:]

    def test_erasure_deletes_the_users_impressions(self, log: EventLog) -> None:
        log.append([shown(user="gone"), shown(user="stays"), event(1, user="gone")])
        log.erase_user("gone")
        assert [r for _, r in log.read_records()] == [shown(user="stays")]

    def test_old_impressions_are_pruned_and_nothing_else(self, log: EventLog) -> None:
        item = Item(id="i9")
        log.append([shown(), item, event(1)])
        assert log.prune_impressions(created_before=0.0) == 0
        assert log.prune_impressions(created_before=time.time() + 1) == 1
        assert [r for _, r in log.read_records()] == [item, event(1)]


class TestMemoryEventLog(RecordsContract):
    def make_log(self, tmp_path: Path) -> EventLog:
        return MemoryEventLog()


class TestSQLiteEventLog(RecordsContract):
    def make_log(self, tmp_path: Path) -> EventLog:
        return SQLiteEventLog(tmp_path / "events.sqlite")

    def test_everything_survives_a_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "events.sqlite"
        log = SQLiteEventLog(path)
        stored = log.append([event(1, id="a"), event(2, user="u2", id="b"), event(3)])
        log.quarantine([("event", "{}", "user: is required")])
        log.erase_user("u2")
        before = log.read()
        log.close()

        reopened = SQLiteEventLog(path)
        try:
            assert reopened.read() == before
            assert reopened.last_position() == stored.positions[-1]
            assert [r.raw for r in reopened.list_quarantine()] == ["{}"]
            assert reopened.append([event(1, id="a")]).duplicates == 1
            assert reopened.append([event(4)]).positions == [stored.positions[-1] + 1]
            assert reopened.append([shown()]).positions == [stored.positions[-1] + 2]
            reopened.close()
            reopened = SQLiteEventLog(path)
            assert reopened.read_records()[-1] == (stored.positions[-1] + 2, shown())
            assert reopened.append([event(5)]).positions == [stored.positions[-1] + 3]
        finally:
            reopened.close()

    def test_two_handles_on_one_file_never_share_a_position(self, tmp_path: Path) -> None:
        path = tmp_path / "events.sqlite"
        first, second = SQLiteEventLog(path), SQLiteEventLog(path)
        try:
            a = first.append([event(1, id="same")]).positions
            b = second.append([event(2), event(3, id="same")]).positions
            assert b[0] is not None and b[0] > a[0]  # type: ignore[operator]
            assert b[1] is None
        finally:
            first.close()
            second.close()

    def test_an_unopenable_path_is_store_unavailable(self, tmp_path: Path) -> None:
        (tmp_path / "a-directory").mkdir()
        with pytest.raises(StoreUnavailable, match="cannot open"):
            SQLiteEventLog(tmp_path / "a-directory")


class TestGroupCommitOverMemory(RecordsContract):
    def make_log(self, tmp_path: Path) -> EventLog:
        return GroupCommitLog(MemoryEventLog())


class TestGroupCommitOverSQLite(RecordsContract):
    def make_log(self, tmp_path: Path) -> EventLog:
        return GroupCommitLog(SQLiteEventLog(tmp_path / "events.sqlite"))


class TestPostgresEventLog(RecordsContract):
    """On a private server (tests/_postgres.py), a new database per test."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_log(self, tmp_path: Path) -> EventLog:
        from freshrec.log.postgres import PostgresEventLog

        return PostgresEventLog(self.url)


class TestGroupCommitOverPostgres(TestPostgresEventLog):
    def make_log(self, tmp_path: Path) -> EventLog:
        return GroupCommitLog(super().make_log(tmp_path))
