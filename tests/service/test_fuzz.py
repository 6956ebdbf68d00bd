"""Schemathesis fuzzes the real server through its own /openapi.json: zero failures.

``freshrec serve`` is started as users start it, with an admin key, a small catalog,
some events and a trained model. The schemathesis CLI then runs its examples,
coverage and fuzzing phases with a fixed seed and a time budget against every
operation, checking that nothing answers a 5xx and that every status, content type
and body is the one the schema documents. Fuzzing the admin routes trains, promotes
and erases on that server: realistic, and none of it may fail either.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._server import Server, ingest, wait_for

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
PHASES = ("examples", "coverage", "fuzzing")
SEED = 20240501
BUDGET_S = 120  # fuzzing repeats until the budget is spent
MIN_TEST_CASES = 500

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def fuzzed(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Server]:
    # Trainings start after 30 events, so fuzzed ingest can set them off too. With two
    # workers, half the admin requests reach the one that does not lead and are
    # forwarded: their answers must keep the same contract.
    running = Server(tmp_path_factory.mktemp("fuzz"), {"FRESHREC_MIN_TRAIN_EVENTS": "30"},
                     workers=request.param)
    running.start()
    if request.param > 1:
        running.wait_workers()
    yield running
    running.stop()


def load_catalog_and_train(server: Server) -> str:
    """Twenty items, sixty events and a trained model: something real to fuzz."""
    with server.client() as admin:
        items = [{"id": f"sku-{n}", "title": f"Item {n}", "categories": [f"cat-{n % 3}"]}
                 for n in range(20)]
        assert admin.post("/v1/items", json={"items": items}).status_code == 200
        assert ingest(admin, [{"user": f"u-{user}", "item": f"sku-{(user * 3 + n) % 20}",
                               "type": "view"} for user in range(10) for n in range(6)])[
            "accepted"] == 60
        # 409: the automatic first training (after 30 events) started before this one.
        answer = admin.post("/v1/models/train", json={})
        assert answer.status_code in (202, 409), answer.text

        def trained() -> bool:
            training = admin.get("/v1/monitoring").json()["training"]
            return training["running"] is None and training["last"] is not None

        wait_for(trained, message="the first training")
        return str(admin.get("/v1/models").json()["models"][0]["id"])


def run_schemathesis(server: Server, version: str) -> tuple[subprocess.CompletedProcess[str],
                                                                 dict[str, Any]]:
    workdir = server.root / "schemathesis"
    workdir.mkdir()
    # Model routes get a version that exists, or every call would stop at a 404.
    config = workdir / "schemathesis.toml"
    config.write_text(f'[parameters]\nversion = "{version}"\n')
    report = workdir / "report.json"
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {server.admin_key}",
        "--checks", ",".join(CHECKS), "--phases", ",".join(PHASES),
        "--seed", str(SEED), "--max-time", str(BUDGET_S), "--max-examples", "50",
        # One worker: two threads building coverage cases have tripped CPython 3.11's AST
        # constructor ("recursion depth mismatch"), an error of the tool, not of the API.
        "--workers", "1", "--request-timeout", "30", "--no-color",
        "--generation-database", "none",
        "--report", "json", "--report-json-path", str(report),
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                          timeout=BUDGET_S + 180)
    assert report.exists(), done.stdout + done.stderr
    return done, json.loads(report.read_text())


def test_schemathesis_finds_no_failure(fuzzed: Server) -> None:
    assert SCHEMATHESIS.exists(), "schemathesis comes with the 'dev' extra"
    version = load_catalog_and_train(fuzzed)
    done, report = run_schemathesis(fuzzed, version)
    output = done.stdout[-8_000:] + done.stderr[-2_000:]
    assert report["failures"] == [] and report["errors"] == [], output
    assert done.returncode == 0, output
    # Not vacuous: every operation of the schema was called, in every phase asked for.
    operations = report["operations"]
    assert operations["tested"] == operations["total"] >= 20, operations
    assert operations["errored"] == operations["skipped"] == 0, operations
    for phase in PHASES:
        assert report["phases"][phase]["status"] == "success", report["phases"]
    assert report["test_cases"]["generated"] >= MIN_TEST_CASES, report["test_cases"]
    # What answered fine may still have broken the serving process's background work (a
    # rating of 1e300 once made every rebuild fail on NaN; an erasure once deleted the
    # champion snapshot a running training was about to load).
    broken = [line for line in fuzzed.logs().splitlines() if " ERROR " in line]
    assert broken == [], fuzzed.log_tail(120)
