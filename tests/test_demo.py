"""``freshrec demo`` end to end: the README's run command, in short."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "console"


@pytest.mark.slow
def test_demo_streams_into_the_service_and_shows_recommendations() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "freshrec.cli", "demo", "--seconds", "8", "--port", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "curl -s" in out and "Authorization: Bearer $FRESHREC_KEY" in out
    assert re.search(r"http://127\.0\.0\.1:\d+/console/#key=frk_\S+&page=live", out)
    assert "events (" in out and "model " in out
    assert "source" in out and "sku-" in out  # a table of recommended items
    assert "stopping the service" in out and "done" in out


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line holds ``text`` (from /proc: no extra dependency)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_demo_stopped_by_sigterm_ends_its_server_and_removes_its_folder(
        tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    with open(out, "wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "freshrec.cli", "demo", "--seconds", "0", "--port", "0"],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "400"})
    try:
        started = re.compile(r"starting the service on http://127\.0\.0\.1:(\d+) "
                             r"\(data and log in (\S+)\)")
        deadline = time.monotonic() + 300
        while "Try the API" not in out.read_text() or not started.search(out.read_text()):
            assert demo.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        match = started.search(out.read_text())
        assert match is not None
        port, folder = int(match.group(1)), match.group(2)
        assert Path(folder).is_dir() and _processes_mentioning(folder)  # the server runs

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=120) == 0, out.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
    left = _processes_mentioning(folder)
    for pid in left:  # a failing run must not leave a server behind for the next tests
        os.kill(pid, signal.SIGKILL)
    assert "stopping the service" in out.read_text()
    assert left == []
    assert not Path(folder).exists()
    assert _port_is_free(port)


@pytest.mark.browser
@pytest.mark.slow
def test_the_console_address_the_demo_prints_shows_it_moving(tmp_path: Path,
                                                            chromium: Any) -> None:
    """A person opening the printed address sees events arrive and recommendations
    served within a minute, without typing the key."""
    out = tmp_path / "demo.out"
    address = re.compile(r"http://127\.0\.0\.1:\d+/console/#key=\S+&page=live")
    with open(out, "wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "freshrec.cli", "demo", "--seconds", "0", "--port", "0"],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "400"})
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    try:
        deadline = time.monotonic() + 300
        while not address.search(out.read_text()):
            assert demo.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        link = address.search(out.read_text())
        assert link is not None
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(link.group(0))
        page.wait_for_selector("#page-live")
        assert "key=" not in page.url  # taken off the address bar
        for stat in ("events_per_s", "recommendations_per_s"):
            page.wait_for_function(
                "s => Number(document.querySelector(s).textContent.replace(/,/g, '')) > 0",
                arg=f'[data-stat="{stat}"] .value')
        # Charts with a few complete 10 s buckets in them, for the picture.
        page.wait_for_function("() => document.querySelector('#page-live')"
                               " && performance.now() > 35000")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "demo-live.png"), full_page=True)
        page.goto(link.group(0).replace("page=live", "page=users/user-00000"))
        page.wait_for_selector("#page-users tr[data-item]")
        page.screenshot(path=str(SCREENSHOTS / "demo-users.png"), full_page=True)
    finally:
        context.close()
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=120)
