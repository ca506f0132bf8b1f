"""The work queue, trial store, resume and faults with the serial executor (paper §3, A.3)."""

import csv
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, trial_rows
from nasnet.arch.genotype import Genotype
from nasnet.arch.space import get_space
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search import strategies as strategies_mod
from nasnet.search.children.analytic import random_expectation, similarity_reward
from nasnet.search.store import TrialStore

ANALYTIC = "nasnet.search.children.analytic:analytic_child"
FAULTY = "nasnet.search.children.analytic:faulty_child"


def analytic_config(children=40, **kw):
    child = kw.pop("child", ChildConfig(fn=ANALYTIC))
    kw.setdefault("executor", ExecutorConfig(name="serial"))
    return SearchConfig(children=children, child=child, **kw)


def test_similarity_reward():
    space = get_space("nasnet-a")
    target = Genotype.load("nasnet-a")
    assert similarity_reward(target, target) == 1.0
    g = space.sample(0)
    fields = [(b.input1, b.input2, b.op1, b.op2, b.combiner) for _, c in g.cells for b in c.blocks]
    want = [(b.input1, b.input2, b.op1, b.op2, b.combiner) for _, c in target.cells for b in c.blocks]
    assert similarity_reward(g, target) == sum(x == y for f, w in zip(fields, want) for x, y in zip(f, w)) / 50
    mean = sum(similarity_reward(space.sample(i), target) for i in range(3000)) / 3000
    assert mean == pytest.approx(random_expectation(space, target), abs=0.01)


def test_search_fills_the_store_and_outputs(tmp_path):
    cfg = analytic_config(children=45, strategy=StrategyConfig(batch_size=20))
    summary = run_search(cfg, tmp_path)
    trials = trial_rows(tmp_path)
    assert [t["id"] for t in trials] == list(range(1, 46))
    assert all(t["status"] == "done" and t["attempts"] == 1 for t in trials)
    assert sorted(t["result_seq"] for t in trials) == list(range(1, 46))
    rewards = [t["reward"] for t in trials]                     # does the strategy sample better cells as it goes?
    assert summary.samples == pytest.approx({"window": 20, "first": sum(rewards[:20]) / 20, "last": sum(rewards[-20:]) / 20})
    rise = summary.samples["last"] > summary.samples["first"]
    assert ("moved to better cells" if rise else "did not learn") in summary.samples_note()
    flat = dataclasses.replace(summary, samples={"window": 5, "first": 0.9, "last": 0.9})
    assert flat.samples_note().endswith("(+0.0000): later children were no better, so this run did not learn from its rewards")
    space = get_space("nasnet-a")
    for t in trials:
        g = Genotype.parse(t["genotype"])
        assert space.encode(g) == json.loads(t["decisions"])
        assert t["reward"] == pytest.approx(similarity_reward(g, Genotype.load("nasnet-a")))
        assert t["created_at"] <= t["started_at"] <= t["finished_at"]
        assert json.loads(t["payload"])["fn"] == ANALYTIC
        assert json.loads(t["metrics"])["val_accuracy"] == t["reward"]
        assert t["log_prob"] < 0 and t["entropy"] > 0
    # the policy version at sampling time only grows, with an update per 20 results
    versions = [t["policy_version"] for t in trials]
    assert versions == sorted(versions) and versions[0] == 0 and versions[-1] == 2
    updates = trial_rows(tmp_path, "SELECT * FROM updates ORDER BY version")
    assert [u["version"] for u in updates] == [1, 2] and all(u["num_results"] == 20 for u in updates)
    assert all(u["entropy"] > 0 for u in updates)
    # outputs
    best = json.loads((tmp_path / "best.json").read_text())
    top = max(trials, key=lambda t: (t["reward"], -t["id"]))
    assert best["trial"] == top["id"] == summary.best_trial and best["reward"] == top["reward"]
    assert Genotype.load(str(tmp_path / "best.json")) == Genotype.parse(top["genotype"])
    with open(tmp_path / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 45 and table[0]["genotype"] == trials[0]["genotype"]
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["strategy"]["learning_rate"] == 0.00035 and stored["children"] == 45
    assert (tmp_path / "controller.pt").is_file()
    db = sqlite3.connect(tmp_path / "trials.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def interrupting_child(payload):
    """The analytic child, but Ctrl-C arrives while the trial named in the payload runs."""
    from nasnet.search.children.analytic import analytic_child

    if payload.get("interrupt_seed") == payload["seed"] and not os.path.exists(payload["marker"]):
        open(payload["marker"], "w").close()
        raise KeyboardInterrupt
    return analytic_child(payload)


def test_ctrl_c_leaves_a_resumable_run_identical_to_an_uninterrupted_one(tmp_path):
    from nasnet.search.loop import trial_seed

    strategy = StrategyConfig(batch_size=10, learning_rate=0.01)
    plain = analytic_config(children=30, strategy=strategy)
    run_search(plain, tmp_path / "a")
    child = ChildConfig(fn="test_search_loop:interrupting_child",
                        options={"interrupt_seed": trial_seed(0, 17), "marker": str(tmp_path / "marker")})
    cfg = analytic_config(children=30, strategy=strategy, child=child)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b")
    partial = trial_rows(tmp_path / "b")
    assert [t["status"] for t in partial] == ["done"] * 16 + ["queued"]      # trial 17 back in the queue
    run_search(cfg, tmp_path / "b")
    a, b = trial_rows(tmp_path / "a"), trial_rows(tmp_path / "b")
    assert [t["genotype"] for t in a] == [t["genotype"] for t in b]
    assert [t["reward"] for t in a] == [t["reward"] for t in b]
    assert b[16]["attempts"] == 2 and all(t["attempts"] == 1 for t in b if t["id"] != 17)
    sa = torch.load(tmp_path / "a" / "controller.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "controller.pt", weights_only=True)
    assert sa["version"] == sb["version"] == 3
    for k, v in sa["controller"].items():
        assert torch.equal(v, sb["controller"][k]), k


def test_sigkill_of_the_driver_resumes_exactly(tmp_path, cli):
    """SIGKILL the serial driver at two moments; the resumed run equals an uninterrupted one."""
    common = ["--child", FAULTY, "--children", "24", "--paper", "--batch-size", "6", "--lr", "0.01", "--quiet",
              "--executor", "serial", "--child-set", "sleep=0.04"]
    ref = analytic_config(children=24, child=ChildConfig(fn=FAULTY, options={"sleep": 0.04}),
                          strategy=StrategyConfig(batch_size=6, learning_rate=0.01))
    run_search(ref, tmp_path / "ref")
    run_dir = tmp_path / "killed"
    log = tmp_path / "exec.log"
    args = [sys.executable, "-m", "nasnet", "search", "--run-dir", str(run_dir), *common,
            "--child-set", f'executions_log="{log}"']
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for wait_done in (5, 14):
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, n = time.monotonic() + 120, 0
        while n < wait_done:
            assert proc.poll() is None, f"the search ended ({proc.returncode}) before it could be killed"
            assert time.monotonic() < deadline, f"{n} of {wait_done} trials done after 120 s"
            time.sleep(0.02)
            if not (run_dir / "trials.db").exists():     # (opening it here would create it)
                continue
            try:
                n = len(trial_rows(run_dir, "SELECT id FROM trials WHERE status='done'"))
            except sqlite3.Error:       # being created
                continue
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        # catches a test that stops testing: the kill landed before the run finished (it did not exit on
        # its own, and trials were left to do)
        assert proc.returncode == -signal.SIGKILL
        assert len(trial_rows(run_dir, "SELECT id FROM trials WHERE status='done'")) < 24
    res = cli("search", "--run-dir", str(run_dir), "--quiet")
    assert res.returncode == 0, res.stderr
    trials = trial_rows(run_dir)
    assert len(trials) == 24 and all(t["status"] == "done" for t in trials)
    assert [t["genotype"] for t in trials] == [t["genotype"] for t in trial_rows(tmp_path / "ref")]
    runs = [json.loads(line)["genotype"] for line in log.read_text().splitlines()]
    for t in trials:
        assert 1 <= runs.count(t["genotype"]) <= t["attempts"]
    assert sum(t["attempts"] > 1 for t in trials) <= 2          # at most the one in flight at each kill


def test_faults_do_not_stop_the_search(tmp_path):
    child = ChildConfig(fn=FAULTY, options={"fault_raise": 0.15, "fault_nan": 0.15, "fault_oom": 0.1})
    cfg = analytic_config(children=40, child=child, failure_reward=-0.5,
                          executor=ExecutorConfig(name="serial", max_retries=1), strategy=StrategyConfig(batch_size=10))
    summary = run_search(cfg, tmp_path)
    trials = trial_rows(tmp_path)
    assert len(trials) == 40 and summary.counts["queued"] == summary.counts["running"] == 0
    by = {s: [t for t in trials if t["status"] == s] for s in ("done", "failed", "diverged")}
    assert by["done"] and by["failed"] and by["diverged"]
    raised = [t for t in by["failed"] if "the child raised" in t["error"]]
    oom = [t for t in by["failed"] if "out of memory" in t["error"]]
    assert raised and oom
    assert all("RuntimeError: injected fault" in t["error"] and t["attempts"] == 1 for t in raised)
    assert all(t["attempts"] == 2 and "gave up after 2 attempts" in t["error"] for t in oom)   # retried once
    assert all("nan" in t["error"] and t["reward"] is None for t in by["diverged"])
    assert all(t["policy_reward"] == -0.5 for t in by["failed"] + by["diverged"])
    assert all(t["policy_reward"] == t["reward"] for t in by["done"])
    assert len(trial_rows(tmp_path, "SELECT * FROM updates")) == 4


class FixedCycle(strategies_mod.RandomSearch):
    """Proposes three architectures over and over (to exercise deduplication)."""

    name = "fixed-cycle"

    def ask(self):
        space = get_space("nasnet-a")
        d = tuple(space.sample_decisions(self.asked % 3))
        self.asked += 1
        return strategies_mod.Proposal(d, -1.0, self.version)


def test_an_architecture_sampled_again_is_not_retrained(tmp_path, monkeypatch):
    monkeypatch.setitem(strategies_mod.STRATEGIES, "fixed-cycle", FixedCycle)     # the config reads the same registry
    log = tmp_path / "exec.log"
    child = ChildConfig(fn=FAULTY, options={"executions_log": str(log)})
    cfg = analytic_config(children=10, child=child, strategy=StrategyConfig(name="fixed-cycle", batch_size=5),
                          executor=ExecutorConfig(name="serial", workers=2))
    run_search(cfg, tmp_path / "run")
    trials = trial_rows(tmp_path / "run")
    assert [t["status"] for t in trials] == ["done"] * 10
    assert len(log.read_text().splitlines()) == 3
    for t in trials[3:]:
        first = trials[(t["id"] - 1) % 3]
        assert t["cached_from"] == first["id"] and t["worker"] == "cache" and t["reward"] == first["reward"]
    assert len(trial_rows(tmp_path / "run", "SELECT * FROM updates")) == 2     # repeats still reach the controller


def test_top_k_stage_retrains_the_best(tmp_path):
    cfg = analytic_config(children=25, top_k=3, final_epochs=7)
    summary = run_search(cfg, tmp_path)
    final = trial_rows(tmp_path, "SELECT * FROM final ORDER BY search_reward DESC, trial_id")
    top = sorted(trial_rows(tmp_path), key=lambda t: (-t["reward"], t["id"]))[:3]
    assert [f["trial_id"] for f in final] == [t["id"] for t in top]
    assert all(f["status"] == "done" and f["epochs"] == 7 for f in final)
    assert all(json.loads(f["payload"])["train"]["epochs"] == 7 for f in final)
    assert all(json.loads(f["metrics"])["epochs_completed"] == 7 for f in final)
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["stage"] == "final" == summary.stage and best["trial"] == top[0]["id"]
    # a finished run asked for a larger K retrains only the new ones
    run_search(cfg.replace(top_k=4), tmp_path)
    assert len(trial_rows(tmp_path, "SELECT * FROM final")) == 4


def test_store_schema_has_the_documented_columns(tmp_path):
    store = TrialStore(tmp_path / "trials.db")
    cols = {r[1] for r in store.db.execute("PRAGMA table_info(trials)")}
    assert {"id", "genotype", "decisions", "log_prob", "policy_version", "status", "reward", "metrics", "error",
            "worker", "attempts", "created_at", "started_at", "finished_at"} <= cols
    cols = {r[1] for r in store.db.execute("PRAGMA table_info(updates)")}
    assert {"version", "time", "num_results", "mean_reward", "baseline", "entropy", "loss"} <= cols
    assert {r[1] for r in store.db.execute("PRAGMA table_info(final)")} >= {"trial_id", "reward", "status"}
    store.close()
