"""Paired comparison of two replays (or two contestants of one), request by request.

Both sides answered the same requests, so the noise that matters is in the
requests where they disagree, not in each HR on its own: the difference of the
per-request hits has a standard error far below either HR's. This is what tells a
real gain from a lucky draw when two settings differ by a point of HR.

>>> row = compare_marks("1101-", "0111-")
>>> (row.n, row.a, row.b, row.difference)
(4, 0.75, 0.75, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from freshrec.evaluation.plan import DEFAULT_SPLIT

PLAN_FIELDS = ("dataset", "baskets", "split", "train_events", "test_events", "split_time",
               "requests", "evaluated_requests")
"""What makes two runs' requests the same ones: the data, where it is split, the sampling.
Two runs with as many scored requests may still differ here (another split sampled
down to the same count), and marks of different requests must never be paired."""


@dataclass(frozen=True)
class PairedRow:
    n: int
    a: float
    b: float
    difference: float
    """Mean of (b - a) over the requests both scored."""
    standard_error: float

    @property
    def z(self) -> float:
        if self.standard_error == 0:
            return 0.0
        return self.difference / self.standard_error


def compare_marks(a: str, b: str) -> PairedRow:
    """Compare two mark strings (``1`` hit, ``0`` miss, ``-`` not in the cut)."""
    if len(a) != len(b):
        raise ValueError(f"the runs scored different requests ({len(a)} vs {len(b)} marks)")
    pairs = [(x == "1", y == "1") for x, y in zip(a, b, strict=True)
             if x != "-" and y != "-"]
    n = len(pairs)
    if n == 0:
        return PairedRow(0, math.nan, math.nan, math.nan, math.nan)
    differences = [int(y) - int(x) for x, y in pairs]
    mean = sum(differences) / n
    variance = (sum((d - mean) ** 2 for d in differences) / (n - 1)) if n > 1 else 0.0
    return PairedRow(n, sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n, mean,
                     math.sqrt(variance / n))


def compare_reports(a: dict[str, Any], b: dict[str, Any], contestant_a: str,
                    contestant_b: str) -> dict[tuple[str, str], PairedRow]:
    """(variant, cut) -> paired row, for one contestant of report ``a`` and one of ``b``."""
    check_same_plan(a, b)
    marks_a = _marks(a, contestant_a)
    marks_b = _marks(b, contestant_b)
    return {(variant, cut): compare_marks(marks_a[variant][cut], marks_b[variant][cut])
            for variant in marks_a for cut in marks_a[variant]
            if cut in marks_b.get(variant, {})}


def check_same_plan(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Refuse two reports whose plans differ (reports without a protocol are not checked).

    >>> check_same_plan({"protocol": {"dataset": "m", "split": 0.5}},
    ...                 {"protocol": {"dataset": "m", "split": 0.8}})
    Traceback (most recent call last):
    ...
    ValueError: the runs replayed different plans: split 0.5 vs 0.8
    """
    plan_a, plan_b = a.get("protocol"), b.get("protocol")
    if plan_a is None or plan_b is None:
        return
    # reports written before --split existed all used the median split
    plan_a, plan_b = ({"split": DEFAULT_SPLIT, **plan} for plan in (plan_a, plan_b))
    differences = [f"{name} {plan_a.get(name)} vs {plan_b.get(name)}" for name in PLAN_FIELDS
                   if plan_a.get(name) != plan_b.get(name)]
    if differences:
        raise ValueError("the runs replayed different plans: " + ", ".join(differences))


def _marks(report: dict[str, Any], contestant: str) -> dict[str, dict[str, str]]:
    found = report.get("contestants", {}).get(contestant)
    if found is None:
        raise ValueError(f"no contestant {contestant!r} in the report "
                         f"(it has: {', '.join(report.get('contestants', {}))})")
    hits = found.get("hits")
    if not hits:
        raise ValueError(f"the report has no per-request hits for {contestant!r} "
                         "(written by replays since 2026-11-30)")
    return hits  # type: ignore[no-any-return]
