"""The model lifecycle through the real server: gate, refusal, rollback, corrupt artifacts.

A generated shop is streamed in; the first model is trained automatically, later
candidates by hand. Trainings run in the server's child process, as in production.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from freshrec.data.synthetic import generate_shop

from ._server import CLI, Server, wait_for

QUIET = {
    "FRESHREC_MIN_TRAIN_EVENTS": "3000",
    "FRESHREC_RETRAIN_EVERY_EVENTS": "1000000000",
    "FRESHREC_RETRAIN_INTERVAL_S": "1000000000",
    "FRESHREC_DRIFT_WINDOW": "1000000",
    "FRESHREC_SNAPSHOT_INTERVAL_S": "1000000000",
    # Trainings run at normal priority here: on a loaded test machine a niced child
    # could wait minutes for a core, and these tests are about decisions, not priority.
    "FRESHREC_TRAINING_NICENESS": "0",
}
TRAINING_TIMEOUT_S = 600
# Deliberately bad: a one-dimensional, one-iteration ALS, no co-occurrence and no
# context, trends and history that forget within a second, and a ranker that never
# learns: little more than all-time popularity.
BAD = {"factors": 1, "als_iterations": 1, "cooccurrence_window": 0, "transition_span": 0,
       "context_size": 0, "repeat_half_life": 1.0, "trending_half_lives": [1.0, 1.0, 1.0],
       "freshness_half_life": 1.0, "ranker_learning_rate": 0.0}


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    answer = client.post(path, json=body)
    assert answer.status_code < 300, answer.text
    return answer


def models(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in client.get("/v1/models").json()["models"]}


def finished(client: httpx.Client, version: str) -> dict[str, Any] | None:
    found = client.get(f"/v1/models/{version}").json()
    return found if found.get("gate") else None


@pytest.fixture(scope="module")
def shop_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("lifecycle")
    server = Server(root, QUIET).start()
    load_shop(server, seed=1)
    yield server
    server.stop()


def load_shop(server: Server, seed: int) -> None:
    """A generated shop: 4,000 events, the first champion (trained on its own once
    enough events arrived), then 4,000 more events."""
    shop = generate_shop(n_users=300, n_items=200, n_events=8000, seed=seed)
    with server.client() as client:
        for start in range(0, len(shop.items), 500):
            post(client, "/v1/items", {"items": [msgspec.to_builtins(i)
                                                 for i in shop.items[start:start + 500]]})
        events = [msgspec.to_builtins(e) for e in shop.events]
        for start in range(0, 4000, 1000):
            post(client, "/v1/events", {"events": events[start:start + 1000]})
        wait_for(lambda: any(v["status"] == "champion" for v in models(client).values()),
                 timeout=TRAINING_TIMEOUT_S, message="the first champion")
        for start in range(4000, len(events), 1000):
            post(client, "/v1/events", {"events": events[start:start + 1000]})


def test_first_model_is_trained_automatically_with_lineage(shop_server: Server) -> None:
    with shop_server.client() as client:
        first = models(client)["m0001"]
    assert first["status"] == "champion"
    assert first["gate"]["reason"] == "no champion yet"
    assert first["metrics"]["holdout_hr"] > 0
    # The sequence model is trained with the rest and ships in the artifact.
    assert first["metrics"]["sequence_items"] > 0
    dataset = first["dataset"]
    # The dataset version names the exact log range and its hash; reading it back
    # from the log gives the same hash.
    again = shop_server.dataset_version(dataset["end_position"])
    assert again.content_hash == dataset["content_hash"]
    assert again.events == dataset["events"] > 0
    assert first["code_version"].startswith("freshrec ")
    assert first["artifacts"] and first["artifacts"][0]["sha256"]


def test_the_gate_refuses_a_deliberately_bad_candidate(shop_server: Server) -> None:
    with shop_server.client() as client:
        champion = client.get("/v1/monitoring").json()["model"]
        answer = post(client, "/v1/models/train", {"params": BAD}).json()
        version = answer["version"]
        done = wait_for(lambda: finished(client, version), timeout=TRAINING_TIMEOUT_S,
                        message="the bad candidate's gate")
        assert done["status"] == "refused"
        gate = done["gate"]
        assert gate["promote"] is False
        worse = [m for m in ("hr", "hr_new")
                 if gate["candidate"][m] < gate["champion"][m] * (1 - gate["tolerance"])]
        assert worse, gate
        assert done["parent"] == champion
        assert done["params"] == BAD
        # The champion keeps serving.
        assert client.get("/v1/users/user-00001/recommendations").json()["model"] == champion


def test_unknown_parameters_are_refused_before_training(shop_server: Server) -> None:
    with shop_server.client() as client:
        answer = client.post("/v1/models/train", json={"params": {"factorz": 3}})
        assert answer.status_code == 422
        assert "unknown parameter(s) factorz" in answer.json()["error"]


def test_rollback_changes_the_model_serving_the_next_request(shop_server: Server) -> None:
    with shop_server.client() as client:
        before = client.get("/v1/monitoring").json()["model"]
        version = post(client, "/v1/models/train", {}).json()["version"]
        wait_for(lambda: finished(client, version), timeout=TRAINING_TIMEOUT_S,
                        message="a second candidate")
        promoted = post(client, f"/v1/models/{version}/promote", {}).json()
        assert promoted["status"] == "champion"
        assert client.get("/v1/users/user-00002/recommendations").json()["model"] == version
        back = post(client, "/v1/models/rollback", {}).json()
        assert back["id"] == before and back["status"] == "champion"
        answer = client.get("/v1/users/user-00002/recommendations").json()
        assert answer["model"] == before and answer["items"]
        assert models(client)[version]["status"] == "retired"


def test_a_corrupt_artifact_is_refused_and_the_service_keeps_answering(
        shop_server: Server) -> None:
    with shop_server.client() as client:
        serving = client.get("/v1/monitoring").json()["model"]
        retired = [v for v in models(client).values()
                   if v["status"] == "retired" and v["artifacts"]]
        target = retired[0]
        artifact = Path(shop_server.data_dir / "models" /
                        f"{target['artifacts'][0]['snapshot_id']}.snap")
        data = bytearray(artifact.read_bytes())
        data[len(data) // 2] ^= 0xFF
        artifact.write_bytes(bytes(data))
        answer = client.post(f"/v1/models/{target['id']}/promote")
        assert answer.status_code == 409
        assert "integrity" in answer.json()["error"]
        after = client.get("/v1/users/user-00003/recommendations")
        assert after.status_code == 200 and after.json()["items"]
        assert after.json()["model"] == serving
        assert models(client)[serving]["status"] == "champion"


def test_pinned_champion_is_not_replaced_by_a_training(shop_server: Server) -> None:
    with shop_server.client() as client:
        champion = client.get("/v1/monitoring").json()["model"]
        assert post(client, f"/v1/models/{champion}/pin", {}).json()["pinned"] is True
        version = post(client, "/v1/models/train", {}).json()["version"]
        done = wait_for(lambda: finished(client, version), timeout=TRAINING_TIMEOUT_S,
                        message="a candidate")
        assert done["status"] != "champion"
        assert client.get("/v1/monitoring").json()["model"] == champion
        assert post(client, f"/v1/models/{champion}/unpin", {}).json()["pinned"] is False


def test_the_cli_lists_and_rolls_back_through_the_api(shop_server: Server) -> None:
    env = {**os.environ, "FRESHREC_URL": shop_server.url,
           "FRESHREC_ADMIN_KEY": shop_server.admin_key}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "models", *args], capture_output=True, text=True,
                              env=env, timeout=60)

    listed = cli("list", "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    assert "m0001" in listed.stdout and "champion" in listed.stdout
    with shop_server.client() as client:
        before = client.get("/v1/monitoring").json()["model"]
        versions = models(client)
    target = next(v["id"] for v in versions.values()
                  if v["id"] != before and v["artifacts"] and v["status"] != "refused"
                  and _loads(shop_server, v))
    promoted = cli("promote", target)
    assert promoted.returncode == 0, promoted.stderr
    with shop_server.client() as client:
        assert client.get("/v1/monitoring").json()["model"] == target
    back = cli("rollback")
    assert back.returncode == 0 and before in back.stdout
    missing = cli("promote", "m9999")
    assert missing.returncode == 1 and "unknown model version" in missing.stderr


def _loads(server: Server, version: dict[str, Any]) -> bool:
    """False for the artifact an earlier test corrupted on purpose."""
    from freshrec.errors import CorruptSnapshot
    from freshrec.registry.models import ArtifactRef, load_artifact
    from freshrec.registry.snapshots import LocalSnapshotStore

    try:
        load_artifact(LocalSnapshotStore(server.data_dir / "models"),
                      ArtifactRef(**version["artifacts"][0]))
    except CorruptSnapshot:
        return False
    return True
