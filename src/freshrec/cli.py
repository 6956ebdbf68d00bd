"""The ``freshrec`` command line: thin commands over the same functions the API calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="freshrec: a recommender that learns from every event.",
                  no_args_is_help=True)


@app.callback()
def main() -> None:
    """freshrec: a recommender that learns from every event."""


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as installed

    typer.echo(installed("freshrec"))


@app.command()
def replay(
    dataset: Annotated[str, typer.Argument(help="movielens, retail or synthetic")],
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding movielens-small/ and online-retail-ii/ "
             "(default: ../shared/data or FRESHREC_DATA_DIR)")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N events.")] = None,
    max_requests: Annotated[int | None, typer.Option(
        help="Score at most about M requests (every j-th); every event is still fed.")] = None,
    jobs: Annotated[int, typer.Option(help="Worker processes (0: run in this process).")] = 2,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default: results/replay-<dataset>/).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    contestants: Annotated[str | None, typer.Option(
        help="Comma-separated contestants (default: all that apply).")] = None,
    tune: Annotated[bool, typer.Option(
        help="Pick hyperparameters on a validation slice of the training half.")] = True,
) -> None:
    """Replay a dataset in time order against strong baselines and report HR/Recall/NDCG@10."""
    from rich.console import Console

    from freshrec.evaluation import ReplayOptions, publish, run_replay

    chosen = tuple(n.strip() for n in contestants.split(",") if n.strip()) if contestants else None
    options = ReplayOptions(dataset=dataset, data_dir=data_dir, limit=limit,
                            max_requests=max_requests, jobs=jobs, out=out, seed=seed,
                            contestants=chosen, tune=tune)
    console = Console() if Console().is_terminal else Console(width=200)
    try:
        report = run_replay(options, console=console)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    publish(report, console)


@app.command()
def demo(
    seconds: float = typer.Option(60.0, help="How long to stream."),
    rate: float = typer.Option(200.0, help="Events per second."),
) -> None:
    """Stream a generated shop into freshrec and watch recommendations change live."""
    from freshrec.demo import run_engine_demo

    run_engine_demo(seconds=seconds, events_per_second=rate)


if __name__ == "__main__":
    app()
