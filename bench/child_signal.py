"""Does a search child's reward carry signal? Architectures against seeds (paper §3, A.6).

A search can only learn from a reward that ranks architectures the same way whatever the seed.
This trains K random architectures (sampled from the search space with a fixed seed) x S seeds each
with the search's own child function (`train_child`), in worker processes of one thread each as the
search runs them, and prints:

- per architecture: the mean reward over seeds and its spread;
- the signal against the noise of one child, as a search sees it (one seed per architecture):
  noise = the root mean square over architectures of the seed standard deviation (sqrt of the mean
  within-architecture variance, ddof 1); signal = the standard deviation of the architectures' true
  rewards, sqrt(var(means over S seeds) - noise^2 / S), since the variance of S-seed means still holds
  noise^2 / S; ratio = signal / noise. (The standard deviation of the S-seed means against the mean
  seed standard deviation, which this reported before, overstates the ratio on both counts.)
- the mean Kendall tau between the rankings of the architectures by two different seeds (all
  pairs of seeds), with a bootstrap interval over architectures: 1 = every seed ranks alike,
  0 = rankings unrelated;
- the same within the top half of the architectures (by mean reward): whether the reward also tells
  good from best, which is what a search needs once it samples good cells (chosen on the same
  rewards, so it is a slightly optimistic look at the best half);
- the cost of a child: process CPU seconds (the worker's own time, which the other load on a
  shared machine does not inflate) and wall seconds, with the pool's total wall time.

CONFIG is the child: a name (`quick-digits`, the default search's child: QUICK_DIGITS_CHILD on
its data), or a JSON override of the same shape, inline or in a file:
{"model": {...}, "train": {...}, "data": "digits,val=360"}.

Usage: PYTHONPATH=src python bench/child_signal.py [CONFIG] [--archs 12] [--seeds 3] [--workers 2]
       PYTHONPATH=src python bench/child_signal.py --recompute FILE   (the statistics again, from the
                                                                      rewards a result file holds)
Writes bench/results/child_signal_<name>.json (or --out; --recompute rewrites FILE's statistics).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
import warnings
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

NAMED = {"quick-digits"}


def child_config(text: str) -> tuple[str, dict]:
    """(a short name, {"model", "train", "data"}) for a CONFIG argument."""
    from nasnet.search.defaults import QUICK_DIGITS_CHILD, QUICK_DIGITS_DATA

    if text == "quick-digits":
        return text, {"model": dict(QUICK_DIGITS_CHILD["model"]), "train": dict(QUICK_DIGITS_CHILD["train"]),
                      "data": QUICK_DIGITS_DATA}
    path = Path(text)
    raw = path.read_text() if path.is_file() else text
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SystemExit(f"child_signal: CONFIG must be {', '.join(sorted(NAMED))}, a JSON file or inline JSON: "
                         f"{err}") from None
    if not isinstance(config, dict) or set(config) - {"model", "train", "data", "name"}:
        raise SystemExit("child_signal: CONFIG is a JSON object with keys model, train, data (and optionally name)")
    name = config.pop("name", None) or (path.stem if path.is_file() else "custom")
    return name, {"model": config.get("model", {}), "train": config.get("train", {}),
                  "data": config.get("data", QUICK_DIGITS_DATA)}


def _init_worker() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


def _run(job: tuple[int, int, dict]) -> dict:
    """One child in a worker: its result, with the worker's CPU and wall seconds for the call."""
    from nasnet.search.children.train import train_child

    arch, seed, payload = job
    cpu, wall = time.process_time(), time.perf_counter()
    result = train_child(payload)
    return {"arch": arch, "seed": seed, "reward": result["reward"], "status": result["status"],
            "cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall}


def kendall_tau(a, b) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def signal_stats(table: list[list[float]], boot: int = 1000, rng_seed: int = 0) -> dict:
    """Signal and noise of a K x S table of rewards (architectures x seeds), for all architectures and for
    the top half by mean reward (see the module docstring for the definitions)."""
    import numpy as np

    x = np.asarray(table, dtype=float)
    top = np.argsort(-x.mean(axis=1), kind="stable")[: len(x) // 2]
    # a bootstrap resample whose rows are all alike has no Kendall tau (NaN, dropped), and a top half of
    # one architecture no spread (NaN): numbers, not warnings
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return {**_signal(x, boot, rng_seed), "top_half": _signal(x[np.sort(top)], boot, rng_seed)}


def _signal(x, boot: int, rng_seed: int) -> dict:
    import numpy as np

    k, s = x.shape
    means = x.mean(axis=1)
    noise_var = float(x.var(axis=1, ddof=1).mean())
    signal_var = max(0.0, float(means.var(ddof=1)) - noise_var / s)
    pairs = list(itertools.combinations(range(s), 2))

    def tau(rows):
        return float(np.mean([kendall_tau(x[rows, i], x[rows, j]) for i, j in pairs]))

    rng = np.random.default_rng(rng_seed)
    taus = [tau(rng.integers(0, k, k)) for _ in range(boot)]
    taus = [t for t in taus if np.isfinite(t)]
    ci = [float(np.percentile(taus, 5)), float(np.percentile(taus, 95))] if taus else [None, None]
    noise, signal = noise_var ** 0.5, signal_var ** 0.5
    return {"archs": k, "seeds": s, "signal_std": signal, "noise_std": noise,
            "ratio": signal / noise if noise > 0 else float("inf"), "across_std": float(means.std(ddof=1)),
            "tau": tau(np.arange(k)), "tau_ci90": ci,
            "arch_means": means.tolist(), "min": float(x.min()), "max": float(x.max())}


def print_stats(stats: dict) -> None:
    for what, st in (("all", stats), ("top half", stats["top_half"])):
        print(f"{what} ({st['archs']} architectures): signal {100 * st['signal_std']:.2f} points, seed noise "
              f"{100 * st['noise_std']:.2f} points, ratio {st['ratio']:.2f} (one seed); Kendall tau between seeds' "
              f"rankings {st['tau']:.3f} (90% bootstrap over architectures {st['tau_ci90'][0]:.2f}.."
              f"{st['tau_ci90'][1]:.2f})")


def recompute(path: Path) -> int:
    """Rewrite a result file's statistics from the rewards table it holds (no training)."""
    from common import write_json  # noqa: E402  (bench/common.py, beside this file)

    data = json.loads(path.read_text())
    for key in ("ratio", "within_std", "tau", "tau_ci90", "top_half"):
        data.pop(key, None)
    stats = signal_stats(data["rewards"])
    print_stats(stats)
    write_json(path, {**data, **stats, "recomputed_with": f"PYTHONPATH=src python bench/child_signal.py "
                                                          f"--recompute {path.relative_to(ROOT)}"})
    print(f"rewrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", nargs="?", default="quick-digits")
    p.add_argument("--archs", type=int, default=12, help="K random architectures (default 12)")
    p.add_argument("--seeds", type=int, default=3, help="S seeds per architecture (default 3)")
    p.add_argument("--workers", type=int, default=2, help="worker processes, one thread each (default 2)")
    p.add_argument("--arch-seed", type=int, default=0, help="seed of the architecture sample (default 0)")
    p.add_argument("--space", default="nasnet-a")
    p.add_argument("--out", help="JSON output (default bench/results/child_signal_<name>.json)")
    p.add_argument("--recompute", metavar="FILE", help="recompute FILE's statistics from its rewards; no training")
    args = p.parse_args(argv)
    if args.recompute:
        return recompute(Path(args.recompute).resolve())
    if args.archs < 3 or args.seeds < 2 or args.workers < 1:
        raise SystemExit("child_signal: needs --archs >= 3, --seeds >= 2, --workers >= 1")

    from nasnet.arch.space import get_space
    from nasnet.search.choices import DEFAULT_CHILD_FN

    name, child = child_config(args.config)
    space = get_space(args.space)
    import random

    rng = random.Random(args.arch_seed)
    genotypes = [str(space.sample(rng)) for _ in range(args.archs)]
    jobs = [(a, s, {"fn": DEFAULT_CHILD_FN, "genotype": g, "seed": 1000 + s, "device": "cpu", **child})
            for s in range(args.seeds) for a, g in enumerate(genotypes)]
    print(f"child {name}: {json.dumps(child)}; {args.archs} architectures x {args.seeds} seeds, "
          f"{args.workers} workers", file=sys.stderr)
    start_wall, start_load = time.perf_counter(), os.getloadavg()[0]
    with get_context("spawn").Pool(args.workers, initializer=_init_worker) as pool:
        results = pool.map(_run, jobs, chunksize=1)
    pool_wall = time.perf_counter() - start_wall
    failed = [r for r in results if r["status"] != "done"]
    if failed:
        print(f"{len(failed)} children did not finish (diverged); their reward counts as 0", file=sys.stderr)
    table = [[0.0] * args.seeds for _ in range(args.archs)]
    for r in results:
        table[r["arch"]][r["seed"]] = r["reward"] if r["reward"] is not None else 0.0
    stats = signal_stats(table)
    cpu = statistics.fmean(r["cpu_seconds"] for r in results)
    wall = statistics.fmean(r["wall_seconds"] for r in results)
    for a, row in enumerate(table):
        print(f"  arch {a:2d}: mean {statistics.fmean(row):.3f}  seeds " + " ".join(f"{v:.3f}" for v in row))
    print_stats(stats)
    print(f"per child: {cpu:.2f} s CPU, {wall:.2f} s wall in a worker; pool {pool_wall:.1f} s wall for "
          f"{len(jobs)} children = {pool_wall / len(jobs):.2f} s each with {args.workers} workers "
          f"(load average {start_load:.1f} at the start)")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"child_signal_{name}.json"
    from common import write_json  # noqa: E402  (bench/common.py, beside this file)

    write_json(out, {"name": name, "child": child, "genotypes": genotypes, "rewards": table, **stats,
                     "cpu_seconds_per_child": cpu, "wall_seconds_per_child": wall, "pool_wall_seconds": pool_wall,
                     "pool_wall_per_child": pool_wall / len(jobs), "workers": args.workers,
                     "load_average_at_start": start_load, "failed": len(failed),
                     "command": "PYTHONPATH=src python bench/child_signal.py " + " ".join(argv or sys.argv[1:])})
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
