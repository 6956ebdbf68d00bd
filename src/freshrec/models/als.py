"""Collaborative filtering: implicit ALS trained in full, folded in per event.

The full factorisation comes from the ``implicit`` library. Between trainings
the model stays current without retraining:

* a user's vector is re-solved after each of their events (conjugate gradient
  warm-started from the previous vector, the same solver ``implicit`` uses);
* items are re-solved in micro-batches from the users who touched them, with a
  prior pulling each one towards the vector its content predicts, so a brand
  new item starts at its content vector and moves as evidence arrives.

Confidence follows Hu, Koren and Volinsky (2008): ``c = 1 + alpha * weight``.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from freshrec.models._arrays import grown

Vector = np.ndarray[Any, Any]


def solve_factor(other: Vector, gram: Vector, indices: Vector, confidence: Vector,
                 regularization: float, alpha: float, start: Vector | None = None,
                 steps: int = 3, prior: Vector | None = None,
                 prior_strength: float = 0.0) -> Vector:
    """Least-squares vector of one user (or item) given the other side's factors.

    Minimises ``sum c (p - x.y)^2 + reg |x|^2 + prior_strength |x - prior|^2`` where the
    sum runs over all of ``other`` (``p = 1`` on ``indices``, else 0). Solved
    exactly when there is no warm start, else by a few conjugate-gradient steps.
    """
    factors = other.shape[1]
    ridge = regularization + prior_strength
    if start is None or not np.any(start):
        ys = other[indices].astype(np.float64)
        extra = alpha * confidence.astype(np.float64)  # c - 1
        b = ys.T @ (1.0 + extra)
        if prior is not None and prior_strength > 0:
            b = b + prior_strength * prior
        a = gram + (ys.T * extra) @ ys + ridge * np.eye(factors)
        return np.linalg.solve(a, b)

    # A few warm-started steps run in float32, as the factors are stored: for a user
    # with thousands of items this halves the memory the products stream through
    # (the steps move the vector by far more than float32 rounds it).
    ys = other[indices].astype(np.float32, copy=False)
    extra = (alpha * confidence).astype(np.float32)
    b = ys.T @ (1.0 + extra)
    if prior is not None and prior_strength > 0:
        b = b + np.float32(prior_strength) * prior.astype(np.float32)
    gram32 = gram.astype(np.float32)
    ridge32 = np.float32(ridge)

    def apply(v: Vector) -> Vector:
        return gram32 @ v + ys.T @ (extra * (ys @ v)) + ridge32 * v

    x = start.astype(np.float32)
    r = b - apply(x)
    p = r.copy()
    rs = float(r @ r)
    for _ in range(steps):
        if rs < 1e-12:
            break
        ap = apply(p)
        step = rs / float(p @ ap)
        x += step * p
        r -= step * ap
        rs_next = float(r @ r)
        p = r + (rs_next / rs) * p
        rs = rs_next
    return x


class OnlineALS:
    """Implicit-feedback matrix factorisation that stays current between trainings.

    >>> import scipy.sparse as sp
    >>> als = OnlineALS(factors=4, iterations=10, random_state=0)
    >>> als.fit(sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3)))))
    >>> scores = als.item_scores(als.user_vector(0))
    >>> bool(scores[:3].min() > scores[3:].max())
    True
    """

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 2.0,
                 iterations: int = 15, cg_steps: int = 3, prior_strength: float = 1.0,
                 num_threads: int = 0, random_state: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.prior_strength = prior_strength
        self.num_threads = num_threads
        self.random_state = random_state
        self.user_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_prior = np.zeros((0, factors), dtype=np.float32)
        self.has_user = np.zeros(0, dtype=bool)
        self.has_item = np.zeros(0, dtype=bool)
        self.has_prior = np.zeros(0, dtype=bool)
        self.item_gram = np.zeros((factors, factors))
        self.user_gram = np.zeros((factors, factors))
        self.trained = False
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- full training ---------------------------------------------------------------
    def fit(self, confidence: sp.csr_matrix) -> None:
        """Train from scratch on a users x items matrix of summed event weights."""
        user_factors, item_factors = self.train(confidence)
        self.install(user_factors, item_factors)

    def train(self, confidence: sp.csr_matrix) -> tuple[Vector, Vector]:
        """Run the factorisation and return the factors, without touching the live model.

        Kept apart from :meth:`install` so a background thread can train while
        requests keep reading the current factors.
        """
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        data = confidence.tocsr().astype(np.float32)
        data.data = 1.0 + self.alpha * data.data
        model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=1.0,
            iterations=self.iterations, num_threads=self.num_threads,
            random_state=self.random_state,
        )
        # implicit's own kernels are multithreaded; BLAS must not add threads on top.
        # (implicit still warns about the process-wide BLAS setting it sees; the limit
        # below is what applies.)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            model.fit(data, show_progress=False)
        return (np.asarray(model.user_factors, dtype=np.float32),
                np.asarray(model.item_factors, dtype=np.float32))

    def install(self, user_factors: Vector, item_factors: Vector) -> None:
        """Swap in freshly trained factors (users/items beyond them keep their online vectors)."""
        with self._lock:
            n_users = max(user_factors.shape[0], self.user_factors.shape[0])
            n_items = max(item_factors.shape[0], self.item_factors.shape[0])
            users = grown(self.user_factors.copy(), n_users)
            items = grown(self.item_factors.copy(), n_items)
            users[: user_factors.shape[0]] = user_factors
            items[: item_factors.shape[0]] = item_factors
            has_user = grown(self.has_user.copy(), n_users)
            has_item = grown(self.has_item.copy(), n_items)
            has_user[: user_factors.shape[0]] = np.any(user_factors != 0, axis=1)
            has_item[: item_factors.shape[0]] = np.any(item_factors != 0, axis=1)
            self.user_factors, self.item_factors = users, items
            self.has_user, self.has_item = has_user, has_item
            self.trained = True
            self.refresh_grams()

    def refresh_grams(self) -> None:
        """Recompute Y'Y and X'X, which every fold-in solve needs."""
        self.refresh_item_gram()
        self.refresh_user_gram()

    def refresh_item_gram(self) -> None:
        """Y'Y: user solves need it; it changes only when item vectors do."""
        self.item_gram = _gram(self.item_factors, self.has_item)

    def refresh_user_gram(self) -> None:
        """X'X: item solves need it; it drifts as users are folded in."""
        self.user_gram = _gram(self.user_factors, self.has_user)

    # -- online updates --------------------------------------------------------------
    def fold_in_user(self, user: int, items: Vector, confidence: Vector) -> None:
        """Re-solve one user's vector from their items (call after each of their events)."""
        if not self.trained:
            return
        self._ensure_users(user + 1)
        vector = self.solved_user(user, items, confidence)
        if vector is not None:
            self.user_factors[user] = vector
            self.has_user[user] = True

    def solved_user(self, user: int, items: Vector, confidence: Vector) -> Vector | None:
        """The vector :meth:`fold_in_user` would store, without storing it (a request
        reads the model and never writes it); ``None`` when there is nothing to solve from."""
        if not self.trained:
            return None
        known = items < self.item_factors.shape[0]
        items, confidence = items[known], confidence[known]
        usable = self.has_item[items]
        if not usable.any():
            return None
        start = self.user_vector(user)
        vector = solve_factor(self.item_factors, self.item_gram, items[usable], confidence[usable],
                              self.regularization, self.alpha, start, self.cg_steps)
        return vector.astype(np.float32, copy=False)

    def fold_in_item(self, item: int, users: Vector, confidence: Vector) -> None:
        """Re-solve one item's vector from its users, pulled towards its content prior."""
        if not self.trained:
            return
        self._ensure_items(item + 1)
        known = users < self.user_factors.shape[0]
        users, confidence = users[known], confidence[known]
        usable = self.has_user[users]
        prior = self.item_prior[item] if self.has_prior[item] else None
        if not usable.any():
            return
        start = self.item_factors[item] if self.has_item[item] else None
        vector = solve_factor(self.user_factors, self.user_gram, users[usable], confidence[usable],
                              self.regularization, self.alpha, start, self.cg_steps,
                              prior=prior, prior_strength=self.prior_strength if prior is not None
                              else 0.0)
        self.item_factors[item] = vector
        self.has_item[item] = True

    def set_prior(self, item: int, vector: Vector, replace_factors: bool) -> None:
        """Give an item its content-predicted vector; used as its factors until it has users."""
        self._ensure_items(item + 1)
        self.item_prior[item] = vector
        self.has_prior[item] = True
        if replace_factors:
            self.item_factors[item] = vector
            self.has_item[item] = True

    def forget_user(self, user: int) -> None:
        if user < self.user_factors.shape[0]:
            self.user_factors[user] = 0.0
            self.has_user[user] = False

    # -- reading ---------------------------------------------------------------------
    def user_vector(self, user: int | None) -> Vector | None:
        if user is None or user >= self.has_user.shape[0] or not self.has_user[user]:
            return None
        return self.user_factors[user]

    def session_vector(self, items: Vector, confidence: Vector) -> Vector | None:
        """A throwaway user vector for an anonymous session's items."""
        if not self.trained:
            return None
        known = items < self.item_factors.shape[0]
        items, confidence = items[known], confidence[known]
        usable = self.has_item[items]
        if not usable.any():
            return None
        return solve_factor(self.item_factors, self.item_gram, items[usable], confidence[usable],
                            self.regularization, self.alpha).astype(np.float32)

    def item_scores(self, vector: Vector | None, n_items: int | None = None) -> Vector:
        """Dot product of ``vector`` with every item (0 for items without a vector)."""
        n = self.item_factors.shape[0] if n_items is None else n_items
        out = np.zeros(n, dtype=np.float64)
        if vector is None:
            return out
        filled = min(n, self.item_factors.shape[0])
        out[:filled] = self.item_factors[:filled] @ vector
        return out

    def scores_of(self, vector: Vector, items: Vector) -> Vector:
        """Dot product of ``vector`` with the given items only."""
        out = np.zeros(items.shape[0], dtype=np.float64)
        inside = items < self.item_factors.shape[0]
        out[inside] = self.item_factors[items[inside]] @ vector
        return out

    def item_similarity(self, item: int, n_items: int) -> Vector:
        """Cosine similarity of every item's vector to ``item``'s."""
        out = np.zeros(n_items, dtype=np.float64)
        if item >= self.item_factors.shape[0] or not self.has_item[item]:
            return out
        filled = min(n_items, self.item_factors.shape[0])
        factors = self.item_factors[:filled]
        norms = np.linalg.norm(factors, axis=1) + 1e-9
        target = self.item_factors[item]
        out[:filled] = (factors @ target) / (norms * (np.linalg.norm(target) + 1e-9))
        return out

    def _ensure_users(self, n: int) -> None:
        if self.user_factors.shape[0] < n:
            self.user_factors = grown(self.user_factors, n)
            self.has_user = grown(self.has_user, n)

    def _ensure_items(self, n: int) -> None:
        if self.item_factors.shape[0] < n:
            self.item_factors = grown(self.item_factors, n)
            self.has_item = grown(self.has_item, n)
        if self.item_prior.shape[0] < n:
            self.item_prior = grown(self.item_prior, n)
            self.has_prior = grown(self.has_prior, n)


def _gram(factors: Vector, present: Vector) -> Vector:
    """factors' factors over the rows that hold a vector (absent rows are zero anyway,
    so the whole array can go to BLAS without a masked copy)."""
    rows = min(factors.shape[0], present.shape[0])
    block = factors[:rows]
    return (block.T @ block).astype(np.float64)
