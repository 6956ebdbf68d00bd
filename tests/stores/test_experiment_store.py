"""The ExperimentStore contract, run against every backend.

The outcome tracker's scenarios (tests/experiments/test_outcomes.py) run on each
backend too: they are what the store is for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.test_outcomes import OutcomeTrackerContract
from freshrec.errors import StoreUnavailable
from freshrec.experiments.store import (
    ArmSpec,
    ArmTotals,
    Experiment,
    ExperimentStore,
    OutcomeUpdate,
    Pending,
    SQLiteExperimentStore,
    UserCounts,
)


def experiment(experiment_id: str, kind: str = "ab", **fields: object) -> Experiment:
    return Experiment(id=experiment_id, name=f"test {experiment_id}", kind=kind,
                      status="running", started=1.0,
                      arms=(ArmSpec("a"), ArmSpec("b", "m0002", 0.5, {"diversity": 0.3})),
                      **fields)  # type: ignore[arg-type]


def counts(**values: int) -> UserCounts:
    return UserCounts(**values)


class ExperimentStoreContract:
    """Subclasses supply ``make_store``: each call opens the same store anew."""

    def make_store(self, tmp_path: Path) -> ExperimentStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ExperimentStore]:
        opened = self.make_store(tmp_path)
        yield opened
        opened.close()

    def test_definitions_round_trip_newest_first(self, store: ExperimentStore) -> None:
        first = experiment("e1", metric="hit_rate", sample=0.25, start_position=7)
        store.create(first)
        store.create(experiment("e2", kind="shadow"))
        assert store.get("e1") == first
        assert store.get("nope") is None
        assert [e.id for e in store.find()] == ["e2", "e1"]
        assert [e.id for e in store.find(kind="ab")] == ["e1"]
        assert [e.id for e in store.find(kind="shadow", status="running")] == ["e2"]
        assert store.find(status="stopped") == []

    def test_stop_records_when_and_the_winner(self, store: ExperimentStore) -> None:
        store.create(experiment("e1"))
        store.stop("e1", 50.0, "b")
        store.stop("nope", 50.0, None)  # nothing to stop: nothing happens
        stopped = store.get("e1")
        assert stopped is not None
        assert (stopped.status, stopped.stopped, stopped.winner) == ("stopped", 50.0, "b")
        assert [e.id for e in store.find(status="stopped")] == ["e1"]
        assert store.find(status="running") == []

    def test_a_commit_adds_counts_and_moves_the_cursor(self, store: ExperimentStore) -> None:
        assert store.cursor() == 0
        store.commit(OutcomeUpdate(cursor=5, counts={
            ("e1", "a", "ann"): counts(requests=1, impressions=1, clicks=1),
            ("e1", "b", "bob"): counts(requests=2, impressions=2, outcomes=1, hits=1),
        }))
        store.commit(OutcomeUpdate(cursor=9, counts={
            ("e1", "a", "ann"): counts(requests=1, impressions=1, purchases=3),
            ("e1", "a", "cid"): counts(requests=1, impressions=1),
            ("e2", "a", "ann"): counts(requests=1),
        }))
        assert store.cursor() == 9
        assert store.totals("e1") == {
            "a": ArmTotals(requests=3, impressions=3, clicks=1, purchases=3, users=2),
            "b": ArmTotals(requests=2, impressions=2, outcomes=1, hits=1, users=1)}
        assert store.totals("nope") == {}
        members = store.members(["ann", "bob", "dan"])
        assert {user: sorted(pairs) for user, pairs in members.items()} == {
            "ann": [("e1", "a"), ("e2", "a")], "bob": [("e1", "b")]}
        assert store.members([]) == {}

    def test_per_user_metrics_are_sums_over_users(self, store: ExperimentStore) -> None:
        store.commit(OutcomeUpdate(cursor=1, counts={
            ("e1", "a", "ann"): counts(requests=4, impressions=4, clicks=1, outcomes=2, hits=1),
            ("e1", "a", "bob"): counts(requests=2, impressions=2, clicks=2, purchases=2),
            ("e1", "b", "cid"): counts(requests=1),  # no impressions: no click-through
        }))
        assert store.per_user("e1", "ctr") == {"a": (2, 0.25 + 1.0, 0.25**2 + 1.0)}
        assert store.per_user("e1", "hit_rate") == {"a": (1, 0.5, 0.25)}
        assert store.per_user("e1", "purchases_per_user") == {
            "a": (2, 2.0, 4.0), "b": (1, 0.0, 0.0)}

    def test_pending_lists_are_replaced_and_settled(self, store: ExperimentStore) -> None:
        store.commit(OutcomeUpdate(cursor=1, pending={
            ("e1", "a", "ann"): Pending(("x", "y"), 10.0, "r1"),
            ("e1", "b", "bob"): Pending(("z",), 11.0, "r2")}))
        store.commit(OutcomeUpdate(cursor=2, pending={
            ("e1", "a", "ann"): Pending(("w",), 12.0, "r3"), ("e1", "b", "bob"): None}))
        assert store.pending(["ann", "bob"]) == {("e1", "a", "ann"): Pending(("w",), 12.0, "r3")}
        assert store.pending([]) == {}

    def test_shown_lists_are_kept_clicked_and_settled(self, store: ExperimentStore) -> None:
        store.commit(OutcomeUpdate(cursor=1, lists=[
            ("e1", "r1", "a", "ann", ("x", "y"), 10.0), ("e1", "r2", "b", "bob", ("z",), 20.0),
            ("e1", "r1", "b", "ann", ("q",), 10.0)]))  # the same request again: first kept
        store.commit(OutcomeUpdate(cursor=2, clicked={("e1", "r1")},
                                   settled={("e1", "r1"): "y", ("e1", "r2"): None}))
        shown = store.shown_lists([("e1", "r1"), ("e1", "r2"), ("e1", "r9")])
        assert {key: (s.arm, s.items, s.clicked, s.settled, s.next_item)
                for key, s in shown.items()} == {
            ("e1", "r1"): ("a", ("x", "y"), True, 1, "y"),
            ("e1", "r2"): ("b", ("z",), False, 2, None)}
        assert store.shown_lists([]) == {}
        assert store.prune_lists(served_before=15.0) == 1
        assert list(store.shown_lists([("e1", "r1"), ("e1", "r2")])) == [("e1", "r2")]

    def test_test_states_are_replaced(self, store: ExperimentStore) -> None:
        store.commit(OutcomeUpdate(cursor=1, tests={("e1", "b"): (0.5, -0.1, 0.2)}))
        store.commit(OutcomeUpdate(cursor=2, tests={("e1", "b"): (0.01, 0.02, 0.2)}))
        assert store.test_states("e1") == {"b": (0.01, 0.02, 0.2)}
        assert store.test_states("e2") == {}

    def test_erase_user_removes_their_rows_only(self, store: ExperimentStore) -> None:
        store.commit(OutcomeUpdate(
            cursor=1, counts={("e1", "a", "ann"): counts(requests=1),
                              ("e1", "a", "bob"): counts(requests=1)},
            pending={("e1", "a", "ann"): Pending(("x",), 1.0, "r1")},
            lists=[("e1", "r1", "a", "ann", ("x",), 1.0), ("e1", "r2", "a", "bob", ("y",), 1.0)]))
        store.erase_user("ann")
        assert store.members(["ann", "bob"]) == {"bob": [("e1", "a")]}
        assert store.pending(["ann"]) == {}
        assert list(store.shown_lists([("e1", "r1"), ("e1", "r2")])) == [("e1", "r2")]
        assert store.cursor() == 1

    def test_everything_survives_a_reopen(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.create(experiment("e1"))
        store.commit(OutcomeUpdate(cursor=3, counts={("e1", "a", "ann"): counts(requests=1)},
                                   tests={("e1", "b"): (0.5, -0.1, 0.2)}))
        store.close()
        reopened = self.make_store(tmp_path)
        try:
            assert (reopened.get("e1"), reopened.cursor()) == (experiment("e1"), 3)
            assert reopened.totals("e1") == {"a": ArmTotals(requests=1, users=1)}
            assert reopened.test_states("e1") == {"b": (0.5, -0.1, 0.2)}
        finally:
            reopened.close()

    def test_a_closed_store_refuses_work(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.close()
        store.close()
        with pytest.raises(StoreUnavailable):
            store.get("e1")
        with pytest.raises(StoreUnavailable):
            store.commit(OutcomeUpdate(cursor=1))


class TestSQLiteExperimentStore(ExperimentStoreContract):
    def make_store(self, tmp_path: Path) -> ExperimentStore:
        return SQLiteExperimentStore(tmp_path / "experiments.sqlite")


class PostgresStore:
    """On a private server (tests/_postgres.py), a new database per test."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> ExperimentStore:
        from freshrec.experiments.postgres import PostgresExperimentStore

        return PostgresExperimentStore(self.url)


class TestPostgresExperimentStore(PostgresStore, ExperimentStoreContract):
    pass


class TestOutcomesOnPostgres(PostgresStore, OutcomeTrackerContract):
    """The tracker's scenarios with the experiments in PostgreSQL (the log in SQLite)."""
