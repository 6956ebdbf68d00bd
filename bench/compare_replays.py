"""Compare two replays request by request: HR@10 of each, the difference and its standard error.

    python bench/compare_replays.py BEFORE/replay.json AFTER/replay.json
    python bench/compare_replays.py results/replay-retail/replay.json \\
        --contestant freshrec --against purchase-history      # two contestants, one run

Both sides must have replayed the same plan (same dataset, limit, split and sampling):
it refuses two runs whose protocols differ.
A difference is worth acting on when it is several standard errors from zero
(|z| of 3 or more); smaller ones are what another seed or half would undo.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from freshrec.evaluation.paired import compare_reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="replay.json of the baseline run")
    parser.add_argument("b", type=Path, nargs="?", default=None,
                        help="replay.json of the other run (default: the same file)")
    parser.add_argument("--contestant", default="freshrec", help="contestant of run A")
    parser.add_argument("--against", default=None,
                        help="contestant of run B (default: the same as --contestant)")
    args = parser.parse_args()
    report_a = json.loads(args.a.read_text())
    report_b = json.loads((args.b or args.a).read_text())
    against = args.against or args.contestant
    try:
        rows = compare_reports(report_a, report_b, args.contestant, against)
    except ValueError as error:
        sys.exit(f"error: {error}")
    print(f"A = {args.contestant} in {args.a}; B = {against} in {args.b or args.a}\n")
    print("| variant | cut | requests | HR@10 A | HR@10 B | B - A | std. error | z |")
    print("|---|---|---|---|---|---|---|---|")
    for (variant, cut), row in rows.items():
        print(f"| {variant} | {cut} | {row.n:,} | {row.a:.3f} | {row.b:.3f} | "
              f"{row.difference:+.4f} | {row.standard_error:.4f} | {row.z:+.1f} |")


if __name__ == "__main__":
    main()
