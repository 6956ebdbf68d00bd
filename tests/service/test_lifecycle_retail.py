"""Online Retail II replayed through the service: the season shifts, drift is detected,
a retraining starts on its own, and the gate's decision is recorded with its numbers
and the lineage of the data the candidate saw.

The replay starts in July 2010: two summer months give the first model, and the
autumn (the Christmas range arriving) is the shift. Starting earlier would only
make every training bigger and the test slower, not the check stronger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from freshrec.data.online_retail import load_online_retail

from ._server import Server, wait_for

ENV = {
    "FRESHREC_MIN_TRAIN_EVENTS": "40000",
    "FRESHREC_RETRAIN_EVERY_EVENTS": "1000000000",
    "FRESHREC_RETRAIN_INTERVAL_S": "1000000000",
    "FRESHREC_SNAPSHOT_INTERVAL_S": "1000000000",
    "FRESHREC_DRIFT_WINDOW": "5000",
    "FRESHREC_DRIFT_CHECK_S": "0.2",
    "FRESHREC_HOLDOUT_FRACTION": "0.05",
    "FRESHREC_TRAINING_NICENESS": "0",
    # A candidate must be at least as good as the champion. With the default 2% a summer
    # candidate within a hair of the champion is promoted or refused by chance (which
    # moment of the log its training started at), and a promotion re-bases the drift
    # monitor, so whether the autumn still stands out was a coin flip.
    "FRESHREC_GATE_TOLERANCE": "0",
}
BATCH = 2000
START = datetime(2010, 7, 1, tzinfo=UTC).timestamp()
AUTUMN = (9, 10, 11)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_season_shift_triggers_a_gated_retraining(shared_data: Path, tmp_path: Path) -> None:
    retail = load_online_retail(shared_data / "online-retail-ii")
    events = [msgspec.to_builtins(e) for e in retail.events if e.timestamp >= START]
    new_items_flagged: list[datetime] = []
    server = Server(tmp_path, ENV).start()
    try:
        with server.client(timeout=120) as client:
            items = [msgspec.to_builtins(item) for item in retail.items]
            for start in range(0, len(items), 5000):
                assert client.post("/v1/items", json={"items": items[start:start + 5000]}
                                   ).status_code == 200
            for start in range(0, len(events), BATCH):
                batch = events[start:start + BATCH]
                answer = client.post("/v1/events", json={"events": batch})
                assert answer.status_code == 200, answer.text
                # Data time runs far faster than real time here; waiting for a running
                # training keeps trainings as frequent (in data time) as in production.
                monitoring = wait_for(
                    lambda: _idle(client.get("/v1/monitoring").json()),
                    timeout=1200, message="a training to finish")
                if monitoring["drift"]["signals"]["new_items"]["drifted"]:
                    new_items_flagged.append(datetime.fromtimestamp(batch[-1]["timestamp"], UTC))
            versions = client.get("/v1/models", params={"limit": 1000}).json()["models"]
    finally:
        server.stop()

    # The season: in the autumn the Christmas range arrives and new items' share of
    # sales jumps; the monitor sees it.
    assert any(when.month in AUTUMN for when in new_items_flagged), (
        f"the monitor never flagged new items in the autumn: {new_items_flagged[:20]}")
    by_drift = [v for v in versions if v["notes"].startswith("trained (drift")]
    assert by_drift, f"no drift-triggered training: {[v['notes'] for v in versions]}"
    for version in by_drift:
        print(f"{version['id']} {_trained_until(events, version, len(items)):%Y-%m-%d} "
              f"{version['status']}: {version['notes'][:160]}")
    # A retraining followed on its own, and the gate's decision is on record.
    autumn = [v for v in by_drift if _trained_until(events, v, len(items)).month in AUTUMN]
    assert autumn, "no drift-triggered retraining in the autumn"
    version = autumn[0]
    gate = version["gate"]
    assert gate["candidate"]["hr"] > 0 and gate["champion"]["hr"] > 0
    assert gate["holdout"]["events"] > 0 and gate["reason"]
    assert version["status"] in {"champion", "refused", "retired"}
    assert version["parent"] is not None

    # Lineage: the version names the exact slice of the log it was trained on, and
    # that slice still hashes to the same value.
    dataset = version["dataset"]
    again = server.dataset_version(dataset["end_position"])
    assert again.content_hash == dataset["content_hash"]
    assert dataset["end_position"] < gate["holdout"]["first_position"]


def _idle(monitoring: dict[str, Any]) -> dict[str, Any] | None:
    """No training running, and the learner has applied every acknowledged event (ingest
    answers once they are stored; data time here runs far ahead of the learner)."""
    idle = monitoring["training"]["running"] is None and monitoring["learner"]["lag"] == 0
    return monitoring if idle else None


def _trained_until(events: list[dict[str, Any]], version: dict[str, Any],
                   catalog_size: int) -> datetime:
    # The catalog was logged first: the events' positions follow its records.
    last = version["dataset"]["end_position"] - catalog_size - 1
    return datetime.fromtimestamp(events[last]["timestamp"], UTC)
