"""A/B experiments and shadow models through the real server (docs/experiments.md).

One process with an engine-settings arm (survives a restart, counts exactly what was
served and clicked), and ``--workers 2`` with a model-version arm, a shadow model and
the winner's promotion, started and read through either worker.
"""

from __future__ import annotations

import json
import random
import subprocess
from typing import Any

import httpx
import pytest

from ._server import CLI, Server, ingest, wait_for
from .test_lifecycle import BAD, QUIET, TRAINING_TIMEOUT_S, finished, load_shop, post

WEAK = {"sources": ["popularity"]}
UNLISTED = "unlisted"
"""Not available: never recommended, however often it is viewed."""


def _experiment(client: httpx.Client, arms: list[dict[str, Any]], metric: str = "ctr"
                ) -> dict[str, Any]:
    return post(client, "/v1/experiments", {"name": "test", "metric": metric, "alpha": 0.05,
                                            "arms": arms}).json()


def _catalog(client: httpx.Client, n_items: int = 60) -> None:
    post(client, "/v1/items", {"items": [{"id": f"it-{n:03d}", "categories": ["c"]}
                                         for n in range(n_items)]})
    post(client, "/v1/items", {"items": [{"id": UNLISTED, "available": False}]})
    events = [{"user": f"seed-{n % 40}", "item": f"it-{(n * 7) % n_items:03d}",
               "type": "view", "timestamp": 1.7e9 + n} for n in range(600)]
    ingest(client, events)


Sent = dict[str, dict[str, int]]
"""Per arm: the requests made and the clicks sent."""


def _recommend(client: httpx.Client, user: str, sent: Sent, k: int = 5) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"/v1/users/{user}/recommendations?k={k}").json()
    counts = sent.setdefault(answer["experiment"]["arm"], {"requests": 0, "clicks": 0})
    counts["requests"] += 1
    return answer


def _move_clock(client: httpx.Client, timestamp: float) -> None:
    """An event of someone outside the tests' users: the models' clock, which dates the
    served lists, moves to just before the next phase's events (else its first lists
    would be older than the outcome horizon when their events come)."""
    ingest(client, [{"user": "clock", "item": "clock-item", "type": "view",
                     "timestamp": timestamp - 1}])


def _serve_and_click(client: httpx.Client, users: list[str], rates: dict[str, float],
                     seed: int, timestamp: float, sent: Sent) -> None:
    """Each user gets two lists; clicks on the first item with their arm's probability,
    else views an item no list holds (``UNLISTED``); ``sent`` counts what was sent."""
    rng = random.Random(seed)
    _move_clock(client, timestamp)
    for n, user in enumerate(users):
        for visit in range(2):
            answer = _recommend(client, user, sent)
            arm = answer["experiment"]["arm"]
            counts = sent[arm]
            clicked = rng.random() < rates[arm]
            item = answer["items"][0]["id"] if clicked else UNLISTED
            event = {"user": user, "item": item, "type": "click" if clicked else "view",
                     "timestamp": timestamp + 10 * n + visit,
                     **({"request_id": answer["request_id"]} if clicked else {})}
            if clicked:
                counts["clicks"] += 1
            assert ingest(client, [event])["accepted"] == 1


def _counted(client: httpx.Client, experiment: str, sent: Sent) -> dict[str, Any] | None:
    found = client.get(f"/v1/experiments/{experiment}").json()
    arms = {arm["name"]: arm for arm in found["arms"]}
    done = all(arms[name]["impressions"] == counts["requests"]
               and arms[name]["clicks"] == counts["clicks"] for name, counts in sent.items())
    return found if done else None


def test_a_settings_arm_splits_users_counts_from_the_log_and_survives_a_restart(
        fresh_server: Any) -> None:
    server: Server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "1000000000"})
    users = [f"ab-{n:03d}" for n in range(160)]
    with server.client() as client:
        _catalog(client)
        started = _experiment(client, [{"name": "control", "share": 0.5},
                                       {"name": "weak", "share": 0.5, "settings": WEAK}])
        assert started["status"] == "running" and started["test"]["p_value"] == 1.0
        sent: Sent = {}
        _serve_and_click(client, users, {"control": 0.7, "weak": 0.15}, seed=1,
                         timestamp=1.8e9, sent=sent)
        assert set(sent) == {"control", "weak"}
        outcomes = {arm: dict(counts) for arm, counts in sent.items()}
        arm_of = {user: _recommend(client, user, sent)["experiment"] for user in users[:20]}
        found = wait_for(lambda: _counted(client, started["id"], sent), timeout=60,
                         message="every served list and click counted")
        arms = {arm["name"]: arm for arm in found["arms"]}
        # Every user's two visits: each list settled by the next event (hit = clicked);
        # the last 20 lists wait for an event still.
        assert arms["control"]["outcomes"] == outcomes["control"]["requests"]
        assert arms["control"]["hits"] == outcomes["control"]["clicks"]
        assert arms["weak"]["users"] + arms["control"]["users"] == len(users)
        assert arms["control"]["ctr"]["low"] <= arms["control"]["ctr"]["value"] \
            <= arms["control"]["ctr"]["high"]
        assert found["test"]["decision"] == "control better", found["test"]
        assert found["test"]["high"] < 0
        # A bad definition is a clear error, not a second experiment.
        refused = client.post("/v1/experiments", json={"name": "x", "arms": [
            {"name": "a"}, {"name": "b", "settings": {"sources": ["nope"]}}]})
        assert refused.status_code == 422 and "sources" in refused.json()["error"]
        second = client.post("/v1/experiments", json={"name": "x", "arms": [
            {"name": "a"}, {"name": "b", "settings": WEAK}]})
        assert second.status_code == 409, second.text
        assert client.get("/v1/experiments/exp-none").status_code == 404
    server.restart()
    with server.client() as client:
        assert client.get(f"/v1/experiments/{started['id']}").json() == found
        for user, experiment in arm_of.items():  # the same arm after the restart
            assert client.get(f"/v1/users/{user}/recommendations").json()["experiment"] == \
                experiment
        stopped = post(client, f"/v1/experiments/{started['id']}/stop",
                       {"promote_winner": True}).json()
        assert stopped["status"] == "stopped" and stopped["winner"] == "control"
        assert stopped["promoted"] is None  # the control is the champion already
        answer = client.get(f"/v1/users/{users[0]}/recommendations").json()
        assert "experiment" not in answer
        assert client.post(f"/v1/experiments/{started['id']}/stop", json={}).status_code == 409
        listed = client.get("/v1/experiments").json()["experiments"]
        assert [e["id"] for e in listed] == [started["id"]]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = Server(tmp_path_factory.mktemp("ab-workers"), QUIET, workers=2).start()
    server.wait_workers()
    load_shop(server, seed=5)
    with server.client() as client:
        version = post(client, "/v1/models/train", {"params": BAD}).json()["version"]
        wait_for(lambda: finished(client, version), timeout=TRAINING_TIMEOUT_S,
                 message="a weak candidate")
    yield server, version
    assert server.stop() == 0
    assert " ERROR " not in server.logs(), server.log_tail()


def _leader(server: Server) -> int:
    return next(w["worker"] for w in server.wait_workers() if w["leader"])


def test_a_model_arm_across_two_workers_and_promoting_the_winner(two_workers: Any) -> None:
    server, version = two_workers
    leader = _leader(server)
    clients = [server.worker(i) for i in range(2)]
    other = clients[(leader + 1) % 2]
    try:
        champion = other.get("/v1/models").json()["serving"]
        started = _experiment(other, [{"name": "control", "share": 0.5},
                                      {"name": "candidate", "model": version, "share": 0.5}])
        users = [f"user-{n:05d}" for n in range(120)]
        sent: Sent = {}
        arms = {}
        for user in users[:30]:  # every worker: the same arm, the arm's model
            answers = [_recommend(c, user, sent) for c in clients]
            assert answers[0]["experiment"] == answers[1]["experiment"]
            arms[user] = answers[0]["experiment"]["arm"]
            expected = champion if arms[user] == "control" else version
            assert {a["model"] for a in answers} == {expected}
        # The candidate's engine learns from the log on every worker: a viewed item is
        # left out of its next list there (exclude_seen).
        in_b = next(user for user, arm in arms.items() if arm == "candidate")
        shown = _recommend(clients[0], in_b, sent, k=3)["items"][0]["id"]
        assert ingest(clients[1], [{"user": in_b, "item": shown, "type": "purchase",
                                    "timestamp": 1.95e9}])["accepted"] == 1
        for client in clients:
            items = _recommend(client, in_b, sent, k=50)["items"]
            assert shown not in {item["id"] for item in items}
        # The candidate clicked much more often: it should win on click-through.
        for n, user in enumerate(users):
            _serve_and_click(clients[n % 2], [user], {"control": 0.1, "candidate": 0.8},
                             seed=n, timestamp=1.96e9 + 100 * n, sent=sent)
        wait_for(lambda: _counted(clients[0], started["id"], sent), timeout=60,
                 message="both workers' lists and clicks counted")

        def alike() -> dict[str, Any] | None:
            # The last event's outcome may be counted a round later: the same answer
            # from both workers once the leader has counted everything.
            first, second = (c.get(f"/v1/experiments/{started['id']}").json()
                             for c in clients)
            return first if first == second else None

        found = wait_for(alike, timeout=60, message="the same answer from both workers")
        assert found["test"]["decision"] == "candidate better", found["test"]
        stopped = post(other, f"/v1/experiments/{started['id']}/stop",
                       {"promote_winner": True}).json()
        assert stopped["promoted"] == version and stopped["winner"] == "candidate"
        for client in clients:  # the next answer of every worker: the winner, no label
            answer = client.get(f"/v1/users/{users[0]}/recommendations").json()
            assert answer["model"] == version and "experiment" not in answer
        post(other, "/v1/models/rollback", {})
    finally:
        for client in clients:
            client.close()


def test_a_shadow_answers_a_sample_unseen_and_is_scored_beside_the_champion(
        two_workers: Any) -> None:
    server, version = two_workers
    clients = [server.worker(i) for i in range(2)]
    try:
        champion = clients[0].get("/v1/models").json()["serving"]
        assert champion != version
        shadow = post(clients[1], "/v1/shadow", {"model": version, "sample": 1.0}).json()
        users = [f"user-{n:05d}" for n in range(150, 190)]
        _move_clock(clients[0], 1.99e9)
        for n, user in enumerate(users):
            answer = clients[n % 2].get(f"/v1/users/{user}/recommendations?k=10").json()
            assert answer["model"] == champion and "experiment" not in answer  # unseen
            ingest(clients[n % 2], [{"user": user, "item": answer["items"][n % 10]["id"],
                                     "type": "view", "timestamp": 1.99e9 + n}])

        def scored() -> dict[str, Any] | None:
            shadows = clients[n % 2].get("/v1/shadow").json()["shadows"]
            found = next(s for s in shadows if s["id"] == shadow["id"])
            arms = {arm["name"]: arm for arm in found["arms"]}
            return found if all(arms[name]["outcomes"] == len(users)
                                for name in ("champion", version)) else None

        found = wait_for(scored, timeout=60, message="both lists of every request scored")
        arms = {arm["name"]: arm for arm in found["arms"]}
        assert arms["champion"]["hits"] == len(users)  # each viewed an item it was shown
        assert arms[version]["impressions"] == 0  # never shown
        assert arms[version]["hit_rate"]["value"] is not None
        post(clients[0], f"/v1/shadow/{shadow['id']}/stop", {})
        assert clients[1].get("/v1/shadow").json()["shadows"][0]["status"] == "stopped"
    finally:
        for client in clients:
            client.close()


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "experiments", *args, "--url", server.url, "--key",
                           server.admin_key], capture_output=True, text=True,
                          env={**server.env, "COLUMNS": "200"},  # a table, unwrapped
                          timeout=60)


def test_the_cli_starts_lists_shows_and_stops_an_experiment(fresh_server: Any) -> None:
    server: Server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "1000000000"})
    with server.client() as client:
        _catalog(client)
    started = _cli(server, "start", "cli test", "--arm", "name=control,share=0.5",
                   "--arm", "name=weak,share=0.5,sources=popularity", "--metric", "hit_rate")
    assert started.returncode == 0, started.stderr
    experiment = started.stdout.split()[1]
    with server.client() as client:
        answer = client.get("/v1/users/cli-user/recommendations").json()
        assert answer["experiment"]["id"] == experiment
    listed = _cli(server, "list")
    assert listed.returncode == 0 and experiment in listed.stdout and "running" in listed.stdout
    shown = _cli(server, "show", experiment, "--json")
    assert json.loads(shown.stdout)["arms"][1]["settings"] == WEAK
    assert "no difference yet" in _cli(server, "show", experiment).stdout
    stopped = _cli(server, "stop", experiment, "--promote-winner")
    assert stopped.returncode == 0 and "winner: none" in stopped.stdout, stopped.stdout
    again = _cli(server, "stop", experiment)
    assert again.returncode == 1 and "already stopped" in again.stderr
    bad = _cli(server, "start", "x", "--arm", "name=a", "--arm", "name=b,color=red")
    assert bad.returncode != 0 and "unknown arm field" in bad.stderr
