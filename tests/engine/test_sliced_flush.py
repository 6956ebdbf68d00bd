"""The item flush runs in slices that let requests in; the state after it does not depend on
how it was sliced, nor on the requests that read in between."""

from __future__ import annotations

import numpy as np
import pytest

from freshrec.data import generate_shop
from freshrec.engine import Engine
from freshrec.records import Event, Item
from freshrec.serving.results import Filters

from .shops import small_config


@pytest.fixture(scope="module")
def fitted() -> tuple[bytes, list[Item | Event]]:
    shop = list(generate_shop(n_users=120, n_items=80, n_events=2_500, seed=7).stream())
    split = len(shop) // 2
    engine = Engine(small_config(item_batch_size=16))
    engine.fit(shop[:split])
    return engine.snapshot(), shop[split:]


def state_of(engine: Engine, users: list[str]) -> tuple[object, ...]:
    state = engine.state
    answers = [[(r.item, r.score, r.source) for r in engine.rank(user, k=10)[0]]
               for user in users]
    return (answers, state.als.user_factors.tobytes(), state.als.item_factors.tobytes(),
            state.als.user_gram.tobytes(), state.als.item_gram.tobytes(),
            sorted(state.memory.dirty_users), sorted(state.memory.dirty_items))


def test_a_flush_in_slices_with_reads_between_them_ends_as_one_in_a_single_hold(
        fitted: tuple[bytes, list[Item | Event]]) -> None:
    snapshot, rest = fitted
    whole = Engine.restore(snapshot)
    whole.flush_slice_ms = float("inf")
    whole.apply_many(rest)

    sliced = Engine.restore(snapshot)
    users = sorted({r.user for r in rest if isinstance(r, Event)})
    reads_mid_flush = 0
    for n, record in enumerate(rest):
        if isinstance(record, Item):
            sliced.add_item(record)
            continue
        sliced.learner.learn_one(record)
        while sliced.learner.flushing:
            sliced.learner.flush_some(0.0)  # one solve per slice
            # What a request arriving between two slices reads: it must change nothing.
            sliced.rank(users[n % len(users)], k=10, filters=Filters(exclude_seen=n % 2 == 0))
            reads_mid_flush += 1
    assert reads_mid_flush > 100
    assert state_of(sliced, users) == state_of(whole, users)


def test_a_snapshot_taken_during_a_flush_holds_the_finished_flush(
        fitted: tuple[bytes, list[Item | Event]]) -> None:
    snapshot, rest = fitted
    engine = Engine.restore(snapshot)
    events = iter(r for r in rest if isinstance(r, Event))
    while not engine.learner.flushing:
        engine.learner.learn_one(next(events))
    engine.learner.flush_some(0.0)
    assert engine.learner.flushing
    taken = Engine.restore(engine.snapshot())
    assert not engine.learner.flushing and not engine.state.memory.dirty_items
    users = sorted({r.user for r in rest if isinstance(r, Event)})
    assert state_of(taken, users) == state_of(engine, users)
    assert np.any(engine.state.als.item_factors)
