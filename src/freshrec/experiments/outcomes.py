"""Per-arm outcomes, counted from the log: the same numbers whichever worker answers.

Every list a request served in an experiment is a :class:`~freshrec.records.ServedList`
record in the log, between the events, in one position order for all workers. The
leader's background round reads the log after the store's cursor and counts, per
experiment, arm and user (the user is the randomisation unit):

* **requests** and, for lists that were shown, **impressions**;
* **clicks**: a click event carrying the ``request_id`` of a shown list that holds the
  clicked item (each list once, so a user's click-through stays in [0, 1]);
* **outcomes** and **hits**: the user's next event after a list settles it (a hit if
  its item is in the list), within ``horizon`` seconds of data time; events dated
  before the list (beyond ``clock_skew``) do not settle it; the same rule as
  :mod:`freshrec.monitoring.quality`, here per arm. A shadow model's unshown list is
  scored this way beside the champion's list for the same request;
* **purchases** of users once they are in the experiment.

The counts, the lists still waiting and the cursor are written in one transaction, so
a restart (or a new leader) goes on where the last one stopped, and counts nothing
twice. After each pass the sequential test (:mod:`freshrec.experiments.sequential`)
takes a look for every experiment that changed and its state is stored too: the test
is checked after every batch, which is what an always-valid test allows.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Sequence

from freshrec.experiments.sequential import Arm, SequentialState, SequentialTest
from freshrec.experiments.store import (
    Experiment,
    ExperimentStore,
    OutcomeUpdate,
    Pending,
    ShownList,
    UserCounts,
)
from freshrec.log.base import EventLog, LogRecord
from freshrec.monitoring.quality import CLOCK_SKEW_S, HORIZON_S, settlement
from freshrec.records import Event, ServedList

PAGE = 4096
LIST_RETENTION_S = 86400.0
"""Shown lists are kept this long (data time) for clicks that refer to them."""


class OutcomeTracker:
    """Counts running experiments' outcomes from the log into the store."""

    def __init__(self, store: ExperimentStore, log: EventLog, *, horizon: float = HORIZON_S,
                 clock_skew: float = CLOCK_SKEW_S, click_types: Collection[str] = ("click",),
                 purchase_types: Collection[str] = ("purchase",)) -> None:
        self.store = store
        self.log = log
        self.horizon = horizon
        self.clock_skew = clock_skew
        self.click_types = frozenset(click_types)
        self.purchase_types = frozenset(purchase_types)
        self._counting = threading.Lock()
        """One pass at a time: two from the same cursor would count the same records."""

    def update(self, until: int | None = None) -> int:
        """Count every record after the cursor (up to ``until``); how many were read."""
        with self._counting:
            return self._update(until)

    def _update(self, until: int | None) -> int:
        after = self.store.cursor()
        # Read before looking for experiments: one started after the look has a start
        # position at or past this, so jumping here skips nothing it would count.
        last = self.log.last_position() if until is None else until
        if not self.store.find(status="running"):
            # Nothing to count: move the cursor to the end without reading the log (a
            # new experiment counts only what comes after its start anyway).
            if last > after:
                self.store.commit(OutcomeUpdate(cursor=last))
            return 0
        read = 0
        while True:
            page = self.log.read_records(after=after, limit=PAGE)
            if until is not None:
                page = [(at, record) for at, record in page if at <= until]
            if not page:
                return read
            running = {e.id: e for e in self.store.find(status="running")}
            self.apply(page, running)
            after = page[-1][0]
            read += len(page)

    def apply(self, page: Sequence[tuple[int, LogRecord]],
              running: dict[str, Experiment]) -> None:
        """Count one page of the log (in position order) and look at the tests."""
        update = OutcomeUpdate(cursor=page[-1][0])
        if running:
            self._count(page, running, update)
        self.store.commit(update)
        touched = {experiment for experiment, _, _ in update.counts}
        if touched:
            tests = OutcomeUpdate(cursor=update.cursor)
            for experiment_id in sorted(touched):
                tests.tests.update(look(self.store, running[experiment_id]))
            self.store.commit(tests)

    def _count(self, page: Sequence[tuple[int, LogRecord]], running: dict[str, Experiment],
               update: OutcomeUpdate) -> None:
        records = [(at, record) for at, record in page
                   if isinstance(record, Event)
                   or (isinstance(record, ServedList) and record.experiment in running
                       and at > running[record.experiment].start_position)]
        users = {record.user for _, record in records}  # type: ignore[union-attr]
        waiting: dict[tuple[str, str, str], Pending | None] = {
            key: value for key, value in self.store.pending(users).items() if key[0] in running}
        by_user: dict[str, set[tuple[str, str, str]]] = {}
        for key in waiting:
            by_user.setdefault(key[2], set()).add(key)
        members = {user: {pair for pair in pairs if pair[0] in running}
                   for user, pairs in self.store.members(users).items()}
        wanted = {(experiment, record.request_id) for _, record in records
                  if isinstance(record, Event) and record.request_id
                  and record.type in self.click_types for experiment in running}
        wanted |= {(record.experiment, record.request_id) for _, record in records
                   if isinstance(record, ServedList) and not record.shown}
        shown = self.store.shown_lists(wanted)
        for _, record in records:
            if isinstance(record, ServedList):
                key = (record.experiment, record.arm, record.user)
                counts = update.counts.setdefault(key, UserCounts())
                counts.requests += 1
                if record.shown:
                    counts.impressions += 1
                    update.lists.append((record.experiment, record.request_id, record.arm,
                                         record.user, record.items, record.timestamp))
                    shown[(record.experiment, record.request_id)] = ShownList(record.arm,
                                                                             record.items)
                else:
                    beside = shown.get((record.experiment, record.request_id))
                    if beside is not None and beside.settled:
                        # A shadow's list logged after the event that settled the
                        # champion's list of the same request: scored against that event.
                        if beside.next_item is not None:
                            counts.outcomes += 1
                            counts.hits += beside.next_item in record.items
                        continue
                waiting[key] = Pending(record.items, record.timestamp, record.request_id)
                by_user.setdefault(record.user, set()).add(key)
                members.setdefault(record.user, set()).add((record.experiment, record.arm))
                continue
            self._settle(record, waiting, by_user.get(record.user, set()), update, shown,
                         running)
            if record.type in self.purchase_types:
                for experiment, arm in members.get(record.user, ()):
                    update.counts.setdefault((experiment, arm, record.user),
                                             UserCounts()).purchases += 1
            if record.request_id and record.type in self.click_types:
                for experiment in running:
                    entry = shown.get((experiment, record.request_id))
                    if entry is None or entry.clicked or record.item not in entry.items:
                        continue
                    entry.clicked = True
                    update.clicked.add((experiment, record.request_id))
                    update.counts.setdefault((experiment, entry.arm, record.user),
                                             UserCounts()).clicks += 1
        update.pending.update({key: value for key, value in waiting.items()})

    def _settle(self, event: Event, waiting: dict[tuple[str, str, str], Pending | None],
                keys: set[tuple[str, str, str]], update: OutcomeUpdate,
                shown: dict[tuple[str, str], ShownList], running: dict[str, Experiment]
                ) -> None:
        """The user's next event settles each of their waiting lists."""
        for key in list(keys):
            pending = waiting.get(key)
            settled = None if pending is None else settlement(
                event.timestamp, pending.served, horizon=self.horizon,
                clock_skew=self.clock_skew)
            if pending is None or settled is None:
                continue
            waiting[key] = None
            keys.discard(key)
            left = settled == "expired"
            if running[key[0]].kind == "shadow" and key[1] == running[key[0]].arms[0].name:
                # Kept for the shadow's list of the same request, if it comes later.
                listed = (key[0], pending.request_id)
                update.settled[listed] = None if left else event.item
                if listed in shown:
                    shown[listed].settled = 2 if left else 1
                    shown[listed].next_item = None if left else event.item
            if left:
                continue  # the user left: no outcome
            counts = update.counts.setdefault(key, UserCounts())
            counts.outcomes += 1
            counts.hits += event.item in pending.items


def look(store: ExperimentStore, experiment: Experiment
         ) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Take one look at each arm against the control (the first arm); the new states.

    With more than one arm against the control, each comparison uses alpha divided by
    their number (Bonferroni), so the chance of any false difference stays at alpha.
    """
    comparisons = max(len(experiment.arms) - 1, 1)
    test = SequentialTest(alpha=experiment.alpha / comparisons)
    stats = arm_stats(store, experiment)
    states = store.test_states(experiment.id)
    control = experiment.arms[0].name
    looks = {}
    for arm in experiment.arms[1:]:
        before = SequentialState(*states[arm.name]) if arm.name in states else None
        result = test.look(stats[control], stats[arm.name], before)
        looks[(experiment.id, arm.name)] = (result.p_value, result.low, result.high)
    return looks


def arm_stats(store: ExperimentStore, experiment: Experiment) -> dict[str, Arm]:
    """Per arm: the per-user values of the experiment's metric."""
    sums = store.per_user(experiment.id, experiment.metric)
    return {arm.name: Arm.of_sums(*sums.get(arm.name, (0, 0.0, 0.0)))
            for arm in experiment.arms}


def finite(value: float) -> float | None:
    """JSON has no infinity: an unbounded end of an interval is null."""
    return value if math.isfinite(value) else None
