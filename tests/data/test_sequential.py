"""The sequential shop: deterministic, and its next item told by the order of the last few."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from freshrec.data import generate_sequential_shop
from freshrec.data.sequential import SequentialShop, simulate_sequential_shop
from freshrec.evaluation.datasets import DatasetSource
from freshrec.evaluation.plan import build_plan

SIZE = {"n_users": 800, "n_items": 400, "n_events": 20_000}
K = 10
RECENT = 3


@pytest.fixture(scope="module")
def shop() -> SequentialShop:
    return simulate_sequential_shop(**SIZE, seed=3)


def test_the_same_seed_gives_the_same_shop(shop: SequentialShop) -> None:
    again = generate_sequential_shop(**SIZE, seed=3)
    assert again.events == shop.dataset.events and again.items == shop.dataset.items
    assert generate_sequential_shop(**SIZE, seed=4).events != shop.dataset.events


def test_shape_of_the_stream(shop: SequentialShop) -> None:
    dataset = shop.dataset
    assert dataset.name == "sequential-shop" and dataset.basket_key is None
    assert len(dataset.events) == SIZE["n_events"] and len(dataset.items) == SIZE["n_items"]
    assert len({e.id for e in dataset.events}) == SIZE["n_events"]
    times = [e.timestamp for e in dataset.events]
    assert times == sorted(times)
    assert set(Counter(e.type for e in dataset.events)) == {"view", "purchase"}
    assert len({(e.user, e.item) for e in dataset.events}) == SIZE["n_events"]  # no repeats
    launch = {item.id: item.timestamp for item in dataset.items}
    assert all(e.timestamp >= launch[e.item] for e in dataset.events)
    assert all(5 <= len(path) <= 12 for path in shop.paths)


def test_titles_carry_their_path(shop: SequentialShop) -> None:
    titles = {item.id: item.title for item in shop.dataset.items}
    for path in shop.paths:
        own = [titles[i] for i in path if i not in shop.hubs]
        name = own[0].split()[:2]
        assert all(title.split()[:2] == name for title in own)


def test_hubs_sit_inside_several_paths_and_their_predecessor_tells_what_follows(
        shop: SequentialShop) -> None:
    assert len(shop.hubs) >= 10
    for path in shop.paths:
        assert path[0] not in shop.hubs and path[-1] not in shop.hubs
    # in the stream: after (item before the hub, hub) the majority successor seen in the
    # first half predicts the second half's far better than the hub's alone
    history: dict[str, list[str]] = defaultdict(list)
    half = len(shop.dataset.events) // 2
    by_pair: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_hub: dict[str, Counter[str]] = defaultdict(Counter)
    hits_pair = hits_hub = scored = 0
    for n, event in enumerate(shop.dataset.events):
        seen = history[event.user]
        if len(seen) >= 2 and seen[-1] in shop.hubs:
            pair = (seen[-2], seen[-1])
            if n < half:
                by_pair[pair][event.item] += 1
                by_hub[seen[-1]][event.item] += 1
            elif pair in by_pair:
                scored += 1
                hits_pair += by_pair[pair].most_common(1)[0][0] == event.item
                hits_hub += by_hub[seen[-1]].most_common(1)[0][0] == event.item
        seen.append(event.item)
    assert scored >= 200
    assert hits_pair / scored > 0.45 and hits_pair > 1.5 * hits_hub  # 0.55 and 0.30


def test_the_order_of_the_last_few_predicts_the_next_item_far_better_than_co_occurrence(
        shop: SequentialShop) -> None:
    places: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for p, path in enumerate(shop.paths):
        for position, item in enumerate(path):
            places[item].append((p, position))

    def next_steps(history: list[str]) -> list[str]:
        """The next steps not met yet of the path of each of the last few items: first the
        next one of each, the latest item's first, then the one after (users skip a step)."""
        seen, ahead = set(history), []
        for item in reversed(history[-RECENT:]):
            before = set(history[:history.index(item)])
            for p, position in places[item]:
                path = shop.paths[p]
                if len(places[item]) > 1 and path[position - 1] not in before:
                    continue  # a hub: only the path the user came from goes on
                ahead.append([step for step in path[position + 1:] if step not in seen][:2])
        found = [steps[n] for n in range(2) for steps in ahead if len(steps) > n]
        return list(dict.fromkeys(found))[:K]

    co_occurrence: dict[str, Counter[str]] = defaultdict(Counter)

    def co_occurring(history: list[str]) -> list[str]:
        """The items met most often within three steps of the last item, either side."""
        seen = set(history)
        ranked = co_occurrence[history[-1]].most_common(K + len(seen))
        return [item for item, _ in ranked if item not in seen][:K]

    histories: dict[str, list[str]] = defaultdict(list)
    half = len(shop.dataset.events) // 2
    order_hits = co_hits = scored = 0
    for n, event in enumerate(shop.dataset.events):
        history = histories[event.user]
        if n < half:
            for earlier in history[-3:]:
                co_occurrence[earlier][event.item] += 1
                co_occurrence[event.item][earlier] += 1
        elif history:
            scored += 1
            order_hits += event.item in next_steps(history)
            co_hits += event.item in co_occurring(history)
        history.append(event.item)
    order, co = order_hits / scored, co_hits / scored
    assert order > 0.55, order
    assert order > 1.25 * co and order - co > 0.12, (order, co)  # 0.65 and 0.44 at seed 3


@pytest.mark.parametrize("split", [0.5, 0.8])
def test_new_items_and_new_users_arrive_after_the_split(shop: SequentialShop,
                                                        split: float) -> None:
    plan = build_plan(shop.dataset, train_fraction=split)
    assert len(plan.new_items) >= 10 and len(plan.new_users) >= 50
    launch = {item.id: item.timestamp or 0.0 for item in shop.dataset.items}
    launched_after = {e.item for step in plan.steps for e in step.events
                      if launch[e.item] > plan.split_time}
    assert launched_after and launched_after <= plan.new_items


def test_the_replay_knows_it_by_name() -> None:
    source = DatasetSource("sequential", limit=500)
    assert source.load().name == "sequential-shop" and not source.retrains_daily
