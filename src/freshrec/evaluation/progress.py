"""A rich progress bar per task, fed with (task, done, total) from the workers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from freshrec.evaluation.runner import ProgressSink


@contextmanager
def progress_bars(labels: Sequence[str], console: Console | None,
                  enabled: bool = True) -> Iterator[ProgressSink | None]:
    """Bars for ``labels`` while the block runs; yields the sink to report into."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        ids = [bars.add_task(label, total=None, start=False) for label in labels]
        started: set[int] = set()

        def sink(n: int, done: int, total: int) -> None:
            if n not in started:  # the clock of a queued task starts with its worker
                started.add(n)
                bars.start_task(ids[n])
            bars.update(ids[n], completed=done, total=total)

        yield sink
