"""Distances between two histograms: PSI and the Jensen–Shannon distance.

Both compare a *reference* histogram (what the model was trained on) with a
*current* one (what arrives now), bin by bin. Histograms are counts, given as a
``dict`` (category -> count; a category missing on one side counts 0 there) or
as two aligned sequences of counts.

Empty bins are smoothed by adding ``smoothing`` pseudo-counts to every bin of
both sides before normalising (additive smoothing). Without it, PSI is infinite
as soon as a category appears that the reference never saw. The default 0.5 is
Jeffreys' prior; on 5,000-event windows it turns an empty bin into a share of
about 1e-4, the floor PSI tables conventionally use.

* **PSI** (population stability index) = Σ (c - r) · ln(c / r) over the shares
  ``r`` (reference) and ``c`` (current). Symmetric, unbounded. The usual reading:
  below 0.1 no real change, 0.1-0.2 a moderate one, above 0.2 significant.
* **Jensen–Shannon distance** = sqrt(JS divergence) with base-2 logarithms:
  0 for identical histograms, 1 for disjoint ones. Bounded, so one rare bin
  cannot dominate it. For small shifts JS divergence ≈ PSI / 8 nats, so a JS
  distance of about 0.19 matches PSI 0.2.

>>> drift = DistributionDrift.compare({"view": 80, "buy": 20}, {"view": 50, "buy": 50},
...                                   smoothing=0)
>>> round(drift.psi, 4), round(drift.js, 4)
(0.4159, 0.2704)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_SMOOTHING = 0.5

Histogram = Mapping[str, float] | Sequence[float] | NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DistributionDrift:
    """How far the current histogram is from the reference: PSI and JS distance."""

    psi: float
    js: float
    reference: tuple[float, ...]
    current: tuple[float, ...]
    bins: tuple[str, ...]

    @classmethod
    def compare(cls, reference: Histogram, current: Histogram, *,
                smoothing: float = DEFAULT_SMOOTHING) -> DistributionDrift:
        """Compare two histograms (dicts by category, or aligned count arrays).

        ``reference`` and ``current`` in the result are the unsmoothed shares, in
        the order of ``bins`` (sorted category names, or ``"0"``, ``"1"``… for arrays).
        """
        bins, ref, cur = _aligned(reference, current)
        return cls(psi=psi(ref, cur, smoothing=smoothing), js=js_distance(ref, cur,
                   smoothing=smoothing), reference=_shares(ref), current=_shares(cur), bins=bins)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values: the distances and both share vectors by bin."""
        return {"psi": self.psi, "js": self.js,
                "reference": dict(zip(self.bins, self.reference, strict=True)),
                "current": dict(zip(self.bins, self.current, strict=True))}


def psi(reference: ArrayLike, current: ArrayLike, *,
        smoothing: float = DEFAULT_SMOOTHING) -> float:
    """Population stability index of two aligned count vectors (see the module docstring).

    >>> psi([50, 50], [50, 50])
    0.0
    """
    ref, cur = _probabilities(reference, current, smoothing)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (cur - ref) * np.log(cur / ref)
    # A bin empty on both sides contributes nothing (0·ln(0/0) -> 0); one empty on
    # only one side, with no smoothing, makes the index infinite.
    terms = np.where((cur == 0) & (ref == 0), 0.0, terms)
    if np.any(np.isnan(terms)):
        return math.inf
    return float(max(np.sum(terms), 0.0))


def js_distance(reference: ArrayLike, current: ArrayLike, *,
                smoothing: float = DEFAULT_SMOOTHING) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) of two aligned count vectors.

    >>> js_distance([1, 0], [0, 1], smoothing=0)
    1.0
    """
    ref, cur = _probabilities(reference, current, smoothing)
    middle = (ref + cur) / 2
    divergence = (_kl(ref, middle) + _kl(cur, middle)) / 2
    # Rounding can leave a tiny negative divergence for identical inputs.
    return float(math.sqrt(min(max(divergence, 0.0), 1.0)))


def _kl(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def _probabilities(reference: ArrayLike, current: ArrayLike,
                   smoothing: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"histograms must be aligned 1-d counts, got shapes {ref.shape} "
                         f"and {cur.shape}")
    if smoothing < 0 or np.any(ref < 0) or np.any(cur < 0):
        raise ValueError("counts and smoothing must be non-negative")
    ref, cur = ref + smoothing, cur + smoothing
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("cannot compare an empty histogram (all counts zero, no smoothing)")
    return ref / ref.sum(), cur / cur.sum()


def _aligned(reference: Histogram, current: Histogram) -> tuple[
        tuple[str, ...], NDArray[np.float64], NDArray[np.float64]]:
    if isinstance(reference, Mapping) != isinstance(current, Mapping):
        raise TypeError("compare two dicts, or two aligned count arrays, not one of each")
    if isinstance(reference, Mapping) and isinstance(current, Mapping):
        bins = tuple(sorted(set(reference) | set(current)))
        return (bins, np.array([reference.get(b, 0) for b in bins], dtype=np.float64),
                np.array([current.get(b, 0) for b in bins], dtype=np.float64))
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    return tuple(str(n) for n in range(len(ref))), ref, cur


def _shares(counts: NDArray[np.float64]) -> tuple[float, ...]:
    total = float(counts.sum())
    return tuple(float(c) / total if total else 0.0 for c in counts)
