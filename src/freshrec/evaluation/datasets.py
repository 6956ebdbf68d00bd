"""The datasets the replay knows by name, and how a worker process loads them again.

A source is a small picklable recipe: each worker process loads its own copy
of the data (the loaders are deterministic), so nothing large crosses process
boundaries and every worker replays the identical stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freshrec.data.dataset import Dataset

NAMES = ("movielens", "retail", "synthetic", "sequential")
SYNTHETIC_SIZE = {"n_users": 2000, "n_items": 1000, "n_events": 60_000}
SEQUENTIAL_SIZE = {"n_users": 3000, "n_items": 1500, "n_events": 80_000}


@dataclass(frozen=True)
class DatasetSource:
    """A dataset by name (``movielens``, ``retail``, ``synthetic``, ``sequential``),
    optionally cut short.

    ``data_dir`` is the folder holding ``movielens-small/`` and
    ``online-retail-ii/`` (default: the shared data folder); ``limit`` keeps
    the first N events; ``seed`` fixes the generated shops (``synthetic``:
    :mod:`freshrec.data.synthetic`; ``sequential``, whose next item depends on
    the order of the last few: :mod:`freshrec.data.sequential`).
    """

    name: str
    data_dir: Path | None = None
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise ValueError(f"unknown dataset {self.name!r} (known: {', '.join(NAMES)})")

    @property
    def retrains_daily(self) -> bool:
        """Whether periodic retraining follows data days (retail) or stream share."""
        return self.name == "retail"

    def load(self) -> Dataset:
        if self.name == "movielens":
            from freshrec.data import load_movielens

            folder = None if self.data_dir is None else Path(self.data_dir) / "movielens-small"
            dataset = load_movielens(folder)
        elif self.name == "retail":
            from freshrec.data import load_online_retail

            folder = None if self.data_dir is None else Path(self.data_dir) / "online-retail-ii"
            dataset = load_online_retail(folder)
        elif self.name == "sequential":
            from freshrec.data import generate_sequential_shop

            dataset = generate_sequential_shop(**SEQUENTIAL_SIZE, seed=self.seed)
        else:
            from freshrec.data import generate_shop

            dataset = generate_shop(**SYNTHETIC_SIZE, seed=self.seed)
        return truncate(dataset, self.limit)


@dataclass(frozen=True)
class InlineSource:
    """A dataset carried along as is (pickled to workers): for tests and hand-built data."""

    dataset: Dataset
    limit: int | None = None
    retrains_daily: bool = False

    @property
    def name(self) -> str:
        return self.dataset.name

    def load(self) -> Dataset:
        return truncate(self.dataset, self.limit)


Source = DatasetSource | InlineSource


def truncate(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` events, with the catalog records known by the last of them.

    >>> from freshrec.records import Event, Item
    >>> events = [Event("u", i, "view", float(t)) for t, i in enumerate("abc")]
    >>> items = [Item(i, timestamp=float(t)) for t, i in enumerate("abc")]
    >>> small = truncate(Dataset("toy", events, items), 2)
    >>> [e.item for e in small.events], [i.id for i in small.items]
    (['a', 'b'], ['a', 'b'])
    """
    if limit is None or limit >= len(dataset.events):
        return dataset
    events = dataset.events[:limit]
    until = events[-1].timestamp if events else float("-inf")
    items = [item for item in dataset.items if (item.timestamp or 0.0) <= until]
    return Dataset(name=dataset.name, events=events, items=items, report=dataset.report,
                   basket_key=dataset.basket_key)
