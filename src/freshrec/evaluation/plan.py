"""How a dataset is replayed: the training part, then the stream cut into requests.

The events are split by count, at the median unless asked otherwise (``freshrec
replay --split 0.8`` trains on the first 80%); with baskets the split moves
forward to the end of the basket it falls in, so no basket is cut in two.
Training gets the events before the split and every catalog record with a
timestamp up to the last training event. The rest of the stream becomes
:class:`Step`\\ s: each step is the catalog records that arrive before or
during a request, then the request's events. Without baskets a request is one
event; with baskets it is a run of consecutive events of the same (user,
basket key), and catalog records met inside the run are sent before the
request, since they arrive at the basket's time.

>>> from freshrec.data.dataset import Dataset
>>> from freshrec.records import Event, Item
>>> events = [Event(u, i, "purchase", float(t), session=s) for u, i, t, s in
...           [("a", "x", 0, "1"), ("a", "y", 0, "1"), ("b", "x", 1, "2"),
...            ("b", "z", 2, "3"), ("c", "w", 3, "4"), ("c", "x", 3, "4")]]
>>> items = [Item("x", timestamp=0.0), Item("y", timestamp=0.0), Item("z", timestamp=2.0),
...          Item("w", timestamp=3.0)]
>>> plan = build_plan(Dataset("toy", events, items, basket_key="session"))
>>> plan.n_train_events, [[e.item for e in s.events] for s in plan.steps]
(3, [['z'], ['w', 'x']])
>>> sorted(plan.new_items), sorted(plan.new_users)
(['w', 'z'], ['c'])

New items are items without any event in the training part, whether or not
their catalog record arrived before the split (MovieLens films enter the
catalog at their release year, often long before their first rating): for every
model that learns from interactions they are equally cold. New users are users
without any event in the training part.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from freshrec.data.dataset import Dataset
from freshrec.records import Event, Item

DEFAULT_SPLIT = 0.5
"""Share of the events the contestants train on: the median split."""


def check_split(fraction: float) -> float:
    """``fraction`` if it leaves both a training part and a stream, else a clear error.

    >>> check_split(1.0)
    Traceback (most recent call last):
    ...
    ValueError: split must be a fraction strictly between 0 and 1 (got 1.0)
    """
    if not 0.0 < fraction < 1.0:  # also refuses NaN
        raise ValueError(f"split must be a fraction strictly between 0 and 1 (got {fraction})")
    return fraction


@dataclass
class Step:
    """Catalog records to add, then one request's events (either may be empty)."""

    items: list[Item] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    evaluate: bool = True


@dataclass
class ReplayPlan:
    """The training records and the stream of steps every contestant replays."""

    dataset: str
    baskets: bool
    training: list[Item | Event]
    steps: list[Step]
    new_items: frozenset[str]
    new_users: frozenset[str]
    n_train_events: int
    n_test_events: int
    split_time: float
    train_fraction: float = DEFAULT_SPLIT
    """The split asked for (the basket rule may move the actual one a little forward)."""

    @property
    def n_requests(self) -> int:
        return sum(1 for step in self.steps if step.events)

    @property
    def n_evaluated(self) -> int:
        return sum(1 for step in self.steps if step.events and step.evaluate)

    def summary(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "baskets": self.baskets,
            "split": self.train_fraction,
            "train_events": self.n_train_events,
            "test_events": self.n_test_events,
            "split_time": self.split_time,
            "requests": self.n_requests,
            "evaluated_requests": self.n_evaluated,
            "new_items": len(self.new_items),
            "new_users": len(self.new_users),
        }


def basket_key(dataset: Dataset) -> Callable[[Event], Hashable] | None:
    """What groups a dataset's events into baskets: (user, basket field), or ``None``."""
    if dataset.basket_key is None:
        return None
    name = dataset.basket_key
    return lambda event: (event.user, getattr(event, name))


def build_plan(dataset: Dataset, *, train_fraction: float = DEFAULT_SPLIT,
               max_requests: int | None = None) -> ReplayPlan:
    """Split ``dataset`` for replay, training on the first ``train_fraction`` of its events;
    ``max_requests`` evaluates every j-th request only."""
    events = dataset.events
    key = basket_key(dataset)
    n_train = int(len(events) * check_split(train_fraction))
    if key is not None:
        while 0 < n_train < len(events) and key(events[n_train]) == key(events[n_train - 1]):
            n_train += 1
    split_time = events[n_train - 1].timestamp if n_train else -math.inf
    training: list[Item | Event] = []
    steps: list[Step] = []
    pending: list[Item] = []
    seen_events = 0
    current: Step | None = None
    current_key: Hashable = None
    for record in dataset.stream():
        if isinstance(record, Item):
            if seen_events < n_train and (record.timestamp or 0.0) <= split_time:
                training.append(record)
            else:
                pending.append(record)
            continue
        seen_events += 1
        if seen_events <= n_train:
            training.append(record)
            continue
        record_key = key(record) if key is not None else None
        if current is not None and key is not None and record_key == current_key:
            current.items.extend(pending)
            current.events.append(record)
        else:
            current = Step(items=pending, events=[record])
            current_key = record_key
            steps.append(current)
        pending = []
    if pending:
        steps.append(Step(items=pending))
    train_items = {r.item for r in training if isinstance(r, Event)}
    train_users = {r.user for r in training if isinstance(r, Event)}
    test_events = [e for step in steps for e in step.events]
    plan = ReplayPlan(
        dataset=dataset.name,
        baskets=key is not None,
        training=training,
        steps=steps,
        new_items=frozenset(e.item for e in test_events) - train_items,
        new_users=frozenset(e.user for e in test_events) - train_users,
        n_train_events=n_train,
        n_test_events=len(test_events),
        split_time=split_time,
        train_fraction=train_fraction,
    )
    sample(plan, max_requests)
    return plan


def sample(plan: ReplayPlan, max_requests: int | None) -> None:
    """Evaluate every j-th request so that at most ``max_requests`` are scored."""
    requests = [step for step in plan.steps if step.events]
    every = 1 if not max_requests else max(1, math.ceil(len(requests) / max_requests))
    for n, step in enumerate(requests):
        step.evaluate = n % every == 0
