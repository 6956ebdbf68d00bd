"""``DELETE /v1/users/{id}``: afterwards nothing about the user is served or stored."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import pytest

from freshrec.data.synthetic import generate_shop
from freshrec.engine import Engine

from ._server import Server, ingest, recommended, wait_for
from .test_lifecycle import QUIET, TRAINING_TIMEOUT_S, models, post

VICTIM = "erase-victim-7f3a9c"
OTHERS = [f"erase-other-{n}" for n in range(6)]
ITEMS = [f"erase-item-{n}" for n in range(8)]
SOLO = ["erase-solo-1", "erase-solo-2"]  # only the victim ever took these


def snapshot_files(server: Server) -> list[Path]:
    return sorted((server.data_dir / "snapshots").glob("*.snap"))


def snapshots_mention(server: Server, text: str) -> list[str]:
    return [path.name for path in snapshot_files(server) if text.encode() in path.read_bytes()]


def latest_snapshot_position(server: Server) -> int:
    sidecars = sorted((server.data_dir / "snapshots").glob("*.json"))
    return json.loads(sidecars[-1].read_text())["log_position"] if sidecars else -1


def files_mentioning(server: Server, text: str) -> list[str]:
    """Every file in the data directory whose bytes hold ``text``."""
    return sorted(str(path.relative_to(server.data_dir))
                  for path in server.data_dir.rglob("*")
                  if path.is_file() and text.encode() in path.read_bytes())


def together(admin: httpx.Client) -> set[str]:
    """Items co-occurrence puts next to the first solo item."""
    answer = admin.get(f"/v1/items/{SOLO[0]}/similar", params={"k": 20})
    assert answer.status_code == 200, answer.text
    return {entry["id"] for entry in answer.json()["items"]
            if entry["source"] == "cooccurrence" and entry["score"] > 0}


def trending_solo(admin: httpx.Client) -> float:
    """The best trending score among the solo items (only the victim took them)."""
    answer = admin.get("/v1/trending", params={"category": "erase-solo"})
    assert answer.status_code == 200, answer.text
    return max(entry["score"] for entry in answer.json()["items"])


def populate(server: Server) -> Server:
    """Catalog, events and a quarantined record of the victim's, until a snapshot holds them."""
    with server.client() as admin:
        admin.post("/v1/items", json={"items": [
            *({"id": item, "categories": ["erase"]} for item in ITEMS),
            *({"id": item, "categories": ["erase-solo"]} for item in SOLO)]})
        admin.post("/v1/users", json={"users": [{"id": VICTIM, "properties": {"tier": "x"}}]})
        events = [{"id": f"{user}-{n}", "user": user, "item": ITEMS[(n + k) % len(ITEMS)],
                   "type": "view"}
                  for k, user in enumerate([VICTIM, *OTHERS]) for n in range(5)]
        events += [{"id": f"{VICTIM}-{item}", "user": VICTIM, "item": item, "type": "purchase"}
                   for item in SOLO]
        assert ingest(admin, events)["accepted"] == len(events)
        # A bad record of theirs sits in the quarantine, too.
        admin.post("/v1/events", json={"events": [{"user": VICTIM, "item": "x",
                                                   "type": "wink"}]})
        position = admin.get("/readyz").json()["position"]
    wait_for(lambda: latest_snapshot_position(server) == position
             and snapshots_mention(server, VICTIM), message="a snapshot holding the victim")
    return server


POPULATED = {"FRESHREC_SNAPSHOT_INTERVAL_S": "0.2", "FRESHREC_MIN_TRAIN_EVENTS": "30"}


@pytest.fixture
def populated(fresh_server: Callable[..., Server]) -> Server:
    """A trained server whose latest snapshot holds the victim."""
    return populate(fresh_server(POPULATED))


def test_erasure_removes_the_user_everywhere(populated: Server) -> None:
    server = populated
    with server.client() as admin:
        assert recommended(admin, VICTIM, k=8) != recommended(admin, "erase-never-seen", k=8)
        assert together(admin)  # every pair with a solo item is one of theirs
        assert trending_solo(admin) > 1
        answer = admin.delete(f"/v1/users/{VICTIM}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user": VICTIM, "events_erased": 7, "found": True}

        # At once: the log, the catalog and the quarantine hold nothing of theirs...
        assert server.query("SELECT count(*) FROM events WHERE user = ?", VICTIM) == [(0,)]
        assert server.query("SELECT count(*) FROM users WHERE id = ?", VICTIM,
                            database="catalog") == [(0,)]
        quarantine = admin.get("/v1/quarantine", params={"limit": 1000}).json()["records"]
        assert not [r for r in quarantine if VICTIM in r["raw"]]

        # The background rebuild replaces every snapshot that knew them.
        wait_for(lambda: snapshot_files(server) and not snapshots_mention(server, VICTIM),
                 message="the snapshots to forget the victim")
        assert files_mentioning(server, VICTIM) == []
        assert together(admin) == set()  # the counts they added are gone too
        assert trending_solo(admin) < 1e-6
        others = recommended(admin, OTHERS[0], k=3)

    # Nothing is left in any file, and nothing comes back on restart.
    server.restart()
    assert files_mentioning(server, VICTIM) == []
    # Asked for after the erasure, they are served as a stranger would be. (Such a request
    # is new activity: what it shows is logged like any request's, so the files are
    # searched before it.)
    with server.client() as admin:
        assert recommended(admin, VICTIM, k=8) == recommended(admin, "erase-never-seen", k=8)
        assert recommended(admin, OTHERS[0], k=3) == others


def test_a_crash_before_the_rebuild_does_not_bring_the_user_back(
        fresh_server: Callable[..., Server]) -> None:
    # Background rounds far apart: the kill lands before the worker starts the rebuild.
    server = populate(fresh_server({**POPULATED, "FRESHREC_SETTLE_INTERVAL_S": "3"}))
    with server.client() as admin:
        assert admin.delete(f"/v1/users/{VICTIM}").json()["found"] is True
    server.kill()
    # The snapshots that knew them went with the erasure; the log no longer has them.
    assert snapshots_mention(server, VICTIM) == []
    server.start()
    with server.client() as admin:
        assert together(admin) == set()  # the log replayed, not an old snapshot
        # A model that never saw them: the rebuild the erasure asked for, or (if the
        # erasure cancelled the first training) the first model.
        wait_for(lambda: any(v["status"] == "champion" and v["revoked"] is None
                             for v in admin.get("/v1/models").json()["models"]),
                 message="a champion trained after the erasure")
        assert together(admin) == set()
        assert files_mentioning(server, VICTIM) == []
        # Asked for now (new activity, logged like any request), they are a stranger.
        assert recommended(admin, VICTIM, k=8) == recommended(admin, "erase-never-seen", k=8)


def test_erasing_an_unknown_user_is_not_an_error(admin: httpx.Client) -> None:
    answer = admin.delete("/v1/users/erase-nobody")
    assert answer.status_code == 200
    assert answer.json() == {"user": "erase-nobody", "events_erased": 0, "found": False}


# -- erasure while a training runs ---------------------------------------------------------

TRAINED_VICTIM = "erase-me-7f3a9c"
VICTIM_SOLO = "erase-me-solo-item"  # only the victim ever took it


def training_process(server: Server) -> int | None:
    """The pid of the server's training child process, if one is running."""
    assert server.process is not None
    # Each thread has its own list: the pool is started by the background worker.
    children = [pid for task in Path(f"/proc/{server.process.pid}/task").iterdir()
                for pid in (task / "children").read_text().split()]
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            return int(pid)
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decoded_payloads_mentioning(server: Server, user: str) -> list[str]:
    """Snapshots and model artifacts (pickled engine states) whose state knows ``user``.

    The payloads are plain pickles, not compressed, so the byte search already sees
    every string in them; this reads them back as well, so a change of encoding
    (compression, say) could not make the byte search pass without looking.
    """
    found = []
    for directory in ("snapshots", "models"):
        for path in sorted((server.data_dir / directory).glob("*.snap")):
            state = Engine.restore(path.read_bytes()).state
            if state.users.get(user) is not None or user in state.users.ids:
                found.append(f"{directory}/{path.name}")
    return found


def served_texts(client: httpx.Client) -> dict[str, str]:
    """Everything an admin can read back, by route."""
    routes = ["/v1/models?limit=1000", "/v1/monitoring", "/v1/quarantine?limit=1000",
              "/v1/trending?k=50", f"/v1/items/{VICTIM_SOLO}/similar?k=50",
              f"/v1/users/{TRAINED_VICTIM}/recommendations?k=50", "/metrics"]
    texts = {}
    for route in routes:
        answer = client.get(route)
        assert answer.status_code == 200, (route, answer.text)
        texts[route] = answer.text
    return texts


def test_erasure_during_a_training_cannot_be_undone(
        fresh_server: Callable[..., Server]) -> None:
    server = fresh_server({**QUIET, "FRESHREC_SNAPSHOT_INTERVAL_S": "0.5"})
    shop = generate_shop(n_users=300, n_items=200, n_events=8000, seed=3)
    events = [msgspec.to_builtins(event) for event in shop.events]
    # The victim acts like the shop's users, early in the log (inside every training).
    victim = [{**event, "id": f"{TRAINED_VICTIM}-{n}", "user": TRAINED_VICTIM}
              for n, event in enumerate(events[:60:2])]
    victim.append({**victim[-1], "id": f"{TRAINED_VICTIM}-solo", "item": VICTIM_SOLO,
                   "type": "purchase"})
    with server.client() as client:
        items = [msgspec.to_builtins(item) for item in shop.items]
        post(client, "/v1/items", {"items": [*items, {"id": VICTIM_SOLO}]})
        post(client, "/v1/users", {"users": [{"id": TRAINED_VICTIM,
                                               "properties": {"tier": "gold"}}]})
        # A malformed record naming them: the quarantine holds it.
        client.post("/v1/events", json={"events": [{"user": TRAINED_VICTIM, "item": "x",
                                                    "type": "wink"}]})
        assert client.get("/v1/quarantine").json()["total"] == 1
        assert ingest(client, victim + events[:4000])["accepted"] == len(victim) + 4000
        wait_for(lambda: models(client).get("m0001", {}).get("status") == "champion",
                 timeout=TRAINING_TIMEOUT_S, message="the first champion")
        for start in range(4000, len(events), 1000):
            post(client, "/v1/events", {"events": events[start:start + 1000]})
        wait_for(lambda: decoded_payloads_mentioning(server, TRAINED_VICTIM),
                 message="a snapshot holding the victim")
        # Not vacuous: before the erasure the byte search finds them in every kind of file.
        held = files_mentioning(server, TRAINED_VICTIM)
        assert "events.sqlite" in " ".join(held) and "catalog.sqlite" in " ".join(held)
        assert any(name.startswith("snapshots/") for name in held), held
        assert any(name.startswith("models/") for name in held), held

        # A training starts on the log that still holds them, in the process that
        # trained the first model (the pool keeps it), and gets well into its work:
        # past reading the log (a fraction of a second), into fitting (seconds).
        pid = wait_for(lambda: training_process(server), message="the training process")
        before = cpu_seconds(pid)
        training = post(client, "/v1/models/train", {}).json()["version"]
        wait_for(lambda: cpu_seconds(pid) > before + 0.5, timeout=TRAINING_TIMEOUT_S,
                 message="the training to be fitting")
        assert client.get("/v1/monitoring").json()["training"]["running"]["version"] \
            == training
        answer = client.delete(f"/v1/users/{TRAINED_VICTIM}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["found"] is True

        # Everything finishes: the training concluded, the rebuilt model serving.
        wait_for(lambda: client.get("/v1/monitoring").json()["training"]["running"] is None,
                 timeout=TRAINING_TIMEOUT_S, message="the training to conclude")
        rebuilt = wait_for(lambda: next((v["id"] for v in models(client).values()
                                         if "rebuilt" in v["notes"]), None),
                           timeout=TRAINING_TIMEOUT_S, message="the rebuild")
        wait_for(lambda: latest_snapshot_position(server) >= 0, message="a new snapshot")
        monitoring = client.get("/v1/monitoring").json()
        # Not the candidate that read the victim's events, promoted after the rebuild.
        assert monitoring["model"] == rebuilt, models(client)
        last = monitoring["training"]["last"]
        assert (last["version"], last["decision"]) == (training, "cancelled"), last

    server.restart()
    assert files_mentioning(server, TRAINED_VICTIM) == []
    assert decoded_payloads_mentioning(server, TRAINED_VICTIM) == []
    with server.client() as client:
        versions = models(client)
        assert versions[training]["status"] != "champion"
        for old in ("m0001", training):
            assert "erased" in versions[old]["revoked"], versions[old]
            refused = client.post(f"/v1/models/{old}/promote")
            assert refused.status_code == 409, refused.text
            assert "erased" in refused.json()["error"]
        back = client.post("/v1/models/rollback")
        assert back.status_code == 409, back.text
        assert "erased" in back.json()["error"]
        assert client.get("/v1/monitoring").json()["model"] == rebuilt
        assert recommended(client, TRAINED_VICTIM, k=20) \
            == recommended(client, "erase-me-never-seen", k=20)
        mentions = [route for route, text in served_texts(client).items()
                    if route != f"/v1/users/{TRAINED_VICTIM}/recommendations?k=50"
                    and TRAINED_VICTIM in text]
        assert mentions == []
    server.stop()
    # The requests just made for them are new activity, logged like any request's: the
    # files were searched before them (after the restart, above).
    assert TRAINED_VICTIM not in server.logs()  # it names no user (no access log)
