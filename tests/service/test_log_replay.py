"""The log is the whole truth, in the service: a snapshot plus the log after it rebuild
the engine a live runtime serves from, exactly.

The live runtime runs as ``freshrec serve`` runs it (SQLite files, the learner thread
applying the log, impressions logged in the background), serving and ingesting a
generated shop; half way it writes a snapshot. A second engine is then built from that
snapshot file and the log's records after its position, while the first one still
serves: both must give the same lists, scores and sources to the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from freshrec.data import generate_shop
from freshrec.engine import Engine
from freshrec.records import Event, Item
from freshrec.service.runtime import SNAPSHOT_NAME, Runtime, Stores
from freshrec.service.settings import Settings
from freshrec.serving.results import Filters

CUT = Filters(exclude=frozenset({"sku-00001"}))  # not natural: it logs no impression


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Runtime]:
    # Nothing in the background but the learner: no training, no timed snapshot.
    settings = Settings(min_train_events=10**9, snapshot_interval_s=10**9,
                        snapshot_every_events=10**9)
    runtime = Runtime(settings, Stores.embedded(tmp_path / "data"))
    runtime.recover()
    yield runtime
    runtime.stop()


def stream(runtime: Runtime, records: list[Item | Event]) -> None:
    """Ingest ``records`` in small batches, with requests before each batch's events."""
    items = [record for record in records if isinstance(record, Item)]
    if items:
        runtime.ingest_items(items)
    events = [record for record in records if isinstance(record, Event)]
    for start in range(0, len(events), 20):
        batch = events[start:start + 20]
        assert runtime.reflect_acknowledged()
        for n, event in enumerate(batch[:4]):
            runtime.recommend(event.user, 10, CUT if n == 3 else Filters(), f"r{start}-{n}")
            runtime.recommend(f"visitor-{start % 11}", 10, Filters())  # a first visit
        runtime.ingest_events(batch)


def caught_up(runtime: Runtime) -> None:
    assert runtime.impressions.flush(timeout=30)
    assert runtime.follower.wait_for(runtime.stores.events.last_position(), timeout=60)


def answers(engine: Engine, users: list[str]) -> list[list[tuple[str, float, str]]]:
    out = []
    for user in users:
        for filters in (Filters(), Filters(exclude_seen=False), CUT):
            items, _ = engine.rank(user, 10, filters)
            out.append([(r.item, r.score, r.source) for r in items])
    out.append([(r.item, r.score, r.source) for r in engine.similar("sku-00003", 10)])
    out.append([(r.item, r.score, r.source) for r in engine.trending(10)])
    return out


def test_a_snapshot_and_the_log_after_it_rebuild_the_live_engine(live: Runtime) -> None:
    shop = generate_shop(n_users=80, n_items=60, n_events=3000, seed=11)
    records: list[Item | Event] = [*shop.items, *shop.events]
    half = len(shop.items) + len(shop.events) // 2
    stream(live, records[:half])
    caught_up(live)
    live.snapshot()
    stream(live, records[half:])
    caught_up(live)

    (info,) = live.stores.snapshots.list(SNAPSHOT_NAME)
    replica = Engine.restore(live.stores.snapshots.load(info))
    after = list(live.stores.events.iterate_records(after=int(info.log_position or 0)))
    kinds = {type(record).__name__ for _, record in after}
    assert kinds == {"Event", "Impression"}, kinds  # the replay has lessons to relearn
    for _, record in after:
        replica.apply(record)

    users = [*sorted({event.user for event in shop.events})[:25], "visitor-3", "nobody"]
    assert answers(replica, users) == answers(live.engine, users)
    state, mirror = live.engine.state, replica.state
    assert mirror.ranker.weights.tolist() == state.ranker.weights.tolist()
    assert mirror.ranker.updates == state.ranker.updates > 0
    assert mirror.cold_ranker.weights.tolist() == state.cold_ranker.weights.tolist()
    assert mirror.events_seen == state.events_seen == len(shop.events)


def test_requests_leave_the_model_state_as_it_was(live: Runtime) -> None:
    shop = generate_shop(n_users=40, n_items=30, n_events=600, seed=12)
    stream(live, [*shop.items, *shop.events])
    caught_up(live)
    live.follower.stop()  # the one writer: without it, nothing may change the state
    before = live.engine.snapshot()
    for user in [*sorted({event.user for event in shop.events})[:20], "visitor-1"]:
        live.recommend(user, 10, Filters())
        live.engine.similar(shop.items[0].id, 5)
        live.engine.trending(5)
        live.engine.recommend_for_session([shop.items[1].id], 5)
    assert live.engine.snapshot() == before
    assert live.impressions.flush(timeout=30)  # what they showed went to the log instead
    last = live.stores.events.last_position()
    assert type(live.stores.events.read_records(after=last - 1)[0][1]).__name__ == "Impression"
