"""bench/figure6.py: its statistics against hand computations, and a smoke run end to end."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import figure6  # noqa: E402


def test_curves_on_a_grid_and_epochs_to_reach():
    curve = [{"epochs": 3, "best": 0.2, "top5_mean": None, "last20_mean": 0.2},
             {"epochs": 6, "best": 0.5, "top5_mean": None, "last20_mean": 0.35},
             {"epochs": 7, "best": 0.5, "top5_mean": 0.3, "last20_mean": 0.3},
             {"epochs": 12, "best": 0.9, "top5_mean": 0.6, "last20_mean": 0.4}]
    grid = [0, 3, 5, 6, 10, 12, 20]
    assert figure6.on_grid(curve, "best", grid) == [None, 0.2, 0.2, 0.5, 0.5, 0.9, 0.9]
    assert figure6.on_grid(curve, "top5_mean", grid) == [None, None, None, None, 0.3, 0.6, 0.6]
    assert figure6.epochs_to_reach(curve, 0.5) == 6
    assert figure6.epochs_to_reach(curve, 0.9) == 12
    assert figure6.epochs_to_reach(curve, 0.95) is None


def test_summary_against_random_search():
    def run(config, seed, top1, pick, test):
        return {"config": config, "run": config, "strategy": config.split("-")[0], "early_stop": "none",
                "seed": seed, "top1": top1, "top5": top1, "last20": top1, "children": 10, "pick_mean": pick,
                "pick_test": test}

    runs = [run("random", s, b, p, t) for s, b, p, t in ((0, 0.5, 0.4, 0.5), (1, 0.6, 0.5, 0.6), (2, 0.7, 0.45, 0.7))]
    runs += [run("ppo", s, b, p, t) for s, b, p, t in ((0, 0.8, 0.6, 0.6), (1, 0.9, 0.7, 0.7), (2, 0.75, 0.65, 0.8))]
    # random's median final best is 0.6: ppo seeds reach it at 4, 2 and 9 child-epochs; random seed 0 never
    curves = {("random", 0): [{"epochs": 30, "best": 0.5}], ("random", 1): [{"epochs": 27, "best": 0.6}],
              ("random", 2): [{"epochs": 10, "best": 0.55}, {"epochs": 20, "best": 0.7}],
              ("ppo", 0): [{"epochs": 4, "best": 0.8}], ("ppo", 1): [{"epochs": 2, "best": 0.61}],
              ("ppo", 2): [{"epochs": 3, "best": 0.3}, {"epochs": 9, "best": 0.75}]}
    s = figure6.summarise(runs, curves, budget=30)
    assert s["ppo"]["best_median"] == 0.8 and s["random"]["best_median"] == 0.6
    assert s["ppo"]["epochs_to_random_median"] == [4, 2, 9] and s["ppo"]["epochs_to_random_median_median"] == 4
    assert s["random"]["epochs_to_random_median"] == [None, 27, 20]
    assert s["random"]["epochs_to_random_median_median"] == 27   # median of (20, 27, never)
    # best and pick completely separated, 3 against 3: 2/20; one comparison, so Holm changes nothing
    assert s["ppo"]["best_p"] == pytest.approx(0.1) and s["ppo"]["pick_p_holm"] == pytest.approx(0.1)
    # on test, {0.6, 0.7, 0.8} against {0.5, 0.6, 0.7}: of the 20 splits of the six values, 5 give a
    # 3-sum >= 2.1 (0.8 with 0.6 + 0.7 four ways, or with 0.7 + 0.7) and 5 mirror them (<= 1.8): p = 10/20
    assert s["ppo"]["pick_test_p"] == pytest.approx(0.5) and s["random"]["pick_test_p"] is None
    assert s["ppo"]["pick_mean"] == pytest.approx(0.65) and s["ppo"]["pick_std"] == pytest.approx(0.05)
    assert s["ppo"]["pick_test_mean"] == pytest.approx(0.7)
    lo, hi = s["ppo"]["pick_test_ci95"]
    assert 0.6 - 1e-9 <= lo < 0.7 < hi <= 0.8 + 1e-9     # the means of resamples lie within the range
    assert s["ppo"]["goal_pick"] and s["ppo"]["goal_third"]      # goal_pick: on test, the primary measure
    assert s["random"]["goal_pick"] and not s["random"]["goal_third"]
    pw = figure6.power(s, {"test_mean": 0.75})
    # 3 seeds against 3: p >= 2/20 = 0.1 > 0.05, so no difference is detectable; both groups' std is 0.1
    assert pw["measure"] == "pick_test" and pw["min_p"] == pytest.approx(0.1) and pw["detectable"] == math.inf
    assert pw["pooled_sd"] == pytest.approx(0.1) and pw["headroom"] == pytest.approx(0.15)
    # n = 2 ((z_0.975 + z_0.8) sd / headroom)^2 = 2 (2.8016 x 0.1 / 0.15)^2 = 6.98 -> 7 seeds a configuration
    assert pw["seeds_for_headroom"] == 7


def test_smoke_run_writes_what_it_says(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "figure6.py"), "--smoke", "--seeds", "0,1",
                        "--runs", str(tmp_path / "runs"), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    part = summary["parts"]["analytic"]
    compared = json.loads((tmp_path / "runs" / "analytic" / "compare.json").read_text())
    assert set(part["configs"]) == {r["run"] for r in compared} == {
        "random", "random-asha", "ppo-batchsize10-lr0.005", "ppo-batchsize10-lr0.005-asha"}
    for config, s in part["configs"].items():
        mine = [r for r in compared if r["run"] == config]
        assert s["best"] == [r["top1"] for r in mine] and s["seeds"] == [0, 1]
        assert s["pick"] == [r["pick_mean"] for r in mine] and all(p is not None for p in s["pick"])
        assert "pick_test" not in s and s["pick_genotypes"] == [r["pick_genotype"] for r in part["runs"]
                                                                if r["config"] == config]
        assert (s["pick_p"] is None) == (config == "random")
    assert all(r["epochs"] <= 60 for r in compared)                # the budget in child-epochs holds
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    best = [r for r in rows if r["config"] == "random" and r["metric"] == "best"]
    assert best and all(float(r["min"]) <= float(r["median"]) <= float(r["max"]) for r in best)
    assert all(float(a["median"]) <= float(b["median"]) for a, b in zip(best, best[1:]))   # best so far only rises
    assert float(best[-1]["median"]) == pytest.approx(
        sorted(r["top1"] for r in compared if r["run"] == "random")[0] / 2
        + sorted(r["top1"] for r in compared if r["run"] == "random")[1] / 2, abs=1e-5)
    assert (out / "figure6.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ppo-batchsize10-lr0.005-asha" in r.stdout and not math.isnan(part["budget_child_epochs"])
