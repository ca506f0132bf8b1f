"""Strategies against each other at equal budgets and seeds (paper §4.4, Figure 6).

`compare(base, strategies, seeds, root)` runs one search per strategy and seed, each in its own
run directory under `root` (``ppo-seed0``, ``random-seed0``, ...; an interrupted comparison
continues where it stopped), and writes ``compare.csv`` (for every number of children sampled, the
best reward and the mean of the top 5 and top 25 distinct architectures so far, per strategy and
seed) and ``compare.json`` (each run's final numbers). `nasnet compare` is this plus printing.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ..atomic import replacing, write_text
from ..errors import NasnetError
from . import run_dir as files
from .config import STRATEGY_NAMES, SearchConfig
from .curves import sampled_rewards, top_k_curves
from .store import TrialStore

KS = (1, 5, 25)
CSV_FILE = "compare.csv"
JSON_FILE = "compare.json"


def compare(configure: Callable[[SearchConfig | None], SearchConfig], strategies: Sequence[str], seeds: Sequence[int],
            root: str | Path, progress: bool = False) -> list[dict[str, Any]]:
    """Run every strategy for every seed and return one summary row per run.

    configure(stored) gives each run's config before its strategy and seed are set: `stored` is the
    config of a run directory that already exists (to continue it), else None.
    """
    from .loop import run_search

    for s in strategies:
        if s not in STRATEGY_NAMES:
            raise NasnetError(f"unknown strategy {s!r} (known: {', '.join(STRATEGY_NAMES)})")
    root = Path(root)
    rows, summary = [], []
    for seed in seeds:
        for name in strategies:
            run_dir = root / f"{name}-seed{seed}"
            config = configure(files.load_run_config(run_dir)).replace(**{"strategy.name": name, "seed": seed})
            if progress:
                print(f"== {name}, seed {seed}: {run_dir}", file=sys.stderr)
            result = run_search(config, run_dir, progress=progress)
            with TrialStore(run_dir / files.STORE_FILE, readonly=True) as store:
                curve = top_k_curves(sampled_rewards(store.trials()), KS)
            rows += [[name, seed, p["children"]] + [p[f"top{k}"] for k in KS] for p in curve]
            last = curve[-1] if curve else {}
            summary.append({"strategy": name, "seed": seed, "run_dir": str(run_dir),
                            **{f"top{k}": last.get(f"top{k}") for k in KS},
                            "failed": result.counts["failed"] + result.counts["diverged"]})
    root.mkdir(parents=True, exist_ok=True)
    with replacing(root / CSV_FILE) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "seed", "children", "best", "top5_mean", "top25_mean"])
        w.writerows(rows)
    write_text(root / JSON_FILE, json.dumps(summary, indent=2) + "\n")
    return summary
