"""The README's first commands are the project's contract with a new user and with CI."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.strip() for line in lines[:12] if line.startswith("    ")]


def test_readme_starts_with_run_and_test_commands() -> None:
    run, test = _commands()[:2]
    assert "freshrec demo" in run
    assert test.endswith("pytest")


def test_ci_calls_the_readme_test_command() -> None:
    test = _commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in [line.strip() for line in ci]
