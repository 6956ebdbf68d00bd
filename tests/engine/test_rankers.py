"""Which online ranker learns from a choice, and which one orders a request."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

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


def test_each_kind_of_request_is_ordered_by_its_own_ranker(trained: Engine) -> None:
    state = trained.state
    state.ranker, state.discovery_ranker, state.cold_ranker = (
        Recording(state.ranker), Recording(state.discovery_ranker), Recording(state.cold_ranker))

    def calls() -> tuple[int, int, int]:
        return state.ranker.calls, state.discovery_ranker.calls, state.cold_ranker.calls

    trained.recommend("k-user0", k=5, filters=NATURAL)           # repeats may compete
    assert calls() == (1, 0, 0)
    trained.recommend("k-user0", k=5, filters=Filters(exclude_seen=True))
    assert calls() == (1, 1, 0)
    # Someone with no items yet: the cold and general rankers take turns.
    trained.recommend("someone-new", k=5)
    assert calls() == (2, 1, 1)


def test_a_first_visit_teaches_only_the_cold_ranker(trained: Engine) -> None:
    state = trained.state
    before = (state.ranker.updates, state.discovery_ranker.updates, state.cold_ranker.updates)
    shown = [r.item for r in trained.recommend("visitor", k=10, filters=NATURAL)]
    when = state.clock + 60.0
    for item in shown[:2]:                                   # a basket of two shown items
        trained.learn_one(Event(user="visitor", item=item, type="purchase", timestamp=when))
    after = (state.ranker.updates, state.discovery_ranker.updates, state.cold_ranker.updates)
    assert after == (before[0], before[1], before[2] + 2)


def test_first_visits_shown_the_same_list_share_one_copy(trained: Engine) -> None:
    trained.recommend("visitor-a", k=10, filters=NATURAL)
    trained.recommend("visitor-b", k=10, filters=NATURAL)
    visits = trained.learner.first_visits
    assert visits["visitor-a"].features is visits["visitor-b"].features


def test_erasure_forgets_what_an_unknown_user_was_shown(trained: Engine) -> None:
    trained.recommend("visitor", k=10, filters=NATURAL)
    assert "visitor" in trained.learner.first_visits
    trained.forget_user("visitor")
    assert "visitor" not in trained.learner.first_visits


def test_first_visit_order_takes_turns_between_the_two_rankers() -> None:
    from types import SimpleNamespace

    from freshrec.serving.sources import _first_visit_scores

    features = np.eye(4)
    state = SimpleNamespace(cold_ranker=OnlineRanker(np.array([4.0, 3.0, 2.0, 1.0])),
                            ranker=OnlineRanker(np.array([1.0, 2.0, 3.0, 4.0])))
    order = np.argsort(-_first_visit_scores(state, features), kind="stable")  # type: ignore[arg-type]
    assert order.tolist() == [0, 3, 1, 2]


def test_a_snapshot_from_before_the_newer_rankers_restores_with_them(
        trained: Engine) -> None:
    old = trained.state
    saved = dict(old.__dict__)
    del saved["discovery_ranker"], saved["cold_ranker"]
    restored = pickle.loads(pickle.dumps(old))
    restored.__setstate__(saved)
    for name in ("discovery_ranker", "cold_ranker"):
        assert np.array_equal(getattr(restored, name).weights, old.ranker.weights)
        assert getattr(restored, name) is not restored.ranker
    assert Engine(state=restored).recommend("k-user0", k=3)


def test_what_users_were_shown_is_kept_for_a_bounded_number_of_them(
        trained: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from freshrec.learner import online

    monkeypatch.setattr(online, "MAX_IMPRESSIONS", 3)
    monkeypatch.setattr(online, "MAX_FIRST_VISITS", 2)
    for n in range(5):
        trained.recommend(f"k-user{n}", k=3, filters=NATURAL)
        trained.recommend(f"visitor-{n}", k=3, filters=NATURAL)
    users = trained.state.users
    assert list(trained.learner.impressions) == [users.get(f"k-user{n}") for n in (2, 3, 4)]
    assert list(trained.learner.first_visits) == ["visitor-3", "visitor-4"]
