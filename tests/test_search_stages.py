"""The top-k stage and the pick, the cost-aware reward, failure rewards, new flags, the store's migration
and `nasnet compare` over variants."""

import csv
import json
import math
import random
import sqlite3

import pytest

from conftest import trial_rows
from nasnet.arch.genotype import Genotype
from nasnet.cli import main
from nasnet.errors import NasnetError
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.children.analytic import cost_proxy, similarity_reward
from nasnet.search.config import CostConfig, EarlyStopConfig
from nasnet.search.payloads import final_seed, trial_seed
from nasnet.search.store import TrialStore
from nasnet.seeding import derive_seed

ANALYTIC = "nasnet.search.children.analytic:analytic_child"
FAULTY = "nasnet.search.children.analytic:faulty_child"


def analytic(children=20, options=None, **kw):
    return SearchConfig(children=children, child=ChildConfig(fn=ANALYTIC, options=options or {}),
                        executor=ExecutorConfig(name="serial"), **kw)


def expected_reward(genotype, seed, epochs, scale=2.0, noise=0.05):
    """The analytic child's reward, computed here from its definition."""
    g = Genotype.load(genotype)
    r = similarity_reward(g, Genotype.load("nasnet-a")) * (1 - math.exp(-epochs / scale))
    return r + random.Random(derive_seed(seed, str(g), epochs)).gauss(0.0, noise)


def test_the_top_k_stage_retrains_with_a_fresh_seed_and_the_final_budget(tmp_path):
    options = {"epoch_scale": 2.0, "noise": 0.05}
    cfg = SearchConfig(children=20, child=ChildConfig(fn=ANALYTIC, options=options, train={"epochs": 2}),
                       executor=ExecutorConfig(name="serial"), top_k=3, final_epochs=6, pick_seeds=2)
    summary = run_search(cfg, tmp_path)
    trials = {t["id"]: t for t in trial_rows(tmp_path)}
    for t in trials.values():     # the search's rewards: the trial's seed, 2 epochs
        assert t["reward"] == pytest.approx(expected_reward(t["genotype"], trial_seed(0, t["id"]), 2))
    finals = trial_rows(tmp_path, "SELECT * FROM final ORDER BY trial_id, repeat")
    top = sorted(trials.values(), key=lambda t: (-t["reward"], t["id"]))[:3]
    assert sorted(f["trial_id"] for f in finals if f["repeat"] == 0) == sorted(t["id"] for t in top)
    for f in finals:
        payload = json.loads(f["payload"])
        seed = final_seed(0, f["trial_id"], f["repeat"])
        assert payload["seed"] == seed != json.loads(trials[f["trial_id"]]["payload"])["seed"]
        assert payload["train"]["epochs"] == f["epochs"] == 6
        assert f["reward"] == pytest.approx(expected_reward(f["genotype"], seed, 6))
        assert f["reward"] != f["search_reward"]
    winner = max((f for f in finals if f["repeat"] == 0), key=lambda f: (f["reward"], -f["trial_id"]))
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["stage"] == "final" == summary.stage and best["trial"] == winner["trial_id"]
    assert best["seed"] == final_seed(0, winner["trial_id"]) and best["epochs"] == 6
    # the pick: the winner again, with 2 more fresh seeds, and their mean
    picks = [f for f in finals if f["repeat"] > 0]
    assert [(f["trial_id"], f["repeat"]) for f in picks] == [(winner["trial_id"], 1), (winner["trial_id"], 2)]
    assert best["pick"]["mean"] == pytest.approx(sum(f["reward"] for f in picks) / 2)
    assert best["pick"]["rewards"] == [f["reward"] for f in picks] and summary.pick == best["pick"]
    # the same stage asked for again changes nothing; another final budget on this run is refused
    run_search(cfg, tmp_path)
    assert trial_rows(tmp_path, "SELECT * FROM final ORDER BY trial_id, repeat") == finals
    with pytest.raises(NasnetError, match="retrained its top-k with train"):
        run_search(cfg.replace(final_epochs=8), tmp_path)


def test_a_top_k_stage_identical_to_the_search_child_is_refused(tmp_path):
    child = ChildConfig(fn=ANALYTIC, train={"epochs": 5}, model={"filters": 8})
    for final in ({}, {"final_epochs": 5}, {"final_filters": 8}):
        with pytest.raises(NasnetError, match="only the seed would change"):
            SearchConfig(child=child, top_k=3, **final).validate_final_stage()
    for final in ({"final_epochs": 10}, {"final_filters": 16}, {"final_normal_cells": 2}):
        SearchConfig(child=child, top_k=3, **final).validate_final_stage()
    SearchConfig(child=child, pick_seeds=3).validate_final_stage()   # the pick alone may keep the search's budget
    with pytest.raises(NasnetError, match="only the seed"):          # ASHA: the search child is the last rung's
        SearchConfig(child=ChildConfig(fn=ANALYTIC), early_stop=EarlyStopConfig("asha", (1, 3)), top_k=2,
                     final_epochs=3).validate_final_stage()
    # a run an older nasnet started that way still loads (the report reads it); running it again is refused
    old = SearchConfig(child=child, top_k=3)
    (tmp_path / "config.json").write_text(old.to_json())
    from nasnet.search.run_dir import load_run_config

    assert load_run_config(tmp_path) == old
    with pytest.raises(NasnetError, match="only the seed would change"):
        run_search(old, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]       # nothing else written


def test_a_cost_aware_reward_and_its_front(tmp_path):
    target, weight = 2e7, -0.3
    cfg = analytic(children=30, options={"noise": 0.05}, cost=CostConfig("mult_adds", target, weight))
    run_search(cfg, tmp_path)
    trials = trial_rows(tmp_path)
    for t in trials:
        g = Genotype.parse(t["genotype"])
        params, mult_adds = cost_proxy(g)
        m = json.loads(t["metrics"])
        assert (m["params"], m["mult_adds"]) == (params, mult_adds) and t["cost"] == mult_adds
        assert t["accuracy"] == m["reward"]
        assert t["reward"] == pytest.approx(t["accuracy"] * (mult_adds / target) ** weight)
    best = json.loads((tmp_path / "best.json").read_text())
    top = max(trials, key=lambda t: (t["reward"], -t["id"]))
    assert best["trial"] == top["id"] and best["cost_name"] == "mult_adds" and best["cost"] == top["cost"]
    # the front: exactly the trials no other trial beats on both accuracy and cost
    dominated = {t["id"] for t in trials for u in trials if u["accuracy"] >= t["accuracy"] and u["cost"] <= t["cost"]
                 and (u["accuracy"] > t["accuracy"] or u["cost"] < t["cost"])}
    front = sorted(t["id"] for t in trials if t["id"] not in dominated)
    assert sorted(p["trial"] for p in best["front"]) == front
    costs = [p["cost"] for p in best["front"]]
    assert costs == sorted(costs)
    # the report draws it
    from nasnet.report import make_report

    assert "cost.png" in [f.name for f in make_report([tmp_path], cells=0).files]


def test_failure_rewards_must_be_finite_or_worst(tmp_path, capsys):
    for bad in (math.nan, math.inf, -math.inf, "best", True):
        with pytest.raises(NasnetError, match="finite number or 'worst'"):
            analytic(failure_reward=bad)
    for bad in ("nan", "inf", "bad"):
        assert main(["search", "--run-dir", str(tmp_path / "x"), "--child", "analytic", "--failure-reward", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--failure-reward must be a finite number or 'worst'" in err[0], err
    assert not (tmp_path / "x").exists()
    # "worst": a failed child is told the lowest reward of the children finished before it
    child = ChildConfig(fn=FAULTY, options={"fault_raise": 0.3})
    cfg = SearchConfig(children=30, child=child, failure_reward="worst", executor=ExecutorConfig(name="serial"),
                       strategy=StrategyConfig(batch_size=10))
    run_search(cfg, tmp_path / "worst")
    trials = sorted(trial_rows(tmp_path / "worst"), key=lambda t: t["result_seq"])
    failed = 0
    for i, t in enumerate(trials):
        if t["status"] == "failed":
            failed += 1
            earlier = [u["reward"] for u in trials[:i] if u["status"] == "done"]
            assert t["policy_reward"] == (min(earlier) if earlier else 0.0)
    assert failed >= 3
    stored = json.loads((tmp_path / "worst" / "config.json").read_text())
    assert stored["failure_reward"] == "worst"
    run_search(cfg.replace(children=35), tmp_path / "worst")        # and the run can be continued
    assert len(trial_rows(tmp_path / "worst")) == 35
    # a run an older nasnet started with a NaN failure reward: one line saying which file is wrong
    stored["failure_reward"] = math.nan
    (tmp_path / "worst" / "config.json").write_text(json.dumps(stored))
    assert main(["search", "--run-dir", str(tmp_path / "worst")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json: cannot read the run's config (--failure-reward must be" in err[0], err


@pytest.mark.parametrize("args, message", [
    (["--early-stop", "asha", "--rungs", "1,3,3"], "--rungs must increase strictly, got 1,3,3"),
    (["--early-stop", "asha", "--rungs", "3,1"], "--rungs must increase strictly"),
    (["--early-stop", "asha", "--rungs", "0,2"], "--rungs must be whole numbers of at least 1, got 0,2"),
    (["--early-stop", "asha", "--rungs", "1,x"], "--rungs expects comma-separated whole epochs"),
    (["--early-stop", "asha", "--rungs", "4"], "ASHA needs at least two rungs"),
    (["--early-stop", "asha", "--rungs", "1,3", "--eta", "1"], "--eta must be a whole number of at least 2"),
    (["--early-stop", "asha"], "--early-stop asha needs --rungs"),
    (["--early-stop", "asha", "--rungs", "1,3", "--epochs", "5"], "the last rung is the child's training length"),
    (["--early-stop", "asha", "--rungs", "1,3", "--asha-tell", "all"], "--asha-tell must be one of first, every"),
    (["--early-stop", "hyperband"], "unknown early stopping 'hyperband'"),
    (["--rungs", "1,3"], "--rungs has no effect without --early-stop asha; drop it"),
    (["--strategy", "evolution", "--population", "4", "--sample-size", "5"], "cannot exceed --population"),
    (["--strategy", "evolution", "--population", "1"], "--population must be a whole number of at least 2"),
    (["--strategy", "evolution", "--sample-size", "0"], "--sample-size must be a whole number of at least 1"),
    (["--cost", "flops", "--target", "1e6"], "unknown cost 'flops' (known: mult_adds, params)"),
    (["--cost", "params"], "needs a positive --target"),
    (["--cost", "params", "--target", "-5"], "needs a positive --target"),
    (["--cost", "params", "--target", "1e6", "--cost-weight", "0.07"], "--cost-weight must be a finite number <= 0"),
    (["--target", "1e6"], "--target has no effect without a cost objective (--cost)"),
    (["--epoch-budget", "0", "--epochs", "2"], "--epoch-budget must be a whole number of at least 1"),
    (["--epoch-budget", "10"], "--epoch-budget counts child-epochs: give the child's --epochs"),
    (["--epoch-budget", "3", "--epochs", "5"], "does not cover one child (5 epochs)"),
    (["--top-k", "2"], "only the seed would change"),
    (["--top-k", "2", "--epochs", "4", "--final-epochs", "4"], "only the seed would change"),
    (["--pick-seeds", "-1"], "--pick-seeds must be a whole number of at least 0"),
    (["--final-filters", "0"], "--final-filters must be a whole number of at least 1"),
    (["--final-normal-cells", "0"], "--final-normal-cells must be a whole number of at least 1"),
    (["--child-set", "checkpoint=x"], "--child-set cannot set 'checkpoint'"),
])
def test_bad_values_of_the_new_flags_are_one_line_errors(tmp_path, capsys, args, message):
    run_dir = tmp_path / "run"
    assert main(["search", "--run-dir", str(run_dir), "--child", "analytic", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not run_dir.exists()


def test_one_line_errors_through_the_real_command_line(tmp_path, cli):
    res = cli("search", "--run-dir", str(tmp_path / "r"), "--early-stop", "asha", "--rungs", "2,1", "--child",
              "analytic")
    assert res.returncode == 2 and res.stderr.strip() == "nasnet search: error: --rungs must increase strictly, got 2,1"


def test_asha_and_top_k_defaults_of_a_new_digits_search(tmp_path):
    from argparse import ArgumentParser

    from nasnet.cli._search_args import add_search_arguments, resolve_config

    p = ArgumentParser()
    add_search_arguments(p)
    plain = resolve_config(p.parse_args([]), None)
    assert plain.top_k == 3 and plain.final_epochs == 2 * plain.child.train["epochs"]
    assert plain.child.data == "digits,val=500"              # 500 images score a child (docs/search.md)
    assert resolve_config(p.parse_args(["--data", "digits"]), None).child == plain.child
    assert resolve_config(p.parse_args(["--data", "digits,val=300"]), None).child.data == "digits,val=300"
    asha = resolve_config(p.parse_args(["--early-stop", "asha", "--epochs", "9"]), None)
    assert asha.early_stop.rungs == (1, 3, 9) and asha.child.train["epochs"] == 9 and asha.final_epochs == 18
    budget = resolve_config(p.parse_args(["--early-stop", "asha", "--rungs", "2,6", "--epoch-budget", "50"]), None)
    assert budget.children == 25 and budget.child.train["epochs"] == 6
    other = resolve_config(p.parse_args(["--child", "analytic"]), None)
    assert other.top_k == 0 and other.final_epochs is None


def test_dedupe_off_trains_repeats_and_on_they_cost_no_epochs(tmp_path, monkeypatch):
    from test_search_loop import FixedCycle

    from nasnet.search import strategies as strategies_mod

    monkeypatch.setitem(strategies_mod.STRATEGIES, "fixed-cycle", FixedCycle)     # the config reads the same registry
    for dedupe in (True, False):
        log = tmp_path / f"exec-{dedupe}.log"
        child = ChildConfig(fn=FAULTY, options={"executions_log": str(log)}, train={"epochs": 2})
        cfg = SearchConfig(children=9, child=child, dedupe=dedupe, executor=ExecutorConfig(name="serial"),
                           strategy=StrategyConfig(name="fixed-cycle", batch_size=3))
        summary = run_search(cfg, tmp_path / f"run-{dedupe}")
        trials = trial_rows(tmp_path / f"run-{dedupe}")
        assert len(log.read_text().splitlines()) == (3 if dedupe else 9)
        assert summary.epochs == (6 if dedupe else 18)
        assert [t["epochs"] for t in trials] == ([2, 2, 2] + [0] * 6 if dedupe else [2] * 9)


V1_SCHEMA = """
CREATE TABLE trials (id INTEGER PRIMARY KEY, genotype TEXT NOT NULL, decisions TEXT NOT NULL, log_prob REAL,
    entropy REAL, policy_version INTEGER, payload TEXT, status TEXT NOT NULL DEFAULT 'queued', reward REAL,
    policy_reward REAL, metrics TEXT, error TEXT, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    cached_from INTEGER, result_seq INTEGER UNIQUE, created_at REAL, started_at REAL, finished_at REAL);
CREATE INDEX trials_genotype ON trials(genotype);
CREATE INDEX trials_status ON trials(status);
CREATE TABLE updates (version INTEGER PRIMARY KEY, time REAL, num_results INTEGER, told INTEGER,
    mean_reward REAL, baseline REAL, entropy REAL, loss REAL, seconds REAL);
CREATE TABLE final (trial_id INTEGER PRIMARY KEY, genotype TEXT NOT NULL, search_reward REAL, epochs INTEGER,
    payload TEXT, status TEXT NOT NULL DEFAULT 'queued', reward REAL, metrics TEXT, error TEXT, worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, created_at REAL, started_at REAL, finished_at REAL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def test_a_version_1_store_is_read_and_migrated(tmp_path):
    """A run written by the previous schema: the report reads it as it is, a search migrates it and goes on."""
    run_search(analytic(children=6, strategy=StrategyConfig(batch_size=3), top_k=2, final_epochs=3), tmp_path / "v2")
    db = tmp_path / "v1" / "trials.db"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.executescript(V1_SCHEMA)
    src = sqlite3.connect(tmp_path / "v2" / "trials.db")
    v1_trial_cols = [c for c in ("id", "genotype", "decisions", "log_prob", "entropy", "policy_version", "payload",
                                 "status", "reward", "policy_reward", "metrics", "error", "worker", "attempts",
                                 "cached_from", "result_seq", "created_at", "started_at", "finished_at")]
    for row in src.execute(f"SELECT {', '.join(v1_trial_cols)} FROM trials"):
        con.execute(f"INSERT INTO trials VALUES ({', '.join('?' * len(row))})", row)
    for row in src.execute("SELECT version, time, num_results, told, mean_reward, baseline, entropy, loss, seconds "
                           "FROM updates"):
        con.execute("INSERT INTO updates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    for row in src.execute("SELECT trial_id, genotype, search_reward, epochs, payload, status, reward, metrics, error, "
                           "worker, attempts, created_at, started_at, finished_at FROM final WHERE repeat = 0"):
        con.execute(f"INSERT INTO final VALUES ({', '.join('?' * 14)})", row)
    con.commit()
    con.close()
    (tmp_path / "v1" / "config.json").write_text((tmp_path / "v2" / "config.json").read_text())
    with TrialStore(db, readonly=True) as store:             # the report's reader: nothing is changed
        snap = store.snapshot()
        assert len(snap.trials) == 6 and snap.rungs == [] and [f.repeat for f in snap.finals] == [0, 0]
        assert snap.trials[0].rung is None and store.schema == 1
    from nasnet.report import make_report

    make_report([tmp_path / "v1"], tmp_path / "report", cells=0)
    with TrialStore(db) as store:                            # a writer migrates, in place
        assert store.schema == 2
        trials = store.trials()
        assert all(t.rung == 0 and t.epochs == 1 and t.accuracy == t.reward for t in trials)
        assert [(f.trial_id, f.repeat) for f in store.finals()] == [(f.trial_id, 0) for f in snap.finals]
    assert trial_rows(tmp_path / "v1", "SELECT value FROM meta")[0]["value"] == "2"
    run_search(analytic(children=9, strategy=StrategyConfig(batch_size=3), top_k=2, final_epochs=3), tmp_path / "v1")
    assert len(trial_rows(tmp_path / "v1")) == 9
    assert [u["version"] for u in trial_rows(tmp_path / "v1", "SELECT * FROM updates")] == [1, 2, 3]


def test_compare_runs_variants_at_equal_child_epochs_and_retrains_their_picks(tmp_path, cli):
    res = cli("compare", "--run-dir", str(tmp_path), "--child", "analytic", "--strategies",
              "random,ppo:lr=0.005:batch-size=5,evolution:population=6:sample-size=2", "--early-stop", "none,asha",
              "--rungs", "1,3", "--eta", "3", "--epoch-budget", "30", "--seeds", "3", "--pick-seeds", "2",
              "--child-set", "epoch_scale=2", "--child-set", "noise=0.05", "--executor", "serial", "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "compare.json").read_text())
    names = {"random", "ppo-batchsize5-lr0.005", "evolution-population6-samplesize2"}
    assert {s["run"] for s in summary} == names | {n + "-asha" for n in names}
    assert len(summary) == 6 and {s["seed"] for s in summary} == {3}
    for s in summary:
        config = json.loads((tmp_path / f"{s['run']}-seed{s['seed']}" / "config.json").read_text())
        assert config["child"]["train"]["epochs"] == 3 and config["epoch_budget"] == 30
        assert config["early_stop"]["name"] == ("asha" if s["run"].endswith("-asha") else "none")
        assert 27 < s["epochs"] <= 30                          # the same compute for every run
        assert len(s["pick_rewards"]) == 2 and s["pick_mean"] == pytest.approx(sum(s["pick_rewards"]) / 2)
        if s["early_stop"] == "asha":
            assert s["children"] > 10                          # early stopping samples more children
        else:
            assert s["children"] == 10
    ppo = json.loads((tmp_path / "ppo-batchsize5-lr0.005-seed3" / "config.json").read_text())
    assert ppo["strategy"]["learning_rate"] == 0.005 and ppo["strategy"]["batch_size"] == 5 and ppo["seed"] == 3
    with open(tmp_path / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    mine = [r for r in rows if r["run"] == "random-asha" and r["seed"] == "3"]
    epochs = [int(r["epochs"]) for r in mine]
    assert epochs == sorted(epochs) and epochs[-1] <= 30
    assert "pick retrained" in res.stdout
    bad = cli("compare", "--run-dir", str(tmp_path / "bad"), "--child", "analytic", "--strategies", "ppo:lr")
    assert bad.returncode == 2 and "options read OPTION=VALUE" in bad.stderr
