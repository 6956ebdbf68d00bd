"""The replay loop: what is asked, what is excluded, how cuts are counted."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pytest

from freshrec.data.dataset import Dataset
from freshrec.evaluation.contestants.popularity import Popularity
from freshrec.evaluation.plan import build_plan
from freshrec.evaluation.replay import replay
from freshrec.records import Event, Item


class Scripted:
    """Answers a fixed list (minus exclusions) and records every call."""

    name = "scripted"

    def __init__(self, answer: Sequence[str]) -> None:
        self.answer = list(answer)
        self.calls: list[tuple[str, object]] = []

    def fit(self, records: Sequence[Item | Event]) -> None:
        self.calls.append(("fit", len(records)))

    def add_item(self, item: Item) -> None:
        self.calls.append(("add_item", item.id))

    def learn_one(self, event: Event) -> None:
        self.calls.append(("learn_one", event.item))

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        self.calls.append(("recommend", (user, frozenset(exclude))))
        return [item for item in self.answer if item not in exclude][:k]


def buy(user: str, item: str, t: float, session: str) -> Event:
    return Event(user=user, item=item, type="purchase", timestamp=t, session=session)


def shop() -> Dataset:
    events = [
        buy("u", "a", 1, "s1"), buy("u", "b", 1, "s1"), buy("v", "a", 2, "s2"),  # training
        buy("u", "a", 3, "s3"), buy("u", "n", 3, "s3"),  # u rebuys a, buys new item n
        buy("w", "b", 4, "s4"),  # a new user
    ]
    items = [Item("a", timestamp=1.0), Item("b", timestamp=1.0), Item("n", timestamp=3.0)]
    return Dataset("shop", events, items, basket_key="session")


def test_basket_requests_variants_and_cuts() -> None:
    contestant = Scripted(["a", "n", "b"])
    result = replay(contestant, build_plan(shop()), k=2)
    assert [c for c in contestant.calls if c[0] != "learn_one"] == [
        ("fit", 5),  # 3 events, 2 catalog records
        ("add_item", "n"),  # before the request of the basket that first buys n
        ("recommend", ("u", frozenset())),  # repeats: nothing excluded
        ("recommend", ("u", frozenset({"a", "b"}))),  # new-to-user: u's purchases excluded
        ("recommend", ("w", frozenset())),
        ("recommend", ("w", frozenset())),
    ]
    assert [c[1] for c in contestant.calls if c[0] == "learn_one"] == ["a", "n", "b"]
    repeats = result.metric_means()["repeats"]
    # s3: targets {a, n}, top-2 [a, n] -> 1, 1, 1; s4: targets {b}, top-2 [a, n] -> 0
    assert repeats["all"] == {"n": 2, "hr": 0.5, "recall": 0.5, "ndcg": 0.5}
    # new-items: only s3, scored against {n} alone: n at rank 1 -> NDCG 1/log2(3)
    assert repeats["new-items"]["n"] == 1
    assert repeats["new-items"]["ndcg"] == pytest.approx(0.6309297535714575)
    assert repeats["new-users"] == {"n": 1, "hr": 0.0, "recall": 0.0, "ndcg": 0.0}
    fresh = result.metric_means()["new-to-user"]
    # s3: targets {n}, top-2 of [n] -> hit at rank 0; s4: targets {b}, answer [a, n] -> miss
    assert fresh["all"] == {"n": 2, "hr": 0.5, "recall": 0.5, "ndcg": 0.5}
    assert result.updates == 3 and result.recommends == 4
    assert result.timelines["repeats"].hits == [1.0, 0.0]


def test_without_baskets_seen_items_are_excluded() -> None:
    events = [Event("u", "a", "rating", 1.0, value=5.0), Event("v", "b", "rating", 2.0, value=3.0),
              Event("u", "b", "rating", 3.0, value=4.0), Event("u", "c", "rating", 4.0, value=4.0)]
    plan = build_plan(Dataset("films", events, []))
    contestant = Scripted(["a", "b", "c"])
    result = replay(contestant, plan, k=1)
    asks = [c[1] for c in contestant.calls if c[0] == "recommend"]
    assert asks == [("u", frozenset({"a"})), ("u", frozenset({"a", "b"}))]
    # request 1: [b] vs b -> hit; request 2: [c] vs c -> hit
    assert result.metric_means()["unseen"]["all"]["hr"] == 1.0


def test_sampled_requests_still_feed_every_event() -> None:
    events = [Event(f"u{n}", f"i{n % 3}", "view", float(n)) for n in range(30)]
    plan = build_plan(Dataset("views", events, []), max_requests=3)
    result = replay(Popularity(), plan)
    assert result.updates == 15
    assert result.metric_means()["unseen"]["all"]["n"] == 3


def test_every_request_is_marked_in_each_cut_it_belongs_to() -> None:
    result = replay(Scripted(["a", "n", "b"]), build_plan(shop()), k=2)
    # s3 (u: an old user, targets a and new n) hits; s4 (w: a new user, target b) misses.
    assert result.hits["repeats"] == {"all": ["1", "0"], "new-items": ["1", "-"],
                                      "new-users": ["-", "0"]}


def test_the_loaded_model_is_out_of_the_collectors_reach_only_while_streaming() -> None:
    import gc

    frozen_during: list[int] = []

    class Watching(Scripted):
        def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
            frozen_during.append(gc.get_freeze_count())
            return super().recommend(user, k, exclude)

    before = gc.get_freeze_count()  # whatever other tests in this process left frozen
    replay(Watching(["a"]), build_plan(shop()), k=1)
    assert frozen_during and all(count > before for count in frozen_during)
    assert gc.get_freeze_count() == 0
