"""Run the replay benchmark on one or more datasets: ``python bench/replay.py movielens retail``.

A thin wrapper over :func:`freshrec.evaluation.run_replay`, the same function
``freshrec replay`` calls; see bench/README.md. Options apply to every dataset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from freshrec.evaluation import ReplayOptions, publish, run_replay
from freshrec.evaluation.benchmark import folder_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="*", default=["synthetic", "movielens", "retail"],
                        help="movielens, retail, synthetic, sequential "
                             "(default: the first three)")
    parser.add_argument("--datasets-dir", "--data-dir", dest="datasets_dir", type=Path,
                        default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contestants", default=None, help="comma-separated")
    parser.add_argument("--split", type=float, default=0.5,
                        help="share of the events to train on (default: the median)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="parent folder; each dataset writes replay-<dataset>/ in it "
                             "(replay-<dataset>-split<percent>/ for another split)")
    args = parser.parse_args()
    chosen = tuple(args.contestants.split(",")) if args.contestants else None
    console = Console() if Console().is_terminal else Console(width=200)
    for dataset in args.datasets:
        options = ReplayOptions(dataset=dataset, data_dir=args.datasets_dir, limit=args.limit,
                                max_requests=args.max_requests, jobs=args.jobs, seed=args.seed,
                                contestants=chosen, split=args.split,
                                out=args.results / folder_name(dataset, args.split))
        publish(run_replay(options, console=console), console)


if __name__ == "__main__":
    main()
