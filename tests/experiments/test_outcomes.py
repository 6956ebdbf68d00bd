"""The outcome tracker on a real log and store: what it counts, in which order.

The scenarios are a contract: tests/stores/test_experiment_store.py runs them on every
ExperimentStore backend; here, on SQLite.
"""

from __future__ import annotations

from pathlib import Path

from freshrec.experiments.outcomes import OutcomeTracker
from freshrec.experiments.store import (
    ArmSpec,
    Experiment,
    ExperimentStore,
    SQLiteExperimentStore,
)
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.records import Event, ServedList


def _served(request: str, user: str, arm: str, items: tuple[str, ...], at: float = 100.0,
            shown: bool = True) -> ServedList:
    return ServedList(request, user, at, items, "e", arm, "m", shown=shown)


class OutcomeTrackerContract:
    """Subclasses supply ``make_store``: each call opens the same store anew."""

    def make_store(self, tmp_path: Path) -> ExperimentStore:
        raise NotImplementedError

    def _setup(self, tmp_path: Path, kind: str = "ab"
               ) -> tuple[SQLiteEventLog, ExperimentStore]:
        log = SQLiteEventLog(tmp_path / "events.sqlite")
        store = self.make_store(tmp_path)
        store.create(Experiment(id="e", name="e", kind=kind, status="running", started=0.0,
                                arms=(ArmSpec("a"), ArmSpec("b", "v2"))))
        return log, store

    def test_clicks_hits_and_purchases_per_arm_and_a_restart_counts_nothing_twice(
            self, tmp_path: Path) -> None:
        log, store = self._setup(tmp_path)
        log.append([_served("r1", "ann", "a", ("x", "y")), _served("r2", "bob", "b", ("z",))])
        log.append([
            Event(user="ann", item="y", type="click", timestamp=110.0, request_id="r1"),
            Event(user="ann", item="y", type="click", timestamp=111.0, request_id="r1"),  # once
            Event(user="bob", item="q", type="purchase", timestamp=120.0),
            # not bob's list:
            Event(user="bob", item="z", type="click", timestamp=121.0, request_id="r1"),
        ])
        OutcomeTracker(store, log).update()
        totals = store.totals("e")
        assert (totals["a"].impressions, totals["a"].clicks, totals["a"].hits) == (1, 1, 1)
        assert (totals["b"].outcomes, totals["b"].hits, totals["b"].purchases) == (1, 0, 1)
        assert totals["b"].clicks == 0
        store.close()
        again = self.make_store(tmp_path)  # as after a restart
        OutcomeTracker(again, log).update()
        assert again.totals("e") == totals
        again.close()
        log.close()

    def test_a_shadow_list_logged_after_the_event_is_scored_against_that_event(
            self, tmp_path: Path) -> None:
        log, store = self._setup(tmp_path, kind="shadow")
        tracker = OutcomeTracker(store, log)
        log.append([_served("r1", "ann", "a", ("x",)),
                    Event(user="ann", item="w", type="view", timestamp=101.0)])
        tracker.update()  # the champion's list is settled before the shadow's arrives
        log.append([_served("r1", "ann", "b", ("w",), shown=False),
                    Event(user="ann", item="x", type="view", timestamp=102.0)])
        tracker.update()
        totals = store.totals("e")
        assert (totals["a"].outcomes, totals["a"].hits) == (1, 0)
        assert (totals["b"].outcomes, totals["b"].hits, totals["b"].impressions) == (1, 1, 0)
        store.close()
        log.close()

    def test_a_list_whose_user_never_comes_back_within_the_horizon_has_no_outcome(
            self, tmp_path: Path) -> None:
        log, store = self._setup(tmp_path)
        log.append([_served("r1", "ann", "a", ("x",)),
                    Event(user="ann", item="x", type="view", timestamp=100.0 + 7200)])
        OutcomeTracker(store, log).update()
        assert store.totals("e")["a"].outcomes == 0
        store.close()
        log.close()


class TestOutcomesOnSQLite(OutcomeTrackerContract):
    def make_store(self, tmp_path: Path) -> ExperimentStore:
        return SQLiteExperimentStore(tmp_path / "experiments.sqlite")
