"""`nasnet compare`: RL against random search with the same budget and seeds (paper §4.4, Figure 6).

The work is `nasnet.search.compare.compare`; this module parses the flags and prints the table.

Runs one search per strategy and seed, each in its own run directory under --run-dir
(``ppo-seed0``, ``random-seed0``, ...; an interrupted comparison continues where it stopped), then
writes ``compare.csv``: for every number of children sampled, the best reward and the mean of the
top 5 and top 25 distinct architectures so far, per strategy and seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import NasnetError
from ._search_args import add_search_arguments, changes_from_args, fresh_config
from ._table import format_table

COMMAND = "compare"
HELP = "RL vs random search with the same budget and seeds: best / top-5 / top-25 reward curves (Figure 6)"
ORDER = 45


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", help="directory for the runs and compare.csv (default: runs/compare-TIMESTAMP)")
    p.add_argument("--strategies", default="ppo,random", help="comma-separated strategies (default ppo,random)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each run by every strategy (default 0)")
    add_search_arguments(p, strategy=False)


def _list(text: str, what: str, cast=str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise NasnetError(f"--{what} is empty")
    try:
        return [cast(t) for t in items]
    except ValueError:
        raise NasnetError(f"--{what}: expected a comma-separated list, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..search.compare import CSV_FILE, compare

    strategies = _list(args.strategies, "strategies")
    seeds = _list(args.seeds, "seeds", int)
    if args.seed is not None:
        raise NasnetError("use --seeds with nasnet compare")
    root = Path(args.run_dir or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")

    def configure(stored):
        base = stored if stored is not None else fresh_config(args)
        return base.replace(**changes_from_args(args, base))

    try:
        summary = compare(configure, strategies, seeds, root, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"nasnet compare: interrupted; continue with the same command and --run-dir {root}", file=sys.stderr)
        return 130

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    table = [[s["strategy"], s["seed"], fmt(s["top1"]), fmt(s["top5"]), fmt(s["top25"]), s["failed"]] for s in summary]
    print(format_table(["strategy", "seed", "best", "top-5 mean", "top-25 mean", "failed"], table))
    print(f"curves per number of children sampled: {root / CSV_FILE}")
    print(f"next: nasnet report {root}   (the runs overlaid, as plots and one HTML page)")
    return 0
