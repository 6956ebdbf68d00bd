"""The blend: rankers that order the retrieved candidates using every source's features.

Two rankers share one job:

* :class:`OnlineRanker`, linear, learned per event from what users do after
  being shown recommendations (a pairwise logistic loss, as in BPR, with AdaGrad);
  it works from the first event and never stops adapting;
* :class:`TreeRanker`, gradient-boosted trees fitted at each full training on
  the samples the online path logged (:class:`SampleLog`); it captures
  interactions a linear model cannot (the same co-occurrence score means more
  for a user with a short history) and takes over once it is fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from freshrec.models._arrays import widened

Array = np.ndarray[Any, Any]


class OnlineRanker:
    """Pairwise logistic ranker, one AdaGrad step per observed choice.

    >>> ranker = OnlineRanker(prior=np.array([1.0, 0.0]), learning_rate=0.5)
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> for _ in range(50):
    ...     ranker.learn_one(x[1], x[:1])   # users keep choosing the second kind of item
    >>> bool(ranker.score(x)[1] > ranker.score(x)[0])
    True
    """

    def __init__(self, prior: Array, learning_rate: float = 0.05, l2: float = 1e-6) -> None:
        self.prior = prior
        self.learning_rate = learning_rate
        self.l2 = l2
        self.weights = np.array(prior, dtype=np.float64)
        self._gradient_squares = np.ones_like(self.weights)
        self.updates = 0

    def score(self, features: Array) -> Array:
        return features @ self.weights

    def contributions(self, features: Array) -> Array:
        """Each feature's part of each row's score: weight x value (rows sum to the score).

        >>> OnlineRanker(prior=np.array([2.0, -1.0])).contributions(np.array([[1.0, 3.0]]))
        array([[ 2., -3.]])
        """
        return np.asarray(features, dtype=np.float64) * self.weights

    def learn_one(self, positive: Array, negatives: Array) -> None:
        """One step on the pairs (positive, each negative)."""
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

    def widen(self, prior: Array) -> None:
        """Take on features added after this ranker learned: they start from ``prior``."""
        old = self.weights.shape[0]
        if old >= prior.shape[0]:
            return
        self.prior = np.array(prior, dtype=np.float64)
        self.weights = np.r_[self.weights, self.prior[old:]]
        self._gradient_squares = np.r_[self._gradient_squares, np.ones(prior.shape[0] - old)]


class SampleLog:
    """A bounded log of (features, label) rows: what was shown, and what was chosen.

    >>> log = SampleLog(n_features=2, capacity=3)
    >>> log.add(np.ones((2, 2)), np.array([1, 0])); log.add(np.zeros((2, 2)), np.array([0, 0]))
    >>> features, labels = log.snapshot()
    >>> features.shape, labels.tolist()
    ((3, 2), [0, 0, 0])
    """

    def __init__(self, n_features: int, capacity: int = 300_000) -> None:
        self.capacity = capacity
        self.features = np.zeros((capacity, n_features), dtype=np.float32)
        self.labels = np.zeros(capacity, dtype=np.int8)
        self.size = 0
        self._next = 0

    def add(self, features: Array, labels: Array) -> None:
        for row, label in zip(features, labels, strict=True):
            self.features[self._next] = row
            self.labels[self._next] = label
            self._next = (self._next + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def widen(self, n_features: int) -> None:
        """Zero columns for features added after these rows were logged."""
        self.features = widened(self.features, n_features)

    def snapshot(self) -> tuple[Array, Array]:
        """A copy of the logged rows, oldest first."""
        if self.size < self.capacity:
            return self.features[: self.size].copy(), self.labels[: self.size].copy()
        order = np.r_[self._next:self.capacity, 0:self._next]
        return self.features[order], self.labels[order]

    @property
    def positives(self) -> int:
        return int(self.labels[: self.size].sum())


class TreeRanker:
    """Gradient-boosted trees (scikit-learn's histogram GBDT) over the candidate features."""

    def __init__(self, max_iter: int = 25, max_leaf_nodes: int = 15, learning_rate: float = 0.2,
                 min_positives: int = 300, random_state: int = 0) -> None:
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.learning_rate = learning_rate
        self.min_positives = min_positives
        self.random_state = random_state
        self.model: Any = None
        self.last_gate: dict[str, float] = {}
        self._compiled: tuple[Any, ...] | None = None

    def train(self, features: Array, labels: Array, baseline: OnlineRanker) -> Any:
        """Fit trees on the older 80% of the log; keep them only if they beat ``baseline``.

        The gate compares how high each model puts the chosen item among the others
        shown with it (mean reciprocal rank, which weighs the top of the list as a
        top-10 does; AUC would reward ordering the tail) on the newest 20%, which
        neither model was fitted to in this round. Returns the model, or None when
        there is too little data or the trees do not win.
        """
        if int(labels.sum()) < self.min_positives or int((labels == 0).sum()) == 0:
            return None
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Cut at a group boundary: each group starts with its positive row.
        starts = np.flatnonzero(labels == 1)
        cut = int(starts[int(len(starts) * 0.8)]) if len(starts) > 1 else len(labels)
        held_labels = labels[cut:]
        if held_labels.min() == held_labels.max():
            return None
        model = HistGradientBoostingClassifier(
            max_iter=self.max_iter, max_leaf_nodes=self.max_leaf_nodes,
            learning_rate=self.learning_rate, early_stopping=False,
            random_state=self.random_state)
        model.fit(features[:cut], labels[:cut])
        held = features[cut:]
        tree_mrr = _mean_reciprocal_rank(model._raw_predict(held).ravel(), held_labels)
        linear_mrr = _mean_reciprocal_rank(baseline.score(held.astype(np.float64)), held_labels)
        self.last_gate = {"tree_mrr": tree_mrr, "linear_mrr": linear_mrr}
        return model if tree_mrr > linear_mrr else None

    def score(self, features: Array) -> Array:
        """Raw scores (log-odds) of ``features``: the trees' predictors called directly.

        scikit-learn's ``_raw_predict`` validates its input and rebuilds category
        maps on every call, a third of the time for a few hundred rows; a request
        calls each tree once with one thread (threads cost more than they save at
        this size and would take the other core from concurrent requests).
        :meth:`score_reference` is the library's own path; tests pin that both agree.
        """
        model = self.model
        compiled = self._compiled
        if compiled is None or compiled[0] is not model:
            bitsets, feature_map = model._bin_mapper.make_known_categories_bitsets()
            predictors = [iteration[0] for iteration in model._predictors]
            baseline = float(np.ravel(model._baseline_prediction)[0])
            compiled = (model, predictors, bitsets, feature_map, baseline)
            self._compiled = compiled
        _, predictors, bitsets, feature_map, baseline = compiled
        rows = np.ascontiguousarray(features, dtype=np.float64)
        out = np.full(rows.shape[0], baseline)
        for predictor in predictors:
            out += predictor.predict(rows, bitsets, feature_map, 1)
        return out

    def score_reference(self, features: Array) -> Array:
        return np.asarray(self.model._raw_predict(features, n_threads=1)).ravel()

    def contributions(self, features: Array) -> tuple[float, Array]:
        """The trees' score of each row split into a bias and one part per feature.

        Path attribution (Saabas, as in treeinterpreter): each node's expected output is
        the mean of its leaves' values over the training rows that reached them; along
        a row's path, the change of that expectation at each split goes to the split's
        feature. Per tree, the root's expectation plus the changes is the leaf's value,
        so ``bias + row's parts`` equals :meth:`score` exactly. Cheaper than SHAP (one
        walk down each tree), but a split's credit depends on where it sits in the tree.
        Returns ``(bias, parts)`` with ``parts`` of shape ``features.shape``.
        """
        model = self.model
        rows = np.ascontiguousarray(features, dtype=np.float64)
        parts = np.zeros_like(rows)
        bias = float(np.ravel(model._baseline_prediction)[0])
        for iteration in model._predictors:
            nodes = iteration[0].nodes
            expected = _expected_outputs(nodes)
            bias += float(expected[0])
            for row in range(rows.shape[0]):
                node = 0
                while not nodes["is_leaf"][node]:
                    feature = int(nodes["feature_idx"][node])
                    value = rows[row, feature]
                    left = (bool(nodes["missing_go_to_left"][node]) if np.isnan(value)
                            else value <= nodes["num_threshold"][node])
                    child = int(nodes["left"][node] if left else nodes["right"][node])
                    parts[row, feature] += expected[child] - expected[node]
                    node = child
        return bias, parts


def _expected_outputs(nodes: Array) -> Array:
    """Each node's mean leaf value over the training rows that reached it (children are
    stored after their parent, so one pass from the end fills every node)."""
    expected = np.array(nodes["value"], dtype=np.float64)
    counts = nodes["count"].astype(np.float64)
    for node in range(len(nodes) - 1, -1, -1):
        if not nodes["is_leaf"][node]:
            left, right = int(nodes["left"][node]), int(nodes["right"][node])
            total = counts[left] + counts[right]
            expected[node] = ((counts[left] * expected[left] + counts[right] * expected[right])
                              / total if total else 0.0)
    return expected


def _mean_reciprocal_rank(scores: Array, labels: Array) -> float:
    """Mean of 1/rank of each group's positive among its group (groups start at a 1).

    >>> _mean_reciprocal_rank(np.zeros(4), np.array([1, 0, 1, 0]))
    0.5

    >>> _mean_reciprocal_rank(np.array([0.9, 0.1, 0.5, 0.2, 0.8]), np.array([1, 0, 1, 0, 0]))
    0.75
    """
    group = np.cumsum(labels) - 1
    valid = group >= 0
    scores, labels, group = scores[valid], labels[valid], group[valid]
    positive_score = scores[labels == 1][group]
    # Ties count against the positive: a model that scores everything alike has not
    # ranked anything.
    above = np.bincount(group, weights=(scores >= positive_score).astype(float)) - 1.0
    return float(np.mean(1.0 / (1.0 + above)))
