"""Item-to-item co-occurrence, updated per event: "people who took this also took".

Two kinds of pairs are counted from each user's recent items:

* ``neighbors``: symmetric co-occurrence within a window of recent items,
  weighted down with the distance between the two events (items bought or
  watched together matter more than items years apart);
* ``transitions``: directed "after j came i" for the last few items, which
  carries the order of a session (the next episode, the matching lid).

Neighbour lists are capped per item: a list that doubles past the cap is cut
back to its strongest pairs, so memory and scoring time stay bounded however
long the stream runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from freshrec.models._arrays import grown


class PairRow:
    """One item's neighbours: ids and weights in arrays, with a dict from id to slot.

    Updating a weight writes into the array in place, so scoring reads the arrays
    as they are, with no rebuild after every event.
    """

    __slots__ = ("neighbors", "size", "slots", "weights")

    def __init__(self) -> None:
        self.slots: dict[int, int] = {}
        self.neighbors = np.zeros(8, dtype=np.int64)
        self.weights = np.zeros(8, dtype=np.float64)
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        return iter(self.slots)

    def add(self, other: int, weight: float, cap: int) -> None:
        slot = self.slots.get(other)
        if slot is not None:
            self.weights[slot] += weight
            return
        if self.size == self.neighbors.shape[0]:
            if self.size >= 2 * cap:
                self._keep_strongest(cap)
            else:
                self.neighbors = grown(self.neighbors, self.size + 1)
                self.weights = grown(self.weights, self.size + 1)
        slot = self.size
        self.neighbors[slot] = other
        self.weights[slot] = weight
        self.slots[other] = slot
        self.size += 1

    def _keep_strongest(self, cap: int) -> None:
        order = np.argsort(-self.weights[: self.size], kind="stable")[:cap]
        self.neighbors[:cap] = self.neighbors[order]
        self.weights[:cap] = self.weights[order]
        self.size = cap
        self.slots = {int(item): slot for slot, item in enumerate(self.neighbors[:cap])}


class PairCounts:
    """Capped weighted pair counts, one :class:`PairRow` per item."""

    def __init__(self, max_neighbors: int) -> None:
        self.max_neighbors = max_neighbors
        self.rows: list[PairRow] = []

    def add(self, a: int, b: int, weight: float) -> None:
        while len(self.rows) <= max(a, b):
            self.rows.append(PairRow())
        self.rows[a].add(b, weight, self.max_neighbors)

    def row_arrays(self, item: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Neighbour indices and weights of ``item`` (views: use them before the next add)."""
        if item >= len(self.rows):
            return _EMPTY
        row = self.rows[item]
        return row.neighbors[: row.size], row.weights[: row.size]

    def get(self, a: int, b: int) -> float:
        if a >= len(self.rows):
            return 0.0
        row = self.rows[a]
        slot = row.slots.get(b)
        return 0.0 if slot is None else float(row.weights[slot])


_EMPTY: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] = (
    np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


class ItemCooccurrence:
    """Online co-occurrence and transition counts with cosine-normalised scores.

    >>> model = ItemCooccurrence(window=5, transition_span=1)
    >>> for item in (0, 1, 2):
    ...     model.learn_one(item, model_recent := [(i, 0.0) for i in range(item)])
    >>> sorted(model.neighbors.rows[0])
    [1, 2]
    >>> model.transition_scores([(1, 1.0)], 3).argmax()
    np.int64(2)
    """

    def __init__(self, window: int = 20, transition_span: int = 3, max_neighbors: int = 200,
                 distance_decay: float = 0.1, smoothing: float = 2.0,
                 target_exponent: float = 0.5) -> None:
        self.window = window
        self.transition_span = transition_span
        self.max_neighbors = max_neighbors
        self.distance_decay = distance_decay
        self.smoothing = smoothing
        self.target_exponent = target_exponent
        self.neighbors = PairCounts(max_neighbors)
        self.transitions = PairCounts(max_neighbors)
        self.occurrences = np.zeros(0, dtype=np.float64)

    def pair_weight(self, distance: int) -> float:
        """Weight of a pair ``distance`` events apart (1 = adjacent)."""
        return 1.0 / (1.0 + self.distance_decay * (distance - 1))

    def learn_one(self, item: int, recent: Sequence[tuple[int, float]]) -> None:
        """Count ``item`` against the user's recent items (oldest first, before this event)."""
        self.occurrences = grown(self.occurrences, item + 1)
        self.occurrences[item] += 1.0
        start = max(0, len(recent) - self.window)
        distance = 0
        for position in range(len(recent) - 1, start - 1, -1):
            other = recent[position][0]
            distance += 1
            if other == item:
                continue
            weight = self.pair_weight(distance)
            self.neighbors.add(item, other, weight)
            self.neighbors.add(other, item, weight)
            if distance <= self.transition_span:
                self.transitions.add(other, item, 1.0 / distance)

    def norm(self, items: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Cosine denominators: the square root of each item's (smoothed) event count."""
        occurrences = self.occurrences
        if items.size and int(items.max()) < occurrences.shape[0]:
            return np.sqrt(occurrences[items] + self.smoothing)  # every item counted: no mask
        counts = np.zeros(items.shape[0], dtype=np.float64)
        inside = items < occurrences.shape[0]
        counts[inside] = occurrences[items[inside]]
        return np.sqrt(counts + self.smoothing)

    def _aggregate(self, pairs: PairCounts, context: Sequence[tuple[int, float]],
                   n_items: int) -> np.ndarray[Any, Any]:
        # A request runs this twice over up to 20 rows: the rows are read directly
        # rather than through a method call each.
        rows = pairs.rows
        indices, counts, owners, strengths, sizes = [], [], [], [], []
        for item, strength in context:
            if item < len(rows):
                row = rows[item]
                size = row.size
                if size:
                    indices.append(row.neighbors[:size])
                    counts.append(row.weights[:size])
                    owners.append(item)
                    strengths.append(strength)
                    sizes.append(size)
        if not indices:
            return np.zeros(n_items, dtype=np.float64)
        index = np.concatenate(indices)
        scale = np.repeat(np.asarray(strengths) / self.norm(np.asarray(owners)), sizes)
        # One vectorised pass: pair weight x context strength / (|context| |neighbour|^2e).
        target = self.norm(index)
        if self.target_exponent != 0.5:
            target = target ** (2.0 * self.target_exponent)
        weight = np.concatenate(counts) * scale / target
        if int(index.max()) >= n_items:
            keep = index < n_items
            index, weight = index[keep], weight[keep]
        return np.bincount(index, weights=weight, minlength=n_items)

    def scores(self, context: Sequence[tuple[int, float]], n_items: int) -> np.ndarray[Any, Any]:
        """Sum of cosine similarities to the context items, each weighted by its strength."""
        return self._aggregate(self.neighbors, context, n_items)

    def transition_scores(self, context: Sequence[tuple[int, float]],
                          n_items: int) -> np.ndarray[Any, Any]:
        """How strongly each item tends to follow the context items."""
        return self._aggregate(self.transitions, context, n_items)

    def similar(self, item: int, n_items: int) -> np.ndarray[Any, Any]:
        """Cosine similarity of every item to ``item``."""
        return self._aggregate(self.neighbors, [(item, 1.0)], n_items)
