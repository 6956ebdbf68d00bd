"""Online quality: do users act on what they were recommended?

:class:`OnlineQualityMonitor` hears about every served list (``served``) and every
event (``observed``) and keeps two measures:

* **Hit rate.** For each user, the last list served to them waits for their next
  event. If that event comes within ``horizon`` seconds and its item is in the
  list, it is a *hit*, otherwise a *miss*. Only that first event counts, so a
  burst of events after one list is one outcome, not many. A list whose user
  does not come back within the horizon *expires*: no outcome, since a user who
  left says nothing about the list. Events timestamped before the list was served
  (late deliveries, backfills; ``clock_skew`` allowed) are not its outcome.
* **Click-through rate.** Every served list is an impression. A click event
  carrying the ``request_id`` of a list that contained the clicked item is a
  click-through; each list counts at most once, so CTR stays in [0, 1].

Both are reported over a rolling window (the last ``window`` outcomes or
impressions) and for the whole lifetime. A river ``ADWIN`` detector watches the
hit stream and counts significant falls. ``dropped`` is the retraining trigger:
the rolling hit rate is below ``drop_fraction`` (0.8) of the *reference* rate.
The reference is the hit rate of the first ``min_outcomes`` outcomes after the
last :meth:`OnlineQualityMonitor.rebase` (called at a promotion: the new model's
own starting level), or a value passed to ``rebase``.

Why a 2,000-outcome window by default: a hit rate of 0.10 measured on n outcomes
has a relative standard error of sqrt(0.9 / (0.1 n)), 6.7% at n = 2,000 but 9.5%
at 1,000. With both the reference and the rolling rate that noisy, a 20% fall is
about 2.3 standard errors at 2,000 (about 1% false alarms) against 1.6 at 1,000
(about 5%). Lower traffic sites can trade that for a faster reaction.

Memory is bounded: one pending list per user (at most ``max_users``, oldest
dropped first) and the item sets of the last ``max_requests`` requests.

**Over time, by model version and by source** (:meth:`OnlineQualityMonitor.history`,
the console's Quality page): lists served, outcomes, hits and click-throughs are also
counted per minute of wall time (the last ``history_buckets`` minutes), per model
version that made the list, and per source credited with each shown item (a slot:
one item of one list). A source's hit rate is its hits over its slots in lists that
got an outcome, its click-through rate its clicks over its slots shown. Each serving
worker counts what it served; :func:`merge_histories` adds several workers' counts up,
and :func:`quality_over_time` turns them into rates. The counts live in memory: a
restart starts them again.

>>> from freshrec.records import Event
>>> monitor = OnlineQualityMonitor(horizon=3600)
>>> monitor.served("r1", "u1", ["i1", "i2"], timestamp=100.0)
>>> monitor.observed(Event(user="u1", item="i2", type="click", timestamp=130.0),
...                  request_id="r1")
'hit'
>>> monitor.observed(Event(user="u1", item="i9", type="view", timestamp=140.0)) is None
True
>>> report = monitor.report()
>>> report["hit_rate"], report["ctr"], report["lifetime"]["hits"]
(1.0, 1.0, 1)
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from river import drift

from freshrec.records import Event

# river has no type hints; one typed-as-Any name keeps mypy --strict quiet.
_ADWIN: Any = drift.ADWIN

Outcome = Literal["hit", "miss", "expired"]
HISTORY_BUCKET_S = 60.0
HORIZON_S = 3600.0
CLOCK_SKEW_S = 60.0


def settlement(event_time: float, served: float, *, horizon: float = HORIZON_S,
               clock_skew: float = CLOCK_SKEW_S) -> str | None:
    """What the user's next event at ``event_time`` does to a list served at ``served``.

    ``None``: nothing (dated before the list, beyond the skew: a late delivery is not
    its outcome); ``"expired"``: the user came back after the horizon (no outcome);
    ``"outcome"``: it settles the list, a hit if its item is in it. The one rule of the
    quality monitor and of the experiments' outcomes (:mod:`freshrec.experiments.outcomes`).
    """
    if event_time < served - clock_skew:
        return None
    return "expired" if event_time - served > horizon else "outcome"
MAX_ATTRIBUTIONS = 10_000
"""Lists ranked but not yet served (a request between its ranking and its answer)."""


@dataclass(slots=True)
class _Request:
    items: frozenset[str]
    clicked: bool = False
    version: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    items: frozenset[str]
    served: float
    version: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Counts:
    """Served lists, their outcomes, hits among them, and click-throughs."""

    served: int = 0
    outcomes: int = 0
    hits: int = 0
    clicks: int = 0

    def row(self) -> list[int]:
        return [self.served, self.outcomes, self.hits, self.clicks]


@dataclass(slots=True)
class _SourceCounts:
    """Slots a source filled: shown, shown in a list that got an outcome, hits, clicks."""

    shown: int = 0
    judged: int = 0
    hits: int = 0
    clicks: int = 0

    def row(self) -> list[int]:
        return [self.shown, self.judged, self.hits, self.clicks]


@dataclass(slots=True)
class _Lifetime:
    served: int = 0
    hits: int = 0
    misses: int = 0
    expired: int = 0
    superseded: int = 0
    evicted: int = 0
    clicks: int = 0
    unattributed_clicks: int = 0


class OnlineQualityMonitor:
    """Hit rate and CTR of served recommendations; see the module docstring.

    Thread-safe: serving, ingest and reporting may call it from different threads.
    """

    def __init__(self, *, horizon: float = HORIZON_S, window: int = 2_000,
                 min_outcomes: int = 2_000, drop_fraction: float = 0.8,
                 click_types: Collection[str] = ("click",), clock_skew: float = CLOCK_SKEW_S,
                 max_users: int = 100_000, max_requests: int = 100_000,
                 adwin_delta: float = 0.002, history_buckets: int = 1440,
                 clock: Callable[[], float] = time.time) -> None:
        if min(window, min_outcomes, max_users, max_requests) < 1:
            raise ValueError("window, min_outcomes, max_users and max_requests must be >= 1")
        if horizon <= 0 or not 0 < drop_fraction <= 1:
            raise ValueError("horizon must be positive and drop_fraction in (0, 1]")
        self.horizon = horizon
        self.window = window
        self.min_outcomes = min(min_outcomes, window)
        self.drop_fraction = drop_fraction
        self.click_types = frozenset(click_types)
        self.clock_skew = clock_skew
        self.max_users = max_users
        self.max_requests = max_requests
        self.adwin_delta = adwin_delta
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._requests: OrderedDict[str, _Request] = OrderedDict()
        self._impressions: deque[_Request] = deque(maxlen=window)
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._rolling_hits = 0
        self._lifetime = _Lifetime()
        self._reference: float | None = None
        self._detector: Any = None
        self._detections = self._drops = self._judged = 0
        self._last_drop: int | None = None
        self._reset_detector()
        self.history_buckets = history_buckets
        self.clock = clock
        """Wall time, for the counts over time (the lists' own clock is the events')."""
        self._attributions: OrderedDict[str, tuple[str, Mapping[str, str]]] = OrderedDict()
        self._series: OrderedDict[float, _Counts] = OrderedDict()
        self._by_version: dict[str, _Counts] = {}
        self._by_source: dict[str, _SourceCounts] = {}

    def attribute(self, request_id: str, version: str, sources: Mapping[str, str]) -> None:
        """Who made the list ``request_id`` is about to serve: the model version, and the
        source credited with each item (told when it is ranked, taken by :meth:`served`)."""
        with self._lock:
            self._attributions[request_id] = (version, sources)
            if len(self._attributions) > MAX_ATTRIBUTIONS:
                self._attributions.popitem(last=False)

    def served(self, request_id: str, user: str, items: Sequence[str],
               timestamp: float) -> None:
        """A list was shown to ``user`` at ``timestamp`` (seconds, the events' clock)."""
        with self._lock:
            self._expire(timestamp)
            listed = frozenset(items)
            version, sources = self._attributions.pop(request_id, (None, {}))
            self._lifetime.served += 1
            for counts in self._counts(version):
                counts.served += 1
            for item in listed:
                self._source(sources.get(item)).shown += 1
            if self._pending.pop(user, None) is not None:
                self._lifetime.superseded += 1
            self._pending[user] = _Pending(listed, timestamp, version, sources)
            if len(self._pending) > self.max_users:
                self._pending.popitem(last=False)
                self._lifetime.evicted += 1
            request = _Request(listed, version=version, sources=sources)
            self._requests[request_id] = request
            self._requests.move_to_end(request_id)
            if len(self._requests) > self.max_requests:
                self._requests.popitem(last=False)
            self._impressions.append(request)

    def observed(self, event: Event, request_id: str | None = None) -> Outcome | None:
        """Count ``event``; return the outcome it settled for its user's list, if any.

        ``request_id`` is the recommendation request the event came from, when the
        client sends it back (only clicks use it, for the click-through rate).
        """
        with self._lock:
            if request_id is not None and event.type in self.click_types:
                self._click(request_id, event.item)
            pending = self._pending.get(event.user)
            settled = None if pending is None else settlement(
                event.timestamp, pending.served, horizon=self.horizon,
                clock_skew=self.clock_skew)
            if pending is None or settled is None:
                return None
            del self._pending[event.user]
            if settled == "expired":
                self._lifetime.expired += 1
                return "expired"
            hit = event.item in pending.items
            self._record(hit)
            for counts in self._counts(pending.version):
                counts.outcomes += 1
                counts.hits += hit
            for item in pending.items:
                self._source(pending.sources.get(item)).judged += 1
            if hit:
                self._source(pending.sources.get(event.item)).hits += 1
            return "hit" if hit else "miss"

    def forget_user(self, user: str) -> None:
        """Drop the list waiting for ``user``'s next event (erasure); counts stay."""
        with self._lock:
            self._pending.pop(user, None)

    def rebase(self, reference: float | None = None) -> None:
        """Start judging a new model: clear the rolling window and the detector.

        The reference becomes ``reference`` if given, else the hit rate of the next
        ``min_outcomes`` outcomes. Lifetime totals are kept.
        """
        with self._lock:
            self._outcomes.clear()
            self._rolling_hits = 0
            self._reference = reference
            self._reset_detector()

    def report(self) -> dict[str, Any]:
        """Rolling and lifetime hit rate and CTR, the reference, ADWIN's state, ``dropped``."""
        with self._lock:
            outcomes = len(self._outcomes)
            hit_rate = self._rolling_hits / outcomes if outcomes else None
            impressions = len(self._impressions)
            clicks = sum(request.clicked for request in self._impressions)
            life = self._lifetime
            judged = life.hits + life.misses
            dropped = (self._reference is not None and hit_rate is not None
                       and outcomes >= self.min_outcomes
                       and hit_rate < self.drop_fraction * self._reference)
            reasons = []
            if dropped:
                reasons.append(f"hit rate {hit_rate:.3f} over the last {outcomes} outcomes is "
                               f"below {self.drop_fraction} x the reference "
                               f"{self._reference:.3f}")
            return {
                "hit_rate": hit_rate,
                "ctr": clicks / impressions if impressions else None,
                "window": {"outcomes": outcomes, "hits": self._rolling_hits,
                           "impressions": impressions, "clicks": clicks, "size": self.window},
                "lifetime": {
                    "served": life.served, "hits": life.hits, "misses": life.misses,
                    "expired": life.expired, "superseded": life.superseded,
                    "evicted": life.evicted, "clicks": life.clicks,
                    "unattributed_clicks": life.unattributed_clicks,
                    "hit_rate": life.hits / judged if judged else None,
                    "ctr": life.clicks / life.served if life.served else None,
                },
                "reference_hit_rate": self._reference,
                "drop_fraction": self.drop_fraction,
                "horizon_seconds": self.horizon,
                "detector": {"name": "ADWIN", "detections": self._detections,
                             "drops": self._drops, "last_drop_outcome": self._last_drop,
                             "estimate": float(self._detector.estimation)},
                "dropped": dropped,
                "reasons": reasons,
                "tracked_users": len(self._pending),
                "tracked_requests": len(self._requests),
            }

    def _record(self, hit: bool) -> None:
        if hit:
            self._lifetime.hits += 1
        else:
            self._lifetime.misses += 1
        if len(self._outcomes) == self._outcomes.maxlen and self._outcomes[0]:
            self._rolling_hits -= 1
        self._outcomes.append(hit)
        self._rolling_hits += hit
        if self._reference is None and len(self._outcomes) >= self.min_outcomes:
            self._reference = self._rolling_hits / len(self._outcomes)
        before = float(self._detector.estimation)
        self._detector.update(float(hit))
        self._judged += 1
        if self._detector.drift_detected:
            self._detections += 1
            # ADWIN drops the older part of its window on a detection, so the estimate
            # now reflects recent outcomes; lower than before means quality fell.
            if float(self._detector.estimation) < before:
                self._drops += 1
                self._last_drop = self._judged

    def _click(self, request_id: str, item: str) -> None:
        request = self._requests.get(request_id)
        if request is None:
            self._lifetime.unattributed_clicks += 1
        elif item in request.items and not request.clicked:
            request.clicked = True
            self._lifetime.clicks += 1
            for counts in self._counts(request.version):
                counts.clicks += 1
            self._source(request.sources.get(item)).clicks += 1

    def _counts(self, version: str | None) -> tuple[_Counts, _Counts]:
        """The counts of this minute and of ``version`` (under the lock)."""
        start = float(int(self.clock() / HISTORY_BUCKET_S) * HISTORY_BUCKET_S)
        now = self._series.get(start)
        if now is None:
            now = self._series[start] = _Counts()
            while len(self._series) > self.history_buckets:
                self._series.popitem(last=False)
        by_version = self._by_version.setdefault(version or "unknown", _Counts())
        return now, by_version

    def _source(self, source: str | None) -> _SourceCounts:
        return self._by_source.setdefault(source or "unknown", _SourceCounts())

    def history(self) -> dict[str, Any]:
        """This monitor's counts over time, by version and by source, as JSON (what
        :func:`merge_histories` adds up across workers)."""
        with self._lock:
            return {"bucket_s": HISTORY_BUCKET_S,
                    "series": [[start, *counts.row()] for start, counts in self._series.items()],
                    "by_version": {v: c.row() for v, c in self._by_version.items()},
                    "by_source": {s: c.row() for s, c in self._by_source.items()}}

    def _expire(self, now: float) -> None:
        """Drop pending lists older than the horizon (oldest first: they are in order)."""
        while self._pending:
            user, pending = next(iter(self._pending.items()))
            if now - pending.served <= self.horizon:
                return
            del self._pending[user]
            self._lifetime.expired += 1

    def _reset_detector(self) -> None:
        self._detector = _ADWIN(delta=self.adwin_delta)
        self._detections = self._drops = self._judged = 0
        self._last_drop = None


def merge_histories(histories: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several monitors' :meth:`~OnlineQualityMonitor.history` as one: counts added up.

    >>> one = {"series": [[60.0, 2, 1, 1, 0]], "by_version": {"m1": [2, 1, 1, 0]},
    ...        "by_source": {"als": [20, 10, 1, 0]}}
    >>> two = {"series": [[60.0, 1, 1, 0, 1], [120.0, 1, 0, 0, 0]],
    ...        "by_version": {"m1": [2, 1, 0, 1]}, "by_source": {}}
    >>> merged = merge_histories([one, two])
    >>> merged["series"], merged["by_version"]
    ([[60.0, 3, 2, 1, 1], [120.0, 1, 0, 0, 0]], {'m1': [4, 2, 1, 1]})
    """
    series: dict[float, list[int]] = {}
    by_version: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {}
    for history in histories:
        for start, *row in history["series"]:
            _add(series, float(start), row)
        for version, row in history["by_version"].items():
            _add(by_version, version, row)
        for source, row in history["by_source"].items():
            _add(by_source, source, row)
    return {"bucket_s": HISTORY_BUCKET_S,
            "series": [[start, *series[start]] for start in sorted(series)],
            "by_version": by_version, "by_source": by_source}


def _add(totals: dict[Any, list[int]], key: Any, row: Sequence[int]) -> None:
    known = totals.setdefault(key, [0] * len(row))
    for n, value in enumerate(row):
        known[n] += int(value)


def quality_over_time(history: Mapping[str, Any], since: float = 0.0,
                      gates: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rates from merged counts: hit rate and CTR per minute (from ``since``), per model
    version (with its offline gate from ``gates``, by version) and per source."""
    gates = gates or {}
    rows = [row for row in history["series"] if row[0] >= since]
    versions = set(history["by_version"]) | set(gates)
    empty = [0, 0, 0, 0]
    return {
        "bucket_s": history["bucket_s"],
        "series": {"t": [row[0] for row in rows],
                   "served": [row[1] for row in rows],
                   "outcomes": [row[2] for row in rows],
                   "hit_rate": [_rate(row[3], row[2]) for row in rows],
                   "ctr": [_rate(row[4], row[1]) for row in rows]},
        "by_version": [
            {"version": version, "requests": served, "outcomes": outcomes, "hits": hits,
             "clicks": clicks, "hit_rate": _rate(hits, outcomes), "ctr": _rate(clicks, served),
             "gate": gates.get(version)}
            for version in sorted(versions, reverse=True)
            for served, outcomes, hits, clicks in [history["by_version"].get(version, empty)]],
        "by_source": [
            {"source": source, "shown": shown, "judged": judged, "hits": hits,
             "clicks": clicks, "ctr": _rate(clicks, shown), "hit_rate": _rate(hits, judged)}
            for source, (shown, judged, hits, clicks) in sorted(history["by_source"].items())],
    }


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
