"""Online Retail II replayed through the service: the season shifts, drift is detected,
a retraining starts on its own, and the gate's decision is recorded with its numbers
and the lineage of the data the candidate saw."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from freshrec.catalog.sqlite import SQLiteCatalogStore
from freshrec.data.online_retail import load_online_retail
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.registry.datasets import dataset_version

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
}
BATCH = 2000


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_season_shift_triggers_a_gated_retraining(shared_data: Path, tmp_path: Path) -> None:
    retail = load_online_retail(shared_data / "online-retail-ii")
    events = [msgspec.to_builtins(e) for e in retail.events]
    server = Server(tmp_path, ENV).start()
    try:
        with server.client(timeout=120) as client:
            items = [msgspec.to_builtins(item) for item in retail.items]
            for start in range(0, len(items), 5000):
                assert client.post("/v1/items", json={"items": items[start:start + 5000]}
                                   ).status_code == 200
            for start in range(0, len(events), BATCH):
                answer = client.post("/v1/events", json={"events": events[start:start + BATCH]})
                assert answer.status_code == 200, answer.text
                # Data time runs far faster than real time here; waiting for a running
                # training keeps trainings as frequent (in data time) as in production.
                wait_for(lambda: client.get("/v1/monitoring").json()["training"]["running"]
                         is None, timeout=900, message="a training to finish")
            versions = client.get("/v1/models", params={"limit": 1000}).json()["models"]
    finally:
        server.stop()

    by_drift = [v for v in versions if v["notes"].startswith("trained (drift")]
    assert by_drift, f"no drift-triggered training: {[v['notes'] for v in versions]}"
    for version in by_drift:
        when = datetime.fromtimestamp(events[version["dataset"]["end_position"] - 1]["timestamp"],
                                      UTC)
        print(f"{version['id']} {when:%Y-%m-%d} {version['status']}: {version['notes'][:160]}")
    # The season: in the autumn the Christmas range arrives and new items' share of
    # sales jumps; the monitor sees it and a retraining follows.
    autumn = [v for v in by_drift if "new_items" in v["notes"] and datetime.fromtimestamp(
        events[v["dataset"]["end_position"] - 1]["timestamp"], UTC).month in (9, 10, 11)]
    assert autumn, "the autumn shift in new items was not detected"
    version = autumn[0]
    gate = version["gate"]
    assert gate["candidate"]["hr"] > 0 and gate["champion"]["hr"] > 0
    assert gate["holdout"]["events"] > 0 and gate["reason"]
    assert version["status"] in {"champion", "refused", "retired"}
    assert version["parent"] is not None

    # Lineage: the version names the exact slice of the log it was trained on, and
    # that slice still hashes to the same value.
    dataset = version["dataset"]
    log = SQLiteEventLog(server.data_dir / "events.sqlite")
    catalog = SQLiteCatalogStore(server.data_dir / "catalog.sqlite")
    try:
        again = dataset_version(log, dataset["end_position"], catalog=catalog)
    finally:
        log.close()
        catalog.close()
    assert again.content_hash == dataset["content_hash"]
    assert dataset["end_position"] < gate["holdout"]["first_position"]
