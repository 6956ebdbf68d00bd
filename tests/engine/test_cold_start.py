"""A new item is recommendable the moment it arrives, from its content."""

from __future__ import annotations

import numpy as np

from freshrec.engine import Engine
from freshrec.records import Event, Item
from freshrec.serving.results import Filters

from .shops import GARDEN, KITCHEN, catalog, history, small_config


def test_new_item_gets_a_vector_from_its_text(trained: Engine) -> None:
    trained.add_item(Item(id="g-new", title="garden rake and hose for soil", timestamp=2e6))
    index = trained.state.items.get("g-new")
    assert trained.state.als.has_item[index]
    vector = trained.state.als.item_factors[index]
    garden = trained.state.als.item_factors[[trained.state.items.get(i) for i in GARDEN]]
    kitchen = trained.state.als.item_factors[[trained.state.items.get(i) for i in KITCHEN]]

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))

    assert np.mean([cosine(vector, g) for g in garden]) > np.mean(
        [cosine(vector, k) for k in kitchen])


def test_similar_items_of_a_brand_new_item_come_from_content(trained: Engine) -> None:
    trained.add_item(Item(id="k-new", title="kitchen knife steel pan", timestamp=2e6))
    answer = trained.similar("k-new", k=3)
    assert answer and all(r.item in KITCHEN for r in answer)
    assert {r.source for r in answer} == {"content"}


def test_new_item_can_be_recommended_before_anyone_touched_it(trained: Engine) -> None:
    trained.add_item(Item(id="g-new", title="garden hose rake soil plant", timestamp=2e6))
    user = "g-user3"
    answer = trained.recommend(user, k=10, filters=Filters(exclude_seen=True))
    assert "g-new" in [r.item for r in answer]
    assert dict((r.item, r.source) for r in answer)["g-new"] == "content"


def test_new_item_vector_moves_with_its_first_events() -> None:
    # Item vectors are re-solved every ``item_batch_size`` dirty items, by position:
    # with batches of one, each event's item is re-solved as it is learned.
    trained = Engine(small_config(item_batch_size=1))
    trained.fit([*catalog(), *history()])
    trained.add_item(Item(id="odd", title="unrelated words entirely", timestamp=2e6))
    index = trained.state.items.get("odd")
    before = trained.state.als.item_factors[index].copy()
    for n in range(6):
        trained.learn_one(Event(user=f"g-user{n}", item="odd", type="purchase",
                                timestamp=2e6 + n))
    after = trained.state.als.item_factors[index]
    garden_user = trained.state.als.user_vector(trained.state.users.get("g-user0"))
    assert float(after @ garden_user) > float(before @ garden_user)


def test_a_catalog_batch_gives_each_item_what_adding_it_alone_gives(trained: Engine) -> None:
    # One text encoding for the whole batch (the learner's path for a catalog batch)
    # must not change any item's vector: the service and the replay must agree.
    alone = Engine.restore(trained.snapshot())
    items = [Item(id=f"batch-{n}", title=f"garden hose {n} kitchen pan", timestamp=2e6 + n)
             for n in range(20)]
    items += [Item(id="batch-3", title="kitchen knife steel", timestamp=2e6 + 30),  # changed
              Item(id=GARDEN[0], title="garden rake renamed", timestamp=2e6 + 31)]  # known
    for item in items:
        alone.add_item(item)
    trained.add_items(items)
    for state in (alone.state, trained.state):
        assert state.als.has_item[state.items.get("batch-19")]
    for name in ("item_factors", "item_prior", "has_prior", "has_item"):
        assert np.array_equal(getattr(alone.state.als, name), getattr(trained.state.als, name))
    rows = [alone.state.items.get(item.id) for item in items]
    assert (alone.state.content_index.similarity(np.array(rows), [(rows[0], 1.0)]).tolist()
            == trained.state.content_index.similarity(np.array(rows), [(rows[0], 1.0)]).tolist())
