"""The console's read routes through the real server: each answer's shape, and its numbers
against the API's own answers and the stores on disk.

One server with a generated shop and a trained champion (and a refused candidate, for
the gate's numbers); ``--workers 2`` in its own test at the end.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import msgspec
import pytest

from freshrec.data.synthetic import generate_shop

from ._server import Server, ingest, wait_for
from .test_lifecycle import BAD, QUIET, TRAINING_TIMEOUT_S, finished, load_shop, post

SIGNALS = {"event_types", "item_popularity", "unknown_users", "unknown_items", "new_items"}
READ_ROUTES = ["/v1/console/quality", "/v1/console/drift", "/v1/users/user-00001/explain",
               "/v1/items/sku-00001/insight"]
ADMIN_ROUTES = ["/v1/quarantine", "/v1/quarantine/reasons"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = Server(tmp_path_factory.mktemp("console"), QUIET).start()
    load_shop(server, seed=5)
    with server.client() as client:
        version = post(client, "/v1/models/train", {"params": BAD}).json()["version"]
        wait_for(lambda: finished(client, version), timeout=TRAINING_TIMEOUT_S,
                 message="the bad candidate's gate")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def client(shop: Server) -> Any:
    with shop.client() as admin:
        yield admin


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def refused(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["status"] == status and body["error"]
    return str(body["error"])


def test_models_show_lineage_and_the_gates_two_sets_of_numbers_and_decision(
        client: httpx.Client) -> None:
    versions = {v["id"]: v for v in ok(client.get("/v1/models"))["models"]}
    first, bad = versions["m0001"], versions["m0002"]
    assert (first["trigger"], first["decision"], first["parent"]) == (
        "initial: first model", "promoted", None)
    dataset = first["dataset"]
    assert dataset["id"] == f"ds-{dataset['end_position']}-{dataset['content_hash'][:12]}"
    assert first["code_version"].startswith("freshrec ")
    assert (bad["trigger"], bad["decision"], bad["status"], bad["parent"]) == (
        "manual", "refused", "refused", "m0001")
    assert bad["gate"]["candidate"]["hr"] < bad["gate"]["champion"]["hr"]


def test_explain_lists_what_the_recommendations_answer_with_contributions_that_add_up(
        shop: Server, client: httpx.Client) -> None:
    users = [f"user-{n:05d}" for n in range(1, 40, 3)]
    checked = 0
    for user in users:
        for params in ({"k": 10}, {"k": 7, "exclude_seen": "false"}):
            api = ok(client.get(f"/v1/users/{user}/recommendations", params=params))
            explained = ok(client.get(f"/v1/users/{user}/explain", params=params))
            assert explained["user"] == user and explained["model_version"] == api["model"]
            listed = [(r["id"], r["source"]) for r in explained["recommendations"]]
            assert listed == [(i["id"], i["source"]) for i in api["items"]]
            for item, why in zip(api["items"], explained["recommendations"], strict=True):
                assert why["score"] == pytest.approx(item["score"], rel=1e-9, abs=1e-12)
                total = sum(why["contributions"].values()) + why["bias"]
                if why["ranker"] in ("general", "discovery"):  # linear: weight x value
                    assert "als" in why["contributions"] and "sequence" in why["contributions"]
                    assert total == pytest.approx(why["score"], rel=1e-6, abs=1e-9)
                    checked += 1
                elif why["ranker"] and why["ranker"].endswith("(first visit)"):
                    assert total == pytest.approx(why["ranker_score"], rel=1e-6, abs=1e-9)
    assert checked >= 50
    # The history is the user's newest events in the log.
    user = users[0]
    history = ok(client.get(f"/v1/users/{user}/explain", params={"history": 5}))["history"]
    logged = shop.query("SELECT item, type, timestamp FROM events WHERE user = ? "
                        "ORDER BY position DESC LIMIT 5", user)
    assert [(h["item"], h["type"], h["timestamp"]) for h in history] == logged


def test_a_first_visit_is_explained_by_the_ranker_whose_turn_placed_each_item(
        client: httpx.Client) -> None:
    post(client, "/v1/users", {"users": [{"id": "first-visit-user"}]})
    api = ok(client.get("/v1/users/first-visit-user/recommendations"))
    explained = ok(client.get("/v1/users/first-visit-user/explain"))
    assert explained["history"] == []
    assert [r["id"] for r in explained["recommendations"]] == [i["id"] for i in api["items"]]
    rankers = {r["ranker"] for r in explained["recommendations"]}
    assert rankers <= {"cold (first visit)", "general (first visit)"} and rankers
    for why in explained["recommendations"]:
        assert sum(why["contributions"].values()) == pytest.approx(why["ranker_score"], abs=1e-9)


def test_explain_refuses_unknown_users_and_bad_parameters_clearly(client: httpx.Client) -> None:
    assert "unknown user" in refused(client.get("/v1/users/nobody-at-all/explain"), 404)
    refused(client.get("/v1/users/user-00001/explain", params={"k": 0}), 422)
    refused(client.get("/v1/users/user-00001/explain", params={"k": "many"}), 422)
    assert "id in the path" in refused(client.get("/v1/users/%20/explain"), 422)


def test_item_insight_has_its_record_its_similar_items_and_its_trend(
        shop: Server, client: httpx.Client) -> None:
    item = shop.query("SELECT item FROM events GROUP BY item ORDER BY count(*) DESC LIMIT 1")[0][0]
    insight = ok(client.get(f"/v1/items/{item}/insight", params={"k": 6}))
    catalog = shop.query("SELECT id FROM items WHERE id = ?", item, database="catalog")
    assert insight["item"]["id"] == item and catalog
    assert "categories" in insight["item"]
    similar = ok(client.get(f"/v1/items/{item}/similar", params={"k": 6}))["items"]
    assert insight["similar"] == similar
    # The whole history in one bucket per day: the trend counts every event on the item.
    trend = ok(client.get(f"/v1/items/{item}/insight",
                          params={"bucket_s": 86400, "buckets": 400}))["trend"]
    assert len(trend["t"]) == len(trend["count"]) == 400
    assert all(b - a == 86400 for a, b in zip(trend["t"], trend["t"][1:], strict=False))
    (events,) = shop.query("SELECT count(*) FROM events WHERE item = ?", item)[0]
    assert sum(trend["count"]) == events > 0
    assert "unknown item" in refused(client.get("/v1/items/no-such-item/insight"), 404)
    refused(client.get(f"/v1/items/{item}/insight", params={"bucket_s": 0}), 422)


def test_quarantine_is_searched_by_text_and_reason_and_counted_by_reason(
        client: httpx.Client) -> None:
    bad = [{"user": "q-user", "item": "q-item", "type": "wink", "timestamp": 1.0},
           {"user": "q-user", "item": "q-item", "type": "blink", "timestamp": 1.0},
           {"item": "q-item-2", "type": "view", "timestamp": 1.0}]
    assert client.post("/v1/events", json={"events": bad}).status_code == 422
    winks = ok(client.get("/v1/quarantine", params={"q": "WINK"}))
    assert winks["total"] == 1 and "'wink'" in winks["records"][0]["reason"]
    assert '"wink"' in winks["records"][0]["raw"]
    types = ok(client.get("/v1/quarantine", params={"reason": "unknown event type"}))
    assert types["total"] == 2
    both = ok(client.get("/v1/quarantine", params={"q": "q-item", "reason": "required"}))
    assert both["total"] == 1 and "q-item-2" in both["records"][0]["raw"]
    everything = ok(client.get("/v1/quarantine"))["total"]
    reasons = ok(client.get("/v1/quarantine/reasons", params={"bucket_s": 60}))
    by_kind = {r["reason"]: r["count"] for r in reasons["reasons"]}
    # 'wink' and 'blink' are one kind of reason: the value is taken out.
    assert any(kind.startswith("type: unknown event type '…'") and n >= 2
               for kind, n in by_kind.items()), by_kind
    assert sum(by_kind.values()) == everything
    series = reasons["series"]
    for kind, total in by_kind.items():
        assert len(series[kind]) == len(series["t"]) and sum(series[kind]) == total
    refused(client.get("/v1/quarantine/reasons", params={"bucket_s": 1}), 422)


def test_quality_counts_lists_clicks_and_hits_by_version_and_by_source(
        shop: Server, client: httpx.Client) -> None:
    before = ok(client.get("/v1/console/quality"))
    served = ok(client.get("/v1/users/user-00010/recommendations", params={"k": 5}))
    clicked = served["items"][0]
    # Within the hit horizon of the list (served on the events' clock: the newest event).
    (now,) = shop.query("SELECT max(timestamp) FROM events")[0]
    ingest(client, [{"user": "user-00010", "item": clicked["id"], "type": "click",
                     "timestamp": now + 1.0, "request_id": served["request_id"]}])
    after = ok(client.get("/v1/console/quality"))

    def version(answer: dict[str, Any]) -> dict[str, Any]:
        return next((v for v in answer["by_version"] if v["version"] == served["model"]),
                    {"requests": 0, "clicks": 0, "hits": 0})

    def source(answer: dict[str, Any]) -> dict[str, Any]:
        return next((s for s in answer["by_source"] if s["source"] == clicked["source"]),
                    {"shown": 0, "clicks": 0, "hits": 0})

    assert version(after)["requests"] == version(before)["requests"] + 1
    assert version(after)["clicks"] == version(before)["clicks"] + 1
    assert version(after)["hits"] == version(before)["hits"] + 1  # the next event was in it
    assert source(after)["clicks"] == source(before)["clicks"] + 1
    assert source(after)["shown"] >= source(before)["shown"] + 1
    gate = version(after)["gate"]
    assert gate["decision"] == "promoted" and gate["candidate"]["hr"] > 0
    refused_gate = next(v["gate"] for v in after["by_version"] if v["version"] == "m0002")
    assert refused_gate["decision"] == "refused" and refused_gate["champion"]["hr"] > 0
    series = after["series"]
    assert len(series["t"]) == len(series["hit_rate"]) == len(series["ctr"]) >= 1
    assert sum(series["served"]) == sum(v["requests"] for v in after["by_version"])
    assert all(rate is None or 0 <= rate <= 1 for rate in series["ctr"] + series["hit_rate"])
    refused(client.get("/v1/console/quality", params={"minutes": 0}), 422)


def test_drift_shows_both_windows_of_every_signal_and_its_detector(
        client: httpx.Client) -> None:
    drift = ok(client.get("/v1/console/drift"))
    assert {s["name"] for s in drift["signals"]} == SIGNALS
    for signal in drift["signals"]:
        for window in ("reference", "current"):
            assert len(signal[window]["bins"]) == len(signal[window]["counts"])
        assert signal["detector"]["state"] in ("stable", "drifted", "warming up")
        if signal["name"] in ("unknown_users", "unknown_items", "new_items"):
            assert signal["reference"]["bins"] == ["no", "yes"]
            assert signal["detector"]["name"] == "ADWIN"
    # The reference window (a million events, QUIET) holds every event since the swap.
    types = next(s for s in drift["signals"] if s["name"] == "event_types")
    assert sum(types["reference"]["counts"]) == drift["reference_events"] > 0
    assert drift["events_seen"] >= drift["reference_events"] + drift["current_events"]
    # No monitor triggered a training here (QUIET): the manual and first ones are not listed.
    assert drift["trainings"] == []


def test_a_read_key_reads_the_console_and_no_key_reads_nothing(shop: Server) -> None:
    reader = shop.create_key("read")
    with shop.client(reader) as client, shop.client("") as anonymous:
        for route in READ_ROUTES:
            ok(client.get(route))
            refused(anonymous.get(route), 401)
        for route in ADMIN_ROUTES:
            refused(client.get(route), 403)
            refused(anonymous.get(route), 401)


def test_with_two_workers_quality_adds_up_every_worker_and_drift_is_the_leaders(
        fresh_server: Any) -> None:
    server = fresh_server({**QUIET, "FRESHREC_MIN_TRAIN_EVENTS": "1000000"}, workers=2)
    workers = server.wait_workers()
    leader = next(w["worker"] for w in workers if w["leader"])
    shop = generate_shop(n_users=50, n_items=60, n_events=1500, seed=9)
    clients = [server.worker(i) for i in range(2)]
    try:
        post(clients[0], "/v1/items", {"items": [msgspec.to_builtins(i) for i in shop.items]})
        ingest(clients[1], [msgspec.to_builtins(e) for e in shop.events])
        user = shop.events[-1].user
        for n, reading in enumerate(clients):  # one list and its click through each worker
            served = ok(reading.get(f"/v1/users/{user}/recommendations", params={"k": 5}))
            explained = ok(reading.get(f"/v1/users/{user}/explain", params={"k": 5}))
            assert [r["id"] for r in explained["recommendations"]] == [
                i["id"] for i in served["items"]]
            ingest(reading, [{"user": user, "item": served["items"][0]["id"], "type": "click",
                              "timestamp": 2.0e9 + n, "request_id": served["request_id"]}])
        for reading in clients:
            quality = ok(reading.get("/v1/console/quality"))
            assert (quality["workers"], quality["workers_missing"]) == (2, [])
            assert sum(v["requests"] for v in quality["by_version"]) == 2
            assert sum(v["clicks"] for v in quality["by_version"]) == 2
            drift = reading.get("/v1/console/drift")
            assert drift.headers["X-Freshrec-Worker"] == str(leader)
            assert math.isfinite(ok(drift)["events_seen"])
    finally:
        for reading in clients:
            reading.close()
