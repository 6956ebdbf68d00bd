"""Prometheus metrics of one service instance (its own registry, so tests can run many)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from freshrec.service.live import LiveCounters

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class SourceFailures:
    """``freshrec_source_failures_total``, read at scrape time from the engine's breaker.

    The serving chain counts its failures itself; this exports them (a swapped-in
    engine starts from zero, which Prometheus reads as a counter reset).
    """

    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("freshrec_source_failures",
                                     "Candidate sources that failed or were too slow",
                                     labels=["source"])
        for source, count in sorted(dict(self.read()).items()):
            family.add_metric([source], count)
        yield family


class ServiceMetrics:
    def __init__(self, source_failures: Callable[[], Mapping[str, int]] = dict) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("freshrec_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("freshrec_http_request_duration_seconds",
                                 "HTTP request latency by route", ["route", "method"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.events_ingested = Counter("freshrec_events_ingested",
                                       "Events durably stored", registry=r)
        self.events_duplicate = Counter("freshrec_events_duplicate",
                                        "Events recognised as duplicates by id", registry=r)
        self.records_rejected = Counter("freshrec_records_rejected",
                                        "Records rejected and quarantined", ["kind"], registry=r)
        self.learner_lag = Gauge("freshrec_learner_lag_events",
                                 "Events in the log not yet applied to the models", registry=r)
        self.reads_behind = Counter(
            "freshrec_reads_behind", "Reads answered before the learner reached every "
            "acknowledged record (it stayed behind for longer than read_wait_s)", registry=r)
        self.model_version = Gauge("freshrec_model_info", "The model version being served",
                                   ["version"], registry=r)
        self.trainings = Counter("freshrec_trainings", "Background trainings finished",
                                 ["outcome"], registry=r)
        r.register(SourceFailures(source_failures))
        self.snapshots = Counter("freshrec_snapshots", "Model snapshots written", registry=r)

    def set_model_version(self, version: str) -> None:
        self.model_version.clear()
        self.model_version.labels(version=version).set(1)


class RequestMetrics:
    """ASGI middleware: count and time each request by its route template.

    The router records the matched route in the scope, so the label is the template
    (``/v1/users/{user_id}/recommendations``), never the raw path: user ids never
    become metric labels, and nothing has to match routes a second time.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics,
                 live: LiveCounters | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.live = live
        """The console's counters: recommendations (the routes tagged ``serve``) and errors."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = scope.get("route")
            # path_format drops converters: {user_id}, not {user_id:path}.
            name = (getattr(route, "path_format", None) or getattr(route, "path", None)
                    or "unmatched")
            method = scope.get("method", "")
            elapsed = time.perf_counter() - started
            self.metrics.latency.labels(name, method).observe(elapsed)
            self.metrics.requests.labels(name, method, str(status)).inc()
            if self.live is not None:
                self.live.request("serve" in getattr(route, "tags", ()), status, elapsed)
