"""The blend: a linear ranker over source features, learned online from what users do.

Each candidate source (ALS, co-occurrence, trending, the user's own history,
content) contributes features; the ranker scores an item as a weighted sum.
Weights start from sensible priors and are then learned from the stream: when a
user acts on an item after being shown recommendations, the item they chose is
a positive and the items shown instead are negatives (a pairwise logistic loss,
as in BPR), updated with AdaGrad so rare and frequent features both move.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FEATURES = (
    "als",            # user vector . item vector
    "cooccurrence",   # similarity to the user's recent items
    "transition",     # tendency to follow the user's last items
    "trend_short",    # log decayed popularity, short half-life
    "trend_mid",
    "trend_long",
    "popularity",     # log all-time count
    "repeat",         # log decayed weight of the user's own past events on the item
    "seen",           # 1 if the user has interacted with the item before
    "freshness",      # 1 for an item whose first event was just now, decaying with time
)
N_FEATURES = len(FEATURES)

# Which source an item is credited to when a feature dominates its score.
SOURCE_OF_FEATURE = (
    "als", "cooccurrence", "session", "trending", "trending", "trending", "popularity",
    "history", "history", "trending",
)

PRIOR_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.3, 0.3, 0.2, 0.1, 1.0, 0.0, 0.3])


class OnlineRanker:
    """Pairwise logistic ranker over :data:`FEATURES`.

    >>> ranker = OnlineRanker(learning_rate=0.5)
    >>> x = np.zeros((2, N_FEATURES)); x[0, 0] = 1.0; x[1, 3] = 1.0
    >>> for _ in range(50):
    ...     ranker.learn_one(x[1], x[:1])   # users keep choosing the trending item
    >>> bool(ranker.score(x)[1] > ranker.score(x)[0])
    True
    """

    def __init__(self, learning_rate: float = 0.05, l2: float = 1e-6,
                 prior: np.ndarray[Any, Any] | None = None) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.prior = PRIOR_WEIGHTS if prior is None else prior
        self.weights = np.array(self.prior, dtype=np.float64)
        self._gradient_squares = np.full(N_FEATURES, 1.0)
        self.updates = 0

    def score(self, features: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Scores of rows of ``features`` (shape ``(n, N_FEATURES)``)."""
        return features @ self.weights

    def learn_one(self, positive: np.ndarray[Any, Any], negatives: np.ndarray[Any, Any]) -> None:
        """One AdaGrad step on the pairs (positive, each negative)."""
        if negatives.shape[0] == 0:
            return
        differences = positive[None, :] - negatives
        margins = differences @ self.weights
        # d/dw of -log sigmoid(margin) is -(1 - sigmoid(margin)) * difference
        pull = 1.0 / (1.0 + np.exp(np.clip(margins, -30, 30)))
        # L2 pulls towards the prior, not zero: a long run of easy pairs must not erase
        # what the ranker knows.
        gradient = (-(pull[:, None] * differences).mean(axis=0)
                    + self.l2 * (self.weights - self.prior))
        self._gradient_squares += gradient * gradient
        self.weights -= self.learning_rate * gradient / np.sqrt(self._gradient_squares)
        self.updates += 1

    def contributions(self, features: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return features * self.weights
