"""Faults from outside the process: a full disk, a second server, damaged files at start.

Each one goes through ``freshrec serve`` as users run it. The full disk is real: the
data directory is a small tmpfs, filled up by a file beside the server's own.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._server import Server, ingest, recommended, wait_for

ITEMS = [{"id": f"fl-{n}", "title": f"Item {n}", "categories": ["fl-cat"]} for n in range(20)]


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{n}", "user": f"fl-user-{n % 30}", "item": f"fl-{n % 20}",
             "type": "view"} for n in range(count)]


def _cannot(reason: str) -> None:
    """Skip where the machine does not allow it, but never under CI (as tests/conftest.py)."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: fault tests must not be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs, unmounted after the test; skips where mounting is not allowed."""
    mount_point = tmp_path / "disk" / "data"
    mount_point.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        _cannot(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until the filesystem has no byte left."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file:  # unbuffered: no failing flush at close
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    file.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def test_a_full_disk_refuses_ingest_with_503_and_serving_goes_on(
        small_disk: Path) -> None:
    server = Server(small_disk.parent, {"FRESHREC_MIN_TRAIN_EVENTS": "1000000"})
    assert server.data_dir == small_disk
    server.start()
    try:
        with server.client() as admin:
            assert admin.post("/v1/items", json={"items": ITEMS}).status_code == 200
            acked = events("fl-before", 300)
            ingest(admin, acked)
            filler = fill(small_disk)

            # The WAL may still have room from earlier commits: what fits is stored and
            # acknowledged, until a commit needs a byte the disk does not have.
            refused: list[dict[str, Any]] = []
            for round_ in range(400):
                batch = events(f"fl-full-{round_}", 500)
                answer = admin.post("/v1/events", json={"events": batch})
                if answer.status_code == 200:
                    assert answer.json()["accepted"] == len(batch)
                    acked += batch
                    continue
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"].isdigit()
                assert answer.json() == {"error": answer.json()["error"], "status": 503}
                refused = batch
                break
            assert refused, "the disk never filled up"

            # The catalog and the quarantine fail the same way; serving goes on.
            for route, body in (("/v1/items", {"items": [{"id": "fl-new", "title": "New"}]}),
                                ("/v1/events", {"events": [{"user": "fl-x"}]})):
                answer = admin.post(route, json=body)
                assert answer.status_code == 503, (route, answer.text)
                assert "Retry-After" in answer.headers
            assert len(recommended(admin, "fl-user-1", k=5)) == 5
            assert admin.get("/v1/trending").status_code == 200
            assert admin.get("/readyz").status_code == 200

            filler.unlink()  # space is back: ingest works again, with no restart
            again = admin.post("/v1/events", json={"events": refused})
            assert again.status_code == 200, again.text
            # Nothing of the refused batch had been stored: all of it is new now.
            assert (again.json()["accepted"], again.json()["duplicates"]) == (len(refused), 0)
            assert admin.post("/v1/items", json={"items": [{"id": "fl-new", "title": "New"}]}
                              ).status_code == 200
        assert {event["id"] for event in acked + refused} <= server.event_ids()
    finally:
        server.kill()
    assert "Traceback" not in server.logs()


def test_a_second_server_on_the_same_data_directory_refuses_to_start(
        fresh_server: Callable[..., Server]) -> None:
    first = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "200"})
    second = Server(first.root.parent / "second")
    second.root.mkdir()
    second.data_dir = first.data_dir
    assert first.process is not None

    refused = second.start_refused()
    assert refused.returncode == 1, refused.stderr
    assert str(first.data_dir) in refused.stderr
    assert f"pid {first.process.pid}" in refused.stderr
    assert "Traceback" not in refused.stderr

    # The first one is unharmed, and its training processes (which open the stores by
    # path) are not held up by its lock.
    with first.client() as admin:
        admin.post("/v1/items", json={"items": ITEMS})
        ingest(admin, events("fl-lock", 300))
        wait_for(lambda: admin.get("/readyz").json()["model"] != "untrained", timeout=300,
                 message="a model trained in a child process")

    # A holder killed outright leaves no stale lock behind.
    first.kill()
    second.start()
    with second.client() as admin:
        assert admin.get("/readyz").json()["events"] == 300
    second.stop()


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    else:  # overwritten: the header no longer says SQLite
        with open(path, "r+b") as file:
            file.write(b"this is not a database, " * 8)


def test_a_damaged_sqlite_file_stops_the_start_and_names_the_file(
        fresh_server: Callable[..., Server]) -> None:
    server = fresh_server({"FRESHREC_MIN_TRAIN_EVENTS": "1000000"})
    with server.client() as admin:
        admin.post("/v1/items", json={"items": ITEMS})
        ingest(admin, events("fl-damage", 2000))
        server.create_key("read")
    assert server.stop() == 0
    files = sorted(server.data_dir.glob("*.sqlite"))
    assert {path.name for path in files} >= {"events.sqlite", "catalog.sqlite", "keys.sqlite",
                                             "registry.sqlite"}
    assert not list(server.data_dir.glob("*.sqlite-wal"))  # a clean stop checkpoints
    saved = server.root / "saved"
    saved.mkdir()
    for path in files:
        shutil.copy2(path, saved / path.name)

    for path in files:
        for how in ("truncated", "overwritten"):
            _damage(path, how)
            refused = server.start_refused()
            assert refused.returncode == 1, (path.name, how, refused.stderr[-2000:])
            assert str(path) in refused.stderr, (how, refused.stderr)
            assert "Traceback" not in refused.stderr, refused.stderr
            shutil.copy2(saved / path.name, path)

    server.start()  # the originals back: everything is there
    with server.client() as admin:
        assert admin.get("/readyz").json()["events"] == 2000
