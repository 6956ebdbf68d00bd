"""The command line as users start it: the ``freshrec`` script and ``python -m freshrec``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_python_dash_m_freshrec_is_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "freshrec", "version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == version("freshrec")


def test_python_dash_m_freshrec_names_itself_in_its_help() -> None:
    done = subprocess.run([sys.executable, "-m", "freshrec", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: freshrec " in done.stdout and "serve" in done.stdout
