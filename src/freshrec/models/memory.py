"""What the online learner carries from one record to the next besides the models.

It is part of :class:`~freshrec.models.state.ModelState`, so that a snapshot plus the
records logged after it rebuild the learner exactly: what users were shown (the rankers'
next lessons), which vectors are behind their events, and where the random streams that
pick the rankers' negatives stand.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freshrec.models._arrays import widened

Array = np.ndarray[Any, Any]


@dataclass
class Shown:
    """One impression as the learner keeps it: item indices and their feature rows."""

    timestamp: float
    candidates: Array
    features: Array
    cold: bool = False
    """Shown to someone with no items yet: it teaches the cold ranker."""


@dataclass
class LearnerMemory:
    random_state: int = 0
    impressions: OrderedDict[int, Shown] = field(default_factory=OrderedDict)
    """The last impression of each user (by index), oldest first for eviction."""
    first_visits: OrderedDict[str, Shown] = field(default_factory=OrderedDict)
    """What unknown users were shown, by id: they have no index before their first
    event, and that first choice is the only lesson the cold ranker gets."""
    dirty_users: set[int] = field(default_factory=set)
    """Users whose stored vector is behind their events (requests solve it on the fly)."""
    dirty_items: set[int] = field(default_factory=set)
    touched_users: set[int] = field(default_factory=set)
    """Users and items changed since the last full training started (to re-apply)."""
    touched_items: set[int] = field(default_factory=set)
    rng: np.random.Generator = field(init=False)
    discovery_rng: np.random.Generator = field(init=False)
    """Its own stream, so that teaching the discovery ranker leaves the general ranker's
    negatives exactly as they would be without it."""
    cold_rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.random_state)
        self.discovery_rng = np.random.default_rng([self.random_state, 1])
        self.cold_rng = np.random.default_rng([self.random_state, 2])

    def widen_features(self, n_features: int) -> None:
        """Zero columns on remembered impressions for features added since they were shown."""
        for shown in (*self.impressions.values(), *self.first_visits.values()):
            shown.features = widened(shown.features, n_features)
