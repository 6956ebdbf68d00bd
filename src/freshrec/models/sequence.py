"""What comes next: a linear model of the order of a user's last few items.

Each position of every user's history is one regression example: the input is the
items just before it, the nearer the heavier (weight ``decay**lag``), the target is
the item taken there. Ridge regression over item indicators has a closed form,
``B = (XᵀX + λI)⁻¹ XᵀY``, an item-to-item matrix read as "after these came that",
as in SLIT (Choi et al., 2021, "Session-aware Linear Item-Similarity/Transition
Model"). Unlike counted transitions it explains items away: when a popular film
follows everything, the regression credits it once instead of after every item, and
two items seen in a row share the credit for what followed both.

Why this model and not a small transformer or a GRU: measured alone on MovieLens small
trained on its first 80% (``bench/sequence_models.py``, docs/benchmarks.md), the full
matrix scored HR@10 0.081 against 0.066 for counted transitions, its top 100 entries a
row kept that (0.080), and a rank-128 factorisation or a separate block for the last
item lost most of the gain (0.072). SASRec, a contestant of the same replay, is weaker
still on this data. The model trains in seconds on a 2,000-item vocabulary, needs no
torch, and a request reads ``length`` sparse rows. What it cannot do is an "and": that
the next step after a shared one depends on the step before (``tests/engine/
test_sequence.py`` shows what it does read: direction, and the items before the last).

Items outside the vocabulary (rare, or first seen after the training) go through
the content mapping the engine already has: the matrix's leading singular vectors
give every trained item an input and an output vector, a small ridge regression maps
ALS item vectors to them, and a new item's ALS vector comes from its text
(``ContentProjection``), so it gets both the moment it arrives. Its scores are the
low-rank product for whatever the exact rows do not cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from freshrec.models._arrays import grown

Array = np.ndarray[Any, Any]


@dataclass
class SequenceFit:
    """A finished training, computed off the lock and installed under it."""

    vocabulary: Array
    rows: sp.csr_matrix
    inputs: Array
    outputs: Array
    mapping: Array | None = None
    """Collaborative (ALS) item vector -> (input, output) vectors, for items outside the
    vocabulary: a new item's ALS vector comes from its text (models/content.py)."""

    @property
    def slot(self) -> Array:
        slot = np.full(self.inputs.shape[0], -1, dtype=np.int64)
        slot[self.vocabulary] = np.arange(self.vocabulary.size)
        return slot


class SequenceModel:
    """Scores every item by what tends to follow a context's last items, in order.

    >>> model = SequenceModel(length=2, regularization=0.1, vocabulary=10, neighbors=5, rank=2)
    >>> walks = [np.array([0, 1, 2, 3])] * 20 + [np.array([3, 2, 1, 0])] * 5
    >>> model.install(model.fit(walks, n_items=4))
    >>> int(np.argmax(model.scores([(1, 1.0), (0, 0.5)], 4)))  # after 0 then 1 comes 2
    2
    """

    def __init__(self, length: int = 10, decay: float = 0.9, regularization: float = 3000.0,
                 vocabulary: int = 2000, neighbors: int = 100, rank: int = 64) -> None:
        self.length = length
        self.decay = decay
        self.regularization = regularization
        self.max_vocabulary = vocabulary
        self.neighbors = neighbors
        self.rank = rank
        self.slot = np.zeros(0, dtype=np.int64)
        """Item index -> row of the exact matrix, -1 outside the vocabulary."""
        self.rows = sp.csr_matrix((0, 0), dtype=np.float32)
        self.inputs = np.zeros((0, rank), dtype=np.float32)
        self.outputs = np.zeros((0, rank), dtype=np.float32)
        self.mapping: Array | None = None
        """Set by a training: see :attr:`SequenceFit.mapping`."""
        self.vocabulary = np.zeros(0, dtype=np.int64)
        """The items of the exact rows, in row order (sorted)."""
        self.vocabulary_outputs = np.zeros((0, rank), dtype=np.float32)
        """Their output vectors, contiguous: a request's product for the mapped part of
        its context needs only these rows, which a training fixes (growth and mapping
        write only the rows outside the vocabulary). Derived, so snapshots leave it out."""

    def __getstate__(self) -> dict[str, Any]:
        saved = self.__dict__.copy()
        del saved["vocabulary"], saved["vocabulary_outputs"]
        return saved

    def __setstate__(self, saved: dict[str, Any]) -> None:
        self.__dict__.update(saved)
        self._index_vocabulary()

    def _index_vocabulary(self) -> None:
        self.vocabulary = np.flatnonzero(self.slot >= 0)
        self.vocabulary_outputs = np.ascontiguousarray(self.outputs[self.vocabulary])

    @property
    def trained(self) -> bool:
        return self.rows.shape[0] > 0

    @property
    def size(self) -> int:
        """Items in the vocabulary: those the exact rows cover."""
        return int(self.rows.shape[0])

    # -- training (off the lock) -------------------------------------------------------
    def fit(self, sequences: Sequence[Array], n_items: int) -> SequenceFit:
        """Solve the regression on ``sequences`` (item indices, oldest first)."""
        counts = np.bincount(np.concatenate([*sequences, np.zeros(0, dtype=np.int64)]),
                             minlength=n_items)
        order = np.argsort(-counts, kind="stable")[: self.max_vocabulary]
        vocabulary = np.sort(order[counts[order] >= 2])
        size = vocabulary.size
        slot = np.full(n_items, -1, dtype=np.int64)
        slot[vocabulary] = np.arange(size)
        inputs, targets = self._examples(sequences, slot)
        if size < 2 or inputs.shape[0] == 0:
            # Too little history to learn an order from (a new shop, or what is left
            # after an erasure): no model yet, and the blend goes on without it.
            return SequenceFit(np.zeros(0, dtype=np.int64),
                               sp.csr_matrix((0, n_items), dtype=np.float32),
                               np.zeros((n_items, self.rank), dtype=np.float32),
                               np.zeros((n_items, self.rank), dtype=np.float32))
        gram = (inputs.T @ inputs).toarray()
        gram[np.diag_indices(size)] += self.regularization
        crossed = (inputs.T @ targets).toarray()
        solved = scipy.linalg.solve(gram, crossed, assume_a="pos", overwrite_a=True,
                                    overwrite_b=True, check_finite=False)
        rank = min(self.rank, max(1, size - 1))
        left, strength, right = randomized_svd(solved, rank, n_iter=4, random_state=0)
        scale = np.sqrt(strength)
        in_vectors = np.zeros((n_items, self.rank), dtype=np.float32)
        out_vectors = np.zeros((n_items, self.rank), dtype=np.float32)
        in_vectors[vocabulary, :rank] = left * scale
        out_vectors[vocabulary, :rank] = right.T * scale
        return SequenceFit(vocabulary, self._strongest(solved, vocabulary, n_items),
                           in_vectors, out_vectors)

    def _examples(self, sequences: Sequence[Array], slot: Array
                  ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """One row per position whose item is in the vocabulary: the decayed items before
        it (inputs) and the item itself (target)."""
        rows, columns, values, targets = [], [], [], []
        start = 0
        for sequence in sequences:
            where = slot[sequence]
            kept = np.flatnonzero(where[1:] >= 0) + 1  # positions with a known target
            if kept.size == 0:
                continue
            example = start + np.arange(kept.size)
            targets.append(where[kept])
            for lag in range(1, self.length + 1):
                before = kept - lag
                usable = (before >= 0)
                usable[usable] &= where[before[usable]] >= 0
                rows.append(example[usable])
                columns.append(where[before[usable]])
                values.append(np.full(int(usable.sum()), self.decay ** (lag - 1)))
            start += kept.size
        size = int(slot.max()) + 1 if slot.size else 0
        if start == 0:
            empty = sp.csr_matrix((0, size))
            return empty, empty
        inputs = sp.csr_matrix((np.concatenate(values),
                                (np.concatenate(rows), np.concatenate(columns))),
                               shape=(start, size))
        chosen = np.concatenate(targets)
        target = sp.csr_matrix((np.ones(start), (np.arange(start), chosen)), shape=(start, size))
        return inputs, target

    def _strongest(self, solved: Array, vocabulary: Array, n_items: int) -> sp.csr_matrix:
        """The matrix cut to each row's ``neighbors`` largest entries, columns as item
        indices: on MovieLens the cut kept the full matrix's quality at 1/30 the size."""
        size = vocabulary.size
        keep = min(self.neighbors, size)
        best = np.argpartition(-solved, keep - 1, axis=1)[:, :keep]
        values = np.take_along_axis(solved, best, axis=1)
        positive = values > 0
        rows = np.repeat(np.arange(size), keep)[positive.ravel()]
        return sp.csr_matrix((values[positive].astype(np.float32),
                              (rows, vocabulary[best[positive]])), shape=(size, n_items))

    # -- installing and growing (under the lock) ---------------------------------------
    def install(self, fit: SequenceFit) -> None:
        self.slot = fit.slot
        if fit.mapping is not None:
            self.mapping = fit.mapping
        self.rows = fit.rows
        self.inputs = fit.inputs
        self.outputs = fit.outputs
        self._index_vocabulary()

    def in_vocabulary(self, index: int) -> bool:
        return index < self.slot.shape[0] and bool(self.slot[index] >= 0)

    def fit_mapping(self, fit: SequenceFit, item_factors: Array,
                    regularization: float = 1.0) -> None:
        """Ridge regression from the vocabulary's ALS vectors to its (input, output)
        vectors, so that any item with an ALS vector (a new one's comes from its text)
        gets sequence vectors too. Small (factors x 2·rank), unlike a second map from
        the text's 65,536 features."""
        known = fit.vocabulary[fit.vocabulary < item_factors.shape[0]]
        factors = item_factors[known].astype(np.float64)
        if known.size < 10 or not np.any(factors):
            return
        targets = np.hstack([fit.inputs[known], fit.outputs[known]]).astype(np.float64)
        gram = factors.T @ factors + regularization * np.eye(factors.shape[1])
        fit.mapping = np.linalg.solve(gram, factors.T @ targets).astype(np.float32)

    def map_items(self, indices: Array, item_factors: Array) -> None:
        """Give the items of ``indices`` outside the vocabulary the vectors their ALS
        vectors map to."""
        if self.mapping is None or indices.size == 0:
            return
        self._grow(int(indices.max()) + 1)
        outside = indices[(self.slot[indices] < 0) & (indices < item_factors.shape[0])]
        if outside.size == 0:
            return
        vectors = item_factors[outside] @ self.mapping
        self.inputs[outside] = vectors[:, : self.rank]
        self.outputs[outside] = vectors[:, self.rank:]

    def _grow(self, n_items: int) -> None:
        if self.slot.shape[0] >= n_items:
            return
        # ``grown`` fills the new rows: outside the vocabulary, no vectors yet.
        self.slot = grown(self.slot, n_items, fill=-1)
        self.inputs = grown(self.inputs, n_items)
        self.outputs = grown(self.outputs, n_items)

    # -- serving (read only) -----------------------------------------------------------
    def scores(self, context: Sequence[tuple[int, float]], n_items: int) -> Array:
        """What follows ``context`` ((item, weight), most recent first), for every item.

        Items in the vocabulary are scored by the exact rows of the context's trained
        items, plus the low-rank product for its mapped ones; the others by the
        low-rank product alone.

        Written for a request's budget: one pass of ``bincount`` over the context's
        exact rows (not one scatter per row), one product over the output vectors as
        they lie in memory (gathering the rows outside the vocabulary copied megabytes),
        then the vocabulary's entries put back over it, with the mapped part from the
        vocabulary's own contiguous output rows (:attr:`vocabulary_outputs`). Every
        product is the one the plain formula computes, in the same order, so the scores
        are the same to the bit (``tests/engine/test_sequence.py``).
        """
        if not self.trained or not context:
            return np.zeros(n_items)
        known = self.slot.shape[0]
        items = np.fromiter((item for item, _ in context), dtype=np.int64, count=len(context))
        # float32 weights: ``weight * vector`` with a Python float multiplies in float32.
        weights = np.fromiter((weight for _, weight in context), dtype=np.float32,
                              count=len(context))
        if int(items.max()) >= known:
            kept_items = items < known
            items, weights = items[kept_items], weights[kept_items]
        rows = self.slot[items]
        # Summed down the rows in context order, as a running sum over the context adds.
        vectors = self.inputs[items] * weights[:, None]
        query = vectors.sum(axis=0)
        trained = rows >= 0
        mapped_query = vectors[~trained].sum(axis=0)
        out = self._exact(rows[trained], weights[trained], n_items)
        covered = min(n_items, known)
        if covered == 0 or not query.any():
            return out
        vocabulary = self.vocabulary
        kept = out[vocabulary]
        if mapped_query.any():
            kept += self.vocabulary_outputs @ mapped_query
        out[:covered] = self.outputs[:covered] @ query
        out[vocabulary] = kept
        return out

    def _exact(self, rows: Array, weights: Array, n_items: int) -> Array:
        """The sum of the exact rows ``rows``, each times its (float32) weight, in order.

        The weights multiply in float32, as the rows are stored, and the sum runs in
        float64 row after row (``bincount`` adds in array order), as a scatter per row
        would."""
        if rows.size == 0:
            return np.zeros(n_items)
        matrix = self.rows
        indptr = matrix.indptr
        starts = indptr[rows]
        lengths = indptr[rows + 1] - starts
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            int(lengths.sum()))
        if positions.size == 0:
            # bincount of nothing answers integers, whatever its weights' type.
            return np.zeros(n_items)
        values = matrix.data[positions] * np.repeat(weights, lengths)
        return np.bincount(matrix.indices[positions], weights=values, minlength=n_items)
