"""`nasnet compare`: search configurations against each other with the same budget and seeds (paper §4.4,
Figure 6).

The work is `nasnet.search.compare.compare`; this module parses the flags and prints the table.

Runs one search per variant (a strategy with its settings, with and without ASHA) and seed, each in
its own run directory under --run-dir (``ppo-seed0``, ``ppo-lr0.005-asha-seed0``, ...; an
interrupted comparison continues where it stopped), then writes ``compare.csv`` (the curves against
children sampled and child-epochs spent) and ``compare.json`` (each run's final numbers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import NasnetError
from ..paths import output_folder
from ._parse import count, inert
from ._search_args import add_search_arguments, resolve_config
from ._search_flags import flag_words, refuse_unused
from ._table import format_table

COMMAND = "compare"
HELP = "search strategies (with and without ASHA) at equal budgets and seeds: Figure 6's curves, picks retrained"
ORDER = 45
OWN_FLAGS = {"strategy.name": "--strategies", "seed": "--seeds", "early_stop.name": "--early-stop"}   # per run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", help="directory for the runs and compare.csv (default: runs/compare-TIMESTAMP)")
    p.add_argument("--strategies", default="ppo,random",
                   help="comma-separated variants NAME[:OPTION=VALUE...], e.g. random,ppo,ppo:lr=0.005,reinforce:"
                        "lr=0.005,evolution:population=16:sample-size=4 (default ppo,random)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each run by every variant (default 0)")
    add_search_arguments(p, compare=True)


def _list(text: str, what: str, cast=str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise NasnetError(f"--{what} is empty")
    try:
        return [cast(t) for t in items]
    except (ValueError, argparse.ArgumentTypeError) as err:
        raise NasnetError(f"--{what}: expected a comma-separated list, got {text!r} ({err})") from None


def run(args: argparse.Namespace) -> int:
    root = Path(args.run_dir or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    output_folder(root)
    with flag_words(args, flags=OWN_FLAGS) as given:
        return _compare(args, root, given)


def _compare(args: argparse.Namespace, root: Path, given: list[str]) -> int:
    from ..search.children.train import check_child_settings
    from ..search.compare import CSV_FILE, compare, parse_variant
    from ..search.config import EarlyStopConfig
    from ..search.progress import ProgressBar

    seeds = _list(args.seeds, "seeds", count(-2**31, 2**31 - 1))
    if args.seed is not None:
        raise NasnetError("use --seeds with nasnet compare")
    if args.children is not None and args.epoch_budget is not None:
        raise inert("--children", "with --epoch-budget in nasnet compare: every run samples as many children as "
                                  "the budget holds at its first job's epochs")
    stops = _list(args.early_stop_list or "none", "early-stop")
    variants = [parse_variant(text, stop) for stop in stops for text in _list(args.strategies, "strategies")]
    if args.top_k is None:
        args.top_k = 0             # no top-k stage unless asked for (a new digits search would get one)
    asha = None
    if "asha" in stops:        # resolved once, as for `nasnet search --early-stop asha`, then given to those variants
        probe = resolve_config(argparse.Namespace(**{**vars(args), "early_stop": "asha", "top_k": 0}), None).early_stop
        asha = EarlyStopConfig("asha", probe.rungs, probe.eta, probe.tell)
        if args.epochs is None:
            args.epochs = asha.rungs[-1]          # every variant trains its children as long as the last rung
    plain = argparse.Namespace(**{**vars(args), "early_stop": None, "rungs": None, "eta": None, "asha_tell": None})

    def configure(stored):
        return resolve_config(plain, stored)

    def check(configs):       # before any run starts
        refuse_unused(given, configs)
        check_child_settings(configs[0])

    try:
        summary = compare(configure, variants, seeds, root, asha=asha, progress=not args.quiet and ProgressBar(),
                          check=check)
    except KeyboardInterrupt:
        print(f"nasnet compare: interrupted; continue with the same command and --run-dir {root}", file=sys.stderr)
        return 130

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    table = [[s["run"], s["seed"], s["children"], s["epochs"], fmt(s["top1"]), fmt(s["top5"]), fmt(s["top25"]),
              fmt(s["last20"]), fmt(s["pick_mean"]), s["failed"]] for s in summary]
    print(format_table(["run", "seed", "children", "child-epochs", "best", "top-5 mean", "top-25 mean",
                        "last-20 mean", "pick retrained", "failed"], table))
    print(f"curves per result (children sampled, child-epochs spent): {root / CSV_FILE}")
    print(f"next: nasnet report {root}   (the runs overlaid, as plots and one HTML page)")
    return 0
