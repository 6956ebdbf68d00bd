"""Health, readiness, Prometheus metrics and the API's own description."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ._server import Server, ingest

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> tuple[str, Samples]:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {(sample.name, frozenset(sample.labels.items())): sample.value
               for family in text_string_to_metric_families(answer.text)
               for sample in family.samples}
    return answer.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_health_and_readiness(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready"
    assert isinstance(ready["model"], str) and isinstance(ready["events"], int)


def test_metrics_count_requests_by_route_template(admin: httpx.Client) -> None:
    route = "/v1/users/{user_id}/recommendations"
    _, before = scrape(admin)
    for user in ("metrics-secret-user-1", "metrics-secret-user-2"):
        assert admin.get(f"/v1/users/{user}/recommendations").status_code == 200
    admin.get("/v1/items/metrics-secret-item/similar")  # 404
    admin.get("/v1/metrics-secret-route")  # no such route
    text, after = scrape(admin)
    ok = {"route": route, "method": "GET", "status": "200"}
    assert value(after, "freshrec_http_requests_total", **ok) == \
        value(before, "freshrec_http_requests_total", **ok) + 2
    assert value(after, "freshrec_http_requests_total", route="/v1/items/{item_id}/similar",
                 method="GET", status="404") >= 1
    assert value(after, "freshrec_http_requests_total", route="unmatched", method="GET",
                 status="404") >= 1
    count = value(after, "freshrec_http_request_duration_seconds_count", route=route,
                  method="GET")
    assert count >= 2
    assert value(after, "freshrec_http_request_duration_seconds_bucket", route=route,
                 method="GET", le="+Inf") == count
    assert value(after, "freshrec_http_request_duration_seconds_sum", route=route,
                 method="GET") > 0
    assert "metrics-secret" not in text  # ids never become labels


def test_metrics_count_events_ingested_duplicate_and_rejected(admin: httpx.Client) -> None:
    _, before = scrape(admin)
    events = [{"id": f"metrics-e{n}", "user": "metrics-u", "item": "metrics-i",
               "type": "view"} for n in range(3)]
    ingest(admin, [*events, events[0], {"user": "metrics-u", "item": "i", "type": "wink"}])
    admin.post("/v1/items", json={"items": [{"id": "metrics-i", "available": 1}]})
    _, after = scrape(admin)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("freshrec_events_ingested_total") == 3
    assert grew("freshrec_events_duplicate_total") == 1
    assert grew("freshrec_records_rejected_total", kind="event") == 1
    assert grew("freshrec_records_rejected_total", kind="item") == 1


def test_metrics_show_learner_lag_and_model_version(admin: httpx.Client) -> None:
    ingest(admin, [{"user": "metrics-lag", "item": "metrics-i", "type": "view"}])
    # Other tests' erasures rebuild the shared server's model in the background: read the
    # version on both sides of the scrape and keep a scrape that no swap came between.
    for _ in range(20):
        version = admin.get("/readyz").json()["model"]
        _, samples = scrape(admin)
        if admin.get("/readyz").json()["model"] == version:
            break
    # Events are applied before the ack, so nothing acknowledged is left behind.
    assert value(samples, "freshrec_learner_lag_events") == 0
    assert value(samples, "freshrec_model_info", version=version) == 1
    assert [key for key in samples if key[0] == "freshrec_model_info"] == [
        ("freshrec_model_info", frozenset({("version", version)}))]


def test_the_api_describes_itself(server: Server) -> None:
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = httpx.get(f"{server.url}/openapi.json").json()
    paths = {path: set(methods) for path, methods in schema["paths"].items()}
    assert paths == {
        "/v1/events": {"post"},
        "/v1/items": {"post"},
        "/v1/users": {"post"},
        "/v1/users/{user_id}": {"delete"},
        "/v1/users/{user_id}/recommendations": {"get"},
        "/v1/items/{item_id}/similar": {"get"},
        "/v1/trending": {"get"},
        "/v1/recommendations": {"post"},
        "/v1/quarantine": {"get"},
        "/v1/models": {"get"},
        "/v1/models/{version}": {"get"},
        "/v1/models/train": {"post"},
        "/v1/models/{version}/promote": {"post"},
        "/v1/models/rollback": {"post"},
        "/v1/models/{version}/pin": {"post"},
        "/v1/models/{version}/unpin": {"post"},
        "/v1/monitoring": {"get"},
        "/v1/console/session": {"get"},
        "/v1/console/live": {"get"},
        "/v1/console/quality": {"get"},
        "/v1/console/drift": {"get"},
        "/v1/users/{user_id}/explain": {"get"},
        "/v1/items/{item_id}/insight": {"get"},
        "/v1/quarantine/reasons": {"get"},
        "/v1/experiments": {"get", "post"},
        "/v1/experiments/{experiment_id}": {"get"},
        "/v1/experiments/{experiment_id}/stop": {"post"},
        "/v1/shadow": {"get", "post"},
        "/v1/shadow/{experiment_id}/stop": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    events = schema["paths"]["/v1/events"]["post"]
    body = events["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EventBatch"}  # test_openapi.py resolves it
    answer = events["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/IngestAnswer"}
    recommendations = schema["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    assert {p["name"] for p in recommendations["parameters"]} >= {
        "user_id", "k", "exclude_seen", "category", "exclude"}
