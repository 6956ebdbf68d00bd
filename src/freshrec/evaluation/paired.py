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
    marks_a = _marks(a, contestant_a)
    marks_b = _marks(b, contestant_b)
    return {(variant, cut): compare_marks(marks_a[variant][cut], marks_b[variant][cut])
            for variant in marks_a for cut in marks_a[variant]
            if cut in marks_b.get(variant, {})}


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
