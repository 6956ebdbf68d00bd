"""Restart and crash recovery: the state is rebuilt from the latest snapshot plus the log.

A SIGKILL at any moment loses no acknowledged event: the crash test ingests from
client threads in batches of mixed sizes, kills the server mid-stream several times,
and after each restart finds every acked event again (re-posting each one gets a
duplicate). A SIGTERM mid-stream is a clean stop that keeps them all too.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
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
    """What a client sees of the state: the events learned and the answers.

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
        # Events learned, not the log position: every personal request below logs what it
        # showed, so the position moves with each observation.
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
        position = admin.get("/readyz").json()["position"]

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
                                               "events": 96, "position": position}
        for round_ in range(3, 5):
            ingest(admin, events(round_))
        before = observe(admin)
    assert before["events"] == 96 + 64
    server.kill()
    assert latest_sidecar(server) == snapshot

    server.start()
    assert server.logs().count(f"restored snapshot {snapshot['id']} at log position "
                               f"{position}") == 2
    with server.client() as admin:
        assert observe(admin) == before
        assert admin.get("/readyz").json()["model"] == trained  # not trained again


def test_snapshots_are_also_taken_by_event_count(fresh_server: Callable[..., Server]) -> None:
    # An hour between timed snapshots: only the count can trigger one here.
    server = fresh_server({"FRESHREC_SNAPSHOT_INTERVAL_S": "3600",
                           "FRESHREC_SNAPSHOT_EVERY_EVENTS": "100",
                           "FRESHREC_MIN_TRAIN_EVENTS": "1000000"})
    with server.client() as admin:
        load_history(admin, rounds=2)
        assert latest_sidecar(server) is None  # 64 events: not due yet
        ingest(admin, events(2))
        ingest(admin, events(3))
    snapshot = wait_for(lambda: latest_sidecar(server), message="a snapshot by event count")
    assert snapshot["metadata"]["log_position"] >= 100
    server.kill()
    server.start()
    assert (f"restored snapshot {snapshot['id']} at log position "
            f"{snapshot['metadata']['log_position']}") in server.logs()


CLIENTS = 4


class IngestLoad:
    """Client threads posting batches of mixed sizes (1 to 500) with unique event ids.

    Each thread posts until stopped or until the server goes away under it; a batch
    counts as acknowledged only once its 200 answer arrived. Every batch sent is
    remembered with its size, to check afterwards that each is stored whole or not
    at all.
    """

    def __init__(self, server: Server, rng: random.Random, name: str,
                 clients: int = CLIENTS) -> None:
        self.server = server
        self.name = name
        self.acked: list[str] = []
        self.sent: dict[str, int] = {}  # batch prefix -> its number of events
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seeds = [rng.randrange(2**32) for _ in range(clients)]
        self._threads = [threading.Thread(target=self._client, args=(n,))
                         for n in range(clients)]

    def __enter__(self) -> IngestLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_acked(self, count: int) -> None:
        wait_for(lambda: len(self.acked) >= count or self.errors, interval=0.01,
                 message=f"{count} acknowledged events")
        assert not self.errors, self.errors

    def _client(self, number: int) -> None:
        rng = random.Random(self._seeds[number])
        try:
            with self.server.client() as admin:
                batch = 0
                while not self._stop.is_set() and self._post(admin, rng, number, batch):
                    batch += 1
        except BaseException as error:  # shown by the main thread
            self.errors.append(error)

    def _post(self, admin: httpx.Client, rng: random.Random, number: int, batch: int) -> bool:
        """One batch; False once the server is gone."""
        size = rng.choice((1, rng.randint(2, 20), rng.randint(20, 500)))
        prefix = f"{self.name}-{number}-{batch}"
        ids = [f"{prefix}-{n}" for n in range(size)]
        with self._lock:
            self.sent[prefix] = size
        records = [{"id": event_id, "user": f"kl-u{rng.randrange(200)}",
                    "item": f"kl-i{rng.randrange(300)}", "type": "view"} for event_id in ids]
        try:
            answer = admin.post("/v1/events", json={"events": records})
        except httpx.TransportError:
            return False  # the server died under this request: it was never acked
        if answer.status_code != 200 or answer.json()["accepted"] != size:
            raise AssertionError(answer.text)
        with self._lock:
            self.acked.extend(ids)
        return True


def check_recovered(server: Server, acked: list[str], sent: dict[str, int]) -> None:
    """Every acked id is stored, each batch whole or not at all, and re-posting is a no-op."""
    stored = server.event_ids()
    missing = [event_id for event_id in acked if event_id not in stored]
    assert missing == [], f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    per_batch: dict[str, int] = {}
    for event_id in stored:
        prefix = event_id.rsplit("-", 1)[0]
        per_batch[prefix] = per_batch.get(prefix, 0) + 1
    torn = {prefix: count for prefix, count in per_batch.items() if count != sent[prefix]}
    assert torn == {}, f"batches stored in part: {list(torn.items())[:5]}"
    with server.client() as admin:
        assert admin.get("/readyz").json()["events"] == len(stored)
        for start in range(0, len(acked), 1000):
            again = [{"id": event_id, "user": "kl-retry", "item": "kl-i0", "type": "view"}
                     for event_id in acked[start:start + 1000]]
            answer = ingest(admin, again)
            assert (answer["accepted"], answer["duplicates"]) == (0, len(again))


KILLS = {1: 8, 2: 4}
"""Kills of the whole server (with ``--workers 2``: the supervisor, whose workers die
with it); tests/service/test_workers.py kills single workers."""


@pytest.mark.parametrize("workers", sorted(KILLS))
def test_kills_at_random_moments_during_concurrent_ingest_lose_no_acknowledged_event(
        fresh_server: Callable[..., Server], workers: int) -> None:
    # Frequent snapshots and trainings, so the kills land in them too.
    server = fresh_server({"FRESHREC_SNAPSHOT_INTERVAL_S": "0.5",
                           "FRESHREC_SNAPSHOT_EVERY_EVENTS": "1500",
                           "FRESHREC_MIN_TRAIN_EVENTS": "500"}, workers=workers)
    rng = random.Random(8)
    acked: list[str] = []
    sent: dict[str, int] = {}
    for kill in range(KILLS[workers]):
        with IngestLoad(server, rng, f"kill{kill}") as load:
            load.wait_acked(rng.randint(100, 3000))
            time.sleep(rng.uniform(0.0, 0.3))  # not always right after an answer
            assert server.kill() == -signal.SIGKILL  # mid-stream: the clients never stop
        assert not load.errors, load.errors
        acked += load.acked
        sent.update(load.sent)
        server.start()
        check_recovered(server, acked, sent)
    with server.client() as admin:
        assert len(recommended(admin, "kl-u1", k=5)) == 5


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_ingest_stops_cleanly_and_keeps_every_acknowledged_event(
        fresh_server: Callable[..., Server], workers: int) -> None:
    server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "500"}, workers=workers)
    with IngestLoad(server, random.Random(15), "term") as load:
        load.wait_acked(2000)
        assert server.stop() == 0  # as a service manager stops it: a clean exit
    assert not load.errors, load.errors
    assert "Application shutdown complete" in server.logs()
    server.start()
    check_recovered(server, load.acked, load.sent)


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


def test_a_restart_serves_the_champion_when_the_newest_snapshot_predates_it(
        fresh_server: Callable[..., Server]) -> None:
    server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "1000000",
                           "FRESHREC_SNAPSHOT_INTERVAL_S": "0.1"})
    with server.client() as admin:
        load_history(admin)
    wait_for(lambda: (latest_sidecar(server) or {}).get("metadata", {}).get("log_position"),
             message="a snapshot of the untrained engine")
    server.stop()
    # Trained, then stopped before any snapshot of the trained model is due.
    server.env.update({"FRESHREC_MIN_TRAIN_EVENTS": "50", "FRESHREC_SNAPSHOT_INTERVAL_S": "3600",
                       "FRESHREC_SNAPSHOT_EVERY_EVENTS": "1000000"})
    server.start()
    with server.client() as admin:
        trained = wait_for(lambda: admin.get("/readyz").json()["model"] != "untrained"
                           and admin.get("/readyz").json()["model"], timeout=300,
                           message="the first model")
    server.stop()
    assert (latest_sidecar(server) or {})["metadata"]["model"] == "untrained"
    server.start()
    with server.client() as admin:
        assert admin.get("/readyz").json()["model"] == trained
