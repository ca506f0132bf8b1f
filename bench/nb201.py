"""The search strategies against NAS-Bench-201's ground truth: every cell of the space was trained, so a search
costs lookups and its pick can be scored on test data that no selection saw (docs/nb201.md).

Each configuration runs over many seeds. A run asks its strategy for cells and tells it the reward the
`nb201` child would return (one training run's validation accuracy, or with `--child-set reward=mean`
the seed mean), through the same strategy code `nasnet search` runs, without the store and the
executor (tests/test_nb201.py checks that the search picks the same cell for the same seed). The pick
at budget B is the cell with the best reward among the first B queries (ties: the earliest), as
`nasnet search` picks; what is reported is its test accuracy (seed mean), never used to select.

A strategy's first k proposals do not depend on the budget it was given (no strategy knows it), so each
run queries max(budgets) cells once and the pick at every smaller budget is read off its prefix.

Per configuration and budget: the mean, standard deviation and 95 % bootstrap interval of the picks'
test accuracy over seeds, the regret (the dataset's best test accuracy minus the mean), the picks' mean
validation accuracy (seed mean), the mean number of distinct cells queried, and the two-sided
permutation p-value of the difference from random search with Holm's correction over every
comparison of the invocation. Also the incumbent's test accuracy after every query (median and
quartiles over seeds) as a CSV and a figure.

    python bench/nb201.py --dataset cifar10 --budgets 50,100,150,300 --seeds 200 --json bench/results/nb201/cifar10.json
    python bench/nb201.py --dataset cifar100 --budgets 150 --seeds 200 --strategies random,recommended --json OUT

Configurations (`--strategies`, comma-separated): the names in CONFIGS, `recommended` (`nasnet search`'s
default strategy, the recommendation of docs/nb201.md), or a variant as `nasnet compare` writes it ("ppo:lr=0.01:batch-size=5"). One
process, one torch thread: a 300-query PPO run takes about 2 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, describe, machine_info  # noqa: E402
from stats import bootstrap_ci, holm, mean_std, permutation_test  # noqa: E402

from nasnet.arch.space import get_space  # noqa: E402
from nasnet.search.children.nb201 import DATASETS, REWARDS, cell_index, load_table  # noqa: E402
from nasnet.search.compare import parse_variant  # noqa: E402
from nasnet.search.config import StrategyConfig  # noqa: E402
from nasnet.search.strategies import make_strategy  # noqa: E402

# The configurations compared. The settings of ppo, reinforce and evolution, and the recommendation, were
# chosen on CIFAR-10 with seeds 1000-1099 (bench/results/nb201/tuning.md), never on the seeds (0-199) or the
# datasets reported; they are nasnet.search.defaults.TUNED_SETTINGS and SEARCH_STRATEGY, which a test checks.
CONFIGS = {
    "random": "random",
    "ppo-paper": "ppo:lr=0.00035:batch-size=20:entropy-weight=0.00001",
    "ppo": "ppo:lr=0.005:batch-size=5:entropy-weight=0.003",
    "reinforce": "reinforce:lr=0.01:batch-size=5:entropy-weight=0.01",
    "evolution": "evolution:population=10:sample-size=5",
    "local": "local",
}
RECOMMENDED = "evolution"
DEFAULT_STRATEGIES = "random,ppo-paper,ppo,reinforce,evolution,local"
RESULTS = ROOT / "bench" / "results" / "nb201"


def strategy_config(spec: str) -> StrategyConfig:
    variant = parse_variant(CONFIGS.get(spec, spec))
    return StrategyConfig(name=variant.strategy, **variant.options)


def run_trace(config: StrategyConfig, seed: int, queries: int, table, reward: str) -> dict[str, np.ndarray]:
    """One search of `queries` lookups: per query, the reward told, the cell's seed-mean validation and test
    accuracy (percent) and its row."""
    space = get_space("nb201")
    strategy = make_strategy(space.decision_sizes(), config, seed, space.decision_roles())
    column = table.column(reward)
    rows = np.empty(queries, dtype=np.int64)
    told = np.empty(queries)
    for q in range(queries):
        proposal = strategy.ask()
        rows[q] = cell_index(proposal.decisions)
        told[q] = float(column[rows[q]]) / 100          # what the nb201 child returns as the reward
        strategy.tell(proposal, told[q])
    return {"reward": told, "val": table.val_mean[rows].astype(float), "test": table.test_mean[rows].astype(float),
            "rows": rows}


def picks(trace: dict[str, np.ndarray], budget: int) -> tuple[float, float, int]:
    """(test, validation accuracy of the pick, distinct cells) after the first `budget` queries."""
    best = int(np.argmax(trace["reward"][:budget]))          # argmax takes the first of equal rewards
    return float(trace["test"][best]), float(trace["val"][best]), len(set(trace["rows"][:budget].tolist()))


def incumbent_curve(trace: dict[str, np.ndarray]) -> np.ndarray:
    """The test accuracy of the best-reward cell after each query."""
    out, best, test = np.empty(len(trace["reward"])), -np.inf, np.nan
    for q, (r, t) in enumerate(zip(trace["reward"], trace["test"])):
        if r > best:
            best, test = r, t
        out[q] = test
    return out


def run_config(spec: str, seeds: list[int], budgets: list[int], table, reward: str) -> dict:
    config = strategy_config(spec)
    start = time.perf_counter()
    tests, vals, unique = ({b: [] for b in budgets} for _ in range(3))
    curves = []
    for seed in seeds:
        trace = run_trace(config, seed, max(budgets), table, reward)
        for b in budgets:
            t, v, u = picks(trace, b)
            tests[b].append(t)
            vals[b].append(v)
            unique[b].append(u)
        curves.append(incumbent_curve(trace))
    return {"spec": CONFIGS.get(spec, spec), "strategy": dataclasses.asdict(config), "seconds": time.perf_counter() - start,
            "tests": tests, "vals": vals, "unique": unique, "curve": np.array(curves)}


def summarise(runs: dict[str, dict], budgets: list[int], optimum: float, permutations: int) -> dict:
    """Per configuration and budget: the statistics of the module doc (p-values against "random")."""
    out, tests = {}, []
    for name, run in runs.items():
        out[name] = {"spec": run["spec"], "seconds": round(run["seconds"], 1), "budgets": {}}
        for b in budgets:
            x = run["tests"][b]
            mean, std = mean_std(x)
            out[name]["budgets"][str(b)] = {
                "mean": mean, "std": std, "ci95": bootstrap_ci(x, seed=b), "median": float(np.median(x)),
                "regret": optimum - mean, "val_mean": mean_std(run["vals"][b])[0],
                "unique_cells": float(np.mean(run["unique"][b])), "picks": [round(v, 4) for v in x]}
            if name != "random" and "random" in runs:
                p = permutation_test(x, runs["random"]["tests"][b], permutations=permutations, seed=b)
                out[name]["budgets"][str(b)]["p_vs_random"] = p
                tests.append((name, str(b)))
    for (name, b), adjusted in zip(tests, holm([out[n]["budgets"][k]["p_vs_random"] for n, k in tests])):
        out[name]["budgets"][b]["p_holm"] = adjusted
    return out


def dump_json(obj) -> str:
    """JSON with one level of indentation, every list of numbers on one line (the per-seed picks)."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text) + "\n"


def write_curves(runs: dict[str, dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config", "queries", "median", "q25", "q75", "mean"])
        for name, run in runs.items():
            c = run["curve"]
            for q in range(c.shape[1]):
                col = c[:, q]
                w.writerow([name, q + 1, *(round(float(v), 4) for v in (np.median(col), np.quantile(col, 0.25),
                                                                        np.quantile(col, 0.75), col.mean()))])


def plot(runs: dict[str, dict], title: str, optimum: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    for name, run in runs.items():
        c = run["curve"]
        x = np.arange(1, c.shape[1] + 1)
        line, = ax.plot(x, np.median(c, axis=0), label=name, lw=1.4)
        ax.fill_between(x, np.quantile(c, 0.25, axis=0), np.quantile(c, 0.75, axis=0), color=line.get_color(),
                        alpha=0.15, lw=0)
    ax.axhline(optimum, color="black", ls=":", lw=1, label=f"optimum {optimum:.2f}")
    low = min(float(np.quantile(run["curve"][:, 9], 0.25)) for run in runs.values())
    ax.set_ylim(max(low, optimum - 6), optimum + 0.3)
    ax.set_xlabel("queries (cells evaluated)")
    ax.set_ylabel("test accuracy of the pick (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(summary: dict, budgets: list[int]) -> None:
    print(f"{'config':<34}" + "".join(f"{b:>26}" for b in budgets))
    for name, s in summary.items():
        cells = []
        for b in budgets:
            r = s["budgets"][str(b)]
            p = f" p={r['p_holm']:.1g}" if "p_holm" in r else ""
            cells.append(f"{r['mean']:.2f} ± {r['std']:.2f}{p}")
        print(f"{name:<34}" + "".join(f"{c:>26}" for c in cells))


def ceiling(path: Path) -> dict:
    """What each reward can tell apart at best: the test accuracy of the cell an exhaustive search would pick
    (all 15,625 queried) and the mean test accuracy of the 10 cells it ranks highest, per dataset and reward."""
    out = {}
    for dataset in DATASETS:
        table = load_table(dataset)
        for reward in REWARDS:
            order = np.argsort(-table.column(reward), kind="stable")
            out[f"{dataset}/{reward}"] = {"best_by_reward": float(table.test_mean[order[0]]),
                                          "top10_by_reward_mean": float(table.test_mean[order[:10]].mean()),
                                          "optimum": table.best_test}
    path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def compare_stats(path: Path) -> dict:
    """A `nasnet compare` run's strategies against random search, seed by seed (its compare.json): the mean
    best child and mean of the last 20 children, exact permutation p-values, Holm over every comparison."""
    runs: dict[str, dict[int, dict]] = {}
    for row in json.loads(path.read_text()):
        runs.setdefault(row["run"], {})[row["seed"]] = row
    rows, tests = {}, []
    for name, by_seed in runs.items():
        rows[name] = {"seeds": sorted(by_seed)}
        for metric in ("top1", "last20"):
            values = [by_seed[k][metric] for k in sorted(by_seed)]
            rows[name][metric] = {"values": values, "mean": float(np.mean(values))}
            if name != "random":
                rows[name][metric]["p_vs_random"] = permutation_test(values, [runs["random"][k][metric]
                                                                               for k in sorted(by_seed)])
                tests.append((name, metric))
    for (name, metric), p in zip(tests, holm([rows[n][m]["p_vs_random"] for n, m in tests])):
        rows[name][metric]["p_holm"] = p
    return rows


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cifar10", choices=DATASETS)
    p.add_argument("--budgets", default="50,100,150,300", help="comma-separated numbers of queries")
    p.add_argument("--seeds", type=int, default=200, help="runs per configuration (seeds seed-start, +1, ...)")
    p.add_argument("--seed-start", type=int, default=0, help="the first seed (the tuning runs used 1000)")
    p.add_argument("--strategies", default=DEFAULT_STRATEGIES, help="comma-separated configurations (see the doc)")
    p.add_argument("--child-set", action="append", default=[], metavar="reward=single|mean",
                   help="as nasnet search: reward=mean rewards the seed-mean validation accuracy")
    p.add_argument("--permutations", type=int, default=100_000, help="random relabellings per permutation test")
    p.add_argument("--json", type=Path, help="write the summary here (default: RESULTS/DATASET[-mean].json)")
    p.add_argument("--curves", type=Path, help="write the incumbent curves (CSV) and their figure (.png beside it)")
    p.add_argument("--compare-stats", type=Path, nargs=2, metavar=("COMPARE_JSON", "OUT"),
                   help="only test a nasnet compare run's strategies against random search (`compare_stats`)")
    p.add_argument("--ceiling", type=Path, metavar="JSON", help="only write what each reward can tell apart at best "
                                                                "(see `ceiling`) to JSON")
    args = p.parse_args(argv)
    args.reward = "single"
    for item in args.child_set:
        key, _, value = item.partition("=")
        if key != "reward" or value not in REWARDS:
            p.error(f"--child-set: only reward={'|'.join(REWARDS)} applies to this benchmark, got {item!r}")
        args.reward = value
    args.budgets = sorted({int(b) for b in args.budgets.split(",")})
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    args = parse_args(argv)
    if args.compare_stats:
        result = compare_stats(args.compare_stats[0])
        args.compare_stats[1].write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return 0
    if args.ceiling:
        print(json.dumps(ceiling(args.ceiling), indent=1))
        return 0
    names = [RECOMMENDED if s == "recommended" else s for s in args.strategies.split(",")]
    for spec in names:
        strategy_config(spec)          # a bad name fails before any run
    table = load_table(args.dataset)
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    info = machine_info()
    print(f"{args.dataset}, reward {args.reward}: {len(seeds)} seeds, budgets {args.budgets}; {describe(info)}",
          file=sys.stderr)
    runs = {}
    for spec in names:
        runs[spec] = run_config(spec, seeds, args.budgets, table, args.reward)
        print(f"  {spec}: {runs[spec]['seconds']:.0f} s", file=sys.stderr)
    summary = summarise(runs, args.budgets, table.best_test, args.permutations)
    print_table(summary, args.budgets)
    suffix = "" if args.reward == "single" else "-mean"
    out = args.json or RESULTS / f"{args.dataset}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    protocol = {"dataset": args.dataset, "reward": args.reward, "budgets": args.budgets, "seeds": [seeds[0], seeds[-1]],
                "optimum_test": table.best_test, "reported": "test accuracy (seed mean, %) of the cell with the best "
                "reward among the first B queries", "test": "two-sided permutation test of the mean against random "
                f"search ({args.permutations} relabellings), Holm-adjusted over the comparisons of this file",
                "command": "python bench/nb201.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out.write_text(dump_json({"protocol": protocol, "machine": info, "configs": summary}))
    if args.curves:
        write_curves(runs, args.curves)
        reward = "one seed's" if args.reward == "single" else "seed-mean"
        plot(runs, f"NAS-Bench-201 {args.dataset}: reward {reward} validation accuracy; median and quartiles of "
                   f"{len(seeds)} seeds", table.best_test, args.curves.with_suffix(".png"))
    print(f"wrote {out}" + (f" and {args.curves}" if args.curves else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
