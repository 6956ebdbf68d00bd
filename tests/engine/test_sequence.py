"""The sequence model: it learns order, ships in the state, and covers new items by text."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from scipy import sparse

from freshrec.data import generate_sequential_shop
from freshrec.engine import Engine
from freshrec.models.features import FEATURES, N_FEATURES, Signals, user_context
from freshrec.models.sequence import SequenceModel
from freshrec.records import Event, Impression, Item

from .shops import small_config

SEQUENCE = FEATURES.index("sequence")


def test_it_reads_direction_and_the_items_before_the_last() -> None:
    # Two paths, 0 -> 1 -> 2 -> 3 and 4 -> 5 -> 6 -> 7, walked interleaved: after
    # 1 then 5, what follows is the next step of either path (2 or 6), and neither
    # path's earlier steps (co-occurrence alone cannot tell forwards from backwards).
    rng = np.random.default_rng(0)
    walks = []
    for _ in range(300):
        a, b = iter([0, 1, 2, 3]), iter([4, 5, 6, 7])
        walk: list[int] = []
        while len(walk) < 8:
            step = next(a, None) if rng.random() < 0.5 else next(b, None)
            if step is not None:
                walk.append(step)
        walks.append(np.array(walk))
    model = SequenceModel(length=3, decay=0.8, regularization=1.0, vocabulary=10,
                          neighbors=8, rank=2)
    model.install(model.fit(walks, n_items=8))
    scores = model.scores([(5, 1.0), (1, 0.8)], 8)
    best = set(np.argsort(-scores)[:2].tolist())
    assert best == {2, 6}
    assert scores[6] > scores[4] and scores[2] > scores[0]


@pytest.fixture(scope="module")
def shop() -> tuple[list[Item], list[Event]]:
    dataset = generate_sequential_shop(n_users=300, n_items=240, n_events=12_000, seed=3)
    return list(dataset.items), list(dataset.events)


def _engine(shop: tuple[list[Item], list[Event]], **overrides: object) -> Engine:
    items, events = shop
    engine = Engine(small_config(**overrides))
    engine.fit([*items, *events])
    return engine


@pytest.fixture(scope="module")
def trained(shop: tuple[list[Item], list[Event]]) -> Engine:
    return _engine(shop)


def _busiest_user(engine: Engine) -> str:
    profiles = engine.state.users.profiles
    return engine.state.users.ids[int(np.argmax([p.n for p in profiles]))]


def test_a_full_training_fits_the_sequence_model_and_requests_read_it(trained: Engine) -> None:
    assert trained.state.sequence.trained
    context = user_context(trained.state, _busiest_user(trained))
    scores = Signals(trained.state, context).sequence
    assert scores.max() > 0
    _, impression = trained.rank(_busiest_user(trained), k=10)
    assert impression is not None and impression.n_features == N_FEATURES
    rows = np.frombuffer(impression.features, dtype=np.float32).reshape(-1, N_FEATURES)
    assert rows[:, SEQUENCE].max() > 0


def test_the_engine_without_it_has_no_sequence_signal(shop: tuple[list[Item], list[Event]]
                                                      ) -> None:
    engine = _engine(shop, sequence_model=False)
    assert not engine.state.sequence.trained
    _, impression = engine.rank(_busiest_user(engine), k=10)
    assert impression is not None
    rows = np.frombuffer(impression.features, dtype=np.float32).reshape(-1, N_FEATURES)
    assert not rows[:, SEQUENCE].any()


def test_a_new_item_gets_the_vectors_its_text_maps_to(trained: Engine) -> None:
    state = trained.state
    sequence = state.sequence
    twin = next(i for i in range(len(state.items)) if sequence.in_vocabulary(i)
                and state.items.records[i] is not None and state.items.records[i].title)
    record = state.items.records[twin]
    trained.add_item(Item(id="brand-new-step", title=record.title, text=record.text,
                          categories=record.categories, timestamp=state.clock))
    index = state.items.get("brand-new-step")
    assert not sequence.in_vocabulary(index)
    new_out, twin_out = sequence.outputs[index], sequence.outputs[twin]
    assert np.any(new_out)
    others = [i for i in range(len(state.items)) if sequence.in_vocabulary(i) and i != twin]
    cosine = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))  # noqa: E731
    assert cosine(new_out, twin_out) > np.mean([cosine(new_out, sequence.outputs[i])
                                                for i in others])
    # As a target: a context the twin tends to follow scores the new item too.
    scores = sequence.scores([(twin, 1.0)], len(state.items))
    assert scores[index] != 0.0


def test_a_snapshot_from_before_the_sequence_model_is_upgraded(trained: Engine) -> None:
    old_width = N_FEATURES - 2
    engine = Engine.restore(trained.snapshot())
    state = engine.state
    # Make the state what an older version pickled: no sequence model, narrower rows.
    del state.sequence
    for ranker in (state.ranker, state.discovery_ranker, state.cold_ranker):
        ranker.prior = ranker.prior[:old_width]
        ranker.weights = ranker.weights[:old_width]
        ranker._gradient_squares = ranker._gradient_squares[:old_width]
    state.samples.features = state.samples.features[:, :old_width]
    for shown in state.memory.impressions.values():
        shown.features = shown.features[:, :old_width]
    restored = Engine(state=pickle.loads(pickle.dumps(state)))

    assert not restored.state.sequence.trained
    assert restored.state.ranker.weights.shape == (N_FEATURES,)
    user = _busiest_user(restored)
    assert restored.recommend(user, k=5)
    # An impression logged by the older version still teaches the rankers.
    items = tuple(restored.state.items.ids[:3])
    old = Impression(user=user, timestamp=restored.state.clock, items=items,
                     features=np.ones((3, old_width), dtype=np.float32).tobytes(),
                     n_features=old_width)
    restored.learn_impression(old)
    restored.learn_one(Event(user=user, item=items[0], type="view",
                             timestamp=restored.state.clock + 1))
    restored.retrain(background=False)
    assert restored.state.sequence.trained


def test_scores_match_the_plain_formula(trained: Engine) -> None:
    # The request path avoids copies and per-row scatters; this is the formula written
    # the slow, plain way.
    state = trained.state
    sequence = state.sequence
    trained.add_item(Item(id="mapped-step", title="a brand new step", timestamp=state.clock))
    n = len(state.items)
    rng = np.random.default_rng(1)
    slot = sequence.slot[:n]
    for _ in range(5):
        items = [int(i) for i in rng.choice(n - 1, 6, replace=False)] + [n - 1]
        context = [(item, 0.9**lag) for lag, item in enumerate(items)]
        expected = np.zeros(n)
        for item, weight in context:
            if slot[item] >= 0:
                row = sequence.rows[int(slot[item])].toarray().ravel()  # trained items only
                expected[: row.size] += weight * row
        query = sum(weight * sequence.inputs[item] for item, weight in context)
        mapped = sum(weight * sequence.inputs[item] for item, weight in context if slot[item] < 0)
        low, low_mapped = sequence.outputs[:n] @ query, sequence.outputs[:n] @ mapped
        expected[slot < 0] = low[slot < 0]
        expected[slot >= 0] += low_mapped[slot >= 0]
        # The same products in the same order: equal to the bit, not only close.
        assert np.array_equal(sequence.scores(context, n), expected)


def _assert_vocabulary_index_current(sequence: SequenceModel) -> None:
    assert np.array_equal(sequence.vocabulary, np.flatnonzero(sequence.slot >= 0))
    assert np.array_equal(sequence.vocabulary_outputs, sequence.outputs[sequence.vocabulary])
    assert sequence.vocabulary_outputs.flags.c_contiguous


def test_the_vocabularys_output_rows_stay_what_they_copy(trained: Engine) -> None:
    # Requests read the vocabulary's output vectors from a contiguous copy: it must
    # follow the learner through new items (mapping, growth), a retraining and a restore.
    engine = Engine.restore(trained.snapshot())
    sequence = engine.state.sequence
    _assert_vocabulary_index_current(sequence)
    user = _busiest_user(engine)
    other = next(who for who in engine.state.users.ids if who != user)
    before = len(engine.state.items)
    for n in range(before + 20):  # past the arrays' capacity, so they grow
        engine.add_item(Item(id=f"later-{n}", title=f"a later step {n % 7}",
                             timestamp=engine.state.clock))
        for who in (user, other):  # twice: the retraining takes them into its vocabulary
            engine.learn_one(Event(user=who, item=f"later-{n}", type="view",
                                   timestamp=engine.state.clock + 1))
    assert sequence.slot.shape[0] > before and np.any(sequence.outputs[before:])
    _assert_vocabulary_index_current(sequence)
    engine.retrain(background=False)
    assert engine.state.sequence.in_vocabulary(before)
    _assert_vocabulary_index_current(engine.state.sequence)
    restored = Engine.restore(engine.snapshot())
    _assert_vocabulary_index_current(restored.state.sequence)
    context = user_context(restored.state, user).sequence
    n = len(restored.state.items)
    assert np.array_equal(restored.state.sequence.scores(context, n),
                          engine.state.sequence.scores(context, n))


def test_too_little_history_leaves_it_untrained_and_the_engine_answering() -> None:
    # Every item seen once (no order to learn), as after an erasure in a small shop:
    # the training that failed on this in the service must give an untrained model.
    model = SequenceModel(vocabulary=10)
    model.install(model.fit([np.array([0, 1]), np.array([2, 3])], n_items=4))
    assert not model.trained
    assert not model.scores([(1, 1.0)], 4).any()
    engine = Engine(small_config())
    events = [Event(user=f"u{n}", item=f"i{n}", type="view", timestamp=float(n))
              for n in range(4)]
    engine.fit([*(Item(id=f"i{n}", timestamp=0.0) for n in range(4)), *events])
    assert not engine.state.sequence.trained
    assert engine.recommend("u1", k=3)


def test_trained_items_with_empty_rows_still_get_the_mapped_scores(trained: Engine) -> None:
    # A trained item can keep no entry in its row (all pruned); the exact part is then
    # empty, and the fused sum must still be floats (bincount of nothing is integers,
    # and the fuzz test found the add of the mapped part failing on it).
    state = trained.state
    trained.add_item(Item(id="mapped-after", title="a brand new step", timestamp=state.clock))
    sequence = copy.copy(state.sequence)
    sequence.rows = sparse.csr_matrix(sequence.rows.shape, dtype=sequence.rows.dtype)
    n = len(state.items)
    trained_item = int(np.flatnonzero(sequence.slot[:n] >= 0)[0])
    context = [(n - 1, 1.0), (trained_item, 0.9)]
    scores = sequence.scores(context, n)
    assert scores.dtype == np.float64
    mapped = sequence.inputs[n - 1] * np.float32(1.0)
    query = mapped + sequence.inputs[trained_item] * np.float32(0.9)
    expected = sequence.outputs[:n] @ query
    vocabulary = sequence.slot[:n] >= 0
    expected[vocabulary] = sequence.outputs[:n][vocabulary] @ mapped
    assert np.allclose(scores, expected)
