"""``freshrec serve --workers 2``: full replicas on one port, one lifecycle, no loss.

Each worker also answers on its own Unix socket (what the workers use between
themselves), so a test can ack through one worker and read through the other, and
ask every worker in turn, instead of hoping the kernel spreads connections.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import httpx
import msgspec
import pytest

from freshrec.data.synthetic import generate_shop

from ._server import Server, ingest, wait_for
from .test_lifecycle import QUIET, TRAINING_TIMEOUT_S, finished, load_shop, post

WORKERS = 2


def _shop_events(n_events: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shop = generate_shop(n_users=300, n_items=200, n_events=n_events, seed=seed)
    return ([msgspec.to_builtins(i) for i in shop.items],
            [msgspec.to_builtins(e) for e in shop.events])


@pytest.fixture(scope="module")
def workers_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = Server(tmp_path_factory.mktemp("workers"), QUIET, workers=WORKERS).start()
    server.wait_workers()
    load_shop(server, seed=3)
    yield server
    assert server.stop() == 0
    assert " ERROR " not in server.logs(), server.log_tail()


def _leader(server: Server) -> int:
    return next(w["worker"] for w in server.wait_workers() if w["leader"])


def test_an_event_acked_by_one_worker_is_reflected_by_the_next_answer_of_every_worker(
        workers_server: Server) -> None:
    clients = [workers_server.worker(i) for i in range(WORKERS)]
    try:
        events_seen = clients[0].get("/readyz").json()["events"]
        for n in range(20):
            acking = clients[n % WORKERS]
            event = {"id": f"reflect-{n}", "user": "reflect-user", "item": f"item-{n:05d}",
                     "type": "view", "timestamp": 1.9e9 + n}
            assert ingest(acking, [event])["accepted"] == 1
            events_seen += 1
            for reading in clients:
                answer = reading.get("/readyz")
                assert answer.headers.get("X-Freshrec-Behind") is None
                assert answer.json()["events"] == events_seen, (n, answer.headers)
            # And what the user sees: the item they just viewed is left out everywhere.
            for reading in clients:
                shown = reading.get("/v1/users/reflect-user/recommendations?k=200").json()
                assert event["item"] not in {i["id"] for i in shown["items"]}
    finally:
        for client in clients:
            client.close()


def test_the_port_spreads_over_workers_and_metrics_cover_them_all(
        workers_server: Server) -> None:
    answered: set[str] = set()
    for _ in range(200):  # the kernel picks the worker: some connections go to each
        with workers_server.client() as client:  # a new connection each time
            answer = client.get("/v1/trending")
            assert answer.status_code == 200
            answered.add(answer.headers["X-Freshrec-Worker"])
        if len(answered) == WORKERS:
            break
    assert answered == {str(i) for i in range(WORKERS)}
    with workers_server.client() as client:
        text = client.get("/metrics").text
    for worker in range(WORKERS):
        assert f'freshrec_events_ingested_total{{worker="{worker}"}}' in text


def test_a_promotion_and_a_rollback_reach_every_worker_whichever_worker_took_them(
        workers_server: Server) -> None:
    leader = _leader(workers_server)
    other = (leader + 1) % WORKERS
    clients = [workers_server.worker(i) for i in range(WORKERS)]
    try:
        before = clients[leader].get("/v1/monitoring").json()["model"]
        # Through the worker that does not lead: it hands the request to the leader.
        version = post(clients[other], "/v1/models/train", {}).json()["version"]
        wait_for(lambda: finished(clients[other], version), timeout=TRAINING_TIMEOUT_S,
                 message="a second candidate")
        promoted = post(clients[other], f"/v1/models/{version}/promote", {}).json()
        assert promoted["status"] == "champion"
        for client in clients:  # the next answer of every worker, no waiting
            assert client.get("/v1/users/user-00002/recommendations").json()["model"] == version
        back = post(clients[leader], "/v1/models/rollback", {}).json()
        assert back["id"] == before
        for client in clients:
            answer = client.get("/v1/users/user-00002/recommendations").json()
            assert answer["model"] == before and answer["items"]
    finally:
        for client in clients:
            client.close()


def test_an_erasure_through_any_worker_is_forgotten_by_every_worker(
        workers_server: Server) -> None:
    leader = _leader(workers_server)
    other = (leader + 1) % WORKERS
    clients = [workers_server.worker(i) for i in range(WORKERS)]
    user = "erase-me-everywhere"
    bought = {f"item-{n:05d}" for n in range(5)}
    try:
        ingest(clients[leader], [{"id": f"erase-{n}", "user": user, "item": f"item-{n:05d}",
                                  "type": "purchase", "timestamp": 1.9e9 + n}
                                 for n in range(5)])
        for client in clients:
            shown = client.get(f"/v1/users/{user}/recommendations?k=200").json()["items"]
            assert not {i["id"] for i in shown} & bought
        erased = clients[other].delete(f"/v1/users/{user}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["events_erased"] == 5
        # Forgotten by every engine: what they bought is no longer left out as "seen".
        for client in clients:
            shown = client.get(f"/v1/users/{user}/recommendations?k=200").json()["items"]
            assert {i["id"] for i in shown} & bought
        assert not workers_server.query("SELECT id FROM events WHERE user = ?", user)
        # A path no URL may carry decoded (a control character) reaches the leader as sent
        # and gets its answer (found by the fuzz test: a 500 before).
        for client in clients:
            odd = client.delete("/v1/users/odd%1Aid")
            assert odd.status_code == 422 and "control" in odd.json()["error"], odd.text
    finally:
        for client in clients:
            client.close()


def test_kill_9_of_a_worker_loses_no_acked_event_and_the_others_keep_answering(
        tmp_path: Any) -> None:
    server = Server(tmp_path, {"FRESHREC_MIN_TRAIN_EVENTS": str(10**9)}, workers=WORKERS)
    server.root.mkdir(exist_ok=True)
    server.start()
    items, events = _shop_events(6000, seed=5)
    acked: list[str] = []
    stop = threading.Event()

    def keep_ingesting() -> None:
        for start in range(0, len(events), 50):
            if stop.is_set():
                return
            batch = events[start:start + 50]
            try:
                with server.client(timeout=30) as client:
                    answer = client.post("/v1/events", json={"events": batch})
            except httpx.TransportError:
                continue  # its worker died under it: not acked, may or may not be stored
            if answer.status_code == 200:
                acked.extend(e["id"] for e in batch)

    try:
        workers = server.wait_workers()
        with server.client() as client:
            post(client, "/v1/items", {"items": items})
        ingesting = threading.Thread(target=keep_ingesting)
        ingesting.start()
        wait_for(lambda: len(acked) >= 500, message="some acked events")
        for victim in (0, next(w["worker"] for w in workers if w["leader"])):
            pid = next(w["pid"] for w in server.wait_workers() if w["worker"] == victim)
            os.kill(pid, signal.SIGKILL)
            # The lifecycle's requests meanwhile: answered by a leader, or refused with a
            # time to retry while the lease moves, never a server error.
            survivor = (victim + 1) % WORKERS
            with server.worker(survivor) as client:
                answer = client.get("/v1/monitoring")
            assert answer.status_code == 200 or (
                answer.status_code == 503 and answer.headers["Retry-After"]), answer.text
            # The rest keep answering on the port while the victim is restarted.
            for _ in range(20):
                with server.client() as client:
                    assert client.get("/v1/trending").status_code == 200
            wait_for(lambda old=pid, index=victim: all(
                w["pid"] not in (0, old) for w in server.wait_workers() if w["worker"] == index),
                message="the victim restarted")
        stop.set()
        ingesting.join(timeout=120)
        assert len(acked) >= 500
        stored = server.event_ids()
        assert not set(acked) - stored
        # Every worker, the restarted ones too, reflects every stored event.
        for index in range(WORKERS):
            with server.worker(index) as client:
                assert client.get("/readyz").json()["events"] == len(stored)
        assert sum(w["leader"] for w in server.wait_workers()) == 1
    finally:
        stop.set()
        server.stop()
