"""The synthetic shop: deterministic, fast, and carrying the signals it promises."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from freshrec.data import Dataset, ShopSimulator, baskets, generate_shop
from freshrec.data.synthetic import DAY, DEFAULT_START, VOCABULARY
from freshrec.records import Event, Item

N_EVENTS = 60_000


@pytest.fixture(scope="module")
def simulator() -> ShopSimulator:
    return ShopSimulator.spanning(N_EVENTS, seed=7)


@pytest.fixture(scope="module")
def events(simulator: ShopSimulator) -> list[Event]:
    return simulator.next_events(N_EVENTS)


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return generate_shop(n_users=300, n_items=200, n_events=20_000, seed=3)


def test_generate_shop_is_deterministic_for_a_seed(shop: Dataset) -> None:
    again = generate_shop(n_users=300, n_items=200, n_events=20_000, seed=3)
    assert again.events == shop.events
    assert again.items == shop.items
    other = generate_shop(n_users=300, n_items=200, n_events=20_000, seed=4)
    assert other.events != shop.events


def test_shape_of_a_generated_shop(shop: Dataset) -> None:
    assert shop.name == "synthetic-shop" and shop.basket_key == "session"
    assert len(shop.events) == 20_000
    assert len({e.id for e in shop.events}) == 20_000
    times = [e.timestamp for e in shop.events]
    assert times == sorted(times)
    assert times[0] > DEFAULT_START
    assert 28 * DAY < times[-1] - DEFAULT_START < 32 * DAY  # spans about the 30 days asked
    assert len(shop.items) == 200 and len({i.id for i in shop.items}) == 200
    assert [i.timestamp for i in shop.items] == sorted(i.timestamp for i in shop.items)
    assert sum(1 for i in shop.items if i.timestamp > DEFAULT_START) == 40  # 20% launched
    assert set(Counter(e.type for e in shop.events)) == {"view", "click", "add_to_cart",
                                                         "purchase"}
    assert shop.report.as_dict() == {"rows_read": 20_000, "rows_kept": 20_000, "dropped": {}}


def test_a_default_shop_has_every_event_asked_for_with_unique_ids() -> None:
    """The demo's and benchmarks' size: ingest deduplicates by id, so a repeated id
    would silently shrink what they send. (How fast it is generated is not a test's
    business: the machines are noisy.)"""
    events = generate_shop(n_events=100_000).events
    assert len(events) == 100_000
    assert len({event.id for event in events}) == 100_000


def test_users_mostly_stay_in_their_categories(simulator: ShopSimulator,
                                               events: list[Event]) -> None:
    shift = simulator.shift_time
    assert shift is not None
    before = [e for e in events if e.timestamp < shift]
    inside = [simulator.category_of(e.item) in simulator.preferred_categories(e.user, 0.0)
              for e in before]
    assert np.mean(inside) > 0.8


def test_taste_shift_is_visible(simulator: ShopSimulator, events: list[Event]) -> None:
    shift = simulator.shift_time
    assert shift is not None
    # Sessions started before the shift finish after it; skip the first hour.
    after = [e for e in events if e.timestamp > shift + 3600]
    old = np.mean([simulator.category_of(e.item) in simulator.preferred_categories(e.user, 0.0)
                   for e in after])
    new = np.mean([simulator.category_of(e.item)
                   in simulator.preferred_categories(e.user, shift) for e in after])
    assert old < 0.25 and new > 0.65
    before = [e for e in events if e.timestamp < shift]
    garden = [np.mean([simulator.category_of(e.item) == "garden" for e in part])
              for part in (before, after)]
    assert garden[1] > 2 * garden[0]


def test_no_event_before_an_item_launches(simulator: ShopSimulator,
                                          events: list[Event]) -> None:
    launch = {item.id: item.timestamp for item in simulator.items()}
    assert all(e.timestamp >= launch[e.item] for e in events)
    launched = {i for i, t in launch.items() if t > simulator.start}
    assert len(launched) == 80
    assert len(launched & {e.item for e in events}) >= 75  # nearly all get events
    # They get a novelty boost: more events in their first two days than two days later.
    fresh = sum(1 for e in events if e.item in launched and e.timestamp < launch[e.item] + 2 * DAY)
    later = sum(1 for e in events if e.item in launched
                and launch[e.item] + 4 * DAY <= e.timestamp < launch[e.item] + 6 * DAY)
    assert fresh > 1.5 * later


def test_popularity_is_skewed(events: list[Event]) -> None:
    counts = sorted(Counter(e.item for e in events).values(), reverse=True)
    top = sum(counts[: len(counts) // 10])
    assert top / sum(counts) > 0.35


def test_funnels_follow_view_click_cart_purchase(events: list[Event]) -> None:
    earlier: defaultdict[tuple[str | None, str], set[str]] = defaultdict(set)
    required = {"click": "view", "add_to_cart": "click", "purchase": "add_to_cart"}
    for event in events:
        key = (event.session, event.item)
        if event.type in required:
            assert required[event.type] in earlier[key], event
        earlier[key].add(event.type)
    sessions = list(baskets(e for e in events if e.type == "purchase"))
    assert all(len({e.timestamp for e in s}) == 1 for s in sessions)  # one checkout each


def test_content_carries_the_category() -> None:
    simulator = ShopSimulator(n_users=10, n_items=300, seed=1)
    words = {name: {w for group in groups for phrase in group for w in phrase.split()}
             for name, groups in VOCABULARY.items()}
    correct = 0
    for item in simulator.items():
        tokens = set(item.content.lower().replace(".", " ").replace(",", " ").split())
        scores = {name: len(tokens & vocab) for name, vocab in words.items()}
        correct += max(scores, key=scores.__getitem__) == item.categories[0]
    assert correct == 300


def test_stream_sends_items_before_their_events(shop: Dataset) -> None:
    known: set[str] = set()
    for record in shop.stream():
        if isinstance(record, Item):
            known.add(record.id)
        else:
            assert record.item in known


def test_live_api_continues_where_it_stopped() -> None:
    start = 1_800_000_000.0
    sim = ShopSimulator(n_users=50, n_items=40, seed=2, start=start, sessions_per_hour=3600,
                        launch_window=(60.0, 600.0), shift_at=300.0)
    first = sim.events_until(start + 120)
    second = sim.events_until(start + 240)
    assert first and second
    assert all(e.timestamp <= start + 120 for e in first)
    assert all(start + 120 < e.timestamp <= start + 240 for e in second)
    assert [e.id for e in first + second] == [f"ev-{n}" for n in range(len(first + second))]
    assert sim.items(until=start) == [i for i in sim.items() if i.timestamp == start]
    fresh = sim.launched_between(start, start + 600)
    assert len(fresh) == 8 and all(start + 60 <= i.timestamp <= start + 600 for i in fresh)
    assert sim.launched_between(start + 600, start + 9999) == []
    # After an idle hour, asking at "now" resumes there instead of replaying the hour.
    now = start + 3600 + 240
    batch = sim.next_events(50, now=now)
    assert now <= batch[0].timestamp < now + 60
    assert sim.next_events(1, now=now)[0].timestamp >= batch[-1].timestamp  # clock is ahead


def test_same_calls_same_stream() -> None:
    a = ShopSimulator(n_users=30, n_items=30, seed=5)
    b = ShopSimulator(n_users=30, n_items=30, seed=5)
    assert a.next_events(100) + a.next_events(100) == b.next_events(200)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="n_categories"):
        ShopSimulator(n_categories=99)
    with pytest.raises(ValueError, match="surge_category"):
        ShopSimulator(n_categories=1)
    with pytest.raises(ValueError, match="one item per category"):
        ShopSimulator(n_items=3)
