"""Content: item text and categories as features, mapped into the collaborative space.

Text is hashed (no vocabulary to grow or refit when a new word appears) and
weighted by inverse document frequency. A ridge regression learned at each full
training maps these features to the ALS item vectors of items with enough
interactions; applied to a brand-new item, it predicts the vector the item
would have, so the item is recommendable the moment it enters the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import normalize

from freshrec.models._arrays import grown

Matrix: TypeAlias = sp.csr_matrix
_NON_WORD = re.compile(r"\W+")


def content_document(text: str, categories: Sequence[str]) -> str:
    """The string that is hashed: the text plus one token per category."""
    tokens = [f"cat_{_NON_WORD.sub('_', c.lower())}" for c in categories]
    return " ".join([text, *tokens])


class ContentEncoder:
    """Hashed, IDF-weighted, L2-normalised bag of words.

    >>> encoder = ContentEncoder(n_features=2**10)
    >>> encoder.fit(["red wool scarf", "blue wool hat", "garden hose"])
    >>> rows = encoder.transform(["red scarf", "hose"])
    >>> float((rows[0] @ rows[1].T).toarray()[0, 0])
    0.0
    """

    def __init__(self, n_features: int = 2**16) -> None:
        self.n_features = n_features
        self._hasher = HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None,
                                         ngram_range=(1, 1), lowercase=True)
        self.idf = np.ones(n_features, dtype=np.float32)

    def fit(self, documents: Sequence[str]) -> None:
        """Learn document frequencies from the catalog (at each full training)."""
        counts = self._hasher.transform(documents)
        frequency = np.bincount(counts.indices, minlength=self.n_features)
        # Smooth IDF as scikit-learn's TfidfTransformer does; unseen words get the maximum.
        self.idf = (np.log((1 + len(documents)) / (1 + frequency)) + 1.0).astype(np.float32)

    def transform(self, documents: Sequence[str]) -> Matrix:
        counts = self._hasher.transform(documents).astype(np.float32)
        counts.data = np.log1p(counts.data)
        weighted = counts @ sp.diags(self.idf)
        return normalize(weighted.tocsr(), norm="l2", copy=False)


class ContentProjection:
    """Ridge regression from content features to collaborative item vectors."""

    def __init__(self, regularization: float = 1.0) -> None:
        self.regularization = regularization
        self.weights: np.ndarray[Any, Any] | None = None
        self.intercept: np.ndarray[Any, Any] | None = None

    @property
    def fitted(self) -> bool:
        return self.weights is not None

    def fit(self, features: Matrix, targets: np.ndarray[Any, Any]) -> None:
        ridge = Ridge(alpha=self.regularization, fit_intercept=True, solver="sparse_cg",
                      max_iter=200, tol=1e-4)
        ridge.fit(features, targets)
        # features x factors, in C order: scipy multiplies a sparse row by a dense
        # matrix only in C order, and copied a Fortran-ordered one whole (tens of MB)
        # at every call: 9 ms per new item on Online Retail, 50 items/s in all.
        self.weights = np.ascontiguousarray(np.asarray(ridge.coef_).T, dtype=np.float32)
        self.intercept = np.asarray(ridge.intercept_, dtype=np.float32)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.weights is not None:  # snapshots written before the weights were C order
            self.weights = np.ascontiguousarray(self.weights)

    def predict(self, features: Matrix) -> np.ndarray[Any, Any]:
        if self.weights is None or self.intercept is None:
            raise RuntimeError("ContentProjection.predict called before fit")
        return np.asarray(features @ self.weights) + self.intercept


class ContentIndex:
    """Every item's content vector, for "how close is this item's text to what the user likes".

    Rows live in one CSR matrix (rebuilt at each full training) plus a small
    overlay of rows added or changed since, so adding an item costs one encoding
    and a request gathers its candidates' rows with a few vectorised operations.

    >>> index = ContentIndex(ContentEncoder(n_features=2**10))
    >>> for n, text in enumerate(["red wool scarf", "red wool hat", "garden hose"]):
    ...     index.set(n, text)
    >>> index.similarity(np.array([1, 2]), [(0, 1.0)]).round(2).tolist()
    [0.67, 0.0]
    """

    def __init__(self, encoder: ContentEncoder) -> None:
        self.encoder = encoder
        self.documents: list[str] = []
        self._base = sp.csr_matrix((0, encoder.n_features), dtype=np.float32)
        self._overlay: dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
        self._overlay_mask: np.ndarray[Any, Any] | None = None

    def set(self, index: int, document: str) -> None:
        self.set_many([index], [document])

    def set_many(self, indices: Sequence[int], documents: Sequence[str]) -> None:
        """Encode several items at once (one vectoriser call instead of one per item)."""
        if not indices:
            return
        while len(self.documents) <= max(indices):
            self.documents.append("")
        rows = self.encoder.transform(list(documents))
        for position, (index, document) in enumerate(zip(indices, documents, strict=True)):
            self.documents[index] = document
            row = rows[position]
            self._overlay[index] = (row.indices.astype(np.int32), row.data.astype(np.float32))
        # The writer keeps the mask current: a request reads the state, never fills it in.
        mask = getattr(self, "_overlay_mask", None)
        if mask is None:
            mask = self._overlay_mask_now()
        else:
            mask = grown(mask, max(indices) + 1)
            mask[list(indices)] = True
        self._overlay_mask = mask

    def encode(self, documents: Sequence[str]) -> Matrix:
        """Rows for ``documents`` with the current IDF (slow: call it outside any lock)."""
        return self.encoder.transform(list(documents)).astype(np.float32)

    def install(self, rows: Matrix) -> None:
        """Make ``rows`` the base for the first ``rows.shape[0]`` items (after an IDF refit)."""
        self._base = rows.tocsr()
        for index in [i for i in self._overlay if i < rows.shape[0]]:
            del self._overlay[index]
        self._overlay_mask = self._overlay_mask_now()

    def _overlay_mask_now(self) -> np.ndarray[Any, Any]:
        mask = np.zeros(max(self._overlay, default=-1) + 1, dtype=bool)
        mask[list(self._overlay)] = True
        return mask

    def _overlaid(self, items: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """True for each of ``items`` whose row lives in the overlay (one array lookup,
        not one dict lookup per item: requests ask for hundreds)."""
        mask = getattr(self, "_overlay_mask", None)  # absent in snapshots of older versions
        if mask is None:
            mask = self._overlay_mask_now()
        out = np.zeros(items.shape[0], dtype=bool)
        inside = items < mask.shape[0]
        out[inside] = mask[items[inside]]
        return out

    def _gather(self, items: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], ...]:
        """(row number, feature, value) of every stored entry of ``items``' rows."""
        base = self._base
        indptr = base.indptr
        count = base.shape[0]
        if count and items.size and int(items.max()) < count:  # the usual case: no clipping
            starts, ends = indptr[items], indptr[items + 1]
        elif count:
            inside = items < count
            clipped = np.minimum(items, count - 1)
            starts = np.where(inside, indptr[clipped], 0)
            ends = np.where(inside, indptr[clipped + 1], 0)
        else:
            starts = ends = np.zeros(items.shape[0], dtype=np.int64)
        overlay = self._overlay
        if overlay:
            replaced = self._overlaid(items)
            ends = np.where(replaced, starts, ends)
        lengths = ends - starts
        rows = np.repeat(np.arange(items.shape[0]), lengths)
        # Each entry's position: its row's start, plus how far into the row it lies.
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            rows.shape[0])
        features, values = base.indices[positions], base.data[positions]
        if overlay and replaced.any():
            extra = [(n, *overlay[int(items[n])]) for n in np.flatnonzero(replaced)]
            rows = np.concatenate([rows, *(np.full(f.shape[0], n) for n, f, _ in extra)])
            features = np.concatenate([features, *(f for _, f, _ in extra)])
            values = np.concatenate([values, *(v for _, _, v in extra)])
        return rows, features, values

    def similarity(self, items: np.ndarray[Any, Any],
                   context: Sequence[tuple[int, float]]) -> np.ndarray[Any, Any]:
        """Cosine of each item's vector with the strength-weighted sum of the context's."""
        if not context or items.size == 0:
            return np.zeros(items.shape[0], dtype=np.float64)
        context_items = np.array([item for item, _ in context], dtype=np.int64)
        strengths = np.array([strength for _, strength in context], dtype=np.float64)
        rows, indices, values = self._gather(context_items)
        if indices.size == 0:
            return np.zeros(items.shape[0], dtype=np.float64)
        # The profile stays sparse: sorted feature ids and their summed weights.
        features, where = np.unique(indices, return_inverse=True)
        profile = np.bincount(where, weights=values * strengths[rows])
        norm = float(np.sqrt(profile @ profile))
        if norm == 0:
            return np.zeros(items.shape[0], dtype=np.float64)
        rows, indices, values = self._gather(items)
        slot = np.minimum(np.searchsorted(features, indices), features.size - 1)
        shared = features[slot] == indices
        return np.bincount(rows[shared], weights=values[shared] * profile[slot[shared]],
                           minlength=items.shape[0]) / norm

