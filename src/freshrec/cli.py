"""The ``freshrec`` command line: thin commands over the same functions the API calls."""

from __future__ import annotations

import typer

app = typer.Typer(help="freshrec: a recommender that learns from every event.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """freshrec: a recommender that learns from every event."""


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as installed

    typer.echo(installed("freshrec"))


if __name__ == "__main__":
    app()
