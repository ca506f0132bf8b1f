"""Figure 6 at a user's scale: search strategies against random search on real child training (paper §4.4).

The paper's Figure 6 shows that its RL search beats random search after 20,000 children. Our users
can afford hundreds. This runs `nasnet compare` for every configuration a user could pick, with
several seeds and the same budget in child-epochs, and asks two questions of the results:

- **Best of run** (the paper's measure): the best reward a run saw, compared with random search's
  by a two-sided Mann-Whitney U test over seeds, and the child-epochs a run needed to reach random
  search's median final best (the "one third of the budget" goal).
- **What a user is handed**: each run's pick (the winner of its top-k stage) retrained with fresh
  seeds, a number no selection has touched. The maximum of noisy rewards rewards luck; this does not.

Two parts, each with random search, PPO at the paper's lr (3.5e-4, batches of 20), PPO and
REINFORCE at a small-budget setting (lr 0.005, batches of 10) and regularized evolution (P = 10,
S = 3), each with and without ASHA (rungs 1,3, eta 3; the strategy told each trial's first-rung
result, `--asha-tell first`):

- `real`: the default digits child (`nasnet search`'s own: N = 1, F0 = 8, 3 epochs of batch 64,
  500 held-out images), 150 child-epochs a run (50 children without ASHA), top-2 stage of 6 epochs,
  the pick retrained with 2 more seeds. About an hour on 2 cores.
- `analytic`: the analytic reward (similarity to NASNet-A's cell) with Gaussian noise of std 0.025
  (the spread of random architectures' similarity is 0.056, so signal/noise ~2.2, as measured for
  the digits child by bench/child_signal.py), emulated training (reward x (1 - exp(-epochs))),
  900 child-epochs a run, and a third run of the learning strategies with `--asha-tell every`.
  A minute.

Usage: python bench/figure6.py [--parts real,analytic] [--seeds 0,1,2,3,4] [--runs runs/figure6]
                               [--out bench/results/figure6] [--smoke]
Runs that already finished are read, not rerun (`nasnet compare` continues a run directory).
Writes OUT/summary.json (per run and per configuration), OUT/curves.csv (median and range over
seeds on a grid of child-epochs) and OUT/figure6.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

STRATEGIES = ("random", "ppo", "ppo:lr=0.005:batch-size=10", "reinforce:lr=0.005:batch-size=10",
              "evolution:population=10:sample-size=3")
LEARNERS = STRATEGIES[2:]
STAGE = ["--top-k", "2", "--final-epochs", "6", "--pick-seeds", "2"]
ANALYTIC_CHILD = ["--child", "analytic", "--child-set", "noise=0.025", "--child-set", "epoch_scale=1",
                  "--epochs", "3", "--executor", "serial"]

# part -> (budget in child-epochs, [(run group, nasnet compare arguments without --seeds / --run-dir)])
PARTS = {
    "real": (150, [("real", ["--strategies", ",".join(STRATEGIES), "--early-stop", "none,asha"])]),
    "analytic": (900, [("analytic", ANALYTIC_CHILD + ["--strategies", ",".join(STRATEGIES),
                                                     "--early-stop", "none,asha"]),
                       ("analytic-every", ANALYTIC_CHILD + ["--strategies", ",".join(LEARNERS),
                                                           "--early-stop", "asha", "--asha-tell", "every"])]),
}
SMOKE = {"analytic": (60, [("analytic", ANALYTIC_CHILD + ["--strategies", "random,ppo:lr=0.005:batch-size=10",
                                                          "--early-stop", "none,asha"])])}
METRICS = ("best", "top5_mean", "last20_mean")
GRID_POINTS = 60
BASELINE = "random"


def run_compare(root: Path, budget: int, args: list[str], seeds: str) -> None:
    """One `nasnet compare` invocation (it skips what already finished in `root`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "nasnet", "compare", "--run-dir", str(root), "--seeds", seeds,
           "--epoch-budget", str(budget), *STAGE, *args, "--quiet"]
    print("$ nasnet " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def read_runs(root: Path, suffix: str = "") -> tuple[list[dict], dict[tuple[str, int], list[dict]]]:
    """compare.json's runs (label + suffix as the configuration) and compare.csv's curves per (config, seed)."""
    runs = json.loads((root / "compare.json").read_text())
    for r in runs:
        r["config"] = r["run"] + suffix
    curves: dict[tuple[str, int], list[dict]] = {}
    with open(root / "compare.csv", newline="") as f:
        for row in csv.DictReader(f):
            point = {"epochs": int(row["epochs"])}
            point.update({m: float(row[m]) if row[m] not in ("", "None") else None for m in METRICS})
            curves.setdefault((row["run"] + suffix, int(row["seed"])), []).append(point)
    return runs, curves


def on_grid(curve: list[dict], metric: str, grid: list[float]) -> list[float | None]:
    """The curve's value at each grid point: its last point with at most that many child-epochs."""
    out, i, value = [], 0, None
    for g in grid:
        while i < len(curve) and curve[i]["epochs"] <= g:
            value = curve[i][metric] if curve[i][metric] is not None else value
            i += 1
        out.append(value)
    return out


def epochs_to_reach(curve: list[dict], level: float) -> int | None:
    """Child-epochs spent when the best reward so far first reached `level` (None: never)."""
    for p in curve:
        if p["best"] is not None and p["best"] >= level:
            return p["epochs"]
    return None


def mann_whitney(a: list[float], b: list[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value (exact for small samples without ties), None if undefined."""
    from scipy.stats import mannwhitneyu

    a, b = [x for x in a if x is not None], [x for x in b if x is not None]
    if len(a) < 2 or len(b) < 2 or len(set(a + b)) < 2:
        return None
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict], curves: dict, budget: int) -> dict:
    """Per configuration: best-of-run and pick over seeds, tests against random search, epochs to its median."""
    by_config: dict[str, list[dict]] = {}
    for r in runs:
        by_config.setdefault(r["config"], []).append(r)
    base = by_config.get(BASELINE, [])
    base_best = [r["top1"] for r in base]
    base_picks = [r["pick_mean"] for r in base]
    level = statistics.median(base_best) if base_best else None
    out = {}
    for config, rs in by_config.items():
        best = [r["top1"] for r in rs]
        picks = [r["pick_mean"] for r in rs]
        reach = [epochs_to_reach(curves[(config, r["seed"])], level) if level is not None else None for r in rs]
        reached = sorted(x for x in reach if x is not None)
        # the median over seeds, a run that never got there counting as "more than the budget"
        ranked = reached + [math.inf] * (len(reach) - len(reached))
        med_reach = statistics.median(ranked) if ranked else None
        pick_mean, pick_std = _mean_std(picks)
        base_pick_mean = _mean_std(base_picks)[0]
        out[config] = {
            "strategy": rs[0]["strategy"], "early_stop": rs[0]["early_stop"], "seeds": [r["seed"] for r in rs],
            "best": best, "best_median": statistics.median(best), "best_p_vs_random": mann_whitney(best, base_best),
            "top5_median": statistics.median([r["top5"] for r in rs if r["top5"] is not None] or [math.nan]),
            "last20_median": statistics.median([r["last20"] for r in rs if r["last20"] is not None] or [math.nan]),
            "children_median": statistics.median([r["children"] or 0 for r in rs]),
            "pick": picks, "pick_mean": pick_mean, "pick_std": pick_std,
            "pick_p_vs_random": mann_whitney(picks, base_picks),
            "random_median_best": level, "epochs_to_random_median": reach, "reached": len(reached),
            "epochs_to_random_median_median": None if med_reach in (None, math.inf) else med_reach,
            "goal_pick": None if pick_mean is None or base_pick_mean is None else pick_mean >= base_pick_mean,
            "goal_third": med_reach is not None and med_reach <= budget / 3,
        }
    return out


def curve_rows(part: str, configs: list[str], curves: dict, grid: list[float]) -> list[list]:
    """Median, min and max over seeds of each metric at each grid point."""
    rows = []
    for config in configs:
        seeds = sorted(s for c, s in curves if c == config)
        for metric in METRICS:
            values = [on_grid(curves[(config, s)], metric, grid) for s in seeds]
            for j, g in enumerate(grid):
                vs = [v[j] for v in values if v[j] is not None]
                if len(vs) == len(seeds):
                    rows.append([part, config, metric, g, statistics.median(vs), min(vs), max(vs)])
    return rows


def style(config: str) -> dict:
    colours = {"random": "0.35", "ppo": "tab:blue", "ppo-batchsize10-lr0.005": "tab:cyan",
               "reinforce-batchsize10-lr0.005": "tab:orange", "evolution-population10-samplesize3": "tab:green"}
    base = config.removesuffix("-every").removesuffix("-asha")
    return {"color": colours.get(base, "tab:purple"),
            "linestyle": ":" if config.endswith("-every") else "--" if config.endswith("-asha") else "-"}


def label(config: str) -> str:
    """A configuration's name as the figure shows it (the tables keep `nasnet compare`'s run names)."""
    return (config.replace("-batchsize10-lr0.005", " (lr 0.005, batch 10)")
            .replace("-population10-samplesize3", " (P 10, S 3)")
            .replace("-asha", " + ASHA").replace("-every", ", told every rung"))


def plot(parts: dict, rows: list[list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(parts)
    fig, axes = plt.subplots(len(names), len(METRICS) + 1, figsize=(22, 4.8 * len(names) + 1.4), squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": [1] * len(METRICS) + [1.25]})
    titles = {"best": "best reward so far", "top5_mean": "mean of the 5 best so far",
              "last20_mean": "mean of the last 20 sampled"}
    handles = {}
    for i, part in enumerate(names):
        summary = parts[part]["configs"]
        for j, metric in enumerate(METRICS):
            ax = axes[i][j]
            for config in summary:
                pts = [r for r in rows if r[0] == part and r[1] == config and r[2] == metric]
                if not pts:
                    continue
                x = [p[3] for p in pts]
                (line,) = ax.plot(x, [p[4] for p in pts], label=label(config), linewidth=1.6, **style(config))
                handles.setdefault(label(config), line)
                ax.fill_between(x, [p[5] for p in pts], [p[6] for p in pts], color=style(config)["color"],
                                alpha=0.08)
            ax.set_title(f"{part}: {titles[metric]}")
            ax.set_xlabel("child-epochs spent")
            ax.set_ylabel("reward (median over seeds; band: range)")
            ax.grid(alpha=0.3)
        ax = axes[i][-1]
        configs = list(summary)
        for k, config in enumerate(configs):
            picks = [p for p in summary[config]["pick"] if p is not None]
            ax.scatter(picks, [k] * len(picks), s=18, alpha=0.7, color=style(config)["color"])
            if picks:
                ax.plot([statistics.fmean(picks)] * 2, [k - 0.3, k + 0.3], color="black", linewidth=2)
        ax.set_yticks(range(len(configs)), [label(c) for c in configs], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{part}: each seed's pick, retrained (bar: mean)")
        ax.set_xlabel("retrained reward (mean over fresh seeds)")
        ax.grid(alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=5, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_table(part: str, budget: int, configs: dict) -> None:
    print(f"\n{part}: {budget} child-epochs a run; p: two-sided Mann-Whitney U against random search over seeds")
    head = f"{'configuration':40s} {'best med':>8s} {'p':>6s} {'pick mean±std':>15s} {'p':>6s} " \
           f"{'ep. to random med':>17s} {'children':>8s}"
    print(head)
    print("-" * len(head))
    for config, s in configs.items():
        reach = s["epochs_to_random_median_median"]
        reach_text = f"{reach:g} ({s['reached']}/{len(s['seeds'])})" if reach is not None else \
            f"never ({s['reached']}/{len(s['seeds'])})"
        pick = f"{fmt(s['pick_mean'])}±{fmt(s['pick_std'])}"
        print(f"{config:40s} {fmt(s['best_median']):>8s} {fmt(s['best_p_vs_random'], 2):>6s} {pick:>15s} "
              f"{fmt(s['pick_p_vs_random'], 2):>6s} {reach_text:>17s} {s['children_median']:>8g}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="real,analytic", help="comma-separated: real, analytic (default both)")
    p.add_argument("--seeds", default="0,1,2,3,4", help="seeds of every configuration (default 0,1,2,3,4)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "figure6"), help="where the run directories go")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "figure6"), help="where the results go")
    p.add_argument("--smoke", action="store_true", help="a few seconds: the analytic part, two strategies, "
                                                        "a 60 child-epoch budget")
    args = p.parse_args(argv)
    table = SMOKE if args.smoke else PARTS
    names = [n.strip() for n in args.parts.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        p.error(f"unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)})")
    names = [n for n in names if n in table]
    from common import machine_info, write_json

    parts, rows, started = {}, [], time.time()
    for part in names:
        budget, groups = table[part]
        runs, curves = [], {}
        for group, compare_args in groups:
            root = Path(args.runs) / group
            run_compare(root, budget, compare_args, args.seeds)
            r, c = read_runs(root, "-every" if group.endswith("-every") else "")
            runs += r
            curves.update(c)
        configs = summarise(runs, curves, budget)
        grid = [budget * k / GRID_POINTS for k in range(GRID_POINTS + 1)]
        rows += curve_rows(part, list(configs), curves, grid)
        parts[part] = {"budget_child_epochs": budget, "commands": [
            f"nasnet compare --run-dir {Path(args.runs) / g} --seeds {args.seeds} --epoch-budget {budget} "
            + " ".join(STAGE + a) for g, a in groups], "configs": configs,
            "runs": [{k: r.get(k) for k in ("config", "seed", "children", "epochs", "top1", "top5", "last20",
                                            "pick_trial", "pick_rewards", "pick_mean", "final_reward", "failed")}
                     for r in runs]}
        print_table(part, budget, configs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", {"machine": machine_info(), "seconds": round(time.time() - started, 1),
                                      "seeds": args.seeds, "smoke": args.smoke, "parts": parts})
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["part", "config", "metric", "child_epochs", "median", "min", "max"])
        w.writerows([[*r[:3], round(r[3], 2), *(round(v, 5) for v in r[4:])] for r in rows])
    plot(parts, rows, out / "figure6.png")
    print(f"\nwrote {out / 'summary.json'}, {out / 'curves.csv'}, {out / 'figure6.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
