"""Merging the workers' Prometheus expositions into one, each sample with its worker."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from freshrec.service.metrics_merge import merged_exposition


def _exposition(events: int, lag: float) -> str:
    registry = CollectorRegistry()
    Counter("freshrec_events", "Events stored", registry=registry).inc(events)
    Gauge("freshrec_lag", 'Lag with "quotes" and \\ in help', ["model"],
          registry=registry).labels(model='m"1\\').set(lag)
    Histogram("freshrec_latency_seconds", "Latency", registry=registry).observe(0.01)
    return generate_latest(registry).decode()


def test_every_sample_keeps_its_value_and_gains_its_worker() -> None:
    merged = merged_exposition({0: _exposition(3, 1.5), 1: _exposition(5, 0.0)})
    families = {f.name: f for f in text_string_to_metric_families(merged)}
    events = {s.labels["worker"]: s.value for s in families["freshrec_events"].samples
              if s.name == "freshrec_events_total"}
    assert events == {"0": 3.0, "1": 5.0}
    assert families["freshrec_events"].type == "counter"
    lag = {s.labels["worker"]: s for s in families["freshrec_lag"].samples}
    assert lag["0"].value == 1.5 and lag["0"].labels["model"] == 'm"1\\'
    assert families["freshrec_lag"].documentation == 'Lag with "quotes" and \\ in help'
    buckets = [s for s in families["freshrec_latency_seconds"].samples
               if s.name.endswith("_bucket")]
    assert {s.labels["worker"] for s in buckets} == {"0", "1"}
    assert merged.count("# TYPE freshrec_events_total counter") == 1
