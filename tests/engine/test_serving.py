"""Filters, the fallback chain, unknown users, sessions, background retraining, snapshots."""

from __future__ import annotations

from freshrec.engine import Engine
from freshrec.models.features import Context
from freshrec.models.state import ModelState
from freshrec.records import Event, Item
from freshrec.serving.results import Filters
from freshrec.serving.sources import DEFAULT_CHAIN, Scored

from .shops import GARDEN, KITCHEN, catalog, history, small_config


def test_exclude_seen_category_availability_and_exclude_list(trained: Engine) -> None:
    seen = {e.item for e in history() if e.user == "k-user0"}
    ids = [r.item for r in trained.recommend("k-user0", k=10, filters=Filters(exclude_seen=True))]
    assert ids and not set(ids) & seen
    garden_only = trained.recommend("k-user0", k=10, filters=Filters(category="garden"))
    assert garden_only and all(r.item in GARDEN for r in garden_only)
    trained.add_item(Item(id="k4", title="sold out", categories=("kitchen",), available=False))
    assert "k4" not in [r.item for r in trained.recommend("k-user0", k=10)]
    assert "k4" in [r.item for r in trained.recommend(
        "k-user0", k=10, filters=Filters(available_only=False, exclude_seen=False))]
    excluded = trained.recommend("k-user0", k=10, filters=Filters(exclude=frozenset(KITCHEN)))
    assert not {r.item for r in excluded} & set(KITCHEN)


def test_unknown_user_gets_trending_not_an_error(trained: Engine) -> None:
    answer = trained.recommend("nobody", k=3)
    assert len(answer) == 3
    assert {r.source for r in answer} <= {"trending", "popularity"}


def test_session_recommendations_follow_the_session(trained: Engine) -> None:
    answer = trained.recommend_for_session(["g0", "g1"], k=3)
    assert answer and all(r.item in GARDEN for r in answer)
    assert not {"g0", "g1"} & {r.item for r in answer}


def test_every_answer_names_its_source(trained: Engine) -> None:
    known = {"als", "cooccurrence", "session", "trending", "popularity", "history", "content"}
    for answer in (trained.recommend("k-user1", k=5), trained.similar("k1", k=5),
                   trained.trending(k=5), trained.recommend_for_session(["k1"], k=5)):
        assert answer and {r.source for r in answer} <= known


class BrokenSource:
    """A source that fails on every call, as a corrupt model would."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, state: ModelState, context: Context, allowed: object) -> Scored | None:
        self.calls += 1
        raise RuntimeError("model file is corrupt")


class ManualClock:
    """The breaker's clock, moved by hand: "slow" is whatever the test says it is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowSource:
    """A source that answers, but 20 ms of (manual) time later: four times its budget."""

    name = "slow"

    def __init__(self, clock: ManualClock) -> None:
        self.calls = 0
        self.clock = clock

    def score(self, state: ModelState, context: Context, allowed: object) -> Scored | None:
        self.calls += 1
        self.clock.now += 0.02
        return None


def _engine_with(first: object) -> Engine:
    engine = Engine(small_config(source_budget_ms=5.0, trip_after=2),
                    chain=[first, *(source() for source in DEFAULT_CHAIN)])  # type: ignore[list-item]
    engine.fit([*catalog(), *history()])
    return engine


def test_a_failing_source_never_fails_a_request() -> None:
    broken = BrokenSource()
    engine = _engine_with(broken)
    for _ in range(5):
        answer = engine.recommend("k-user0", k=5)
        assert len(answer) == 5
    # Tripped after two failures: skipped for the cooldown instead of failing each time.
    assert broken.calls == 2
    assert engine.breaker.failures["broken"] == 2


def test_a_slow_source_is_skipped_after_repeated_overruns_until_its_cooldown_ends() -> None:
    clock = ManualClock()
    slow = SlowSource(clock)
    engine = _engine_with(slow)
    engine.breaker.clock = clock
    slow.calls = 0  # fitting asks for recommendations too, before the clock is ours
    for _ in range(5):
        assert len(engine.recommend("g-user0", k=5)) == 5
    assert slow.calls == 2  # two overruns trip it (trip_after=2); then it is skipped
    clock.now += engine.breaker.cooldown_s - 1.0
    engine.recommend("g-user0", k=5)
    assert slow.calls == 2  # still cooling down
    clock.now += 2.0
    engine.recommend("g-user0", k=5)
    assert slow.calls == 3  # tried again once the cooldown is over


def test_a_source_within_its_budget_is_never_skipped() -> None:
    clock = ManualClock()
    quick = SlowSource(clock)
    engine = _engine_with(quick)
    engine.breaker.clock = lambda: 1000.0  # no time passes: every call is within budget
    quick.calls = 0
    for _ in range(5):
        engine.recommend("g-user0", k=5)
    assert quick.calls == 5


def test_background_retrain_swaps_in_and_keeps_events_from_during_training() -> None:
    engine = Engine(small_config())
    engine.fit([*catalog(), *history()])
    version = engine.model_version
    assert engine.retrain(background=True)
    engine.learn_one(Event(user="late", item="g2", type="purchase", timestamp=1e7))
    engine.retrainer.wait(timeout=60)
    assert engine.retrainer.last_error is None
    assert engine.model_version != version
    answer = engine.recommend("late", k=3, filters=Filters(exclude_seen=True))
    assert answer and all(r.item in GARDEN for r in answer)


def test_snapshot_restore_gives_the_same_answers(trained: Engine) -> None:
    restored = Engine.restore(trained.snapshot())
    for user in ("k-user0", "g-user5", "nobody"):
        assert [r.item for r in restored.recommend(user, k=5)] == [
            r.item for r in trained.recommend(user, k=5)]


def test_forget_user_drops_profile_and_vector(trained: Engine) -> None:
    assert trained.forget_user("k-user0")
    assert trained.state.users.get("k-user0") is None
    assert {r.source for r in trained.recommend("k-user0", k=3)} <= {"trending", "popularity"}
    assert not trained.forget_user("k-user0")
