"""The console's live view: each worker's last hour in 10-second buckets, merged on read.

Every worker counts what it served itself (:class:`LiveCounters`): events stored,
recommendations answered, their latency, errors, and the learner's lag. A read of
``/v1/console/live`` takes the answering worker's buckets and the others' (over their
sockets, as ``/metrics`` does) and merges them (:func:`merged_live`): counts add up,
latency histograms add up before the percentiles are read off them (percentiles of
percentiles would be wrong), the lag is the worst worker's.

Buckets are aligned on wall-clock time (``floor(t / 10)``), so the workers of one
machine, and later replicas with synced clocks, fill the same buckets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BUCKET_S = 10
KEPT_BUCKETS = 3600 // BUCKET_S + 1
"""An hour of complete buckets and the one being filled."""
MAX_MINUTES = 60
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(0.05 * 1.2 ** i for i in range(74))
"""Upper bounds of the latency histogram: 0.05 ms to ~35 s in 20% steps, so a percentile
read off it is within 20% of the true one, and histograms merge exactly."""
SERIES = ("events_per_s", "recommendations_per_s", "latency_p50_ms", "latency_p99_ms",
          "errors_per_s", "learner_lag")


@dataclass
class Bucket:
    events: int = 0
    recommendations: int = 0
    errors: int = 0
    latency: dict[int, int] = field(default_factory=dict)
    """Histogram of serving latency: index into LATENCY_BOUNDS_MS (len: above all) -> count."""
    lag: int | None = None
    """The largest learner lag sampled in the bucket; None: never sampled."""


class LiveCounters:
    """One worker's counters; thread-safe (the middleware and the learner both write)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._buckets: dict[int, Bucket] = {}
        self._lock = threading.Lock()
        self.events_total = 0
        self.recommendations_total = 0

    def _current(self) -> Bucket:
        index = int(self.clock() // BUCKET_S)
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = Bucket()
            for old in [i for i in self._buckets if i <= index - KEPT_BUCKETS]:
                del self._buckets[old]
        return bucket

    def events(self, count: int) -> None:
        with self._lock:
            self._current().events += count
            self.events_total += count

    def request(self, serving: bool, status: int, seconds: float) -> None:
        """One answered request: a recommendation (``serving``) is counted and timed."""
        with self._lock:
            bucket = self._current()
            if status >= 500:
                bucket.errors += 1
            if serving:
                bucket.recommendations += 1
                self.recommendations_total += 1
                slot = _latency_slot(seconds * 1000.0)
                bucket.latency[slot] = bucket.latency.get(slot, 0) + 1

    def lag(self, events: int) -> None:
        with self._lock:
            bucket = self._current()
            bucket.lag = events if bucket.lag is None else max(bucket.lag, events)

    def snapshot(self) -> dict[str, Any]:
        """The raw buckets, as JSON: what a worker hands the one that merges."""
        with self._lock:
            buckets = [{"index": index, "events": b.events, "recommendations": b.recommendations,
                        "errors": b.errors, "lag": b.lag,
                        "latency": {str(slot): n for slot, n in b.latency.items()}}
                       for index, b in sorted(self._buckets.items())]
            return {"buckets": buckets, "events_total": self.events_total,
                    "recommendations_total": self.recommendations_total}


def _latency_slot(milliseconds: float) -> int:
    for slot, bound in enumerate(LATENCY_BOUNDS_MS):
        if milliseconds <= bound:
            return slot
    return len(LATENCY_BOUNDS_MS)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram in ms, interpolated in its bucket."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for slot in sorted(histogram):
        count = histogram[slot]
        if seen + count >= rank:
            low = LATENCY_BOUNDS_MS[slot - 1] if slot > 0 else 0.0
            high = LATENCY_BOUNDS_MS[min(slot, len(LATENCY_BOUNDS_MS) - 1)]
            return round(low + (high - low) * (rank - seen) / count, 3)
        seen += count
    return LATENCY_BOUNDS_MS[-1]


def merged_live(snapshots: Mapping[str, Mapping[str, Any]], minutes: int,
                workers: list[dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    """The answer of ``/v1/console/live``: every worker's buckets (by worker name) over
    the last ``minutes`` of complete buckets, merged, and each worker's on its own.

    ``now`` holds the rates of the last complete bucket and the one being filled
    together, so that they move within seconds of a change, not only every 10 s."""
    at = time.time() if now is None else now
    current = int(at // BUCKET_S)
    indexes = list(range(current - minutes * 60 // BUCKET_S, current))
    parsed = list(_parsed(snapshot) for snapshot in snapshots.values())
    per_worker = {name: _series(indexes, [_parsed(snapshot)])
                  for name, snapshot in snapshots.items()}
    recent = _series([current - 1, current], parsed)
    span = BUCKET_S + (at - current * BUCKET_S)
    latest = {name: sum(values) * BUCKET_S / span for name, values in recent.items()
              if name.endswith("_per_s")}
    latency = _merged_latency(b for w in parsed for i, b in w.items() if i >= current - 1)
    current_lag = [w["lag"] for w in workers if w.get("lag") is not None]
    return {
        "bucket_s": BUCKET_S, "workers": workers, "series": _series(indexes, parsed),
        "per_worker": per_worker,
        "now": {**latest, "latency_p50_ms": percentile(latency, 0.50),
                "latency_p99_ms": percentile(latency, 0.99),
                "learner_lag": max(current_lag, default=None),
                "events_total": sum(s["events_total"] for s in snapshots.values()),
                "recommendations_total": sum(s["recommendations_total"]
                                             for s in snapshots.values())},
    }


def _merged_latency(buckets: Iterable[Bucket]) -> dict[int, int]:
    latency: dict[int, int] = {}
    for bucket in buckets:
        for slot, count in bucket.latency.items():
            latency[slot] = latency.get(slot, 0) + count
    return latency


def _parsed(snapshot: Mapping[str, Any]) -> dict[int, Bucket]:
    return {int(b["index"]): Bucket(events=b["events"], recommendations=b["recommendations"],
                                    errors=b["errors"], lag=b["lag"],
                                    latency={int(s): n for s, n in b["latency"].items()})
            for b in snapshot["buckets"]}


def _series(indexes: list[int], workers: list[dict[int, Bucket]]) -> dict[str, list[Any]]:
    series: dict[str, list[Any]] = {"t": [i * BUCKET_S for i in indexes],
                                    **{name: [] for name in SERIES}}
    for index in indexes:
        buckets = [w[index] for w in workers if index in w]
        latency = _merged_latency(buckets)
        lags = [b.lag for b in buckets if b.lag is not None]
        series["events_per_s"].append(sum(b.events for b in buckets) / BUCKET_S)
        series["recommendations_per_s"].append(sum(b.recommendations for b in buckets) / BUCKET_S)
        series["errors_per_s"].append(sum(b.errors for b in buckets) / BUCKET_S)
        series["latency_p50_ms"].append(percentile(latency, 0.50))
        series["latency_p99_ms"].append(percentile(latency, 0.99))
        series["learner_lag"].append(max(lags) if lags else None)
    return series
