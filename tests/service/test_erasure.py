"""``DELETE /v1/users/{id}``: afterwards nothing about the user is served or stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ._server import Server, ingest, recommended, wait_for

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


@pytest.fixture
def populated(fresh_server: Callable[..., Server]) -> Server:
    """A trained server whose latest snapshot holds the victim."""
    server = fresh_server({"FRESHREC_SNAPSHOT_INTERVAL_S": "0.2",
                           "FRESHREC_MIN_TRAIN_EVENTS": "30"})
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
        position = admin.get("/readyz").json()["events"]
    wait_for(lambda: latest_snapshot_position(server) == position
             and snapshots_mention(server, VICTIM), message="a snapshot holding the victim")
    return server


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
        # ...and they are served as a stranger would be.
        assert recommended(admin, VICTIM, k=8) == recommended(admin, "erase-never-seen", k=8)

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
    with server.client() as admin:
        assert recommended(admin, VICTIM, k=8) == recommended(admin, "erase-never-seen", k=8)
        assert recommended(admin, OTHERS[0], k=3) == others
    server.stop()
    assert files_mentioning(server, VICTIM) == []


def test_erasing_an_unknown_user_is_not_an_error(admin: httpx.Client) -> None:
    answer = admin.delete("/v1/users/erase-nobody")
    assert answer.status_code == 200
    assert answer.json() == {"user": "erase-nobody", "events_erased": 0, "found": False}
