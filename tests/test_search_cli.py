"""`nasnet search` / `nasnet compare` on the command line, and RL beating random search (Figure 6)."""

import csv
import json
import sqlite3
from contextlib import closing

import pytest

from conftest import checksums, one_error_line, run_cli_batch

ANALYTIC = "analytic"


def test_rl_beats_random_search_on_an_analytic_reward(tmp_path, cli):
    """The paper's Figure 6 on a reward that favours NASNet-A's decisions (similarity_reward).

    200 children, fixed seed. The learning rate is 0.005 rather than the paper's 0.00035: at the
    paper's rate 200 samples (10 updates) barely move the policy; the paper spent 20,000.
    """
    res = cli("compare", "--run-dir", str(tmp_path), "--child", ANALYTIC, "--children", "200", "--lr", "0.005",
              "--strategies", "ppo,reinforce,random", "--seeds", "0", "--executor", "serial", "--quiet")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 200
    final = {r["strategy"]: r for r in rows if r["children"] == "200"}
    best = {s: float(final[s]["best"]) for s in final}
    top5 = {s: float(final[s]["top5_mean"]) for s in final}
    top25 = {s: float(final[s]["top25_mean"]) for s in final}
    # random search on this reward: expectation 0.247 per sample (random_expectation: the mean over the 50
    # decisions of 1 / the vocabulary size), best of 200 about 0.4
    from nasnet.arch import get_space
    from nasnet.arch.genotype import NASNET_A
    from nasnet.search.children.analytic import random_expectation

    expected = random_expectation(get_space("nasnet-a"), NASNET_A)
    assert expected == pytest.approx(0.2468, abs=1e-4)
    with closing(sqlite3.connect(tmp_path / "random-seed0" / "trials.db")) as db:
        rewards = [r for (r,) in db.execute("SELECT reward FROM trials")]
    assert len(rewards) == 200 and abs(sum(rewards) / 200 - expected) < 0.02    # its std over 200: 0.004
    assert 0.3 < best["random"] < 0.5
    for rl in ("ppo", "reinforce"):
        assert best[rl] >= best["random"] + 0.08, (rl, best)
        assert top5[rl] >= top5["random"] + 0.08, (rl, top5)
        assert top25[rl] >= top25["random"] + 0.08, (rl, top25)
    # the curves: best never decreases, top-5 mean appears at 5 children, top-25 at 25
    for s in ("ppo", "random"):
        curve = [r for r in rows if r["strategy"] == s]
        bests = [float(r["best"]) for r in curve]
        assert bests == sorted(bests)
        assert curve[3]["top5_mean"] == "" and curve[4]["top5_mean"] != ""
        assert curve[23]["top25_mean"] == "" and curve[24]["top25_mean"] != ""
    summary = json.loads((tmp_path / "compare.json").read_text())
    assert {s["strategy"] for s in summary} == {"ppo", "reinforce", "random"}
    assert (tmp_path / "ppo-seed0" / "trials.db").is_file()


def test_search_cli_prints_the_best_continues_runs_and_reports_errors_in_one_line(tmp_path, cli):
    fresh = [
        (["--children", "0"], "--children must be a whole number of at least 1"),
        (["--child", "no_such_module:f"], "cannot import the child module 'no_such_module'"),
        (["--child", "nasnet.search.children.analytic:nothing"], "has no function 'nothing'"),
        (["--child-set", "noequals"], "KEY=VALUE"),
        (["--space", "nasnet-z"], "unknown search space"),
        (["--executor", "ray", "--workers", "-1"], "--workers must be a whole number of at least 0"),
    ]
    # the mistakes run in one process (run_cli_batch), the searches as the real command line
    commands = [["search", "--run-dir", str(tmp_path / f"fresh{i}"), "--child", ANALYTIC, *args]
                for i, (args, _) in enumerate(fresh)]
    for i, (res, (_, message)) in enumerate(zip(run_cli_batch(commands), fresh)):
        one_error_line(res["rc"], res["stderr"], message)
        assert not (tmp_path / f"fresh{i}").exists()                                  # nothing created
    run_dir = tmp_path / "run"
    first = cli("search", "--run-dir", str(run_dir), "--child", ANALYTIC, "--children", "6", "--strategy", "ppo",
                "--batch-size", "4")
    assert first.returncode == 0, first.stderr
    assert "best: trial" in first.stdout and "genotype: normal[" in first.stdout
    assert "6/6" in first.stderr                                      # the progress bar
    existing = [
        (["--strategy", "random"], "holds a search whose --strategy is 'ppo'; it cannot continue with 'random'"),
        (["--lr", "0.1"], "holds a search whose --lr is 0.005; it cannot continue with 0.1"),
        (["--children", "3"], "already holds 6 trials; --children must be at least 6"),
    ]
    def saved():   # the store's pages may be rewritten on open; its contents may not
        files = checksums(run_dir)
        with closing(sqlite3.connect(run_dir / "trials.db")) as db:
            files["trials.db"] = list(db.iterdump())
        return files

    stored = saved()
    results = run_cli_batch([["search", "--run-dir", str(run_dir), *args] for args, _ in existing])
    for res, (_, message) in zip(results, existing):
        one_error_line(res["rc"], res["stderr"], message)
    assert saved() == stored                                                          # nothing lost
    res = cli("search", "--run-dir", str(run_dir), "--children", "12", "--json")     # continue with a larger budget
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["counts"]["done"] == 12 and out["updates"] == 3
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["children"] == 12 and stored["strategy"]["batch_size"] == 4


def test_search_trains_real_children_on_digits(tmp_path, cli):
    """The default child (nasnet.search.children.train.train_child) on the built-in digits, end to end, tiny."""
    run_dir = tmp_path / "run"
    res = cli("search", "--run-dir", str(run_dir), "--children", "1", "--workers", "1", "--epochs", "2",
              "--filters", "4", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["counts"]["done"] == 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["child"]["fn"] == "nasnet.search.children.train:train_child"
    assert config["child"]["data"] == "digits,val=500"                        # the quick digits child
    assert config["child"]["model"] == {"normal_cells": 1, "filters": 4}
    assert config["child"]["train"] == {"epochs": 2, "batch_size": 64}
    db = sqlite3.connect(run_dir / "trials.db")
    for (text,) in db.execute("SELECT metrics FROM trials"):
        m = json.loads(text)
        assert m["status"] == "done" and m["epochs_completed"] == 2 and m["params"] > 1000
        assert 0.0 <= m["val_accuracy"] <= 1.0
        assert m["loss_curve"][1] < m["loss_curve"][0]                          # it trained
    best = json.loads((run_dir / "best.json").read_text())
    assert best["reward"] == best["metrics"]["val_accuracy"]
