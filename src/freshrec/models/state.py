"""Everything the engine has learned, in one object that snapshots as a whole."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freshrec.config import EngineConfig
from freshrec.models._arrays import grown
from freshrec.models.als import OnlineALS
from freshrec.models.content import ContentEncoder, ContentIndex, ContentProjection
from freshrec.models.cooccurrence import ItemCooccurrence
from freshrec.models.features import N_FEATURES, PRIOR_WEIGHTS
from freshrec.models.items import ItemIndex
from freshrec.models.memory import LearnerMemory
from freshrec.models.ranker import OnlineRanker, SampleLog, TreeRanker
from freshrec.models.sequence import SequenceModel
from freshrec.models.trending import Trending
from freshrec.models.users import UserIndex


class ItemUsers:
    """For each item, its users and their summed weights: what item fold-in solves from."""

    def __init__(self) -> None:
        self.positions: list[dict[int, int]] = []
        self.users: list[np.ndarray[Any, Any]] = []
        self.confidence: list[np.ndarray[Any, Any]] = []
        self.sizes: list[int] = []

    def add(self, item: int, user: int, weight: float) -> None:
        while len(self.positions) <= item:
            self.positions.append({})
            self.users.append(np.zeros(4, dtype=np.int64))
            self.confidence.append(np.zeros(4, dtype=np.float32))
            self.sizes.append(0)
        slot = self.positions[item].get(user)
        if slot is None:
            slot = self.sizes[item]
            self.sizes[item] += 1
            self.positions[item][user] = slot
            self.users[item] = grown(self.users[item], slot + 1)
            self.confidence[item] = grown(self.confidence[item], slot + 1)
            self.users[item][slot] = user
        self.confidence[item][slot] += weight

    def of(self, item: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        if item >= len(self.sizes):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        size = self.sizes[item]
        return self.users[item][:size], self.confidence[item][:size]

    def remove_user(self, item: int, user: int) -> None:
        if item >= len(self.positions) or user not in self.positions[item]:
            return
        slot = self.positions[item].pop(user)
        last = self.sizes[item] - 1
        if slot != last:
            moved = int(self.users[item][last])
            self.users[item][slot] = moved
            self.confidence[item][slot] = self.confidence[item][last]
            self.positions[item][moved] = slot
        self.sizes[item] = last


@dataclass
class ModelState:
    """The online state of every model; the learner writes it, serving reads it."""

    config: EngineConfig
    items: ItemIndex = field(default_factory=ItemIndex)
    users: UserIndex = field(init=False)
    item_users: ItemUsers = field(default_factory=ItemUsers)
    trending: Trending = field(init=False)
    cooccurrence: ItemCooccurrence = field(init=False)
    als: OnlineALS = field(init=False)
    encoder: ContentEncoder = field(init=False)
    projection: ContentProjection = field(init=False)
    content_index: ContentIndex = field(init=False)
    ranker: OnlineRanker = field(init=False)
    """Orders candidates that include items the user already has (repeats compete)."""
    discovery_ranker: OnlineRanker = field(init=False)
    """Orders candidates for a user who has items when the request leaves them all out:
    learned only from choices of items new to the user."""
    cold_ranker: OnlineRanker = field(init=False)
    """Orders candidates for someone with no items yet (a first visit): learned from what
    people chose after such a request, where only item-side signals exist."""
    sequence: SequenceModel = field(init=False)
    """What follows a user's last items, in order: trained at each full training."""
    tree_ranker: TreeRanker = field(init=False)
    samples: SampleLog = field(init=False)
    memory: LearnerMemory = field(init=False)
    """The learner's own memory (impressions, stale vectors, random streams): replaying
    the records after a snapshot must continue from it, so it is snapshotted too."""
    clock: float = 0.0
    """Latest timestamp seen: decay and freshness are measured in data time."""
    events_seen: int = 0
    model_version: str = "untrained"

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__dict__.update(saved)
        for name in ("discovery_ranker", "cold_ranker"):
            if name not in saved:  # a snapshot from before it existed
                setattr(self, name, copy.deepcopy(self.ranker))
        if "memory" not in saved:  # the learner kept it outside the state: it was lost
            self.memory = LearnerMemory(self.config.random_state)
        if "sequence" not in saved:  # a snapshot from before the sequence model
            self.sequence = _sequence_model(self.config)
            upgrade_features(self)

    def __post_init__(self) -> None:
        c = self.config
        self.users = UserIndex(c.recent_size)
        self.trending = Trending(c.trending_half_lives)
        self.cooccurrence = ItemCooccurrence(window=c.cooccurrence_window,
                                             transition_span=c.transition_span,
                                             max_neighbors=c.max_neighbors)
        self.als = OnlineALS(factors=c.factors, regularization=c.regularization, alpha=c.alpha,
                             iterations=c.als_iterations, cg_steps=c.cg_steps,
                             prior_strength=c.prior_strength, num_threads=c.num_threads,
                             random_state=c.random_state)
        self.encoder = ContentEncoder(c.content_features)
        self.projection = ContentProjection(c.content_regularization)
        self.content_index = ContentIndex(self.encoder)
        self.ranker = OnlineRanker(PRIOR_WEIGHTS, learning_rate=c.ranker_learning_rate)
        self.discovery_ranker = OnlineRanker(PRIOR_WEIGHTS, learning_rate=c.ranker_learning_rate)
        self.cold_ranker = OnlineRanker(PRIOR_WEIGHTS, learning_rate=c.ranker_learning_rate)
        self.sequence = _sequence_model(c)
        self.tree_ranker = TreeRanker(random_state=c.random_state)
        self.samples = SampleLog(N_FEATURES, c.sample_capacity)
        self.memory = LearnerMemory(c.random_state)


def _sequence_model(c: EngineConfig) -> SequenceModel:
    return SequenceModel(length=c.sequence_length, decay=c.sequence_decay,
                         regularization=c.sequence_regularization,
                         vocabulary=c.sequence_vocabulary, neighbors=c.sequence_neighbors,
                         rank=c.sequence_rank)


def upgrade_features(state: ModelState) -> None:
    """Widen what a state from an older version learned to today's feature rows.

    Features only ever grow at the end of :data:`~freshrec.models.features.FEATURES`,
    so an older ranker's weights are today's first ones: the new ones start from
    their prior, and remembered rows get zeros (the signal did not exist then). Trees
    fitted on fewer features cannot score more; they are dropped until the next
    training refits them.
    """
    for ranker in (state.ranker, state.discovery_ranker, state.cold_ranker):
        ranker.widen(PRIOR_WEIGHTS)
    state.samples.widen(N_FEATURES)
    state.tree_ranker.model = None
    state.memory.widen_features(N_FEATURES)
