"""`nasnet compare`: RL against random search with the same budget and seeds (paper §4.4, Figure 6).

Runs one search per strategy and seed, each in its own run directory under --run-dir
(``ppo-seed0``, ``random-seed0``, ...; an interrupted comparison continues where it stopped), then
writes ``compare.csv``: for every number of children sampled, the best reward and the mean of the
top 5 and top 25 distinct architectures so far, per strategy and seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from ..errors import NasnetError
from ._search_args import add_search_arguments, changes_from_args, fresh_config

COMMAND = "compare"
HELP = "RL vs random search with the same budget and seeds: best / top-5 / top-25 reward curves (Figure 6)"
ORDER = 45

KS = (1, 5, 25)


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
    from ..search.curves import store_rewards, top_k_curves
    from ..search.loop import load_run_config, run_search
    from ..search.store import TrialStore
    from ..search.strategies import STRATEGIES

    strategies = _list(args.strategies, "strategies")
    for s in strategies:
        if s not in STRATEGIES:
            raise NasnetError(f"unknown strategy {s!r} (known: {', '.join(STRATEGIES)})")
    seeds = _list(args.seeds, "seeds", int)
    if args.seed is not None:
        raise NasnetError("use --seeds with nasnet compare")
    root = Path(args.run_dir or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    rows, summary = [], []
    for seed in seeds:
        for name in strategies:
            run_dir = root / f"{name}-seed{seed}"
            stored = load_run_config(run_dir)
            base = stored if stored is not None else fresh_config(args)
            changes = changes_from_args(args, base)
            changes.update({"strategy.name": name, "seed": seed})
            config = base.replace(**changes)
            if not args.quiet:
                print(f"== {name}, seed {seed}: {run_dir}", file=sys.stderr)
            try:
                result = run_search(config, run_dir, progress=not args.quiet)
            except KeyboardInterrupt:
                print(f"nasnet compare: interrupted; continue with the same command and --run-dir {root}",
                      file=sys.stderr)
                return 130
            store = TrialStore(run_dir / "trials.db")
            curve = top_k_curves(store_rewards(store), KS)
            store.close()
            for point in curve:
                rows.append([name, seed, point["children"]] + [point[f"top{k}"] for k in KS])
            last = curve[-1] if curve else {}
            summary.append({"strategy": name, "seed": seed, "run_dir": str(run_dir),
                            **{f"top{k}": last.get(f"top{k}") for k in KS},
                            "failed": result.counts["failed"] + result.counts["diverged"]})
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "compare.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "seed", "children", "best", "top5_mean", "top25_mean"])
        w.writerows(rows)
    (root / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")

    from ._table import format_table

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    table = [[s["strategy"], s["seed"], fmt(s["top1"]), fmt(s["top5"]), fmt(s["top25"]), s["failed"]] for s in summary]
    print(format_table(["strategy", "seed", "best", "top-5 mean", "top-25 mean", "failed"], table))
    print(f"curves per number of children sampled: {root / 'compare.csv'}")
    return 0
