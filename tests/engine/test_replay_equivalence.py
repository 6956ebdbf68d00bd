"""The log is the whole truth: a snapshot plus the records after it rebuild the live engine.

Engine A serves and learns as a service would (a request before each user's event,
its impression logged and applied in order); engine B is A's snapshot from half way
plus every record A logged after it. Both must then answer alike, to the bit.
"""

from __future__ import annotations

import pickle

import msgspec
import numpy as np
import pytest

from freshrec.config import EngineConfig
from freshrec.data import generate_shop
from freshrec.engine import Engine
from freshrec.records import Event, Impression, Item
from freshrec.serving.results import Filters

Record = Item | Event | Impression
# A list cut by an exclude list is not natural: it teaches the rankers nothing (its record,
# if any, only carries the user's vector the request solved).
EXCLUDING = Filters(exclude=frozenset({"sku-00000", "sku-00001", "sku-00002"}))


def small_engine_config() -> EngineConfig:
    # Small batches, so that many vector flushes fall on both sides of the snapshot.
    return EngineConfig(factors=8, als_iterations=5, num_threads=1, item_batch_size=16,
                        content_min_events=1, warmup_fraction=0.3, warmup_max_events=600)


def serve(engine: Engine, stream: list[Item | Event], log: list[Record]) -> None:
    """Run ``stream`` through ``engine`` as the service does, appending every record
    it learns from to ``log`` in the order it applies them."""
    for n, record in enumerate(stream):
        if isinstance(record, Event):
            # Known users, new users (a first visit) and a visitor who never acts; some
            # requests cut by an exclude list.
            for user, filters in ((record.user, EXCLUDING if n % 5 == 0 else Filters()),
                                  (f"visitor-{n % 7}", Filters(exclude_seen=False))):
                _, impression = engine.rank(user, k=10, filters=filters)
                if impression is not None:
                    log.append(impression)
                    engine.apply(impression)
        log.append(record)
        engine.apply(record)


def answers(engine: Engine, users: list[str]) -> list[list[tuple[str, float, str]]]:
    out = []
    for user in users:
        for filters in (Filters(), Filters(exclude_seen=False), EXCLUDING):
            ranked, _ = engine.rank(user, k=10, filters=filters)
            out.append([(r.item, r.score, r.source) for r in ranked])
    return out


@pytest.fixture(scope="module")
def shop() -> list[Item | Event]:
    return list(generate_shop(n_users=120, n_items=80, n_events=3_000, seed=5).stream())


def test_snapshot_plus_the_records_after_it_rebuild_the_live_engine(
        shop: list[Item | Event]) -> None:
    fitted = sum(1 for _ in shop) * 4 // 10
    live = Engine(small_engine_config())
    live.fit(shop[:fitted])
    rest = shop[fitted:]
    middle = len(rest) // 2
    log: list[Record] = []
    serve(live, rest[:middle], log)
    snapshot, logged_before = live.snapshot(), len(log)
    serve(live, rest[middle:], log)

    replica = Engine.restore(snapshot)
    after = log[logged_before:]
    assert any(isinstance(r, Impression) and r.first_visit for r in after)
    assert any(isinstance(r, Impression) and not r.first_visit and r.items for r in after)
    assert any(isinstance(r, Impression) and not r.items for r in after)
    for record in after:
        replica.apply(record)

    users = sorted({r.user for r in shop if isinstance(r, Event)})
    asked = [*users, "visitor-3", "nobody-ever"]
    assert answers(replica, asked) == answers(live, asked)
    a, b = live.state, replica.state
    for name in ("ranker", "discovery_ranker", "cold_ranker"):
        assert np.array_equal(getattr(a, name).weights, getattr(b, name).weights), name
    assert a.cold_ranker.updates > 0 and a.ranker.updates > 0
    assert np.array_equal(a.als.user_factors, b.als.user_factors)
    assert np.array_equal(a.als.item_factors, b.als.item_factors)
    assert pickle.dumps(a.memory.rng) == pickle.dumps(b.memory.rng)


def test_requests_leave_the_model_state_byte_identical(shop: list[Item | Event]) -> None:
    engine = Engine(small_engine_config())
    engine.fit(shop[:2_000])
    user = next(r.user for r in shop[:2_000] if isinstance(r, Event))
    engine.learn_one(Event(user=user, item="sku-00003", type="purchase",
                           timestamp=engine.state.clock))
    assert engine.state.users.get(user) in engine.learner.dirty_users  # solved on the fly
    # A catalog change whose shared signals the learner has not rebuilt yet.
    engine.learner.add_item(Item(id="brand-new", title="new"), refresh=False)
    before = pickle.dumps(engine.state)
    for filters in (Filters(), Filters(exclude_seen=False), EXCLUDING,
                    Filters(category="kitchen")):
        for who in (user, "stranger"):
            engine.rank(who, k=10, filters=filters)
    engine.recommend_for_session(["sku-00001", "sku-00002"], k=5)
    engine.similar("sku-00001", k=5)
    engine.trending(k=5)
    engine.trending(k=5, category="kitchen")
    assert pickle.dumps(engine.state) == before


def test_an_impression_record_keeps_only_what_the_model_still_knows(
        shop: list[Item | Event]) -> None:
    engine = Engine(small_engine_config())
    engine.fit(shop[:2_000])
    user = next(r.user for r in shop[:2_000] if isinstance(r, Event))
    _, shown = engine.rank(user, k=10, filters=Filters(exclude_seen=False))
    assert shown is not None and not shown.first_visit and shown.user == user
    rows = np.frombuffer(shown.features, dtype=np.float32).reshape(-1, shown.n_features)
    assert rows.shape[0] == len(shown.items) >= 10
    # An item the catalog no longer has is dropped with its row, not misaligned.
    record = msgspec.structs.replace(shown, items=("gone", *shown.items[1:]))
    engine.learn_impression(record)
    kept = engine.learner.impressions[engine.state.users.get(user)]
    assert kept.candidates.tolist() == [engine.state.items.get(i) for i in shown.items[1:]]
    assert np.array_equal(kept.features, rows[1:])
    # A user the model does not know (erased since) teaches nothing.
    before = len(engine.learner.impressions)
    engine.learn_impression(msgspec.structs.replace(shown, user="erased-since"))
    assert len(engine.learner.impressions) == before
    with pytest.raises(ValueError, match="feature rows"):
        engine.learn_impression(msgspec.structs.replace(shown, items=shown.items[1:]))


def test_a_snapshot_from_before_the_learner_memory_was_in_it_still_restores(
        shop: list[Item | Event]) -> None:
    engine = Engine(small_engine_config())
    engine.fit(shop[:2_000])
    saved = dict(engine.state.__dict__)
    del saved["memory"]
    old = pickle.loads(pickle.dumps(engine.state))
    old.__setstate__(saved)
    restored = Engine(state=old)
    assert not restored.learner.impressions and not restored.learner.dirty_users
    user = next(r.user for r in shop[:2_000] if isinstance(r, Event))
    assert restored.recommend(user, k=5)
    assert restored.learner.impressions


def test_a_cut_list_teaches_no_ranker_but_its_solved_vector_is_stored(
        shop: list[Item | Event]) -> None:
    engine = Engine(small_engine_config())
    engine.fit(shop[:2_000])
    user = next(r.user for r in shop[:2_000] if isinstance(r, Event))
    index = engine.state.users.get(user)
    assert index is not None
    engine.learn_one(Event(user=user, item="sku-00003", type="purchase",
                           timestamp=engine.state.clock))
    solved = engine.learner.current_user_vector(index)
    impressions = dict(engine.learner.impressions)
    _, record = engine.rank(user, k=10, filters=EXCLUDING)
    assert record is not None and record.items == () and not record.first_visit
    engine.learn_impression(record)
    assert np.array_equal(engine.state.als.user_factors[index], solved)
    assert index not in engine.learner.dirty_users
    assert dict(engine.learner.impressions) == impressions
    # Nothing stale any more: the next such request has nothing for the learner.
    assert engine.rank(user, k=10, filters=EXCLUDING)[1] is None
