"""The replay's results as a terminal table, a JSON file and a Markdown table.

The terminal shows one quality table per request variant (rows: contestants;
columns: HR@10, Recall@10 and NDCG@10 for each cut) and one cost table (fit
time, update and recommend p50/p99 in µs, peak MB): a single table with all of
them would be wider than any terminal.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from freshrec.evaluation.benchmark import ReplayReport
from freshrec.evaluation.hardware import describe
from freshrec.evaluation.replay import CUTS, ContestantResult
from freshrec.evaluation.tuning import describe as describe_tuning

METRICS = (("hr", "HR"), ("recall", "Rec"), ("ndcg", "NDCG"))
JSON_NAME = "replay.json"
MARKDOWN_NAME = "replay.md"
TIMELINE_POINTS = 200


def as_json(report: ReplayReport) -> dict[str, Any]:
    """The whole report as JSON-ready data (timelines reduced to a rolling HR series)."""
    options = {key: (str(value) if isinstance(value, Path) else value)
               for key, value in asdict(report.options).items()}
    return {
        "benchmark": "replay",
        "options": options,
        "protocol": report.plan,
        "hardware": describe(),
        "settings": asdict(report.settings),
        "tuning": {o.name: {"best": describe_tuning(o)[o.candidates.index(o.best)]["params"],
                            "grid": describe_tuning(o)} for o in report.tuning},
        "tuning_seconds": report.tuning_seconds,
        "wall_seconds": report.wall_seconds,
        "skipped": report.skipped,
        "contestants": {r.name: _contestant_json(r) for r in report.results},
    }


def _contestant_json(result: ContestantResult) -> dict[str, Any]:
    return {
        "metrics": result.metric_means(),
        "fit_seconds": result.fit_seconds,
        "replay_seconds": result.replay_seconds,
        "update_us": result.update_us,
        "recommend_us": result.recommend_us,
        "updates": result.updates,
        "recommends": result.recommends,
        "peak_mb": result.peak_mb,
        "error": result.error,
        "training": result.training,
        "hr_over_time": {variant: _rolling_points(timeline.times, timeline.hits)
                         for variant, timeline in result.timelines.items()},
        "hits": {variant: {cut: "".join(marks) for cut, marks in cuts.items()}
                 for variant, cuts in result.hits.items()},
    }


def rolling_hr(times: list[float], hits: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """HR over a trailing window of requests (a 20th of them, at least 20)."""
    n = len(hits)
    if n == 0:
        return np.empty(0), np.empty(0)
    window = min(n, max(20, n // 20))
    sums = np.cumsum(np.concatenate([[0.0], np.asarray(hits, dtype=np.float64)]))
    ends = np.arange(window, n + 1)
    rates = (sums[ends] - sums[ends - window]) / window
    return np.asarray(times, dtype=np.float64)[ends - 1], rates


def _rolling_points(times: list[float], hits: list[float]) -> dict[str, list[float]]:
    when, hr = rolling_hr(times, hits)
    if when.shape[0] > TIMELINE_POINTS:
        keep = np.linspace(0, when.shape[0] - 1, TIMELINE_POINTS).astype(int)
        when, hr = when[keep], hr[keep]
    return {"time": when.tolist(), "hr": hr.tolist()}


def write_json(report: ReplayReport, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / JSON_NAME
    path.write_text(json.dumps(as_json(report), indent=2) + "\n")
    return path


def _fmt(value: float | int | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _cost_cells(result: ContestantResult) -> list[str]:
    def us(stats: dict[str, float], key: str) -> str:
        return f"{stats[key]:,.0f}" if key in stats else "–"

    return [f"{result.fit_seconds:.1f}", us(result.update_us, "p50"), us(result.update_us, "p99"),
            us(result.recommend_us, "p50"), us(result.recommend_us, "p99"),
            _fmt(result.peak_mb, 0), f"{result.fit_seconds + result.replay_seconds:.0f}"]


COST_HEADERS = ("fit s", "update p50 µs", "update p99 µs", "recommend p50 µs",
                "recommend p99 µs", "peak MB", "run s")


def quality_rows(report: ReplayReport, variant: str) -> list[list[str]]:
    rows = []
    for result in report.results:
        if result.error:
            rows.append([result.name, "failed", *[""] * (len(CUTS) * len(METRICS) - 1)])
            continue
        means = result.metric_means()[variant]
        rows.append([result.name, *[_fmt(means[cut][key]) for cut in CUTS for key, _ in METRICS]])
    return rows


def counts(report: ReplayReport, variant: str) -> dict[str, int]:
    """Requests per cut (the same for every contestant), from the first that ran."""
    for result in report.results:
        if not result.error:
            return {cut: int(result.metric_means()[variant][cut]["n"] or 0) for cut in CUTS}
    return dict.fromkeys(CUTS, 0)


def print_tables(report: ReplayReport, console: Console) -> None:
    for variant in report.variants:
        n = counts(report, variant)
        table = Table(title=f"{report.options.dataset} · {variant} · @{report.options.k}",
                      caption=", ".join(f"{cut}: {n[cut]:,} requests" for cut in CUTS))
        table.add_column("contestant")
        for cut in CUTS:
            for _, label in METRICS:
                table.add_column(f"{cut}\n{label}", justify="right")
        for row in quality_rows(report, variant):
            table.add_row(*row)
        console.print(table)
    cost = Table(title=f"{report.options.dataset} · cost per contestant")
    cost.add_column("contestant")
    for header in COST_HEADERS:
        cost.add_column(header, justify="right")
    for result in report.results:
        cost.add_row(result.name, *_cost_cells(result))
    console.print(cost)
    for result in report.results:
        if result.error:
            console.print(f"[red]{result.name} failed:[/red]\n{result.error}")
    for name, reason in report.skipped.items():
        # escaped: a reason like "pip install 'freshrec[seq]'" is not markup
        console.print(f"[yellow]skipped {name}[/yellow]: {escape(reason)}")


def markdown(report: ReplayReport) -> str:
    """The same tables in Markdown, with the run's wall time."""
    lines = [f"# Replay: {report.options.dataset}", "",
             f"Protocol: {json.dumps(report.plan)}", "",
             f"Wall time {report.wall_seconds:.0f} s (tuning {report.tuning_seconds:.0f} s).", ""]
    for variant in report.variants:
        n = counts(report, variant)
        header = ["contestant", *[f"{cut} {label}" for cut in CUTS for _, label in METRICS]]
        lines += [f"## {variant} (" + ", ".join(f"{c}: {n[c]:,}" for c in CUTS) + ")", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in quality_rows(report, variant)]
        lines.append("")
    header = ["contestant", *COST_HEADERS]
    lines += ["## cost", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([r.name, *_cost_cells(r)]) + " |" for r in report.results]
    return "\n".join(lines) + "\n"


def write_markdown(report: ReplayReport, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MARKDOWN_NAME
    path.write_text(markdown(report))
    return path
