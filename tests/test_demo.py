"""``freshrec demo`` end to end: the README's run command, in short."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_streams_into_the_service_and_shows_recommendations() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "freshrec.cli", "demo", "--seconds", "8", "--port", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "curl -s" in out and "Authorization: Bearer $FRESHREC_KEY" in out
    assert "events (" in out and "model " in out
    assert "source" in out and "sku-" in out  # a table of recommended items
    assert "stopping the service" in out and "done" in out
