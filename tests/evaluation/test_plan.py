"""The split into a training half and a stream of requests."""

from __future__ import annotations

import math

import pytest

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


def test_a_larger_split_trains_on_more_and_records_it() -> None:
    plan = build_plan(movies(), train_fraction=0.8)
    # int(6 * 0.8) = 4 events train: a, b, a, c; b and d stream
    assert plan.n_train_events == 4 and plan.n_test_events == 2
    assert [[e.item for e in s.events] for s in plan.steps if s.events] == [["m3"], ["m4"]]
    assert plan.split_time == 4.0
    assert plan.new_items == {"m4"} and plan.new_users == {"d"}
    assert plan.summary()["split"] == 0.8
    assert build_plan(movies()).summary()["split"] == 0.5


def test_a_split_inside_a_basket_moves_to_its_end_whatever_the_fraction() -> None:
    events = [Event("v", "a", "purchase", 0.0, session="s0")]
    events += [Event("u", item, "purchase", 1.0, session="s1") for item in "abcdefg"]
    events += [Event("w", "b", "purchase", 2.0, session="s2"),
               Event("x", "c", "purchase", 3.0, session="s3")]
    # 10 events: 0.3 falls at event 3, 0.7 at event 7, both inside basket s1 (events 1-7)
    for fraction in (0.3, 0.7):
        plan = build_plan(Dataset("shop", events, [], basket_key="session"),
                          train_fraction=fraction)
        assert plan.n_train_events == 8
        assert [[e.item for e in s.events] for s in plan.steps] == [["b"], ["c"]]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, math.nan])
def test_a_split_without_a_training_part_or_a_stream_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        build_plan(movies(), train_fraction=fraction)
