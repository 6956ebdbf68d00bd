"""The split into a training half and a stream of requests."""

from __future__ import annotations

from freshrec.data.dataset import Dataset
from freshrec.evaluation.datasets import truncate
from freshrec.evaluation.plan import build_plan
from freshrec.records import Event, Item


def rate(user: str, item: str, t: float) -> Event:
    return Event(user=user, item=item, type="rating", timestamp=t, value=4.0)


def movies() -> Dataset:
    events = [rate("a", "m1", 1), rate("b", "m1", 2), rate("a", "m2", 3), rate("c", "m3", 4),
              rate("b", "m3", 5), rate("d", "m4", 6)]
    items = [Item("m1", timestamp=1.0), Item("m2", timestamp=3.0), Item("m3", timestamp=4.0),
             Item("m2", title="tagged", timestamp=4.5), Item("m4", timestamp=6.0)]
    return Dataset("movies", events, items)


def test_median_split_without_baskets() -> None:
    plan = build_plan(movies())
    assert plan.n_train_events == 3 and plan.n_test_events == 3
    assert [r.item if isinstance(r, Event) else r.id for r in plan.training] == [
        "m1", "m1", "m1", "m2", "m2"]
    # one event per request; catalog records arrive before the event they precede
    assert [([i.id for i in s.items], [e.item for e in s.events]) for s in plan.steps] == [
        (["m3"], ["m3"]), (["m2"], ["m3"]), (["m4"], ["m4"])]
    assert plan.new_items == {"m3", "m4"}
    assert plan.new_users == {"c", "d"}
    assert plan.split_time == 3.0
    assert not plan.baskets


def test_basket_split_moves_to_the_end_of_the_basket() -> None:
    events = [Event("u", item, "purchase", 1.0, session="s1") for item in "abcd"]
    events += [Event("v", "a", "purchase", 2.0, session="s2"),
               Event("w", "b", "purchase", 3.0, session="s3")]
    plan = build_plan(Dataset("shop", events, [], basket_key="session"))
    # the median (3 of 6) falls inside basket s1, so the split moves to its end (4)
    assert plan.n_train_events == 4
    assert [[e.item for e in s.events] for s in plan.steps] == [["a"], ["b"]]
    assert plan.baskets


def test_sampling_evaluates_every_jth_request_but_keeps_all_steps() -> None:
    events = [rate(f"u{n}", f"m{n}", float(n)) for n in range(40)]
    plan = build_plan(Dataset("many", events, []), max_requests=5)
    assert plan.n_requests == 20
    assert plan.n_evaluated == 5
    assert [n for n, s in enumerate(plan.steps) if s.evaluate] == [0, 4, 8, 12, 16]


def test_truncate_keeps_first_events_and_known_catalog() -> None:
    small = truncate(movies(), 3)
    assert [e.item for e in small.events] == ["m1", "m1", "m2"]
    assert [i.id for i in small.items] == ["m1", "m2"]
    assert truncate(movies(), None).events == movies().events
