"""Figure 6 at a user's scale: search strategies against random search on real child training (paper §4.4).

The paper's Figure 6 shows that its RL search beats random search after 20,000 children. Our users
can afford hundreds. This runs `nasnet compare` for every configuration a user could pick, with
several seeds and the same budget in child-epochs, and measures per run (docs/figure6.md):

- **the pick on test**: the run's pick (the winner of its top-2 stage) retrained with 3 fresh seeds
  and scored on digits' test split, which no selection reads (the search, the top-k stage and the
  choice of the pick use the 500 validation images); on the analytic reward, which has no test
  split, the pick's reward with fresh noise. What a user is handed, untouched by selection.
- **best of run** (the paper's measure, a maximum of noisy numbers), the **mean of the last 20**
  children (does the strategy concentrate on good cells?) and the child-epochs a run needed to reach
  random search's median final best.

Each configuration is compared with random search by a two-sided permutation test of the
difference of means over seeds (bench/stats.py; exact for 5 seeds against 5), Holm-adjusted over
the configurations compared, per measure, with 95 % bootstrap intervals; `power` states the
smallest p the design can give and the difference it detects with 80 % power. On digits, NASNet-A
retrained as the picks are (3 fresh seeds, test split) shows how much better a cell can be.

Two parts, each with random search, PPO at the paper's lr (3.5e-4, batches of 20), PPO and
REINFORCE at a small-budget setting (lr 0.005, batches of 10) and regularized evolution (P = 10,
S = 3), each with and without ASHA (rungs 1,3, eta 3; the strategy told each trial's first-rung
result, `--asha-tell first`):

- `real`: the default digits child (`nasnet search`'s own: N = 1, F0 = 8, 3 epochs of batch 64,
  500 held-out validation images; every child also scored on the 360 test images), 150
  child-epochs a run (50 children without ASHA), 5 seeds. A run takes minutes (median 280 s of wall
  time on 2 cores shared with other work; summary.json's wall_seconds), the 50 runs about 4 hours.
- `analytic`: the analytic reward (similarity to NASNet-A's cell) with Gaussian noise of std 0.025,
  emulated training (reward x (1 - exp(-epochs))), 900 child-epochs a run, 10 seeds, and a third
  run of the learning strategies with `--asha-tell every`. A run takes about a minute (median 48 s
  of wall time), the 130 runs 2 to 3 hours. Its limits: the reward is
  separable and additive (each of the 50 decisions adds 1/50 when it matches NASNet-A's), which a
  controller with one softmax per decision is built to solve; the learners' lr 0.005 was tuned on
  it; and its signal/noise (0.056 spread of random architectures' similarity against 0.025 of
  noise, 2.2) is the same among good cells as among bad ones, where the digits child's is 1.79 over
  all architectures but 0.72 within the better half (bench/child_signal.py).

Usage: python bench/figure6.py [--parts real,analytic] [--seeds S,...] [--runs runs/figure6]
                               [--out bench/results/figure6] [--smoke]
Runs that already finished are read, not rerun (`nasnet compare` continues a run directory).
Writes OUT/summary.json (per run and per configuration, with the tests and the power), OUT/curves.csv
(median and range over seeds on a grid of child-epochs) and OUT/figure6.png.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import bootstrap_ci, detectable_effect, holm, mean_std, permutation_test  # noqa: E402

STRATEGIES = ("random", "ppo", "ppo:lr=0.005:batch-size=10", "reinforce:lr=0.005:batch-size=10",
              "evolution:population=10:sample-size=3")
LEARNERS = STRATEGIES[2:]
STAGE = ["--top-k", "2", "--final-epochs", "6", "--pick-seeds", "3"]
ANALYTIC_CHILD = ["--child", "analytic", "--child-set", "noise=0.025", "--child-set", "epoch_scale=1",
                  "--epochs", "3", "--executor", "serial"]

# part -> (budget in child-epochs, default seeds, [(run group, nasnet compare arguments without --seeds /
# --run-dir)]). The real child also scores every network it trains on digits' test split (never read by a
# selection): the pick's retrainings, with fresh seeds, on images no choice has seen.
PARTS = {
    "real": (150, "0,1,2,3,4", [("real", ["--child-set", "test=true", "--strategies", ",".join(STRATEGIES),
                                          "--early-stop", "none,asha"])]),
    "analytic": (900, "0,1,2,3,4,5,6,7,8,9", [
        ("analytic", ANALYTIC_CHILD + ["--strategies", ",".join(STRATEGIES), "--early-stop", "none,asha"]),
        ("analytic-every", ANALYTIC_CHILD + ["--strategies", ",".join(LEARNERS), "--early-stop", "asha",
                                             "--asha-tell", "every"])]),
}
SMOKE = {"analytic": (60, "0,1", [("analytic", ANALYTIC_CHILD + [
    "--strategies", "random,ppo:lr=0.005:batch-size=10", "--early-stop", "none,asha"])])}
METRICS = ("best", "top5_mean", "last20_mean")
# the measures tested against random search: the pick on held-out data (test split; the analytic child has
# none, its retrainings draw fresh noise), the pick retrained on the validation images, best of run, the
# mean of the last 20 sampled (does the strategy learn?). Holm's correction runs over the configurations
# compared with random search, for each measure.
MEASURES = ("pick_test", "pick", "best", "last20")
GRID_POINTS = 60
BASELINE = "random"
ALPHA, POWER = 0.05, 0.8
REFERENCE_SEEDS = 3
PERMUTATIONS = 100_000


def run_compare(root: Path, budget: int, args: list[str], seeds: str) -> None:
    """One `nasnet compare` invocation (it skips what already finished in `root`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "nasnet", "compare", "--run-dir", str(root), "--seeds", seeds,
           "--epoch-budget", str(budget), *STAGE, *args, "--quiet"]
    print("$ nasnet " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def run_details(run_dir: Path) -> dict:
    """From a run's store: the pick's genotype, its retrainings' test accuracies (fresh seeds; None where the
    child reports none) and the run's wall seconds (first trial created to last result)."""
    from nasnet.search.run_dir import STORE_FILE, read_best
    from nasnet.search.store import Status, TrialStore

    pick = (read_best(run_dir) or {}).get("pick") or {}
    with TrialStore(run_dir / STORE_FILE, readonly=True) as store:
        trials, finals = store.trials(), store.finals()
    tests = [(f.metrics or {}).get("test_accuracy") for f in finals
             if f.repeat > 0 and f.trial_id == pick.get("trial") and f.status == Status.DONE]
    times = [t for r in trials + finals for t in (r.created_at, r.finished_at) if t is not None]
    return {"pick_genotype": pick.get("genotype"), "pick_tests": tests if tests and None not in tests else None,
            "wall_seconds": round(max(times) - min(times), 1) if times else None}


def read_runs(root: Path, suffix: str = "") -> tuple[list[dict], dict[tuple[str, int], list[dict]]]:
    """compare.json's runs (label + suffix as the configuration, with `run_details`) and compare.csv's curves
    per (config, seed)."""
    runs = json.loads((root / "compare.json").read_text())
    for r in runs:
        r["config"] = r["run"] + suffix
        r.update(run_details(Path(r["run_dir"])))
        r["pick_test"] = statistics.fmean(r["pick_tests"]) if r["pick_tests"] else None
    curves: dict[tuple[str, int], list[dict]] = {}
    with open(root / "compare.csv", newline="") as f:
        for row in csv.DictReader(f):
            point = {"epochs": int(row["epochs"])}
            point.update({m: float(row[m]) if row[m] not in ("", "None") else None for m in METRICS})
            curves.setdefault((row["run"] + suffix, int(row["seed"])), []).append(point)
    return runs, curves


def reference_on_test(run_dir: Path, seeds: int = REFERENCE_SEEDS) -> dict:
    """NASNet-A retrained as the picks are (the run's top-k payload: its epochs, size and data) with `seeds`
    fresh seeds, scored on the test split: what a known good cell scores under the same protocol."""
    from nasnet.arch.genotype import NASNET_A
    from nasnet.search.children.train import train_child
    from nasnet.search.payloads import child_payload, final_payload
    from nasnet.search.run_dir import load_run_config
    from nasnet.seeding import FINAL, derive_seed

    config = load_run_config(run_dir)
    first = child_payload(config, str(NASNET_A), 0)
    results = []
    for k in range(seeds):
        payload = {**final_payload(config, first, 0), "seed": derive_seed("nasnet-a reference", k, FINAL, bits=31),
                   "test": True, "device": "cpu"}
        payload["train"] = {**payload["train"], "threads": 1}     # as a search worker trains it
        results.append(train_child(payload))
    tests = [r["test_accuracy"] for r in results]
    return {"genotype": "nasnet-a", "seeds": seeds, "epochs": payload["train"]["epochs"], "test": tests,
            "test_mean": statistics.fmean(tests), "val": [r["reward"] for r in results],
            "val_mean": statistics.fmean(r["reward"] for r in results),
            "wall_seconds": round(sum(r["wall_seconds"] for r in results), 1)}


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


def describe(values: list[float | None]) -> dict:
    """Mean, std, median and 95 % bootstrap interval of the mean of the values present (None: none)."""
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "std": None, "median": None, "ci95": None}
    mean, std = mean_std(xs)
    return {"mean": mean, "std": std, "median": statistics.median(xs),
            "ci95": list(bootstrap_ci(xs)) if len(xs) > 1 else None}


def tests_against(values: dict[str, list], baseline: str) -> dict[str, tuple[float | None, float | None]]:
    """Per configuration: (permutation p against `baseline`, Holm-adjusted over the configurations compared)."""
    base = [v for v in values.get(baseline, []) if v is not None]
    raw = {}
    for config, vs in values.items():
        xs = [v for v in vs if v is not None]
        raw[config] = (permutation_test(xs, base, permutations=PERMUTATIONS)
                       if config != baseline and len(xs) > 1 and len(base) > 1 else None)
    adjusted = dict(zip(raw, holm(list(raw.values()))))
    return {c: (raw[c], adjusted[c]) for c in values}


def run_measures(r: dict) -> dict:
    """A run's value of each measure (None where it has none)."""
    return {"pick_test": r.get("pick_test"), "pick": r.get("pick_mean"), "best": r.get("top1"),
            "last20": r.get("last20")}


def reach_stats(rs: list[dict], curves: dict, config: str, level: float | None, budget: int) -> dict:
    """Child-epochs each run took to reach `level` (random search's median final best), and their median
    (a run that never got there counts as more than the budget)."""
    reach = [epochs_to_reach(curves[(config, r["seed"])], level) if level is not None else None for r in rs]
    reached = sorted(x for x in reach if x is not None)
    ranked = reached + [math.inf] * (len(reach) - len(reached))
    med = statistics.median(ranked) if ranked else None
    return {"random_median_best": level, "epochs_to_random_median": reach, "reached": len(reached),
            "epochs_to_random_median_median": None if med in (None, math.inf) else med,
            "goal_third": med is not None and med <= budget / 3}


def summarise(runs: list[dict], curves: dict, budget: int) -> dict:
    """Per configuration: each measure over seeds with its tests against random search (permutation p, Holm
    over the configurations), and the child-epochs to random search's median final best."""
    by_config: dict[str, list[dict]] = {}
    for r in runs:
        by_config.setdefault(r["config"], []).append(r)
    base_best = [r["top1"] for r in by_config.get(BASELINE, [])]
    level = statistics.median(base_best) if base_best else None
    values = {m: {c: [run_measures(r)[m] for r in rs] for c, rs in by_config.items()} for m in MEASURES}
    tests = {m: tests_against(values[m], BASELINE) for m in MEASURES}
    out = {}
    for config, rs in by_config.items():
        row = {"strategy": rs[0]["strategy"], "early_stop": rs[0]["early_stop"], "seeds": [r["seed"] for r in rs],
               "children_median": statistics.median([r["children"] or 0 for r in rs]),
               "pick_genotypes": [r.get("pick_genotype") for r in rs]}
        for m in MEASURES:
            if all(v is None for v in values[m][config]):
                continue
            row[m] = values[m][config]
            row.update({f"{m}_{k}": v for k, v in describe(values[m][config]).items()})
            row[f"{m}_p"], row[f"{m}_p_holm"] = tests[m][config]
        row.update(reach_stats(rs, curves, config, level, budget))
        out[config] = row
    primary = primary_measure(out)
    base_mean = out.get(BASELINE, {}).get(f"{primary}_mean")
    for row in out.values():
        mine = row.get(f"{primary}_mean")
        row["goal_pick"] = None if mine is None or base_mean is None else mine >= base_mean
    return out


def primary_measure(configs: dict) -> str:
    """The measure of what a user is handed: the pick on the test split where the child reports one."""
    return "pick_test" if any("pick_test" in c for c in configs.values()) else "pick"


def power(configs: dict, reference: dict | None = None) -> dict:
    """What the primary measure's test can detect at these seeds: the smallest p possible (raw and after
    Holm's first step), the difference of means detected with 80 % power at alpha 0.05 (two-sided
    permutation test, normal data with the pooled within-configuration std, by simulation), and with a
    reference (NASNet-A retrained alike) the seeds per configuration that its headroom over random search
    would need (normal approximation at Holm's first-step level)."""
    from statistics import NormalDist

    m = primary_measure(configs)
    groups = [g for c in configs.values() if m in c if len(g := [v for v in c[m] if v is not None]) > 1]
    if not groups:
        return {"measure": m, "seeds": 0}
    n = min(len(g) for g in groups)
    sd = math.sqrt(statistics.fmean(statistics.variance(g) for g in groups))
    tests = sum(1 for c, row in configs.items() if c != BASELINE and row.get(f"{m}_p") is not None)
    min_p = 2 / math.comb(2 * n, n)
    out = {"measure": m, "seeds": n, "pooled_sd": sd, "comparisons": tests, "alpha": ALPHA, "power": POWER,
           "min_p": min_p, "min_p_holm": min(1.0, tests * min_p),
           "detectable": detectable_effect(n, n, sd, ALPHA, POWER),
           "detectable_holm": detectable_effect(n, n, sd, ALPHA / max(1, tests), POWER)}
    if reference is not None and configs.get(BASELINE, {}).get(f"{m}_mean") is not None:
        headroom = reference["test_mean"] - configs[BASELINE][f"{m}_mean"]
        z = NormalDist().inv_cdf(1 - ALPHA / max(1, tests) / 2) + NormalDist().inv_cdf(POWER)
        out.update(reference=reference, headroom=headroom,
                   seeds_for_headroom=math.ceil(2 * (z * sd / headroom) ** 2) if headroom > 0 else None)
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


def plot_curves(ax, part: str, summary: dict, rows: list[list], metric: str, handles: dict) -> None:
    titles = {"best": "best reward so far", "top5_mean": "mean of the 5 best so far",
              "last20_mean": "mean of the last 20 sampled"}
    for config in summary:
        pts = [r for r in rows if r[0] == part and r[1] == config and r[2] == metric]
        if not pts:
            continue
        x = [p[3] for p in pts]
        (line,) = ax.plot(x, [p[4] for p in pts], label=label(config), linewidth=1.6, **style(config))
        handles.setdefault(label(config), line)
        ax.fill_between(x, [p[5] for p in pts], [p[6] for p in pts], color=style(config)["color"], alpha=0.08)
    ax.set_title(f"{part}: {titles[metric]}")
    ax.set_xlabel("child-epochs spent")
    ax.set_ylabel("reward (median over seeds; band: range)")
    ax.grid(alpha=0.3)


def plot_picks(ax, part: str, summary: dict, reference: dict | None) -> None:
    """Each seed's pick on the primary measure, with the mean and its 95 % bootstrap interval."""
    m = primary_measure(summary)
    configs = list(summary)
    for k, config in enumerate(configs):
        picks = [p for p in summary[config].get(m, []) if p is not None]
        ax.scatter(picks, [k] * len(picks), s=18, alpha=0.7, color=style(config)["color"])
        if picks:
            ax.plot([statistics.fmean(picks)] * 2, [k - 0.3, k + 0.3], color="black", linewidth=2)
        ci = summary[config].get(f"{m}_ci95")
        if ci:
            ax.plot(ci, [k, k], color="black", linewidth=0.8)
    if reference is not None:
        ax.axvline(reference["test_mean"], color="tab:red", linestyle="--", linewidth=1,
                   label=f"NASNet-A retrained alike ({reference['seeds']} seeds)")
        ax.legend(loc="lower left", fontsize=7)
    ax.set_yticks(range(len(configs)), [label(c) for c in configs], fontsize=8)
    ax.invert_yaxis()
    what = "test accuracy" if m == "pick_test" else "reward (fresh noise)"
    ax.set_title(f"{part}: each seed's pick retrained, {what}\n(bar: mean; line: 95 % bootstrap interval)")
    ax.set_xlabel(f"{what}, mean over the pick's fresh seeds")
    ax.grid(alpha=0.3)


def plot(parts: dict, rows: list[list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(parts)
    fig, axes = plt.subplots(len(names), len(METRICS) + 1, figsize=(22, 4.8 * len(names) + 1.4), squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": [1] * len(METRICS) + [1.25]})
    handles: dict = {}
    for i, part in enumerate(names):
        for j, metric in enumerate(METRICS):
            plot_curves(axes[i][j], part, parts[part]["configs"], rows, metric, handles)
        plot_picks(axes[i][-1], part, parts[part]["configs"], parts[part]["power"].get("reference"))
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=5, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_table(part: str, budget: int, configs: dict, pw: dict) -> None:
    m = primary_measure(configs)
    what = "on the test split" if m == "pick_test" else "retrained (fresh noise)"
    print(f"\n{part}: {budget} child-epochs a run. p: two-sided permutation test of the difference of means "
          f"against random search over seeds, then Holm-adjusted over the {pw['comparisons']} configurations "
          f"compared (per measure). Pick: {what}, 95 % bootstrap interval of the mean")
    head = f"{'configuration':44s} {'pick mean±std [95% CI]':>28s} {'p':>5s} {'Holm':>5s} {'best med':>8s} " \
           f"{'Holm':>5s} {'last-20':>7s} {'Holm':>5s} {'ep. to random med':>17s}"
    print(head)
    print("-" * len(head))
    for config, s in configs.items():
        reach = s["epochs_to_random_median_median"]
        seeds = f"({s['reached']}/{len(s['seeds'])})"
        ci = s.get(f"{m}_ci95") or [None, None]
        pick = f"{fmt(s[f'{m}_mean'])}±{fmt(s[f'{m}_std'])} [{fmt(ci[0])},{fmt(ci[1])}]"
        print(f"{config:44s} {pick:>28s} {fmt(s[f'{m}_p'], 2):>5s} {fmt(s[f'{m}_p_holm'], 2):>5s} "
              f"{fmt(s['best_median']):>8s} {fmt(s['best_p_holm'], 2):>5s} {fmt(s['last20_mean']):>7s} "
              f"{fmt(s['last20_p_holm'], 2):>5s} {(f'{reach:g} ' if reach is not None else 'never ') + seeds:>17s}")
    detect = {k: "none at any size" if pw[k] is None else f"{pw[k]:.4f}" for k in ("detectable", "detectable_holm")}
    print(f"power ({pw['seeds']} seeds a configuration, pooled std {pw['pooled_sd']:.4f}): smallest p possible "
          f"{pw['min_p']:.4f}, after Holm {pw['min_p_holm']:.3f}; difference detected with {POWER:.0%} power at "
          f"alpha {ALPHA}: {detect['detectable']} unadjusted, {detect['detectable_holm']} after Holm")
    if pw.get("reference"):
        ref = pw["reference"]
        print(f"NASNet-A retrained alike: test {ref['test_mean']:.4f} over {ref['seeds']} seeds "
              f"(headroom over random search's pick {pw['headroom']:+.4f}; seeds a configuration to detect it "
              f"after Holm: {pw['seeds_for_headroom']})")


RUN_KEYS = ("config", "seed", "children", "epochs", "top1", "top5", "last20", "pick_trial", "pick_genotype",
            "pick_rewards", "pick_mean", "pick_tests", "pick_test", "final_reward", "failed", "wall_seconds")


def run_part(part: str, spec: tuple, runs_root: Path, seeds: str | None) -> tuple[dict, list[list]]:
    """Run (or read) a part's comparisons and summarise them: (its summary.json entry, its curve rows)."""
    budget, default_seeds, groups = spec
    seeds = seeds or default_seeds
    runs, curves = [], {}
    for group, compare_args in groups:
        root = runs_root / group
        run_compare(root, budget, compare_args, seeds)
        r, c = read_runs(root, "-every" if group.endswith("-every") else "")
        runs += r
        curves.update(c)
    configs = summarise(runs, curves, budget)
    reference = None
    if primary_measure(configs) == "pick_test":
        print(f"NASNet-A retrained as the picks are, {REFERENCE_SEEDS} fresh seeds", file=sys.stderr, flush=True)
        reference = reference_on_test(Path(runs[0]["run_dir"]))
    pw = power(configs, reference)
    pw.update({k: (None if v == math.inf else v) for k, v in pw.items() if k.startswith("detectable")})
    grid = [budget * k / GRID_POINTS for k in range(GRID_POINTS + 1)]
    entry = {"budget_child_epochs": budget, "seeds": seeds, "commands": [
        f"nasnet compare --run-dir {runs_root / g} --seeds {seeds} --epoch-budget {budget} " + " ".join(STAGE + a)
        for g, a in groups], "run_wall_seconds": round(sum(r["wall_seconds"] or 0 for r in runs), 1),
        "configs": configs, "power": pw, "runs": [{k: r.get(k) for k in RUN_KEYS} for r in runs]}
    print_table(part, budget, configs, pw)
    return entry, curve_rows(part, list(configs), curves, grid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="real,analytic", help="comma-separated: real, analytic (default both)")
    p.add_argument("--seeds", help="seeds of every configuration (default: real 0-4, analytic 0-9)")
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
    from common import machine_info, write_json

    parts, rows, started = {}, [], time.time()
    for part in [n for n in names if n in table]:
        parts[part], part_rows = run_part(part, table[part], Path(args.runs), args.seeds)
        rows += part_rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", {"machine": machine_info(), "seconds": round(time.time() - started, 1),
                                      "smoke": args.smoke, "command": "python bench/figure6.py " + " ".join(
                                          argv if argv is not None else sys.argv[1:]), "parts": parts})
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["part", "config", "metric", "child_epochs", "median", "min", "max"])
        w.writerows([[*r[:3], round(r[3], 2), *(round(v, 5) for v in r[4:])] for r in rows])
    plot(parts, rows, out / "figure6.png")
    print(f"\nwrote {out / 'summary.json'}, {out / 'curves.csv'}, {out / 'figure6.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
