"""``freshrec models ...``: the model lifecycle from the command line, over the admin API.

The commands talk to the running service (``--url``, ``FRESHREC_URL``) with an admin
key (``--key``, ``FRESHREC_ADMIN_KEY``), so a promotion or rollback takes effect in
the live process, exactly as through the API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from freshrec.client import FreshrecClient, RequestFailed

models_app = typer.Typer(help="List, train, promote, roll back and pin model versions.",
                         no_args_is_help=True)
Url = Annotated[str, typer.Option(help="The service's address.", envvar="FRESHREC_URL")]
Key = Annotated[str, typer.Option(help="An admin API key.", envvar="FRESHREC_ADMIN_KEY",
                                  show_default=False)]
DEFAULT_URL = "http://127.0.0.1:8000"


def _call(url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    with FreshrecClient(url, key=key) as client:
        try:
            return client.request(method, path, body)
        except RequestFailed as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=1) from None


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


def _metric(version: dict[str, Any], name: str) -> str:
    value = version.get("metrics", {}).get(name)
    return "" if value is None else f"{value:.4f}"


@models_app.command("list")
def list_models(url: Url = DEFAULT_URL, key: Key = "",
                limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
                status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
                ) -> None:
    """Model versions, newest first, with their data and the gate's numbers."""
    path = f"/v1/models?limit={limit}" + (f"&status={status}" if status else "")
    answer = _call(url, key, "GET", path)
    table = Table(title=f"serving: {answer['serving']}")
    for column in ("version", "status", "created", "dataset", "holdout HR", "champion HR",
                   "notes"):
        table.add_column(column)
    for version in answer["models"]:
        gate = version.get("gate") or {}
        champion = (gate.get("champion") or {}).get("hr")
        status_text = (version["status"] + (" (pinned)" if version.get("pinned") else "")
                       + (" (revoked)" if version.get("revoked") else ""))
        dataset = version["dataset"]
        table.add_row(version["id"], status_text, _when(version["created"]),
                      f"≤{dataset['end_position']} {dataset['content_hash'][:10]}",
                      _metric(version, "holdout_hr"),
                      "" if champion is None else f"{champion:.4f}",
                      version.get("notes", "")[:60])
    Console().print(table)


@models_app.command("show")
def show(version: str, url: Url = DEFAULT_URL, key: Key = "") -> None:
    """Everything recorded about one version (JSON)."""
    typer.echo(json.dumps(_call(url, key, "GET", f"/v1/models/{version}"), indent=2))


@models_app.command("train")
def train(url: Url = DEFAULT_URL, key: Key = "",
          param: Annotated[list[str] | None, typer.Option(
              help="Engine setting to override, as name=value (repeatable).")] = None,
          ) -> None:
    """Train a candidate in the background; the gate decides whether it is promoted."""
    params: dict[str, Any] = {}
    for pair in param or []:
        name, _, raw = pair.partition("=")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    answer = _call(url, key, "POST", "/v1/models/train", {"params": params})
    typer.echo(f"training {answer['version']}; follow it with 'freshrec models monitor'")


@models_app.command("promote")
def promote(version: str, url: Url = DEFAULT_URL, key: Key = "") -> None:
    """Make VERSION the champion now (it serves the next request)."""
    answer = _call(url, key, "POST", f"/v1/models/{version}/promote")
    typer.echo(f"{answer['id']} is now {answer['status']}")


@models_app.command("rollback")
def rollback(url: Url = DEFAULT_URL, key: Key = "") -> None:
    """Go back to the previous champion."""
    answer = _call(url, key, "POST", "/v1/models/rollback")
    typer.echo(f"rolled back: {answer['id']} is now {answer['status']}")


@models_app.command("pin")
def pin(version: str, url: Url = DEFAULT_URL, key: Key = "",
        off: Annotated[bool, typer.Option("--off", help="Unpin instead.")] = False) -> None:
    """Pin VERSION so automatic trainings cannot replace it (or --off to unpin)."""
    answer = _call(url, key, "POST", f"/v1/models/{version}/{'unpin' if off else 'pin'}")
    typer.echo(f"{answer['id']} pinned: {answer['pinned']}")


@models_app.command("monitor")
def monitor(url: Url = DEFAULT_URL, key: Key = "") -> None:
    """Drift, online quality and training status."""
    answer = _call(url, key, "GET", "/v1/monitoring")
    console = Console()
    drift = answer["drift"]
    table = Table(title=f"input drift (drifted: {drift.get('drifted')})")
    for column in ("signal", "reference", "current", "PSI", "JS", "drifted"):
        table.add_column(column)
    for name, signal in (drift.get("signals") or {}).items():
        table.add_row(name, _short(signal.get("reference")), _short(signal.get("current")),
                      _short(signal.get("psi")), _short(signal.get("js")),
                      str(signal.get("drifted")))
    console.print(table)
    console.print({"quality": answer["quality"], "training": answer["training"],
                   "model": answer["model"]})


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.2f}" for k, v in list(value.items())[:4])
    return "" if value is None else str(value)
