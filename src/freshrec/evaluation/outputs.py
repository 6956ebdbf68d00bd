"""Everything a finished replay leaves behind: the tables on screen and its files."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from freshrec.evaluation.benchmark import ReplayReport
from freshrec.evaluation.plot import write_plot
from freshrec.evaluation.report import print_tables, write_json, write_markdown


def publish(report: ReplayReport, console: Console | None = None,
            folder: Path | None = None) -> list[Path]:
    """Print the tables and write JSON, Markdown and the PNG plot to ``folder``."""
    folder = folder or report.options.out_dir
    if console is not None:
        print_tables(report, console)
    paths = [write_json(report, folder), write_markdown(report, folder),
             write_plot(report, folder)]
    if console is not None:
        console.print(f"wall time {report.wall_seconds:.0f} s "
                      f"(tuning {report.tuning_seconds:.0f} s); wrote "
                      + ", ".join(str(p) for p in paths))
    return paths
