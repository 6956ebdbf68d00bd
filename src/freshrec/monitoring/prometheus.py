"""Prometheus gauges for the drift and online-quality reports.

:func:`register_monitoring_gauges` adds the gauges to a given
``CollectorRegistry`` (each service instance has its own); ``update`` copies a
report's numbers into them, typically from the same loop that refreshes the
reports. A value the report does not have yet (``None``: the window is still
filling) is exported as NaN, which Prometheus shows as a gap, not as a zero.

=================================================  =========================================
``freshrec_drift_psi{signal}``                     PSI, reference vs current window
``freshrec_drift_js{signal}``                      Jensen–Shannon distance (base 2)
``freshrec_drift_signal_drifted{signal}``          1 if that signal is past its threshold
``freshrec_drift_share{signal,window}``            unknown-user/-item and new-item shares
``freshrec_drift_ready``                           1 once both windows are full enough
``freshrec_drift_detected``                        1 if any signal drifted
``freshrec_online_hit_rate``                       rolling hit rate of served lists
``freshrec_online_hit_rate_reference``             the rate the drop is measured against
``freshrec_online_ctr``                            rolling click-through rate
``freshrec_online_outcomes{outcome}``              lifetime hits, misses, expired, clicks…
``freshrec_quality_dropped``                       1 if the hit rate fell below the bar
=================================================  =========================================

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> gauges = register_monitoring_gauges(registry)
>>> gauges.update(quality={"hit_rate": 0.25, "ctr": None, "dropped": False})
>>> registry.get_sample_value("freshrec_online_hit_rate")
0.25
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

SHARE_SIGNALS = ("unknown_users", "unknown_items", "new_items")
LIFETIME_OUTCOMES = ("served", "hits", "misses", "expired", "superseded", "evicted", "clicks",
                     "unattributed_clicks")


class MonitoringGauges:
    """The monitoring gauges of one registry; ``update`` refreshes them from reports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.psi = Gauge("freshrec_drift_psi", "Population stability index of an input signal, "
                         "reference vs current window", ["signal"], registry=r)
        self.js = Gauge("freshrec_drift_js", "Jensen-Shannon distance (base 2) of an input "
                        "signal, reference vs current window", ["signal"], registry=r)
        self.signal_drifted = Gauge("freshrec_drift_signal_drifted",
                                    "1 if the input signal drifted past its threshold",
                                    ["signal"], registry=r)
        self.share = Gauge("freshrec_drift_share", "Share of events with an unknown user, "
                           "an unknown item or a new item", ["signal", "window"], registry=r)
        self.ready = Gauge("freshrec_drift_ready",
                           "1 once the reference and current windows are full enough",
                           registry=r)
        self.detected = Gauge("freshrec_drift_detected", "1 if any input signal drifted",
                              registry=r)
        self.hit_rate = Gauge("freshrec_online_hit_rate",
                              "Rolling hit rate of served lists on the user's next event",
                              registry=r)
        self.reference = Gauge("freshrec_online_hit_rate_reference",
                               "Hit rate recorded after the last promotion", registry=r)
        self.ctr = Gauge("freshrec_online_ctr", "Rolling click-through rate of served lists",
                         registry=r)
        self.outcomes = Gauge("freshrec_online_outcomes",
                              "Lifetime counts of served lists and their outcomes",
                              ["outcome"], registry=r)
        self.dropped = Gauge("freshrec_quality_dropped",
                             "1 if the rolling hit rate fell below the configured fraction "
                             "of the reference", registry=r)

    def update(self, drift: Mapping[str, Any] | None = None,
               quality: Mapping[str, Any] | None = None) -> None:
        """Copy the numbers of an input-drift report and/or a quality report."""
        if drift is not None:
            self._update_drift(drift)
        if quality is not None:
            self._update_quality(quality)

    def _update_drift(self, report: Mapping[str, Any]) -> None:
        for name, signal in report.get("signals", {}).items():
            self.psi.labels(signal=name).set(_number(signal.get("psi")))
            self.js.labels(signal=name).set(_number(signal.get("js")))
            self.signal_drifted.labels(signal=name).set(bool(signal.get("drifted")))
            if name in SHARE_SIGNALS:
                for window in ("reference", "current"):
                    self.share.labels(signal=name, window=window).set(
                        _number(signal.get(window)))
        self.ready.set(bool(report.get("ready")))
        self.detected.set(bool(report.get("drifted")))

    def _update_quality(self, report: Mapping[str, Any]) -> None:
        self.hit_rate.set(_number(report.get("hit_rate")))
        self.ctr.set(_number(report.get("ctr")))
        self.reference.set(_number(report.get("reference_hit_rate")))
        self.dropped.set(bool(report.get("dropped")))
        lifetime = report.get("lifetime", {})
        for outcome in LIFETIME_OUTCOMES:
            if outcome in lifetime:
                self.outcomes.labels(outcome=outcome).set(_number(lifetime[outcome]))


def register_monitoring_gauges(registry: CollectorRegistry) -> MonitoringGauges:
    """Add the monitoring gauges to ``registry``; refresh them with ``update``."""
    return MonitoringGauges(registry)


def _number(value: object) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
