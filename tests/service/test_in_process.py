"""Failure modes that are hard to cause in a real process, through the app in-process.

The app is built with :func:`create_app` over a :class:`Runtime` whose stores are
the in-memory backends, some wrapped to fail on demand, and driven with
FastAPI's ``TestClient``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from freshrec.catalog.memory import MemoryCatalogStore
from freshrec.config import EngineConfig
from freshrec.engine import Engine
from freshrec.errors import StoreUnavailable
from freshrec.experiments.store import ArmSpec
from freshrec.log import GroupCommitLog, MemoryEventLog
from freshrec.log.base import AppendResult, EventLog
from freshrec.models.features import Context
from freshrec.models.state import ModelState
from freshrec.records import Event
from freshrec.registry.datasets import DatasetVersion
from freshrec.registry.snapshots import MemorySnapshotStore
from freshrec.security.keys import MemoryKeyStore
from freshrec.service.app import create_app
from freshrec.service.runtime import Runtime, Stores
from freshrec.service.settings import Settings
from freshrec.serving.results import Filters
from freshrec.serving.sources import CooccurrenceSource, PopularitySource, Scored, TrendingSource

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # starlette asks for httpx2 instead
    from fastapi.testclient import TestClient

UNAVAILABLE = {"error": "storage is unavailable; the request was not stored, retry later",
               "status": 503}


class FailingLog:
    """An event log whose appends fail while ``broken``, as a full or lost disk would."""

    def __init__(self, inner: EventLog) -> None:
        self.inner = inner
        self.broken = True

    def append(self, events: Sequence[Event]) -> AppendResult:
        if self.broken:
            raise StoreUnavailable("disk I/O error")
        return self.inner.append(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class App:
    """A runtime over in-memory stores, its app, a client and an admin key."""

    def __init__(self, events: EventLog | None = None, engine: Engine | None = None,
                 recover: bool = True) -> None:
        self.keys = MemoryKeyStore()
        self.key = self.keys.create(["admin"])
        self.events = events or MemoryEventLog()
        self.runtime = Runtime(Settings(), Stores(GroupCommitLog(self.events),
                                                  MemoryCatalogStore(), self.keys,
                                                  MemorySnapshotStore()))
        if recover:
            self.runtime.recover()
        if engine is not None:
            self.runtime.engine = engine
        self.client = TestClient(create_app(self.runtime, manage_lifecycle=False),
                                 raise_server_exceptions=False,
                                 headers={"Authorization": f"Bearer {self.key}"})

    def metric(self, line_start: str) -> float:
        text = self.client.get("/metrics").text
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(line_start)]
        return sum(values)


@pytest.fixture
def failing() -> Iterator[tuple[App, FailingLog]]:
    log = FailingLog(MemoryEventLog())
    app = App(events=log)
    yield app, log
    app.runtime.stores.close()


def batch(n: int, prefix: str = "e") -> dict[str, Any]:
    return {"events": [{"id": f"{prefix}{i}", "user": "u1", "item": f"i{i}", "type": "view"}
                       for i in range(n)]}


def test_an_unavailable_log_answers_503_and_acks_nothing(
        failing: tuple[App, FailingLog]) -> None:
    app, log = failing
    answer = app.client.post("/v1/events", json=batch(5))
    assert answer.status_code == 503
    assert answer.json() == UNAVAILABLE
    assert log.inner.count() == 0
    assert app.runtime.engine.state.events_seen == 0
    assert app.client.get("/readyz").json()["events"] == 0
    assert app.metric("freshrec_events_ingested_total") == 0

    log.broken = False  # the disk is back: the client's retry stores everything, once
    answer = app.client.post("/v1/events", json=batch(5))
    assert answer.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert app.runtime.engine.state.events_seen == 5
    assert app.metric("freshrec_events_ingested_total") == 5


def test_a_mixed_batch_on_an_unavailable_log_quarantines_nothing(
        failing: tuple[App, FailingLog]) -> None:
    app, log = failing
    body = batch(2)
    body["events"].append({"user": "u1", "item": "i", "type": "wink"})
    assert app.client.post("/v1/events", json=body).status_code == 503
    assert log.inner.quarantine_count() == 0


class FailingQuarantine(FailingLog):
    """A log that stores events but cannot keep rejected records (its quarantine fails)."""

    def append(self, events: Sequence[Event]) -> AppendResult:
        return self.inner.append(events)

    def quarantine(self, records: Sequence[tuple[str, str, str]]) -> None:
        raise StoreUnavailable("disk I/O error")


def test_a_stored_batch_is_acknowledged_even_when_its_rejects_cannot_be_quarantined() -> None:
    """A 503 would make the client send the stored events again: the answer stays 200
    with every rejected record and its reason; only an all-rejected batch answers 503."""
    log = FailingQuarantine(MemoryEventLog())
    app = App(events=log)
    body = batch(2)
    body["events"].append({"user": "u1", "item": "i", "type": "wink"})
    answer = app.client.post("/v1/events", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    assert [r["index"] for r in answer.json()["rejected"]] == [2]
    assert log.inner.last_position() == 2
    only_bad = app.client.post("/v1/events", json={"events": [body["events"][2]]})
    assert only_bad.status_code == 503 and only_bad.headers["Retry-After"]


def test_unavailable_key_and_catalog_stores_answer_503(monkeypatch: pytest.MonkeyPatch) -> None:
    app = App()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(app.runtime.stores.catalog, "upsert_items", fail)
    answer = app.client.post("/v1/items", json={"items": [{"id": "i1"}]})
    assert (answer.status_code, answer.json()) == (503, UNAVAILABLE)
    monkeypatch.setattr(app.keys, "verify", fail)
    answer = app.client.get("/v1/trending")
    assert answer.status_code == 503 and "Traceback" not in answer.text


def test_an_unexpected_error_is_a_json_500_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = App()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.runtime.engine, "trending", boom)
    answer = app.client.get("/v1/trending")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error; it has been logged", "status": 500}


def test_readiness_waits_for_recovery() -> None:
    app = App(recover=False)
    assert app.client.get("/healthz").json() == {"status": "ok"}
    answer = app.client.get("/readyz")
    assert (answer.status_code, answer.json()) == (503, {"status": "recovering"})
    app.runtime.recover()
    assert app.client.get("/readyz").json()["status"] == "ready"


class ExplodingSource:
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, state: ModelState, context: Context, allowed: Any) -> Scored | None:
        self.calls += 1
        raise RuntimeError("the model file is gone")


class SlowSource(ExplodingSource):
    """Answers 200 ms later on the breaker's clock, which it moves: well over the 50 ms
    budget, without the test sleeping."""

    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def score(self, state: ModelState, context: Context, allowed: Any) -> Scored | None:
        self.calls += 1
        self.now += 0.2
        return None


def co_viewed(app: App) -> None:
    """Five users view A then B: co-occurrence says B follows A."""
    events = [{"user": f"u{n}", "item": item, "type": "view"}
              for n in range(5) for item in ("A", "B")]
    events += [{"user": "z", "item": "C", "type": "purchase"}]
    assert app.client.post("/v1/events", json={"events": events}).json()["accepted"] == 11


def test_a_failing_source_falls_back_to_the_next_in_the_chain() -> None:
    exploding = ExplodingSource()
    app = App(engine=Engine(EngineConfig(), chain=[
        exploding, CooccurrenceSource(), TrendingSource(), PopularitySource()]))
    co_viewed(app)
    app.client.post("/v1/events", json={"events": [{"user": "new", "item": "A",
                                                    "type": "view"}]})
    answer = app.client.get("/v1/users/new/recommendations", params={"k": 2})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert (items[0]["id"], items[0]["source"]) == ("B", "cooccurrence")
    assert [e["id"] for e in items] == ["B", "C"]
    assert exploding.calls == 1
    assert app.metric('freshrec_source_failures_total{source="exploding"}') == 1


def test_the_next_source_fills_what_a_source_has_no_score_for() -> None:
    app = App(engine=Engine(EngineConfig(), chain=[
        CooccurrenceSource(), TrendingSource(), PopularitySource()]))
    co_viewed(app)
    app.client.post("/v1/events", json={"events": [{"user": "new", "item": "A",
                                                    "type": "view"}]})
    answer = app.client.get("/v1/users/new/recommendations", params={"k": 2})
    assert [(e["id"], e["source"]) for e in answer.json()["items"]] == [
        ("B", "cooccurrence"), ("C", "trending")]


def test_a_source_that_keeps_failing_is_skipped_for_a_while() -> None:
    exploding, slow = ExplodingSource(), SlowSource()
    engine = Engine(EngineConfig(trip_after=2), chain=[
        exploding, slow, TrendingSource(), PopularitySource()])
    engine.breaker.clock = slow.clock
    app = App(engine=engine)
    co_viewed(app)
    for _ in range(4):
        answer = app.client.get("/v1/users/somebody/recommendations", params={"k": 1})
        assert answer.status_code == 200
        assert answer.json()["items"][0] == {"id": "C", "score": pytest.approx(8.0, rel=0.01),
                                             "source": "trending"}
    assert (exploding.calls, slow.calls) == (2, 2)  # tripped after two strikes each
    assert app.metric('freshrec_source_failures_total{source="slow"}') == 2


def test_a_chain_that_fails_entirely_answers_an_empty_list() -> None:
    app = App(engine=Engine(EngineConfig(), chain=[ExplodingSource()]))
    co_viewed(app)
    answer = app.client.post("/v1/recommendations", json={"recent_items": ["A"]})
    assert answer.status_code == 200
    assert answer.json()["items"] == []


def test_recovery_brings_back_what_the_rankers_learned() -> None:
    """What users were shown is logged (impressions), so a restart that replays the log
    alone, without any snapshot, teaches the rankers exactly what they had learned."""
    stores = Stores(GroupCommitLog(MemoryEventLog()), MemoryCatalogStore(), MemoryKeyStore(),
                    MemorySnapshotStore())
    settings = Settings(min_train_events=10**6)
    live = Runtime(settings, stores)
    live.recover()
    for n in range(300):
        user = f"u{n % 10}"
        assert live.reflect_acknowledged()  # as every read does: the learner is caught up
        live.recommend(user, 5, Filters())  # what the user is shown before acting
        assert live.impressions.flush(timeout=10)
        live.ingest_events([Event(user=user, item=f"i{n % 7}", type="view",
                                  timestamp=1000.0 + n)])
    assert live.reflect_acknowledged()
    assert live.engine.state.ranker.updates > 0
    assert stores.snapshots.list() == []
    recovered = Runtime(settings, stores)
    recovered.recover()
    try:
        assert recovered.engine.state.ranker.updates == live.engine.state.ranker.updates
        assert recovered.engine.state.ranker.weights.tolist() == \
            live.engine.state.ranker.weights.tolist()
        assert recovered.applied_position == live.applied_position > 300  # and impressions
    finally:
        recovered.follower.stop()
        live.follower.stop()


def test_no_request_telemetry_whatever_the_environment_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # FastAPI exports OpenTelemetry spans and metrics over OTLP when told so by the
    # environment; freshrec sends nothing anywhere.
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    stores = Stores(GroupCommitLog(MemoryEventLog()), MemoryCatalogStore(), MemoryKeyStore(),
                    MemorySnapshotStore())
    app = create_app(Runtime(Settings(), stores), manage_lifecycle=False)
    telemetry = getattr(app, "_telemetry", None)
    if telemetry is None:
        pytest.skip("this FastAPI has no built-in telemetry")
    assert not any(telemetry[k] for k in ("tracing", "metrics", "logs", "auto_configure"))


def test_a_round_between_a_shadows_load_and_its_store_keeps_its_engine() -> None:
    """A worker's background round that reads the experiments while a start is between
    loading the candidate and storing the shadow would drop the engine just loaded, and
    the start answered 409 "cannot be loaded" (seen in CI with two workers)."""
    app = App()
    runtime = app.runtime
    empty = DatasetVersion(start_position=0, end_position=0, events=0,
                           content_hash="00" * 32, created=0.0)
    candidate = runtime.lifecycle.adopt(Engine(EngineConfig()), 0, empty, "a candidate")
    runtime.lifecycle.adopt(Engine(EngineConfig()), 0, empty, "the champion")
    service = runtime.experiments
    load = service._load
    rounds: list[threading.Thread] = []

    def load_then_a_round(version_id: str) -> None:
        load(version_id)
        rounds.append(threading.Thread(target=service.refresh))
        rounds[-1].start()
        rounds[-1].join(timeout=0.5)  # it waits for the start (or drops the engine)

    service._load = load_then_a_round  # type: ignore[method-assign]
    arms = [ArmSpec("champion", "champion", 1.0), ArmSpec("c", candidate.id, 1.0)]
    started = service.start("shadow", "shadow", arms, "hit_rate", 0.05)
    rounds[0].join()
    assert started["status"] == "running"
    assert service._engine_for(candidate.id) is not None
