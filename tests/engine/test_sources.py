"""Each source updates online, event by event."""

from __future__ import annotations

import numpy as np
import pytest

from freshrec.config import DAY
from freshrec.engine import Engine
from freshrec.models.cooccurrence import ItemCooccurrence
from freshrec.models.trending import DecayedPopularity
from freshrec.records import Event, Item
from freshrec.serving.results import Filters

from .shops import GARDEN, KITCHEN, small_config


def test_decayed_popularity_prefers_recent_events() -> None:
    trend = DecayedPopularity(half_life=DAY)
    for _ in range(3):
        trend.learn_one(0, 1.0, 0.0)          # three old events
    trend.learn_one(1, 1.0, 3 * DAY)          # one fresh event, three half-lives later
    scores = trend.scores(now=3 * DAY, n_items=2)
    assert scores[1] > scores[0]
    assert np.isclose(scores[0], 3 / 8)


def test_decayed_popularity_survives_long_streams_without_overflow() -> None:
    trend = DecayedPopularity(half_life=1.0)
    for t in range(0, 5000, 10):
        trend.learn_one(t % 3, 1.0, float(t))
    scores = trend.scores(now=5000.0, n_items=3)
    assert np.all(np.isfinite(scores)) and scores.max() > 0


def test_trending_per_category_follows_the_latest_events() -> None:
    engine = Engine(small_config())
    for item in (Item(id="a", categories=("x",)), Item(id="b", categories=("x",)),
                 Item(id="c", categories=("y",))):
        engine.add_item(item)
    for t, item in enumerate(["a", "a", "c", "c", "c", "b", "b", "b"]):
        engine.learn_one(Event(user=f"u{t}", item=item, type="view", timestamp=DAY * t))
    assert [r.item for r in engine.trending(k=2, category="x")] == ["b", "a"]
    assert engine.trending(k=1)[0].item == "b"
    assert engine.trending(k=3, category="y")[0].item == "c"


def test_cooccurrence_counts_pairs_from_recent_items_once_per_event() -> None:
    model = ItemCooccurrence(window=2, transition_span=1)
    model.learn_one(0, [])
    model.learn_one(1, [(0, 0.0)])
    model.learn_one(2, [(0, 0.0), (1, 0.0)])
    assert model.neighbors.get(2, 1) == 1.0          # adjacent
    assert model.neighbors.get(2, 0) < 1.0           # further back weighs less
    assert model.transitions.get(1, 2) == 1.0        # directed: 1 then 2
    assert model.transitions.get(2, 1) == 0.0


def test_cooccurrence_neighbour_lists_stay_capped() -> None:
    model = ItemCooccurrence(window=50, max_neighbors=5)
    recent: list[tuple[int, float]] = []
    for item in range(40):
        model.learn_one(item, recent)
        recent.append((item, 0.0))
    assert max(len(row) for row in model.neighbors.rows) <= 10


def test_similar_items_come_from_cooccurrence_online() -> None:
    engine = Engine(small_config())
    for n in range(5):
        engine.learn_one(Event(user=f"u{n}", item="tea", type="view", timestamp=n))
        engine.learn_one(Event(user=f"u{n}", item="cup", type="view", timestamp=n + 0.5))
    answer = engine.similar("tea", k=1)
    assert [(r.item, r.source) for r in answer] == [("cup", "cooccurrence")]


def test_user_vector_moves_with_each_event(trained: Engine) -> None:
    user = trained.state.users.get("k-user0")
    before = trained.state.als.user_factors[user].copy()
    for item in GARDEN:
        trained.learn_one(Event(user="k-user0", item=item, type="purchase", timestamp=1e6))
    stored = trained.state.als.user_factors[user].copy()
    _, shown = trained.rank("k-user0", k=1)
    # A request solves the vector behind the user's events on the fly and stores nothing;
    # the learner stores that same vector when it applies the request's impression.
    assert np.array_equal(trained.state.als.user_factors[user], stored)
    solved = trained.learner.current_user_vector(user)
    assert solved is not None and shown is not None
    trained.learn_impression(shown)
    after = trained.state.als.user_factors[user]
    assert np.array_equal(after, solved) and not np.allclose(before, after)
    garden = [trained.state.items.get(i) for i in GARDEN]
    kitchen = [trained.state.items.get(i) for i in KITCHEN]
    scores = trained.state.als.item_scores(after)
    assert scores[garden].mean() > scores[kitchen].mean()


def test_recommendations_reflect_an_event_at_once(trained: Engine) -> None:
    before = [r.item for r in trained.recommend("newcomer", k=5)]
    trained.learn_one(Event(user="newcomer", item="g0", type="purchase", timestamp=1e6))
    after = trained.recommend("newcomer", k=5, filters=Filters(exclude_seen=True))
    assert before != [r.item for r in after]
    assert all(r.item in GARDEN for r in after[:3])


def test_content_index_rows_agree_whether_in_base_or_overlay() -> None:
    from freshrec.models.content import ContentEncoder, ContentIndex

    documents = ["red wool scarf", "blue hat", "garden hose rake", "red hat wool", "x y z"]
    encoder = ContentEncoder(n_features=2**12)
    encoder.fit(documents)
    index = ContentIndex(encoder)
    for n, document in enumerate(documents):
        index.set(n, document)
    items, context = np.arange(5), [(0, 1.0), (1, 0.5)]
    overlay_only = index.similarity(items, context)
    index.install(index.encode(documents[:3]))       # part base, part overlay
    mixed = index.similarity(items, context)
    index.install(index.encode(documents))           # all base
    base_only = index.similarity(items[::-1], context)[::-1]
    assert np.allclose(overlay_only, mixed) and np.allclose(mixed, base_only)
    assert overlay_only[3] > overlay_only[1] > overlay_only[2] == 0.0


def test_tree_ranker_fast_path_matches_the_library() -> None:
    from freshrec.models.ranker import OnlineRanker, TreeRanker

    rng = np.random.default_rng(0)
    features = rng.random((4000, 6))
    labels = (features[:, 0] + features[:, 1] * features[:, 2] > 1.0).astype(np.int8)
    tree = TreeRanker(min_positives=10)
    tree.model = tree.train(features, labels, OnlineRanker(prior=np.zeros(6)))
    assert tree.model is not None  # trees beat a ranker that knows nothing
    rows = rng.random((50, 6))
    assert np.allclose(tree.score(rows), tree.score_reference(rows))


def test_tree_ranker_contributions_add_up_to_its_scores_and_credit_the_features_it_uses(
        ) -> None:
    from freshrec.models.ranker import OnlineRanker, TreeRanker

    rng = np.random.default_rng(1)
    features = rng.random((4000, 6))
    labels = (features[:, 0] + features[:, 1] * features[:, 2] > 1.0).astype(np.int8)
    tree = TreeRanker(min_positives=10)
    tree.model = tree.train(features, labels, OnlineRanker(prior=np.zeros(6)))
    rows = rng.random((40, 6))
    rows[0, 1] = np.nan  # a missing value takes the side the trees learned for it
    bias, parts = tree.contributions(rows)
    assert np.allclose(bias + parts.sum(axis=1), tree.score(rows))
    # The label depends on features 0-2 only: they carry almost all the credit.
    spread = np.abs(parts).mean(axis=0)
    assert spread[:3].sum() > 5 * spread[3:].sum()


def test_explain_answers_what_rank_answers_and_each_rankers_parts_add_up() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from freshrec.config import EngineConfig
    from freshrec.data.synthetic import generate_shop
    from freshrec.engine import Engine

    shop = generate_shop(n_users=120, n_items=80, n_events=4000, seed=4)
    engine = Engine(EngineConfig(tree_ranker=True))  # logs the samples trees learn from
    engine.fit([*shop.items, *shop.events])
    engine.state.tree_ranker.model = None  # the linear rankers first
    users = sorted({e.user for e in shop.events[-300:]})[:15]

    def explained_scores(ranker_kind: str) -> int:
        checked = 0
        for user in users:
            items, why = engine.explain(user, k=10)
            assert items == engine.rank(user, k=10)[0]
            for item, reason in zip(items, why, strict=True):
                if reason.ranker == ranker_kind:
                    parts = sum(reason.contributions.values()) + reason.bias
                    assert parts == pytest.approx(item.score, rel=1e-6, abs=1e-9)
                    checked += 1
        return checked

    assert explained_scores("discovery") > 50  # exclude_seen: the discovery ranker orders
    # Trees, fitted here on the rankers' logged samples without the gate that may refuse
    # them, are explained by path attribution.
    features, labels = engine.state.samples.snapshot()
    engine.state.tree_ranker.model = HistGradientBoostingClassifier(
        max_iter=10, max_leaf_nodes=7, early_stopping=False).fit(features, labels)
    assert explained_scores("trees") > 50
