"""Which online ranker learns from a choice, and which one orders a request."""

from __future__ import annotations

import pickle

import numpy as np

from freshrec.engine import Engine
from freshrec.models.ranker import OnlineRanker
from freshrec.records import Event
from freshrec.serving.results import Filters

NATURAL = Filters(exclude_seen=False)


class Recording(OnlineRanker):
    """A ranker that notes each time it is asked to score."""

    def __init__(self, ranker: OnlineRanker) -> None:
        super().__init__(ranker.prior)
        self.weights = ranker.weights.copy()
        self.calls = 0

    def score(self, features: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        self.calls += 1
        return super().score(features)


def _shown_then_bought(engine: Engine, user: str, item: str) -> None:
    """A request, then a purchase a minute later (while what was shown still counts)."""
    engine.recommend(user, k=10, filters=NATURAL)
    when = engine.state.clock + 60.0
    engine.learn_one(Event(user=user, item=item, type="purchase", timestamp=when))


def test_a_repeat_purchase_teaches_only_the_general_ranker(trained: Engine) -> None:
    general, discovery = trained.state.ranker.updates, trained.state.discovery_ranker.updates
    user = "k-user0"
    bought = trained.state.items.ids[trained.state.users.profiles[
        trained.state.users.get(user)].seen()[0]]
    for _ in range(5):
        _shown_then_bought(trained, user, bought)
    assert trained.state.ranker.updates == general + 5
    assert trained.state.discovery_ranker.updates == discovery


def test_a_first_purchase_teaches_both_rankers(trained: Engine) -> None:
    general, discovery = trained.state.ranker.updates, trained.state.discovery_ranker.updates
    shown = trained.recommend("k-user0", k=10, filters=NATURAL)
    profile = trained.state.users.profiles[trained.state.users.get("k-user0")]
    owned = {trained.state.items.ids[i] for i in profile.seen()}
    new = next(r.item for r in shown if r.item not in owned)
    trained.learn_one(Event(user="k-user0", item=new, type="purchase",
                            timestamp=trained.state.clock + 60.0))
    assert trained.state.ranker.updates == general + 1
    assert trained.state.discovery_ranker.updates == discovery + 1


def test_a_request_without_the_users_items_is_ordered_by_the_discovery_ranker(
        trained: Engine) -> None:
    state = trained.state
    state.ranker, state.discovery_ranker = Recording(state.ranker), Recording(
        state.discovery_ranker)
    trained.recommend("k-user0", k=5, filters=NATURAL)           # repeats may compete
    assert (state.ranker.calls, state.discovery_ranker.calls) == (1, 0)
    trained.recommend("k-user0", k=5, filters=Filters(exclude_seen=True))
    assert (state.ranker.calls, state.discovery_ranker.calls) == (1, 1)
    # Someone with no items yet is ordered by the general ranker: the discovery ranker
    # learns from users choosing beyond what they have, which scored lower for them.
    trained.recommend("someone-new", k=5)
    assert (state.ranker.calls, state.discovery_ranker.calls) == (2, 1)


def test_a_snapshot_from_before_the_discovery_ranker_restores_with_one(
        trained: Engine) -> None:
    old = trained.state
    saved = dict(old.__dict__)
    del saved["discovery_ranker"]
    restored = pickle.loads(pickle.dumps(old))
    restored.__setstate__(saved)
    assert np.array_equal(restored.discovery_ranker.weights, old.ranker.weights)
    assert restored.discovery_ranker is not restored.ranker
    assert Engine(state=restored).recommend("k-user0", k=3)
