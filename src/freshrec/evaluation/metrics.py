"""Top-k metrics of one request, and their running totals per cut.

A request is scored against a set of target items (the items the user actually
chose next). Relevance is binary and a recommended item counts once, even if a
contestant lists it twice.

>>> score_request(["a", "b", "c"], {"b"}, k=10)
RequestScore(hit=1.0, recall=1.0, ndcg=0.6309297535714575)
>>> totals = CutTotals()
>>> totals.add(score_request(["a", "b"], {"b"}, k=10))
>>> totals.add(score_request(["a", "b"], {"z"}, k=10))
>>> totals.means()["hr"]
0.5
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

_DISCOUNTS = tuple(1.0 / math.log2(rank + 2) for rank in range(1000))


def _discount(rank: int) -> float:
    return _DISCOUNTS[rank] if rank < len(_DISCOUNTS) else 1.0 / math.log2(rank + 2)


class RequestScore(NamedTuple):
    """HR@k, Recall@k and NDCG@k of one request."""

    hit: float
    recall: float
    ndcg: float


def score_request(ranked: Sequence[str], targets: Collection[str], k: int) -> RequestScore:
    """Score the first ``k`` distinct items of ``ranked`` against ``targets``.

    - HR@k is 1 when any target is in the top k;
    - Recall@k is hits / min(|targets|, k), so a perfect list scores 1 even
      when there are more targets than slots;
    - NDCG@k uses binary relevance; the ideal list puts min(|targets|, k)
      targets first.
    """
    if not targets:
        raise ValueError("a request needs at least one target item")
    if k <= 0:
        raise ValueError("k must be positive")
    seen: set[str] = set()
    hits = 0
    dcg = 0.0
    rank = 0
    for item in ranked:
        if rank == k:
            break
        if item in seen:
            continue
        seen.add(item)
        if item in targets:
            hits += 1
            dcg += _discount(rank)
        rank += 1
    ideal_hits = min(len(targets), k)
    ideal = sum(_discount(r) for r in range(ideal_hits))
    return RequestScore(
        hit=1.0 if hits else 0.0,
        recall=hits / ideal_hits,
        ndcg=dcg / ideal,
    )


@dataclass
class CutTotals:
    """Sums of request scores in one cut; ``means`` turns them into the reported numbers."""

    n: int = 0
    hit: float = 0.0
    recall: float = 0.0
    ndcg: float = 0.0

    def add(self, score: RequestScore) -> None:
        self.n += 1
        self.hit += score.hit
        self.recall += score.recall
        self.ndcg += score.ndcg

    def means(self) -> dict[str, float | int | None]:
        """``hr``, ``recall``, ``ndcg`` (``None`` for an empty cut) and the count ``n``."""
        if not self.n:
            return {"n": 0, "hr": None, "recall": None, "ndcg": None}
        return {"n": self.n, "hr": self.hit / self.n, "recall": self.recall / self.n,
                "ndcg": self.ndcg / self.n}
