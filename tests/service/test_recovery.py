"""Restart and crash recovery: the state is rebuilt from the latest snapshot plus the log.

A SIGKILL at any moment loses no acknowledged event: the crash test ingests from
client threads, kills the server mid-stream, and finds every acked event again.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._server import Server, ingest, recommended, wait_for

ITEMS = [{"id": f"rc-{n}", "title": f"Item {n}", "categories": [f"rc-cat-{n % 3}"]}
         for n in range(12)]


def events(round_: int, users: int = 8) -> list[dict[str, Any]]:
    """Each user views a chain of items; co-occurrence makes the next item predictable."""
    return [{"id": f"rc-{round_}-{user}-{step}", "user": f"rc-user-{user}",
             "item": f"rc-{(user + step + round_) % 12}",
             "type": ("view", "click", "purchase")[step % 3]}
            for user in range(users) for step in range(4)]


def load_history(admin: httpx.Client, rounds: int = 3) -> None:
    """The catalog and ``rounds`` rounds of events (32 each)."""
    admin.post("/v1/items", json={"items": ITEMS})
    for round_ in range(rounds):
        ingest(admin, events(round_))


def observe(admin: httpx.Client) -> dict[str, Any]:
    """What a client sees of the state: the log position and the answers.

    Trending and similar items come from counts and vectors, which recovery rebuilds
    exactly; they are compared in order. Personal and session answers also pass
    through the online ranker, which recovery does not rebuild exactly (see
    ``test_recovery_rebuilds_what_the_rankers_learned``), so for them the whole
    catalog is asked for and compared as a set: the items each user has seen must
    still be left out, and nothing else.
    """

    def answer(response: httpx.Response) -> list[tuple[str, str]]:
        assert response.status_code == 200, response.text
        return [(entry["id"], entry["source"]) for entry in response.json()["items"]]

    def ids(response: httpx.Response) -> set[str]:
        return {item for item, _ in answer(response)}

    return {
        "events": admin.get("/readyz").json()["events"],
        "similar": answer(admin.get("/v1/items/rc-1/similar", params={"k": 3})),
        "trending": answer(admin.get("/v1/trending", params={"k": 12})),
        "category": answer(admin.get("/v1/trending", params={"category": "rc-cat-1"})),
        "users": {user: ids(admin.get(f"/v1/users/{user}/recommendations", params={"k": 12}))
                  for user in ("rc-user-0", "rc-user-3", "rc-user-7", "rc-stranger")},
        "session": ids(admin.post("/v1/recommendations",
                                  json={"recent_items": ["rc-2", "rc-3"], "k": 12})),
    }


def latest_sidecar(server: Server) -> dict[str, Any] | None:
    sidecars = sorted((server.data_dir / "snapshots").glob("*.json"))
    return json.loads(sidecars[-1].read_text()) if sidecars else None


def test_a_restart_recovers_everything_from_the_log(
        fresh_server: Callable[..., Server]) -> None:
    server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "1000000"})
    with server.client() as admin:
        load_history(admin)
        before = observe(admin)
    assert before["events"] == 3 * 32
    assert before["users"]["rc-user-0"] == {f"rc-{n}" for n in range(6, 12)}  # not seen
    assert latest_sidecar(server) is None  # no snapshot: the whole log is replayed

    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises it once done
    assert "Application shutdown complete" in server.logs()
    server.start()
    with server.client() as admin:
        assert observe(admin) == before
        # Ids from before the restart are still known as duplicates.
        assert ingest(admin, events(0)) == {"accepted": 0, "duplicates": 32, "rejected": []}


def test_a_history_loaded_without_training_gets_its_first_model_after_a_restart(
        fresh_server: Callable[..., Server]) -> None:
    # A deployment's usual start: bulk-load history with training off, then restart
    # with the real settings. No new event arrives, and the first model must come all
    # the same.
    server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "1000000"})
    with server.client() as admin:
        load_history(admin)
    server.stop()
    server.env["FRESHREC_MIN_TRAIN_EVENTS"] = "50"
    server.start()
    with server.client() as admin:
        model = wait_for(lambda: admin.get("/readyz").json()["model"] != "untrained"
                         and admin.get("/readyz").json()["model"], timeout=300,
                         message="the first model after the restart")
        assert model == admin.get("/v1/models").json()["models"][0]["id"]


def test_a_restart_resumes_from_the_snapshot_and_replays_the_log_after_it(
        fresh_server: Callable[..., Server]) -> None:
    server = fresh_server({"FRESHREC_SNAPSHOT_INTERVAL_S": "0.1",
                           "FRESHREC_MIN_TRAIN_EVENTS": "50"})
    with server.client() as admin:
        load_history(admin)
        position = admin.get("/readyz").json()["events"]

        def trained_model() -> str | None:
            model = str(admin.get("/readyz").json()["model"])
            return None if model == "untrained" else model

        trained = wait_for(trained_model, message="the first training")
    # The training ends after the last event; its model is snapshotted all the same.
    snapshot = wait_for(lambda: (latest_sidecar(server) or {}).get("metadata") == {
        "log_position": position, "model": trained} and latest_sidecar(server),
        message="a snapshot of the trained model")
    server.stop()

    # From now on no background work runs: no snapshot is due, so whatever comes next
    # lives only in the log, and no vector is re-solved between events and answers, so
    # the answers are exactly reproducible.
    server.env.update({"FRESHREC_SNAPSHOT_INTERVAL_S": "3600",
                       "FRESHREC_SETTLE_INTERVAL_S": "3600"})
    server.start()
    with server.client() as admin:
        assert admin.get("/readyz").json() == {"status": "ready", "model": trained,
                                               "events": position}
        for round_ in range(3, 5):
            ingest(admin, events(round_))
        before = observe(admin)
    assert before["events"] == position + 64
    server.kill()
    assert latest_sidecar(server) == snapshot

    server.start()
    assert server.logs().count(f"restored snapshot {snapshot['id']} at log position "
                               f"{position}") == 2
    with server.client() as admin:
        assert observe(admin) == before
        assert admin.get("/readyz").json()["model"] == trained  # not trained again


BATCH = 40
CLIENTS = 3
ACKED_BEFORE_KILL = 2000


def test_a_kill_during_ingest_loses_no_acknowledged_event(
        fresh_server: Callable[..., Server]) -> None:
    # Snapshots and trainings run during the stream, so the kill can land in them too.
    server = fresh_server({"FRESHREC_SNAPSHOT_INTERVAL_S": "0.2",
                           "FRESHREC_MIN_TRAIN_EVENTS": "500"})
    acked: list[list[str]] = []  # the ids of each acknowledged batch
    stop = threading.Event()
    errors: list[BaseException] = []

    def client(number: int) -> None:
        try:
            send(number)
        except BaseException as error:  # shown by the main thread
            errors.append(error)

    def send(number: int) -> None:
        with server.client() as admin:
            batch = 0
            while not stop.is_set():
                ids = [f"crash-{number}-{batch}-{n}" for n in range(BATCH)]
                records = [{"id": event_id, "user": f"crash-u{(batch + n) % 50}",
                            "item": f"crash-i{(batch * 7 + n) % 300}", "type": "view"}
                           for n, event_id in enumerate(ids)]
                try:
                    answer = admin.post("/v1/events", json={"events": records})
                except httpx.TransportError:
                    return  # the server died under this request: it was never acked
                if answer.status_code != 200 or answer.json()["accepted"] != BATCH:
                    errors.append(AssertionError(answer.text))
                    return
                acked.append(ids)
                batch += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(acked) * BATCH >= ACKED_BEFORE_KILL or errors, interval=0.01,
                 message=f"{ACKED_BEFORE_KILL} acknowledged events")
        assert server.kill() == -signal.SIGKILL  # mid-stream: the clients never stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    sent = [event_id for ids in acked for event_id in ids]
    assert len(sent) >= ACKED_BEFORE_KILL

    server.start()
    stored = server.event_ids()
    missing = [event_id for event_id in sent if event_id not in stored]
    assert missing == [], f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    # Batches are atomic: each one is stored whole or not at all.
    by_batch: dict[str, int] = {}
    for event_id in stored:
        by_batch[event_id.rsplit("-", 1)[0]] = by_batch.get(event_id.rsplit("-", 1)[0], 0) + 1
    assert set(by_batch.values()) == {BATCH}
    with server.client() as admin:
        assert admin.get("/readyz").json()["events"] == len(stored)
        # Re-sending what was acked stores nothing twice.
        for start in range(0, len(sent), 1000):
            again = [{"id": event_id, "user": "crash-retry", "item": "crash-i0", "type": "view"}
                     for event_id in sent[start:start + 1000]]
            answer = ingest(admin, again)
            assert (answer["accepted"], answer["duplicates"]) == (0, len(again))
        assert len(recommended(admin, "crash-u1", k=5)) == 5


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc: no extra dependency)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_a_killed_server_leaves_no_training_process_behind(
        fresh_server: Callable[..., Server]) -> None:
    server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "50"})
    with server.client() as admin:
        load_history(admin)
        wait_for(lambda: admin.get("/readyz").json()["model"] != "untrained",
                 timeout=300, message="the first model")
    assert server.process is not None
    trainers = _children(server.process.pid)
    assert trainers, "the training process pool should still be there"
    server.kill()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in trainers),
             timeout=30, message="the training process to end with its server")
