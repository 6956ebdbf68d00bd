"""What the engine remembers of each user: their items, how much, how recently."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from freshrec.models._arrays import grown


class UserProfile:
    """One user's interactions, kept as parallel arrays so features vectorise.

    ``confidence`` sums event weights per item (what ALS folds in), ``repeat``
    is the same sum decayed with time (what the repeat-purchase feature reads),
    and ``recent`` is the ordered tail of items (what session context reads).

    >>> profile = UserProfile(recent_size=3)
    >>> profile.add(7, 2.0, 0.0, half_life=10.0)
    >>> profile.add(7, 2.0, 10.0, half_life=10.0)
    >>> float(profile.confidence[0]), float(profile.repeat[0]), int(profile.count[0])
    (4.0, 3.0, 2)
    """

    __slots__ = ("confidence", "count", "items", "last_seen", "n", "positions", "recent", "repeat")

    def __init__(self, recent_size: int = 50) -> None:
        self.positions: dict[int, int] = {}
        self.items = np.zeros(4, dtype=np.int64)
        self.confidence = np.zeros(4, dtype=np.float32)
        self.repeat = np.zeros(4, dtype=np.float64)
        self.last_seen = np.zeros(4, dtype=np.float64)
        self.count = np.zeros(4, dtype=np.int32)
        self.n = 0
        self.recent: deque[tuple[int, float]] = deque(maxlen=recent_size)

    def add(self, item: int, weight: float, timestamp: float, half_life: float) -> None:
        slot = self.positions.get(item)
        if slot is None:
            slot = self.n
            self.n += 1
            self.positions[item] = slot
            self.items = grown(self.items, self.n)
            self.confidence = grown(self.confidence, self.n)
            self.repeat = grown(self.repeat, self.n)
            self.last_seen = grown(self.last_seen, self.n)
            self.count = grown(self.count, self.n)
            self.items[slot] = item
            self.last_seen[slot] = timestamp
        elapsed = max(0.0, timestamp - self.last_seen[slot])
        self.repeat[slot] = self.repeat[slot] * math.exp2(-elapsed / half_life) + weight
        self.last_seen[slot] = max(self.last_seen[slot], timestamp)
        self.confidence[slot] += weight
        self.count[slot] += 1
        self.recent.append((item, timestamp))

    def seen(self) -> np.ndarray[Any, Any]:
        """Indices of every item the user interacted with."""
        return self.items[: self.n]

    def repeat_scores(self, now: float, half_life: float) -> np.ndarray[Any, Any]:
        """Decayed interest in each seen item at time ``now`` (aligned with :meth:`seen`)."""
        elapsed = np.maximum(0.0, now - self.last_seen[: self.n])
        return self.repeat[: self.n] * np.exp2(-elapsed / half_life)


class UserIndex:
    """Dense user indices and their profiles; unknown users have no profile, not an error."""

    def __init__(self, recent_size: int = 50) -> None:
        self.recent_size = recent_size
        self.ids: list[str] = []
        self.position: dict[str, int] = {}
        self.profiles: list[UserProfile] = []

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, user_id: str) -> int | None:
        return self.position.get(user_id)

    def ensure(self, user_id: str) -> int:
        index = self.position.get(user_id)
        if index is None:
            index = len(self.ids)
            self.ids.append(user_id)
            self.position[user_id] = index
            self.profiles.append(UserProfile(self.recent_size))
        return index

    def profile(self, user_id: str) -> UserProfile | None:
        index = self.position.get(user_id)
        return None if index is None else self.profiles[index]

    def forget(self, user_id: str) -> int | None:
        """Drop everything about a user; the index slot stays, empty, so arrays stay aligned."""
        index = self.position.pop(user_id, None)
        if index is not None:
            self.profiles[index] = UserProfile(self.recent_size)
            self.ids[index] = ""
        return index
