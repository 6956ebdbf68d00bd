"""The console's API and files: ``/v1/console/live`` merges every worker's counters; the
page at ``/console`` ships without data; keys are checked as everywhere else."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from freshrec.service.live import BUCKET_S, LiveCounters, merged_live, percentile

from ._server import Server, ingest, wait_for


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"user": f"{prefix}-u{n % 5}", "item": f"{prefix}-i{n % 9}", "type": "view",
             "id": f"{prefix}-{n}"} for n in range(count)]


def test_live_merges_the_counts_of_every_worker(fresh_server: Any) -> None:
    server: Server = fresh_server(workers=2)
    server.wait_workers()
    for index, (sent, asked) in enumerate([(120, 3), (80, 4)]):
        with server.worker(index) as worker:
            ingest(worker, events(f"w{index}", sent))
            for n in range(asked):
                answer = worker.get(f"/v1/users/w{index}-u{n}/recommendations")
                assert answer.status_code == 200, answer.text

    with server.worker(1) as worker:
        live = worker.get("/v1/console/live", params={"minutes": 5}).json()
    assert live["bucket_s"] == BUCKET_S
    assert sorted(w["worker"] for w in live["workers"]) == ["0", "1"]
    assert all(w["pid"] for w in live["workers"])
    assert live["now"]["events_total"] == 200
    assert live["now"]["recommendations_total"] == 7
    assert live["now"]["latency_p99_ms"] >= live["now"]["latency_p50_ms"] > 0
    assert set(live["per_worker"]) == {"0", "1"}
    assert len(live["series"]["t"]) == 5 * 60 // BUCKET_S

    def in_complete_buckets() -> dict[str, Any] | None:
        with server.client() as client:
            answer = client.get("/v1/console/live", params={"minutes": 5}).json()
        counted = round(sum(answer["series"]["events_per_s"]) * BUCKET_S)
        return answer if counted == 200 else None

    # Once the bucket they fell in is complete, the series holds them too, split by worker.
    answer = wait_for(in_complete_buckets, timeout=3 * BUCKET_S, interval=1.0,
                      message="the events in the merged series")
    by_worker = {name: round(sum(series["events_per_s"]) * BUCKET_S)
                 for name, series in answer["per_worker"].items()}
    assert by_worker == {"0": 120, "1": 80}
    served = sum(answer["series"]["recommendations_per_s"]) * BUCKET_S
    assert round(served) == 7


def test_live_needs_a_read_key_and_refuses_bad_input(server: Server, admin: httpx.Client) -> None:
    with server.client("") as anonymous:
        refused = anonymous.get("/v1/console/live")
        assert refused.status_code == 401
        assert refused.json()["status"] == 401
        assert anonymous.get("/v1/console/session").status_code == 401
    with server.client(server.create_key("ingest")) as ingest_only:
        assert ingest_only.get("/v1/console/live").status_code == 403
    with server.client(server.create_key("read")) as reader:
        assert reader.get("/v1/console/session").json()["admin"] is False
        assert reader.get("/v1/console/live").status_code == 200
    assert admin.get("/v1/console/session").json()["admin"] is True
    for minutes in ("0", "61", "soon"):
        answer = admin.get("/v1/console/live", params={"minutes": minutes})
        assert answer.status_code == 422, answer.text
        assert "minutes" in answer.json()["error"]


def test_the_console_page_ships_without_data_or_a_key(server: Server, admin: httpx.Client) -> None:
    ingest(admin, events("secret-shop", 10))
    with server.client("") as anonymous:
        moved = anonymous.get("/console")
        assert moved.status_code == 307 and moved.headers["location"] == "/console/"
        page = anonymous.get("/console/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert 'id="login-form"' in page.text and "secret-shop" not in page.text
        for asset in ("js/app.js", "js/pages/live.js", "vendor/uplot/uPlot.esm.js",
                      "vendor/uplot/LICENSE", "console.css"):
            assert anonymous.get(f"/console/{asset}").status_code == 200, asset
        missing = anonymous.get("/console/js/nothing.js")
        assert missing.status_code == 404


def test_percentiles_of_merged_workers_are_those_of_all_their_requests() -> None:
    clock = [1_000_000.0]
    workers = {str(n): LiveCounters(clock=lambda: clock[0]) for n in range(3)}
    rng = random.Random(5)
    latencies = []
    for n in range(3000):
        seconds = rng.lognormvariate(-5, 1)  # ~7 ms median, a long tail
        latencies.append(seconds * 1000)
        workers[str(n % 3)].request(True, 200, seconds)
    clock[0] += BUCKET_S
    answer = merged_live({name: w.snapshot() for name, w in workers.items()}, 1, [],
                         now=clock[0])
    latencies.sort()
    # Within the histogram's resolution: its buckets are 20% wide.
    assert answer["series"]["latency_p50_ms"][-1] == pytest.approx(latencies[1500], rel=0.2)
    assert answer["series"]["latency_p99_ms"][-1] == pytest.approx(latencies[2970], rel=0.2)
    assert answer["series"]["recommendations_per_s"][-1] == 3000 / BUCKET_S
    assert percentile({}, 0.5) is None


def test_a_worker_keeps_its_last_hour_only() -> None:
    clock = [2_000_000.0]
    counters = LiveCounters(clock=lambda: clock[0])
    for _ in range(2 * 3600 // BUCKET_S):
        counters.events(2)
        counters.lag(5)
        clock[0] += BUCKET_S
    snapshot = counters.snapshot()
    assert len(snapshot["buckets"]) == 3600 // BUCKET_S + 1
    assert snapshot["events_total"] == 2 * 2 * 3600 // BUCKET_S
    answer = merged_live({"0": snapshot}, 60, [], now=clock[0])
    assert answer["series"]["events_per_s"] == [2 / BUCKET_S] * (3600 // BUCKET_S)
    assert answer["series"]["learner_lag"] == [5] * (3600 // BUCKET_S)
