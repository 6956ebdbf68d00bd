"""HR@10 over the second half, a rolling window per contestant, as a PNG."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from freshrec.evaluation.benchmark import ReplayReport
from freshrec.evaluation.report import rolling_hr

PLOT_NAME = "hr_over_time.png"
MAX_POINTS = 1000


def write_plot(report: ReplayReport, folder: Path) -> Path:
    """One panel per request variant; x is data time, y the trailing-window HR@k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    variants = report.variants
    figure, axes = plt.subplots(len(variants), 1, figsize=(13, 4.2 * len(variants)),
                                squeeze=False)
    for axis, variant in zip(axes[:, 0], variants, strict=True):
        for result in report.results:
            timeline = result.timelines.get(variant)
            if result.error or timeline is None:
                continue
            when, hr = rolling_hr(timeline.times, timeline.hits)
            if when.shape[0] == 0:
                continue
            step = max(1, when.shape[0] // MAX_POINTS)
            dates = [datetime.fromtimestamp(t, tz=UTC) for t in when[::step]]
            axis.plot(dates, hr[::step], label=result.name, linewidth=1.4)
        axis.set_title(f"{report.options.dataset}: rolling HR@{report.options.k} ({variant})")
        axis.set_ylabel(f"HR@{report.options.k}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.autofmt_xdate()
    figure.tight_layout()
    path = folder / PLOT_NAME
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
