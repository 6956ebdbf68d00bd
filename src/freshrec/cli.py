"""The ``freshrec`` command line: thin commands over the same functions the API calls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from freshrec.security.keys import KeyStore

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
    dataset: Annotated[str, typer.Argument(help="movielens, retail, synthetic or sequential")],
    datasets_dir: Annotated[Path | None, typer.Option(
        "--datasets-dir", "--data-dir",
        help="Folder holding movielens-small/ and online-retail-ii/ "
             "(default: FRESHREC_DATASETS_DIR, else ../shared/data)")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N events.")] = None,
    max_requests: Annotated[int | None, typer.Option(
        help="Score at most about M requests (every j-th); every event is still fed.")] = None,
    jobs: Annotated[int, typer.Option(help="Worker processes (0: run in this process).")] = 2,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default: results/replay-<dataset>/, "
             "results/replay-<dataset>-split<percent>/ for another split).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    contestants: Annotated[str | None, typer.Option(
        help="Comma-separated contestants (default: all that apply).")] = None,
    tune: Annotated[bool, typer.Option(
        help="Pick hyperparameters on a validation slice of the training part.")] = True,
    split: Annotated[float, typer.Option(
        help="Share of the events to train on, strictly between 0 and 1 (0.8: the first 80%; "
             "a split inside a basket moves to its end).")] = 0.5,
) -> None:
    """Replay a dataset in time order against strong baselines and report HR/Recall/NDCG@10."""
    from rich.console import Console

    from freshrec.evaluation import ReplayOptions, publish, run_replay

    chosen = tuple(n.strip() for n in contestants.split(",") if n.strip()) if contestants else None
    console = Console() if Console().is_terminal else Console(width=200)
    try:
        options = ReplayOptions(dataset=dataset, data_dir=datasets_dir, limit=limit,
                                max_requests=max_requests, jobs=jobs, out=out, seed=seed,
                                contestants=chosen, tune=tune, split=split)
        report = run_replay(options, console=console)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    publish(report, console)


from freshrec.cli_models import models_app  # noqa: E402

app.add_typer(models_app, name="models")

from freshrec.cli_experiments import experiments_app  # noqa: E402

app.add_typer(experiments_app, name="experiments")

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DataDir = Annotated[Path, typer.Option(help="Where the service keeps its data "
                                            "(FRESHREC_DATA_DIR).",
                                       envvar="FRESHREC_DATA_DIR")]


@app.command()
def serve(
    data_dir: DataDir = Path("freshrec-data"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[int, typer.Option(
        help="Serving processes on the port, each a full replica (0: one per CPU).",
        envvar="FRESHREC_WORKERS", min=0, max=64)] = 0,
    database_url: Annotated[str | None, typer.Option(
        help="postgresql://user:password@host/db: keep every store (the event log, the "
             "catalog, the keys, the model registry, the experiments, snapshots and model "
             "artifacts) in this PostgreSQL database; DATA_DIR keeps only locks. With a "
             "password, prefer the environment variable: any user can see arguments in ps.",
        envvar="FRESHREC_DATABASE_URL")] = None,
) -> None:
    """Run the HTTP service with embedded storage (SQLite and local files) in DATA_DIR,
    or with every store in PostgreSQL (--database-url)."""
    from freshrec.errors import StoreUnavailable
    from freshrec.service.data_lock import DataDirLocked
    from freshrec.service.server import default_workers, run_server

    try:
        run_server(data_dir=data_dir, host=host, port=port, log_level=log_level,
                   workers=workers or default_workers(), database_url=database_url or None)
    except (DataDirLocked, StoreUnavailable) as error:  # a person must act: no traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None


DatabaseUrl = Annotated[str | None, typer.Option(
    help="The server's PostgreSQL database (postgresql://...), where its keys are; "
         "prefer the environment variable with a password.",
    envvar="FRESHREC_DATABASE_URL")]


def _key_store(data_dir: Path, database_url: str | None) -> KeyStore:
    """The key store the server verifies keys in; a refusal in one line, no traceback."""
    from freshrec.errors import StoreUnavailable
    from freshrec.service.placement import open_key_store

    try:
        return open_key_store(data_dir, database_url or None)
    except StoreUnavailable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option(help="ingest, read or admin (repeatable).")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    data_dir: DataDir = Path("freshrec-data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    store = _key_store(data_dir, database_url)
    try:
        key = store.create(scope, name=name)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        store.close()
    typer.echo(key)


@keys_app.command("list")
def keys_list(data_dir: DataDir = Path("freshrec-data"),
              database_url: DatabaseUrl = None) -> None:
    """List keys (id, name, prefix, scopes); keys themselves are never shown again."""
    from rich.console import Console
    from rich.table import Table

    store = _key_store(data_dir, database_url)
    table = Table("id", "name", "prefix", "scopes")
    try:
        for info in store.list():
            table.add_row(info.id, info.name, info.prefix, ", ".join(sorted(info.scopes)))
    finally:
        store.close()
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = Path("freshrec-data"),
                database_url: DatabaseUrl = None) -> None:
    """Revoke a key by its id."""
    store = _key_store(data_dir, database_url)
    try:
        found = store.revoke(key_id)
    finally:
        store.close()
    if not found:
        typer.echo(f"error: no key with id {key_id!r}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {key_id}")


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(help="How long to stream (0: until Ctrl-C).")] = 90.0,
    rate: Annotated[float, typer.Option(help="Events per second.")] = 200.0,
    data_dir: Annotated[Path | None, typer.Option(
        help="Keep the service's data and log here (default: a temporary folder).")] = None,
    port: Annotated[int, typer.Option(help="Port to serve on (if taken: a free one).")] = 8000,
) -> None:
    """Start the service, stream a generated shop into it over HTTP, and watch
    recommendations change live (curl examples are printed to try meanwhile)."""
    from freshrec.demo import run_demo

    raise typer.Exit(run_demo(seconds=seconds, rate=rate, data_dir=data_dir, port=port))


if __name__ == "__main__":
    app()
