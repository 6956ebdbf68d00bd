"""Each contestant on a tiny stream with a known answer, plus the contract they all keep."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from freshrec.evaluation.contestants import build, names
from freshrec.evaluation.contestants.als_once import AlsOnce
from freshrec.evaluation.contestants.als_retrained import AlsRetrained
from freshrec.evaluation.contestants.base import (
    DAY,
    AlsParams,
    Contestant,
    ContestantSettings,
    RiverParams,
    SasrecParams,
)
from freshrec.evaluation.contestants.decayed_popularity import DecayedPopularity
from freshrec.evaluation.contestants.freshrec_engine import engine_available
from freshrec.evaluation.contestants.implicit_online import ImplicitOnline
from freshrec.evaluation.contestants.item_knn import ItemKnn
from freshrec.evaluation.contestants.popularity import Popularity
from freshrec.evaluation.contestants.purchase_history import PurchaseHistory
from freshrec.evaluation.contestants.river_mf import RiverBiasedMF
from freshrec.records import Event, Item

SMALL_ALS = AlsParams(factors=2, regularization=0.1, alpha=10.0, iterations=20)


def buy(user: str, item: str, t: float = 0.0) -> Event:
    return Event(user=user, item=item, type="purchase", timestamp=t)


def checkerboard(n: int = 20) -> tuple[list[Item | Event], dict[str, str]]:
    """User u buys the items of its own parity except one, which is held out.

    The held-out item is the right answer for u: every user like u bought it.
    """
    records: list[Item | Event] = [Item(f"i{i}", timestamp=0.0) for i in range(n)]
    held_out = {}
    t = 1.0
    for u in range(n):
        held_out[f"u{u}"] = f"i{(u + 2) % n}"
        for i in range(u % 2, n, 2):
            if f"i{i}" != held_out[f"u{u}"]:
                records.append(buy(f"u{u}", f"i{i}", t))
                t += 1.0
    return records, held_out


def seen_by(records: list[Item | Event], user: str) -> set[str]:
    return {r.item for r in records if isinstance(r, Event) and r.user == user}


# -- known answers -------------------------------------------------------------------------


def test_popularity_recommends_the_most_bought() -> None:
    pop = Popularity()
    pop.fit([buy("a", "x"), buy("b", "y"), buy("c", "y"), buy("d", "z"), buy("e", "y")])
    pop.learn_one(buy("f", "z"))
    assert pop.recommend("anyone", 3, exclude=()) == ["y", "z", "x"]
    assert pop.recommend("anyone", 3, exclude={"y"}) == ["z", "x"]


def test_decayed_popularity_prefers_the_recent_item() -> None:
    pop = DecayedPopularity(half_life_days=1.0)
    # "old": 4 purchases on day 0; "new": 1 purchase on day 3 -> 4 * 2**-3 = 0.5 < 1
    pop.fit([*[buy(f"u{n}", "old", 0.0) for n in range(4)], buy("v", "new", 3 * DAY)])
    assert pop.recommend("anyone", 2, exclude=()) == ["new", "old"]
    # with a long half-life the all-time leader wins
    slow = DecayedPopularity(half_life_days=365.0)
    slow.fit([*[buy(f"u{n}", "old", 0.0) for n in range(4)], buy("v", "new", 3 * DAY)])
    assert slow.recommend("anyone", 2, exclude=()) == ["old", "new"]


def test_item_knn_recommends_the_co_bought_item() -> None:
    knn = ItemKnn()
    records: list[Item | Event] = []
    for n in range(5):  # tea and cups go together; hats are popular on their own
        records += [buy(f"a{n}", "tea"), buy(f"a{n}", "cup")]
    records += [buy(f"h{n}", "hat") for n in range(8)]
    knn.fit(records)
    knn.learn_one(buy("newbie", "tea"))
    assert knn.recommend("newbie", 1, exclude={"tea"}) == ["cup"]
    # the user's own item is its own best neighbour when nothing is excluded
    assert knn.recommend("newbie", 2, exclude=()) == ["tea", "cup"]


def test_item_knn_caps_history() -> None:
    knn = ItemKnn(history_cap=2)
    knn.fit([buy("u", "a"), buy("u", "b"), buy("u", "c")])
    # c was paired with a and b (the last two); then a dropped out of the history
    assert list(knn.histories["u"]) == [1, 2]
    knn.learn_one(buy("u", "d"))
    a, b, c, d = (knn.items.get(x) for x in "abcd")
    assert knn.cooccurrence[d, a] == 0 and knn.cooccurrence[d, b] == 1
    assert knn.cooccurrence[d, c] == 1


def test_purchase_history_ranks_recent_and_frequent() -> None:
    history = PurchaseHistory(history_half_life_days=1.0, popularity_half_life_days=1.0)
    history.fit([
        buy("u", "often", 0.0), buy("u", "often", 0.0), buy("u", "often", 0.0),  # 3 * 2**-5
        buy("u", "lately", 4 * DAY),  # 1 * 2**-1
        buy("v", "hat", 5 * DAY),
    ])
    assert history.recommend("u", 3, exclude=()) == ["lately", "often", "hat"]
    assert history.recommend("u", 2, exclude={"lately", "often"}) == ["hat"]


@pytest.mark.parametrize("make", [
    lambda: AlsOnce(SMALL_ALS),
    lambda: AlsRetrained(SMALL_ALS, every_events=10),
    lambda: ImplicitOnline(SMALL_ALS),
    lambda: RiverBiasedMF(RiverParams(factors=4, learning_rate=0.05, negatives=4, epochs=30),
                          seed=1),
], ids=["als-once", "als-retrained", "implicit-online", "river-biasedmf"])
def test_factor_models_solve_the_checkerboard(make: Callable[[], Contestant]) -> None:
    records, held_out = checkerboard()
    model = make()
    model.fit(records)
    for user, answer in held_out.items():
        top = model.recommend(user, 1, exclude=seen_by(records, user))
        assert top == [answer], user


def test_implicit_online_learns_a_new_user_and_a_new_item() -> None:
    records, _ = checkerboard()
    model = ImplicitOnline(SMALL_ALS)
    model.fit(records)
    model.add_item(Item("brand-new", timestamp=100.0))
    for n, item in enumerate(["i0", "i2", "i4"]):
        model.learn_one(buy("stranger", item, 100.0 + n))
    top = model.recommend("stranger", 5, exclude={"i0", "i2", "i4"})
    assert all(int(item[1:]) % 2 == 0 for item in top), top  # the stranger's taste: even
    for n in range(3):  # even users buy the new item; it gets a factor like theirs
        model.learn_one(buy(f"u{2 * n}", "brand-new", 200.0 + n))
    model.flush()
    assert "brand-new" in model.recommend("stranger", 10, exclude={"i0", "i2", "i4"})


def test_als_retrained_retrains_nightly() -> None:
    records, _ = checkerboard()
    model = AlsRetrained(SMALL_ALS, every_seconds=DAY)
    model.fit(records)
    model.learn_one(buy("late", "i1", 0.5 * DAY))  # same day as training: no retrain
    assert model.retrains == 0
    assert model.recommend("late", 1, exclude=()) != []  # unknown to the model: popularity
    model.learn_one(buy("late", "i3", 1.2 * DAY))  # a new day: retrain first
    model.learn_one(buy("late", "i5", 1.3 * DAY))
    assert model.retrains == 1
    model.learn_one(buy("late", "i7", 3.0 * DAY))
    assert model.retrains == 2
    top = model.recommend("late", 3, exclude={"i1", "i3", "i5", "i7"})
    assert all(int(item[1:]) % 2 == 1 for item in top), top


def test_als_once_ignores_the_stream() -> None:
    records, _ = checkerboard()
    model = AlsOnce(SMALL_ALS)
    model.fit(records)
    before = model.recommend("u0", 5, exclude=())
    model.add_item(Item("new"))
    model.learn_one(buy("u0", "new", 1e6))
    assert model.recommend("u0", 5, exclude=()) == before


# -- the contract every contestant keeps ---------------------------------------------------

CHEAP = ContestantSettings(als=SMALL_ALS, river=RiverParams(factors=4, negatives=2),
                           sasrec=SasrecParams(maxlen=8, hidden=8, blocks=1, max_epochs=2),
                           retrain_every_events=5, retrain_every_seconds=None)
ALL = [pytest.param(name, marks=pytest.mark.seq) if name == "sasrec" else name
       for name in names(baskets=True) if name != "freshrec" or engine_available() is None]


@pytest.mark.parametrize("name", ALL)
def test_contract(name: str) -> None:
    records, _ = checkerboard(10)
    model = build(name, CHEAP)
    assert model.name == name
    assert isinstance(model, Contestant)
    model.fit(records)
    # unknown users never fail
    answer = model.recommend("nobody", 5, exclude=())
    assert len(answer) <= 5 and len(set(answer)) == len(answer)
    # exclusions are honoured
    excluded = {"i0", "i1", "i2"}
    assert not excluded & set(model.recommend("u0", 10, exclude=excluded))
    # a new item and an event on an unknown item are fine
    model.add_item(Item("fresh", timestamp=50.0))
    model.learn_one(buy("u0", "fresh", 51.0))
    model.learn_one(buy("newcomer", "never-in-catalog", 52.0))
    for user in ("u0", "newcomer", "nobody"):
        answer = model.recommend(user, 3, exclude={"fresh"})
        assert "fresh" not in answer and len(answer) <= 3


@pytest.mark.parametrize("name", ALL)
def test_empty_training(name: str) -> None:
    model = build(name, CHEAP)
    model.fit([])
    assert model.recommend("nobody", 3, exclude=()) == []
    model.learn_one(buy("u", "a", 1.0))
    assert len(model.recommend("u", 3, exclude=())) <= 3


@pytest.mark.skipif(engine_available() is not None, reason="freshrec.engine not importable")
def test_freshrec_answers_alike_on_a_busy_machine() -> None:
    # A replay must not depend on what else the machine runs: requests timed as slow
    # (a clock that jumps a second per reading) would trip the service's circuit
    # breaker and answer from the fallback chain, so the contestant has no time budget.
    records, _ = checkerboard(20)
    calm, busy = build("freshrec", CHEAP), build("freshrec", CHEAP)
    calm.fit(records)
    busy.fit(records)
    from freshrec.evaluation.contestants.freshrec_engine import FreshrecEngine

    assert isinstance(busy, FreshrecEngine)
    ticks = iter(range(10**9))
    busy.engine.breaker.clock = lambda: float(next(ticks))
    for _ in range(3):
        for user in (f"u{u}" for u in range(20)):
            assert busy.recommend(user, 5, exclude=()) == calm.recommend(user, 5, exclude=())
