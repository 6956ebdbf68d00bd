"""The monitoring gauges follow the reports they are updated from."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest

from freshrec.monitoring import (
    InputDriftMonitor,
    OnlineQualityMonitor,
    register_monitoring_gauges,
)
from freshrec.records import Event


def drift_report(shifted: bool) -> dict[str, object]:
    monitor = InputDriftMonitor(reference_size=200, current_size=200, min_current=100)
    for n in range(400):
        kind = "purchase" if shifted and n >= 200 else "view"
        monitor.learn_one(Event(user=f"u{n % 9}", item=f"i{n % 13}", type=kind,
                                timestamp=float(n)),
                          known_user=True, known_item=n % 10 != 0, new_item=False)
    return monitor.report()


def test_drift_gauges() -> None:
    registry = CollectorRegistry()
    gauges = register_monitoring_gauges(registry)
    report = drift_report(shifted=True)
    gauges.update(drift=report)
    value = registry.get_sample_value
    assert value("freshrec_drift_detected") == 1.0
    assert value("freshrec_drift_ready") == 1.0
    psi = report["signals"]["event_types"]["psi"]  # type: ignore[index]
    assert value("freshrec_drift_psi", {"signal": "event_types"}) == psi
    assert value("freshrec_drift_signal_drifted", {"signal": "event_types"}) == 1.0
    assert value("freshrec_drift_signal_drifted", {"signal": "unknown_items"}) == 0.0
    assert value("freshrec_drift_share", {"signal": "unknown_items",
                                          "window": "reference"}) == 0.1
    gauges.update(drift=drift_report(shifted=False))
    assert value("freshrec_drift_detected") == 0.0


def test_values_not_known_yet_are_nan() -> None:
    registry = CollectorRegistry()
    gauges = register_monitoring_gauges(registry)
    gauges.update(drift=InputDriftMonitor().report(), quality=OnlineQualityMonitor().report())
    value = registry.get_sample_value
    assert math.isnan(value("freshrec_drift_psi", {"signal": "event_types"}))  # type: ignore[arg-type]
    assert math.isnan(value("freshrec_online_hit_rate"))  # type: ignore[arg-type]
    assert value("freshrec_drift_ready") == 0.0
    assert value("freshrec_quality_dropped") == 0.0


def test_quality_gauges() -> None:
    registry = CollectorRegistry()
    gauges = register_monitoring_gauges(registry)
    monitor = OnlineQualityMonitor()
    monitor.served("r1", "u1", ["a"], timestamp=0.0)
    monitor.served("r2", "u2", ["b"], timestamp=0.0)
    monitor.observed(Event(user="u1", item="a", type="click", timestamp=1.0), request_id="r1")
    monitor.observed(Event(user="u2", item="x", type="view", timestamp=1.0))
    gauges.update(quality=monitor.report())
    value = registry.get_sample_value
    assert value("freshrec_online_hit_rate") == 0.5
    assert value("freshrec_online_ctr") == 0.5
    assert value("freshrec_online_outcomes", {"outcome": "hits"}) == 1.0
    assert value("freshrec_online_outcomes", {"outcome": "served"}) == 2.0
    assert b"freshrec_quality_dropped 0.0" in generate_latest(registry)
