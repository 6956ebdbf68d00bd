"""``freshrec experiments ...``: A/B experiments from the command line, over the API.

Like ``freshrec models``, the commands talk to the running service with an admin key,
so an experiment started here is the one every worker serves.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from freshrec.cli_models import DEFAULT_URL, Key, Url, _call, _when

experiments_app = typer.Typer(help="Start, list, show and stop A/B experiments.",
                              no_args_is_help=True)


def parse_arm(text: str) -> dict[str, Any]:
    """``name=control,model=champion,share=0.5,sources=popularity+trending`` as an arm.

    >>> parse_arm("name=weak,share=0.3,sources=popularity+trending")
    {'name': 'weak', 'share': 0.3, 'settings': {'sources': ['popularity', 'trending']}}
    """
    arm: dict[str, Any] = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key == "share":
            try:
                arm["share"] = float(value)
            except ValueError:
                raise typer.BadParameter(f"share must be a number, got {value!r}") from None
        elif key == "sources":
            arm.setdefault("settings", {})["sources"] = [s for s in value.split("+") if s]
        elif key in ("name", "model"):
            arm[key] = value.strip()
        else:
            raise typer.BadParameter(f"unknown arm field {key!r} (name, model, share, sources)")
    if "name" not in arm:
        raise typer.BadParameter(f"an arm needs a name: {text!r}")
    return arm


@experiments_app.command("start")
def start(name: str,
          arm: Annotated[list[str], typer.Option(
              help="An arm as name=...,model=champion|VERSION,share=0.5[,sources=a+b] "
                   "(repeat; the first is the control).")],
          metric: Annotated[str, typer.Option(
              help="ctr, hit_rate or purchases_per_user.")] = "ctr",
          alpha: Annotated[float, typer.Option(help="The test's level.")] = 0.05,
          url: Url = DEFAULT_URL, key: Key = "") -> None:
    """Start an experiment: users split by a stable hash of their id."""
    body = {"name": name, "metric": metric, "alpha": alpha,
            "arms": [parse_arm(text) for text in arm]}
    answer = _call(url, key, "POST", "/v1/experiments", body)
    typer.echo(f"started {answer['id']} ({', '.join(a['name'] for a in answer['arms'])})")


@experiments_app.command("list")
def list_experiments(url: Url = DEFAULT_URL, key: Key = "") -> None:
    """Experiments, newest first, with the test's decision."""
    answer = _call(url, key, "GET", "/v1/experiments")
    table = Table()
    for column in ("id", "name", "status", "started", "metric", "users", "decision",
                   "p-value"):
        table.add_column(column)
    for found in answer["experiments"]:
        test = found["test"]
        table.add_row(found["id"], found["name"], found["status"], _when(found["started"]),
                      found["metric"], " / ".join(str(a["users"]) for a in found["arms"]),
                      test["decision"], f"{test['p_value']:.4f}")
    Console().print(table)


@experiments_app.command("show")
def show(experiment: str, url: Url = DEFAULT_URL, key: Key = "",
         as_json: Annotated[bool, typer.Option("--json", help="The whole answer.")] = False,
         ) -> None:
    """One experiment: each arm's metrics with their confidence sequences, and the test."""
    found = _call(url, key, "GET", f"/v1/experiments/{experiment}")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    print_experiment(found)


@experiments_app.command("stop")
def stop(experiment: str, url: Url = DEFAULT_URL, key: Key = "",
         promote: Annotated[bool, typer.Option(
             "--promote-winner", help="Make the winning arm's model the champion.")] = False,
         ) -> None:
    """Stop an experiment (every worker serves the champion again)."""
    found = _call(url, key, "POST", f"/v1/experiments/{experiment}/stop",
                  {"promote_winner": promote})
    print_experiment(found)
    typer.echo(f"stopped; winner: {found['winner'] or 'none'}"
               + (f"; {found['note']}" if found.get("note") else ""))


def print_experiment(found: dict[str, Any]) -> None:
    table = Table(title=f"{found['id']} {found['name']} ({found['status']})")
    for column in ("arm", "model", "share", "users", "requests", "clicks", "CTR",
                   "hit rate", "purchases/user"):
        table.add_column(column)
    for arm in found["arms"]:
        table.add_row(arm["name"], arm["model"] + (" " + json.dumps(arm["settings"])
                                                   if arm["settings"] else ""),
                      f"{arm['share']:g}", str(arm["users"]), str(arm["requests"]),
                      str(arm["clicks"]), _interval(arm["ctr"]), _interval(arm["hit_rate"]),
                      _interval(arm["purchases_per_user"]))
    console = Console()
    console.print(table)
    test = found["test"]
    console.print(f"{test['metric']}: {test['arm']} - {test['control']} = "
                  f"{test['difference']:+.4f} {_bounds(test['low'], test['high'])}, "
                  f"always-valid p = {test['p_value']:.4f}: {test['decision']}")


def _interval(interval: dict[str, Any]) -> str:
    if interval["value"] is None:
        return ""
    return f"{interval['value']:.4f} {_bounds(interval['low'], interval['high'])}"


def _bounds(low: float | None, high: float | None) -> str:
    return "[" + ("-inf" if low is None else f"{low:.4f}") + ", " + \
        ("inf" if high is None else f"{high:.4f}") + "]"
