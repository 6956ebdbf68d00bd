"""Input drift: is the traffic still like the traffic the model was trained on?

:class:`InputDriftMonitor` reads events one at a time. The first
``reference_size`` events (or, after :meth:`InputDriftMonitor.rebase`, the
latest window) are the *reference*; the last ``current_size`` events are the
*current* window. Five signals are compared between the two:

* ``event_types``: the mix of event types (views, clicks, purchases…);
* ``item_popularity``: how events spread over items, in buckets fixed by the
  reference (``d1`` = the most popular items that together took the first tenth
  of reference events, … ``d10`` = its long tail, ``unseen`` = items absent
  from the reference window);
* ``unknown_users``, ``unknown_items``: the share of events whose user or item
  the model does not know (the caller says, per event);
* ``new_items``: the share of events on new (young) items (the caller says).

Each signal gets a PSI and a Jensen–Shannon distance (see
:mod:`freshrec.monitoring.distances`); the three shares also feed a river
``ADWIN`` detector, which spots a change in a stream of 0/1 indicators as soon as
it is statistically significant. A signal *drifts* when (defaults in
:class:`DriftThresholds`):

* its PSI exceeds 0.2, the usual "significant shift" line, and its JS distance
  exceeds 0.2, about the same size of change for small shifts (see distances):
  both must agree, because PSI alone overreacts to sparse, lumpy histograms; and
  both exceed the reference window's own noise (the distance between its two
  halves; PSI by half as much again), so that sampling noise in a small window is
  not taken for a shift; or
* for a share: ADWIN detected a change within the current window and the share
  over the current window stands at least 2 points above the reference and at
  least 1.5 times it. ADWIN alone would also flag tiny but significant changes
  (1.0% to 1.3% unknown items on a busy site); the margins keep it to changes worth
  a retraining.

Nothing is judged before the reference is full and the current window holds
``min_current`` events: a distance between a handful of events is noise.

>>> from freshrec.records import Event
>>> monitor = InputDriftMonitor(reference_size=100, current_size=100, min_current=50)
>>> for n in range(200):
...     kind = "view" if n < 100 else "purchase"
...     monitor.learn_one(Event(user=f"u{n % 7}", item=f"i{n % 10}", type=kind, timestamp=n),
...                       known_user=True, known_item=True, new_item=False)
>>> report = monitor.report()
>>> report["drifted"], report["reasons"][0].split(":")[0]
(True, 'event_types')
>>> monitor.rebase()
>>> monitor.report()["drifted"]
False
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from river import drift

from freshrec.monitoring.distances import DEFAULT_SMOOTHING, DistributionDrift
from freshrec.records import Event

__all__ = ["DistributionDrift", "DriftThresholds", "InputDriftMonitor", "drift_signals"]

UNSEEN = "unseen"
# river has no type hints; one typed-as-Any name keeps mypy --strict quiet.
_ADWIN: Any = drift.ADWIN
SHARE_SIGNALS = ("unknown_users", "unknown_items", "new_items")
NOISE_MARGIN = 1.5
"""How many times the reference's split-half PSI a distribution's PSI must exceed."""


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """When a signal counts as drifted; the module docstring explains each default."""

    psi: float = 0.2
    js: float = 0.2
    # ADWIN's detection counts only if the share rose at least this much (absolute)...
    min_share_increase: float = 0.02
    # ...and to at least this multiple of the reference share (a share of 40% moving
    # by 2 points is noise; a share of 1% that triples is news).
    min_share_ratio: float = 1.5
    # ADWIN's confidence: smaller means fewer false alarms and slower detection.
    adwin_delta: float = 0.002


class _Entry(NamedTuple):
    type: str
    item: str
    bucket: str
    shares: tuple[bool, bool, bool]  # unknown user, unknown item, new item


class _Window:
    """Counts over a set of entries, kept up to date as entries come and go."""

    def __init__(self) -> None:
        self.entries: deque[_Entry] = deque()
        self.types: Counter[str] = Counter()
        self.buckets: Counter[str] = Counter()
        self.shares = [0, 0, 0]

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self._count(entry, 1)

    def drop_oldest(self) -> None:
        self._count(self.entries.popleft(), -1)

    def _count(self, entry: _Entry, sign: int) -> None:
        self.types[entry.type] += sign
        self.buckets[entry.bucket] += sign
        for n, flag in enumerate(entry.shares):
            self.shares[n] += sign * flag

    def __len__(self) -> int:
        return len(self.entries)


class InputDriftMonitor:
    """Reference vs current window over five input signals; see the module docstring.

    Thread-safe: ``learn_one`` (the ingest path) and ``report`` (an HTTP handler)
    may run in different threads.
    """

    def __init__(self, reference_size: int = 5_000, current_size: int = 5_000, *,
                 min_current: int = 1_000, buckets: int = 10,
                 thresholds: DriftThresholds | None = None,
                 smoothing: float = DEFAULT_SMOOTHING) -> None:
        if min(reference_size, current_size, min_current, buckets) < 1:
            raise ValueError("window sizes, min_current and buckets must be at least 1")
        self.reference_size = reference_size
        self.current_size = current_size
        self.min_current = min(min_current, current_size)
        self.buckets = buckets
        self.thresholds = thresholds or DriftThresholds()
        self.smoothing = smoothing
        self._lock = threading.Lock()
        self._reference = _Window()
        self._current = _Window()
        self._bucket_of: dict[str, str] = {}
        self._events = 0
        self._detectors: list[Any] = []
        self._detections: list[int] = []
        self._detected_at: list[int | None] = []
        self._reset_detectors()

    def learn_one(self, event: Event, known_user: bool, known_item: bool,
                  new_item: bool) -> None:
        """Count one event; the caller knows whether the model knew its user and item."""
        shares = (not known_user, not known_item, bool(new_item))
        with self._lock:
            self._events += 1
            # The detectors see every event, reference included: a change right at
            # the end of the reference is still a change.
            for n, detector in enumerate(self._detectors):
                detector.update(float(shares[n]))
                if detector.drift_detected:
                    self._detected_at[n] = self._events
                    self._detections[n] += 1
            if len(self._reference) < self.reference_size:
                self._reference.add(_Entry(event.type, event.item, "", shares))
                if len(self._reference) == self.reference_size:
                    self._freeze_reference()
                return
            bucket = self._bucket_of.get(event.item, UNSEEN)
            self._current.add(_Entry(event.type, event.item, bucket, shares))
            if len(self._current) > self.current_size:
                self._current.drop_oldest()

    def rebase(self) -> None:
        """Make the current window the reference (after a retrain), and start afresh.

        If the current window holds fewer than ``reference_size`` events, the
        reference goes on filling from the next events before anything is judged.
        """
        with self._lock:
            keep = list(self._current.entries)[-self.reference_size:]
            self._reference, self._current = _Window(), _Window()
            for entry in keep:
                self._reference.add(entry)
            if len(self._reference) == self.reference_size:
                self._freeze_reference()
            self._reset_detectors()

    def report(self) -> dict[str, Any]:
        """Every signal's reference and current value, distances, detector; ``drifted``."""
        with self._lock:
            ready = (len(self._reference) == self.reference_size
                     and len(self._current) >= self.min_current)
            entries = list(self._reference.entries)
            half = len(entries) // 2
            signals = {
                "event_types": self._distribution(
                    self._reference.types, self._current.types, ready,
                    _split_halves(entries, half, lambda entry: entry.type)),
                "item_popularity": self._distribution(
                    self._reference.buckets, self._current.buckets, ready,
                    self._popularity_halves(entries, half)),
            }
            signals.update((name, self._share(n, ready)) for n, name in enumerate(SHARE_SIGNALS))
            reasons = [reason for name, signal in signals.items()
                       for reason in self._reasons(name, signal)]
            return {
                "ready": ready,
                "events_seen": self._events,
                "reference_events": len(self._reference),
                "current_events": len(self._current),
                "thresholds": asdict(self.thresholds),
                "signals": signals,
                "drifted": bool(reasons),
                "reasons": reasons,
            }

    def histograms(self) -> dict[str, dict[str, dict[str, list[Any]]]]:
        """Each signal's reference and current windows as counts per bin (what the
        distances compare): event types, popularity buckets, and no/yes for a share."""
        with self._lock:
            reference, current = self._reference, self._current
            out = {"event_types": _bins(reference.types, current.types),
                   "item_popularity": _bins(reference.buckets, current.buckets,
                                            key=_popularity_order)}
            for n, name in enumerate(SHARE_SIGNALS):
                out[name] = {
                    window_name: {"bins": ["no", "yes"],
                                  "counts": [len(window) - window.shares[n], window.shares[n]]}
                    for window_name, window in (("reference", reference), ("current", current))}
            return out

    def _freeze_reference(self) -> None:
        """Fix the popularity buckets from the reference window's item counts."""
        counts = Counter(entry.item for entry in self._reference.entries)
        self._bucket_of = _popularity_buckets(counts, self.buckets)
        old = list(self._reference.entries)
        self._reference = _Window()
        for entry in old:
            self._reference.add(entry._replace(bucket=self._bucket_of[entry.item]))

    def _popularity_halves(self, entries: list[_Entry],
                           half: int) -> tuple[Counter[str], Counter[str]]:
        """Both halves of the reference, bucketed by the first half's popularity, so the
        second half has unseen items just as the current window has."""
        buckets = _popularity_buckets(Counter(e.item for e in entries[:half]), self.buckets)
        return (Counter(buckets[e.item] for e in entries[:half]),
                Counter(buckets.get(e.item, UNSEEN) for e in entries[half:]))

    def _reset_detectors(self) -> None:
        self._detectors = [_ADWIN(delta=self.thresholds.adwin_delta) for _ in SHARE_SIGNALS]
        self._detections = [0] * len(SHARE_SIGNALS)
        self._detected_at = [None] * len(SHARE_SIGNALS)

    def _distribution(self, reference: Counter[str], current: Counter[str], ready: bool,
                      halves: tuple[Counter[str], Counter[str]]) -> dict[str, Any]:
        ref = {key: count for key, count in reference.items() if count > 0}
        cur = {key: count for key, count in current.items() if count > 0}
        if not ready:
            return {"reference": _shares(ref), "current": _shares(cur), "psi": None,
                    "js": None, "noise": None, "drifted": False}
        distance = DistributionDrift.compare(ref, cur, smoothing=self.smoothing)
        # The noise floor: how far the reference window's two halves are from each
        # other, with nothing changed. Lumpy data (a few huge wholesale orders) moves a
        # histogram of a few thousand events a lot; only a shift beyond that is news.
        noise = DistributionDrift.compare(dict(halves[0]), dict(halves[1]),
                                          smoothing=self.smoothing)
        # The halves are next to each other in time and the current window is further
        # away, so their distance is a low estimate of the noise: ask for a margin.
        beyond_noise = (distance.psi > NOISE_MARGIN * noise.psi
                        and distance.js > noise.js)
        return {**distance.as_dict(), "noise": {"psi": noise.psi, "js": noise.js},
                "drifted": self._beyond(distance) and beyond_noise}

    def _share(self, n: int, ready: bool) -> dict[str, Any]:
        ref_count, cur_count = self._reference.shares[n], self._current.shares[n]
        ref_rate = ref_count / len(self._reference) if self._reference else None
        cur_rate = cur_count / len(self._current) if self._current else None
        detector = self._detectors[n]
        detected_at = self._detected_at[n]
        recent = detected_at is not None and self._events - detected_at < self.current_size
        state = {"name": "ADWIN", "detections": self._detections[n],
                 "last_detection_event": detected_at, "recent": recent,
                 "estimate": float(detector.estimation), "width": int(detector.width)}
        signal: dict[str, Any] = {"reference": ref_rate, "current": cur_rate, "psi": None,
                                  "js": None, "drifted": False, "detector": state}
        if not ready or ref_rate is None:
            return signal
        distance = DistributionDrift.compare(
            [len(self._reference) - ref_count, ref_count],
            [len(self._current) - cur_count, cur_count], smoothing=self.smoothing)
        # The rise is read off the whole current window, not ADWIN's own estimate: right
        # after a detection ADWIN keeps only the newest few events, and in a shop's log
        # those are often one basket (one new customer's 30 lines read as a share of 1.0).
        risen = (cur_rate is not None
                 and cur_rate - ref_rate >= self.thresholds.min_share_increase
                 and cur_rate >= ref_rate * self.thresholds.min_share_ratio)
        signal.update(psi=distance.psi, js=distance.js,
                      drifted=self._beyond(distance) or (recent and risen))
        state["significant"] = recent and risen
        return signal

    def _beyond(self, distance: DistributionDrift) -> bool:
        # Both distances must agree: PSI alone overreacts to sparse, lumpy histograms
        # (a wholesale log's item popularity moves PSI past 0.2 week after week, with
        # JS near 0.13), and a retraining per lumpy week would be noise, not news.
        return distance.psi > self.thresholds.psi and distance.js > self.thresholds.js

    def _reasons(self, name: str, signal: dict[str, Any]) -> list[str]:
        if not signal["drifted"]:
            return []
        psi, js = signal["psi"], signal["js"]
        why = f"{name}: PSI {psi:.3f}, JS {js:.3f}"
        if psi > self.thresholds.psi and js > self.thresholds.js:
            why += f" (thresholds {self.thresholds.psi}, {self.thresholds.js})"
        if signal.get("detector", {}).get("significant"):
            why += (f"; ADWIN detected a rise from {signal['reference']:.3f} to "
                    f"{signal['current']:.3f}")
        return [why]


def _popularity_buckets(counts: Counter[str], buckets: int) -> dict[str, str]:
    """Item -> decile of the window's events ("d1" holds the most popular items)."""
    total = sum(counts.values())
    bucket_of: dict[str, str] = {}
    before = 0
    # Most popular first; ties by id so the same window always gives the same buckets.
    for item, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        bucket_of[item] = f"d{min(before * buckets // total, buckets - 1) + 1}"
        before += count
    return bucket_of


def _split_halves(entries: list[_Entry], half: int,
                  key: Any) -> tuple[Counter[str], Counter[str]]:
    return Counter(map(key, entries[:half])), Counter(map(key, entries[half:]))


def _popularity_order(bucket: str) -> tuple[int, str]:
    """d1, d2 … d10, then unseen."""
    return (int(bucket[1:]), "") if bucket[1:].isdigit() else (10**6, bucket)


def _bins(reference: Counter[str], current: Counter[str],
          key: Any = None) -> dict[str, dict[str, list[Any]]]:
    """Both windows over the same bins (every bin either has), each with its counts.
    Reference entries not yet bucketed (the reference still filling) have no bin."""
    bins = sorted({b for counts in (reference, current) for b, n in counts.items() if n > 0 and b},
                  key=key)
    return {name: {"bins": bins, "counts": [counts.get(b, 0) for b in bins]}
            for name, counts in (("reference", reference), ("current", current))}


def drift_signals(report: dict[str, Any],
                  histograms: dict[str, dict[str, dict[str, list[Any]]]]) -> list[dict[str, Any]]:
    """Each signal for a person: both windows' counts, the distance, the detector's state.

    ``distance`` is the Jensen-Shannon distance (bounded in [0, 1], unlike PSI); the
    state is ``warming up`` until the windows are full enough to judge."""
    signals = []
    for name, signal in report["signals"].items():
        state = ("drifted" if signal["drifted"] else
                 "stable" if report["ready"] else "warming up")
        detector = {"state": state, **signal.get("detector", {"name": "PSI and JS"}),
                    "psi": signal["psi"], "js": signal["js"], "noise": signal.get("noise")}
        signals.append({"name": name, **histograms[name], "distance": signal["js"],
                        "drifted": signal["drifted"], "detector": detector})
    return signals


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {key: count / total for key, count in sorted(counts.items())} if total else {}
