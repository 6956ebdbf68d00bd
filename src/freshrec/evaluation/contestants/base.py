"""What every contestant of the replay offers, and the settings they are built from."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from freshrec.records import Event, Item

DAY = 86_400.0


@runtime_checkable
class Contestant(Protocol):
    """A recommender under test: trained once, then fed the stream one record at a time.

    ``recommend`` must answer for any user, known or not (falling back to popular
    items, or an empty list), and must leave out every item in ``exclude``.
    """

    name: str

    def fit(self, records: Sequence[Item | Event]) -> None: ...

    def add_item(self, item: Item) -> None: ...

    def learn_one(self, event: Event) -> None: ...

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]: ...


def feed(contestant: Contestant, records: Sequence[Item | Event]) -> None:
    """Stream ``records`` into ``contestant`` in order: the ``fit`` of the online ones."""
    for record in records:
        if isinstance(record, Event):
            contestant.learn_one(record)
        else:
            contestant.add_item(record)


@dataclass(frozen=True)
class AlsParams:
    """Hyperparameters shared by every ALS-family contestant.

    ``scaling`` turns a user's summed event weights for an item into the
    confidence ALS sees: ``"linear"`` keeps the sum, ``"log"`` uses
    ``log1p(sum)`` so that a 40th repeat purchase counts little more than the
    4th. BM25 is not offered: its idf and length normalisation are global
    statistics, so a single incrementally updated row (``implicit-online``)
    could not be weighted consistently with the trained ones.
    """

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    scaling: str = "log"


@dataclass(frozen=True)
class RiverParams:
    """Hyperparameters of the river BiasedMF peer."""

    factors: int = 32
    learning_rate: float = 0.05
    l2: float = 0.001
    negatives: int = 4
    epochs: int = 1


@dataclass(frozen=True)
class SasrecParams:
    """Hyperparameters of the SASRec peer: the paper's MovieLens-1M setting, plus a budget.

    ``loss`` is ``"ce"`` (full softmax cross-entropy over the catalog) or ``"bce"`` (the
    paper's binary cross-entropy against one sampled negative). Training stops after
    ``patience`` epochs without a better validation HR@10, at ``max_epochs``, or once
    ``max_seconds`` have passed (a safety cap: hitting it makes the run depend on the
    machine's speed, so the defaults are meant to stop on patience first).

    One departure from the paper: batches of 32 users, not 128. An epoch is one pass
    over the users, and MovieLens small's training half has 334 of them (the paper's
    MovieLens-1M: 6,040), so batches of 128 made 3 Adam steps an epoch: validation
    HR@10 sat at 0.036 for 45 epochs and reached 0.09 only after 74 (7.6 min). With 32,
    it reached 0.087 at epoch 28 (2 min).
    """

    maxlen: int = 200
    hidden: int = 50
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 32
    loss: str = "ce"
    max_epochs: int = 200
    patience: int = 20
    max_seconds: float = 600.0


@dataclass(frozen=True)
class ContestantSettings:
    """Everything a contestant is built from: tuned hyperparameters and the schedule.

    The harness fills it in once (tuning on a validation slice of the training
    half) and sends the same settings to every worker, so all ALS-family
    contestants share ``als``.
    """

    seed: int = 0
    als: AlsParams = field(default_factory=AlsParams)
    river: RiverParams = field(default_factory=RiverParams)
    sasrec: SasrecParams = field(default_factory=SasrecParams)
    popularity_half_life_days: float = 7.0
    history_half_life_days: float = 90.0
    retrain_every_events: int | None = None
    """``als-retrained``: retrain after this many streamed events (MovieLens, synthetic)."""
    retrain_every_seconds: float | None = DAY
    """``als-retrained``: retrain at each new period of data time (retail: a day)."""
