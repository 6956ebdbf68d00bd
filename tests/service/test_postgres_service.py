"""``freshrec serve --database-url``: the event log and the catalog in PostgreSQL.

Real servers all the way: ``freshrec serve`` in a subprocess over a private
PostgreSQL server (tests/_postgres.py; skipped without its binaries, failed under
CI). What was ingested over HTTP is read back from the database with the store's
own class, a restart over the same database and data directory answers the same,
two workers reflect each other's acks, and a database that goes away and comes
back costs ingest a 503 meanwhile, never the service. The refusals to start need
no server at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from _postgres import PostgresServer, free_port
from freshrec.data.synthetic import generate_shop
from freshrec.records import Event

from ._server import CLI, Server, ingest, recommended, wait_for
from .test_lifecycle import BAD, QUIET, TRAINING_TIMEOUT_S, finished, models, post
from .test_recovery import ITEMS, events, load_history, observe

# Trust authentication ignores it; it is there to be looked for in the logs.
PASSWORD = "not-a-real-secret-4f9c"
NO_TRAINING = {"FRESHREC_MIN_TRAIN_EVENTS": "1000000"}


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def database_env(url: str, **more: str) -> dict[str, str]:
    return {"FRESHREC_DATABASE_URL": with_password(url), **more}


def stored_events(url: str) -> list[Event]:
    from freshrec.log.postgres import PostgresEventLog  # psycopg: checked by the fixtures

    log = PostgresEventLog(url)
    try:
        return [event for _, event in log.iterate(after=0)]
    finally:
        log.close()


def stored_item_ids(url: str) -> set[str]:
    from freshrec.catalog.postgres import PostgresCatalogStore

    catalog = PostgresCatalogStore(url)
    try:
        return {item.id for item in catalog.iter_items()}
    finally:
        catalog.close()


def test_ingested_events_and_items_are_in_postgres_and_a_restart_answers_the_same(
        fresh_server: Callable[..., Server], postgres_url: str) -> None:
    # A snapshot every 40 events: the restart restores the snapshot, which is in the
    # database beside the log it indexes, then replays the log's tail after it.
    server = fresh_server(database_env(postgres_url, FRESHREC_SNAPSHOT_EVERY_EVENTS="40",
                                       **NO_TRAINING))
    with server.client() as admin:
        load_history(admin, rounds=2)
        wait_for(lambda: latest_snapshot(postgres_url), message="a snapshot")
        ingest(admin, events(2))  # after the snapshot: the tail a restart replays
        before = observe(admin)
    assert before["events"] == 3 * 32
    assert before["users"]["rc-user-0"] == {f"rc-{n}" for n in range(6, 12)}  # not seen

    logged = stored_events(postgres_url)
    assert {e.id for e in logged} == {e["id"] for r in range(3) for e in events(r)}
    assert stored_item_ids(postgres_url) == {item["id"] for item in ITEMS}
    # Nothing of the log or the catalog went to the data directory.
    assert not list(server.data_dir.glob("events.sqlite*"))
    assert not list(server.data_dir.glob("catalog.sqlite*"))
    assert not (server.data_dir / "snapshots").exists()

    assert server.stop() in (0, -signal.SIGTERM)
    server.start()
    with server.client() as admin:
        assert observe(admin) == before
        # Ids from before the restart are still known as duplicates.
        assert ingest(admin, events(0)) == {"accepted": 0, "duplicates": 32, "rejected": []}
    assert len(stored_events(postgres_url)) == len(logged)
    logs = server.logs()
    assert "event log, catalog, keys, models registry, experiments, snapshots and model " \
        "artifacts in PostgreSQL at 127.0.0.1:" in logs
    assert PASSWORD not in logs


def test_two_workers_reflect_each_others_acks_and_train_from_postgres(
        tmp_path: Path, postgres_url: str) -> None:
    server = Server(tmp_path, database_env(postgres_url, FRESHREC_MIN_TRAIN_EVENTS="300",
                                           FRESHREC_TRAINING_NICENESS="0"), workers=2)
    server.start()
    clients = [server.worker(i) for i in range(2)]
    try:
        server.wait_workers()
        shop = generate_shop(n_users=60, n_items=50, n_events=400, seed=11)
        post(clients[0], "/v1/items", {"items": [msgspec.to_builtins(i) for i in shop.items]})
        post(clients[1], "/v1/events", {"events": [msgspec.to_builtins(e) for e in shop.events]})
        # The training process reads the log and the catalog from the database too.
        wait_for(lambda: any(v["status"] == "champion" for v in models(clients[0]).values()),
                 timeout=TRAINING_TIMEOUT_S, message="the first champion")

        events_seen = clients[0].get("/readyz").json()["events"]
        for n in range(10):
            event = {"id": f"pg-reflect-{n}", "user": "pg-reflect-user",
                     "item": shop.items[n].id, "type": "view", "timestamp": 1.9e9 + n}
            assert ingest(clients[n % 2], [event])["accepted"] == 1
            events_seen += 1
            reading = clients[(n + 1) % 2]  # the other worker, at its next answer
            answer = reading.get("/readyz")
            assert answer.headers.get("X-Freshrec-Behind") is None
            assert answer.json()["events"] == events_seen, n
            assert event["item"] not in recommended(reading, "pg-reflect-user", k=50)
        assert {f"pg-reflect-{n}" for n in range(10)} <= {e.id for e in
                                                          stored_events(postgres_url)}
    finally:
        for client in clients:
            client.close()
    assert server.stop() == 0
    assert PASSWORD not in server.logs()


def test_a_database_that_goes_away_costs_ingest_a_503_until_it_is_back(
        fresh_server: Callable[..., Server], own_postgres_server: PostgresServer) -> None:
    url = own_postgres_server.new_url()
    server = fresh_server(database_env(url, **NO_TRAINING))
    with server.client() as admin:
        load_history(admin, rounds=2)
        before = recommended(admin, "rc-user-0", k=12)
        assert before

        own_postgres_server.stop()
        for path, body in (("/v1/events", {"events": events(5)}),
                           ("/v1/items", {"items": ITEMS[:1]})):
            answer = admin.post(path, json=body)
            assert answer.status_code == 503, answer.text
            assert answer.json()["status"] == 503 and "unavailable" in answer.json()["error"]
            assert answer.headers["Retry-After"]
        # Reads are answered from the models in memory meanwhile.
        assert recommended(admin, "rc-user-0", k=12) == before
        assert admin.get("/v1/trending").status_code == 200
        assert admin.get("/readyz").status_code == 200

        own_postgres_server.start()  # the same port: the service was not told anything
        # The learner retries every second; once it reads again, acks are reflected.
        wait_for(lambda: admin.get("/v1/monitoring").json()["learner"]["last_error"] is None,
                 message="the learner reading the log again")
        event = {"id": "pg-back-1", "user": "rc-user-0", "item": before[0], "type": "view"}
        assert ingest(admin, [event])["accepted"] == 1
        assert before[0] not in recommended(admin, "rc-user-0", k=12)
    assert "pg-back-1" in {e.id for e in stored_events(url)}
    logs = server.logs()
    assert PASSWORD not in logs
    assert "the learner could not read the log" in logs and "Traceback" not in logs


def test_a_worker_restarted_while_the_database_is_down_comes_back_with_it(
        tmp_path: Path, own_postgres_server: PostgresServer) -> None:
    server = Server(tmp_path, database_env(own_postgres_server.new_url(), **NO_TRAINING),
                    workers=2)
    server.start()
    try:
        victim = server.wait_workers()[0]
        own_postgres_server.stop()
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: "worker 0 cannot start" in server.logs(),
                 message="the restarted worker refusing to start without its database")
        with server.worker(1) as other:  # the other worker answers meanwhile
            assert other.get("/v1/trending").status_code == 200
        own_postgres_server.start()
        wait_for(lambda: all(w["pid"] not in (0, victim["pid"]) for w in server.wait_workers()
                             if w["worker"] == 0), message="worker 0 serving again")
        with server.worker(0) as restarted:
            event = {"id": "pg-worker-back", "user": "u", "item": "i", "type": "view"}
            assert ingest(restarted, [event])["accepted"] == 1
    finally:
        assert server.stop() == 0
    logs = server.logs()
    assert PASSWORD not in logs and "Traceback" not in logs, server.log_tail()


def refused(server: Server) -> tuple[int, str]:
    done = server.start_refused()
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


def test_a_bad_or_unreachable_database_url_refuses_to_start_in_one_line(
        tmp_path: Path) -> None:
    unreachable = f"postgresql://app:{PASSWORD}@127.0.0.1:{free_port()}/freshrec"
    for url in (unreachable, f"mysql://app:{PASSWORD}@db/freshrec"):
        for workers in (1, 2):
            server = Server(tmp_path, {"FRESHREC_DATABASE_URL": url}, workers=workers)
            code, stderr = refused(server)
            assert code == 1, stderr
            lines = [line for line in stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), stderr
            assert "PostgreSQL" in lines[0] and PASSWORD not in stderr
    # The unreachable server is named, without its credentials.
    server = Server(tmp_path, {"FRESHREC_DATABASE_URL": unreachable})
    assert "127.0.0.1" in refused(server)[1]
    # The keys commands likewise.
    done = keys_cli(unreachable, "list")
    assert done.returncode == 1 and done.stderr.startswith("error: "), done.stderr
    assert "127.0.0.1" in done.stderr and PASSWORD not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_data_dir_is_served_with_one_kind_of_event_log(tmp_path: Path,
                                                         postgres_url: str) -> None:
    embedded = Server(tmp_path / "embedded")
    embedded.root.mkdir()
    embedded.data_dir.mkdir()
    (embedded.data_dir / "events.sqlite").touch()  # as an embedded server leaves it
    embedded.env["FRESHREC_DATABASE_URL"] = postgres_url
    code, stderr = refused(embedded)
    assert code == 1 and "embedded event log" in stderr, stderr

    scaled = Server(tmp_path / "scaled", database_env(postgres_url, **NO_TRAINING))
    scaled.root.mkdir()
    scaled.start()
    assert scaled.stop() in (0, -signal.SIGTERM)
    del scaled.env["FRESHREC_DATABASE_URL"]
    code, stderr = refused(scaled)
    assert code == 1 and "--database-url" in stderr, stderr


def keys_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``freshrec keys <args> --database-url URL``: the option, not the environment, and
    no data directory: the keys are in the database."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("FRESHREC_DATABASE_URL", "FRESHREC_DATA_DIR")}
    return subprocess.run([*CLI, "keys", *args, "--database-url", url], capture_output=True,
                          text=True, env=env, timeout=60, cwd=tempfile.gettempdir())


def key_id_of(url: str, key: str) -> str:
    listed = keys_cli(url, "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if key[:12] in row]
    return line.split()[1]


def test_keys_from_the_cli_are_in_postgres_and_both_workers_see_a_revocation(
        tmp_path: Path, postgres_url: str) -> None:
    from freshrec.security.postgres_keys import PostgresKeyStore

    # Two workers start at once, each ensuring FRESHREC_ADMIN_KEY in the same table.
    server = Server(tmp_path, database_env(postgres_url, **NO_TRAINING), workers=2)
    server.start()
    try:
        server.wait_workers()
        made = keys_cli(postgres_url, "create", "--scope", "read", "--name", "shop")
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        for index in range(2):
            # Each worker checks keys against its copy, read again every second.
            with server.worker(index, key) as reader:
                wait_for(lambda: reader.get("/v1/trending").status_code == 200,
                         message=f"worker {index} accepting the new key")
            with server.worker(index) as admin:  # the admin key, on either worker
                assert admin.get("/v1/monitoring").status_code == 200, index
        stored = PostgresKeyStore(postgres_url)
        try:
            names = sorted(info.name for info in stored.list())
            assert stored.verify(key) is not None
        finally:
            stored.close()
        assert names == ["FRESHREC_ADMIN_KEY", "shop"]  # one admin row for two workers

        revoked = keys_cli(postgres_url, "revoke", key_id_of(postgres_url, key))
        assert revoked.returncode == 0, revoked.stderr
        for index in range(2):
            with server.worker(index, key) as reader:
                wait_for(lambda: reader.get("/v1/trending").status_code == 401,
                         message=f"worker {index} refusing the revoked key")
    finally:
        assert server.stop() == 0
    assert not list(server.data_dir.glob("keys.sqlite*"))
    # Without the URL the CLI refuses this data directory: a key in a file beside the
    # database would never be seen by the server.
    alone = subprocess.run(
        [*CLI, "keys", "create", "--scope", "read", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60,
        env={n: v for n, v in os.environ.items() if n != "FRESHREC_DATABASE_URL"})
    assert alone.returncode == 1 and "--database-url" in alone.stderr, alone.stderr
    assert "Traceback" not in alone.stderr
    assert not list(server.data_dir.glob("keys.sqlite*"))


def test_the_registry_and_experiments_are_in_postgres_and_survive_a_restart(
        fresh_server: Callable[..., Server], postgres_url: str) -> None:
    from freshrec.experiments.postgres import PostgresExperimentStore
    from freshrec.registry.postgres import PostgresModelRegistry

    server = fresh_server(database_env(postgres_url, **{
        **QUIET, "FRESHREC_MIN_TRAIN_EVENTS": "300"}))
    shop = generate_shop(n_users=60, n_items=50, n_events=400, seed=12)
    with server.client() as admin:
        post(admin, "/v1/items", {"items": [msgspec.to_builtins(i) for i in shop.items]})
        post(admin, "/v1/events", {"events": [msgspec.to_builtins(e) for e in shop.events]})
        wait_for(lambda: models(admin).get("m0001", {}).get("status") == "champion",
                 timeout=TRAINING_TIMEOUT_S, message="the first champion")
        # A candidate the gate refuses, then promoted by hand: the champion a restart
        # must serve is the registry's, not the gate's nor the newest snapshot's.
        version = post(admin, "/v1/models/train", {"params": BAD}).json()["version"]
        done = wait_for(lambda: finished(admin, version), timeout=TRAINING_TIMEOUT_S,
                        message="the candidate's gate")
        assert done["status"] == "refused"
        assert post(admin, f"/v1/models/{version}/promote", {}).json()["status"] == "champion"
        started = post(admin, "/v1/experiments", {
            "name": "pg", "metric": "ctr", "alpha": 0.05,
            "arms": [{"name": "control"}, {"name": "weak",
                                            "settings": {"sources": ["popularity"]}}]}).json()

    registry = PostgresModelRegistry(postgres_url)
    try:
        champion = registry.champion()
        statuses = {v.id: v.status for v in registry.list(limit=10)}
    finally:
        registry.close()
    assert champion is not None and champion.id == version
    assert statuses == {"m0001": "retired", version: "champion"}
    experiments = PostgresExperimentStore(postgres_url)
    try:
        running = [e.id for e in experiments.find(status="running")]
    finally:
        experiments.close()
    assert running == [started["id"]]
    # Nothing of the stores is in the data directory: the artifacts are in the database.
    for name in ("keys", "registry", "experiments", "events", "catalog"):
        assert not list(server.data_dir.glob(f"{name}.sqlite*")), name
    assert not (server.data_dir / "models").exists()
    assert {ref.snapshot_id for ref in champion.artifacts} <= artifact_ids(postgres_url)

    assert server.stop() in (0, -signal.SIGTERM)
    server.start()
    with server.client() as admin:
        assert admin.get("/v1/models").json()["serving"] == version
        assert recommended_model(admin, shop.events[0].user) == version
        again = admin.get(f"/v1/experiments/{started['id']}").json()
        assert again["status"] == "running" and again["id"] == started["id"]
    logs = server.logs()
    assert "experiments, snapshots and model artifacts in PostgreSQL at 127.0.0.1:" in logs
    assert PASSWORD not in logs


def latest_snapshot(url: str) -> object | None:
    from freshrec.registry.postgres_snapshots import STATE_SNAPSHOTS, PostgresSnapshotStore

    store = PostgresSnapshotStore(url, namespace=STATE_SNAPSHOTS)
    try:
        return store.latest()
    finally:
        store.close()


def artifact_ids(url: str) -> set[str]:
    from freshrec.registry.postgres_snapshots import MODEL_ARTIFACTS, PostgresSnapshotStore

    store = PostgresSnapshotStore(url, namespace=MODEL_ARTIFACTS)
    try:
        return {info.id for info in store.list()}
    finally:
        store.close()


def recommended_model(client: httpx.Client, user: str) -> str:
    answer = client.get(f"/v1/users/{user}/recommendations")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["model"])


def test_a_data_dir_with_embedded_keys_or_models_is_refused_with_a_database(
        tmp_path: Path, postgres_url: str) -> None:
    for name in ("keys.sqlite", "registry.sqlite", "experiments.sqlite"):
        server = Server(tmp_path / name, database_env(postgres_url, **NO_TRAINING))
        server.root.mkdir()
        server.data_dir.mkdir()
        (server.data_dir / name).touch()  # as a server before this change left them
        code, stderr = refused(server)
        assert code == 1 and name in stderr and "--data-dir" in stderr, stderr
