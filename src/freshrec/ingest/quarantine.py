"""The quarantine at a glance: rejected records counted by reason, over time.

A reason names the field and the problem, often with the offending value
(``type: unknown event type 'wink' (known: …)``). Counting by the exact text would
give every bad value a line of its own, so reasons are grouped by their *kind*: the
text with quoted values and numbers replaced (``type: unknown event type '…' (known:
…)``). :func:`reasons_over_time` turns the log's ``(reason, bucket, count)`` rows
(:meth:`~freshrec.log.base.EventLog.quarantine_reasons`) into totals and a series.

>>> reason_kind("type: unknown event type 'wink' (known: click, view)")
"type: unknown event type '…' (known: click, view)"
>>> reason_kind("timestamp: '2024-13-01' is not an ISO 8601 date-time")
"timestamp: '…' is not an ISO 8601 date-time"
>>> answer = reasons_over_time([("user: is required", 0.0, 2), ("value: 3 > 2", 120.0, 1)], 60)
>>> answer["reasons"], answer["series"]["t"], answer["series"]["user: is required"]
([{'reason': 'user: is required', 'count': 2}, {'reason': 'value: N > N', 'count': 1}], \
[0.0, 60.0, 120.0], [2, 0, 0])
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

MAX_POINTS = 500
"""Buckets in a series at most: a longer history shows its newest buckets."""
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Numbers that are not part of a word, nor of the name "ISO 8601".
_NUMBER = re.compile(r"(?<![\w.])(?<!ISO )-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")


def reason_kind(reason: str) -> str:
    """The reason with its values taken out (quoted text -> '…', numbers -> N)."""
    kind = _QUOTED.sub(lambda match: match.group(0)[0] + "…" + match.group(0)[0], reason)
    return _NUMBER.sub("N", kind)


def reasons_over_time(rows: Iterable[tuple[str, float, int]], bucket_s: float
                      ) -> dict[str, Any]:
    """Totals by reason kind (most frequent first) and counts per bucket of wall time.

    The series runs from the first bucket with a record to the last (at most
    :data:`MAX_POINTS` buckets, the newest), every reason kind with a count per bucket.
    """
    totals: Counter[str] = Counter()
    per_bucket: Counter[tuple[str, float]] = Counter()
    for reason, start, count in rows:
        kind = reason_kind(reason)
        totals[kind] += count
        per_bucket[kind, start] += count
    starts = sorted({start for _, start in per_bucket})
    times: list[float] = []
    if starts:
        first = max(starts[0], starts[-1] - (MAX_POINTS - 1) * bucket_s)
        count = round((starts[-1] - first) / bucket_s) + 1
        times = [first + n * bucket_s for n in range(count)]
    series: dict[str, list[Any]] = {"t": times}
    for kind, _ in totals.most_common():
        series[kind] = [per_bucket.get((kind, moment), 0) for moment in times]
    return {"bucket_s": bucket_s,
            "reasons": [{"reason": kind, "count": n} for kind, n in totals.most_common()],
            "series": series}
