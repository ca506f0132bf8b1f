"""ASHA across the work queue (Li et al., MLSys 2020): promotions, checkpoints, resume, budgets."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ROOT, trial_rows
from asha_helpers import check_asha, rows_at
from digits_subset import write_digits_npz
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.asha import next_promotion, recentred
from nasnet.search.config import EarlyStopConfig
from nasnet.search.payloads import trial_seed

ANALYTIC = "nasnet.search.children.analytic:analytic_child"
RUNGS = (1, 3, 9)


def asha_config(children=30, rungs=RUNGS, eta=3, tell="first", executor="serial", workers=1, options=None, **kw):
    child = kw.pop("child", ChildConfig(fn=ANALYTIC, options={"epoch_scale": 3.0, "noise": 0.03, **(options or {})}))
    return SearchConfig(children=children, child=child, early_stop=EarlyStopConfig("asha", rungs, eta, tell),
                        executor=ExecutorConfig(name=executor, workers=workers),
                        strategy=kw.pop("strategy", StrategyConfig(batch_size=10, learning_rate=0.005)), **kw)


def test_the_promotion_rule():
    # rung 0: 7 results; top floor(7/3) = 2 -> trials 3 (0.9) and 5 (0.8); rung 1 holds 3 results -> top 1
    standings = [(t, 0, "done", r) for t, r in [(1, 0.1), (2, 0.5), (3, 0.9), (4, 0.2), (5, 0.8), (6, 0.3), (7, 0.4)]]
    standings += [(8, 0, "failed", None), (9, 0, "running", None)]          # neither counts
    assert next_promotion(standings, 3, 3) == (3, 1)
    standings += [(3, 1, "done", 0.95)]
    assert next_promotion(standings, 3, 3) == (5, 1)
    standings += [(5, 1, "queued", None)]
    assert next_promotion(standings, 3, 3) is None                          # both top-2 promoted already
    standings += [(2, 1, "done", 0.6), (6, 1, "done", 0.7)]                  # rung 1: 3 results, top 1 = trial 3
    assert next_promotion(standings, 3, 3) == (3, 2)                         # the highest rung first
    assert next_promotion(standings, 2, 3) is None                           # no rung above the last
    assert next_promotion([(1, 0, "done", 0.5), (2, 0, "done", 0.5)], 2, 2) == (1, 1)   # ties: the earlier trial
    # re-centred within the rung: 0.7 - mean(0.95, 0.6, 0.7) + mean of those trials' rung-0 results
    assert recentred(standings, 1, 0.7) == pytest.approx(0.7 - (0.95 + 0.6 + 0.7) / 3 + (0.9 + 0.5 + 0.3) / 3)
    assert recentred(standings, 0, 0.42) == 0.42


def test_promotions_continue_from_their_checkpoints(tmp_path):
    summary = run_search(asha_config(), tmp_path)
    trials, rows = check_asha(tmp_path, RUNGS, 3)
    assert len(trials) == 30 and summary.promotions == sum(r["rung"] > 0 for r in rows) > 3
    assert {r["rung"] for r in rows} == {0, 1, 2}
    # what was trained, in child-epochs: 1 per trial, then 2 and 6 more per promotion
    assert summary.epochs == sum({0: 1, 1: 3, 2: 9}[t["rung"]] for t in trials)
    # the strategy was told each trial's first-rung result, once (--asha-tell first)
    assert [t["policy_reward"] for t in trials] == [rows_at(rows, t["id"], 0)["reward"] for t in trials]
    assert sum(u["num_results"] for u in trial_rows(tmp_path, "SELECT * FROM updates")) == 30
    best = json.loads((tmp_path / "best.json").read_text())
    top = max((t for t in trials if t["rung"] == 2), key=lambda t: (t["reward"], -t["id"]))
    assert best["trial"] == top["id"] and best["rung"] == 2 and best["epochs"] == 9


def test_every_rung_result_can_be_told_recentred(tmp_path):
    run_search(asha_config(children=24, tell="every"), tmp_path)
    trials, rows = check_asha(tmp_path, RUNGS, 3)
    promoted = [r for r in rows if r["rung"] > 0]
    assert promoted and all(r["result_seq"] is not None for r in promoted)
    seqs = sorted([t["result_seq"] for t in trials] + [r["result_seq"] for r in promoted])
    assert seqs == list(range(1, len(trials) + len(promoted) + 1))       # one sequence over both tables
    done = sorted((r for r in rows if r["status"] == "done"), key=lambda r: r["result_seq"] or 0)
    for p in promoted:     # the told value, recomputed from the results recorded up to it
        at = {r["trial_id"]: r["reward"] for r in done if r["rung"] == p["rung"]
              and (r["result_seq"] or 0) <= p["result_seq"]}
        first = [rows_at(rows, tid, 0)["reward"] for tid in at]
        want = p["reward"] - sum(at.values()) / len(at) + sum(first) / len(first)
        assert p["policy_reward"] == pytest.approx(want)
    assert sum(u["num_results"] for u in trial_rows(tmp_path, "SELECT * FROM updates")) // 10 == \
        (len(trials) + len(promoted)) // 10


def interrupting_child(payload):
    """The analytic child; Ctrl-C arrives during the named rung of the named trial (once)."""
    from nasnet.search.children.analytic import analytic_child

    if (payload["seed"], payload.get("rung_epochs")) == tuple(payload["interrupt"]) \
            and not os.path.exists(payload["marker"]):
        open(payload["marker"], "w").close()
        raise KeyboardInterrupt
    return analytic_child(payload)


def test_a_stopped_asha_run_continues_exactly(tmp_path):
    """Ctrl-C in the middle of a promotion, and the controller's checkpoint lost as after a SIGKILL:
    the continued run makes the same promotions and reaches the same results as an uninterrupted one."""
    run_search(asha_config(children=24), tmp_path / "a")
    rows = trial_rows(tmp_path / "a", "SELECT * FROM rungs WHERE rung = 2 ORDER BY rowid")
    victim = rows[0]["trial_id"]
    options = {"epoch_scale": 3.0, "noise": 0.03, "interrupt": [trial_seed(0, victim), 9],
               "marker": str(tmp_path / "marker")}
    cfg = asha_config(children=24, child=ChildConfig(fn="test_search_asha:interrupting_child", options=options))
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b")
    stopped = trial_rows(tmp_path / "b", "SELECT * FROM rungs")
    assert [r["status"] for r in stopped if r["trial_id"] == victim and r["rung"] == 2] == ["queued"]
    (tmp_path / "b" / "controller.pt").unlink()
    run_search(cfg, tmp_path / "b")
    key = "SELECT trial_id, rung, epochs, status, reward, policy_reward FROM rungs ORDER BY trial_id, rung"
    assert trial_rows(tmp_path / "a", key) == trial_rows(tmp_path / "b", key)
    assert [t["genotype"] for t in trial_rows(tmp_path / "a")] == [t["genotype"] for t in trial_rows(tmp_path / "b")]
    check_asha(tmp_path / "b", RUNGS, 3, serial=False)
    # the interrupted rung started again from the rung below's checkpoint
    assert json.loads(rows_at(trial_rows(tmp_path / "b", "SELECT * FROM rungs"), victim, 2)["metrics"])[
        "resumed_from_epoch"] == 3


@pytest.mark.parametrize("asha", [True, False], ids=["asha", "plain"])
def test_an_epoch_budget_caps_the_child_epochs(tmp_path, asha):
    if asha:
        cfg = asha_config(children=1000, epoch_budget=40)
    else:
        cfg = SearchConfig(children=1000, epoch_budget=40, executor=ExecutorConfig(name="serial"),
                           child=ChildConfig(fn=ANALYTIC, train={"epochs": 3}))
    summary = run_search(cfg, tmp_path)
    trials = trial_rows(tmp_path)
    if asha:
        check_asha(tmp_path, RUNGS, 3, budget=True)
        assert 40 - 6 < summary.epochs <= 40        # nothing more fits: ASHA's largest step is 6 epochs
        assert len(trials) > 40 // 9                # early stopping sampled more children than full training could
    else:
        assert summary.epochs == 39 and len(trials) == 13     # 3 epochs a child
    from nasnet.report.data import load_run

    assert load_run(tmp_path).complete                       # the report sees a finished run


def test_asha_runs_on_worker_processes(tmp_path):
    summary = run_search(asha_config(children=16, executor="process", workers=2, options={"sleep": 0.02}), tmp_path)
    trials, rows = check_asha(tmp_path, RUNGS, 3, serial=False)
    assert summary.promotions > 0 and len({t["worker"] for t in trials}) == 2


def test_the_training_child_continues_a_rung_from_its_checkpoint(tmp_path):
    """rung_epochs + checkpoint: 1 epoch, then on to 3 from the file, equals 3 epochs straight through;
    a rung already trained is reported again without training; a checkpoint of another child is refused."""
    from nasnet.errors import NasnetError
    from nasnet.search.children.train import train_child

    payload = {"genotype": "nasnet-a", "data": write_digits_npz(tmp_path / "d.npz"), "seed": 3, "device": "cpu",
               "model": {"normal_cells": 1, "filters": 4}, "train": {"epochs": 3, "threads": 1}}
    ckpt = str(tmp_path / "c.ckpt")
    first = train_child({**payload, "rung_epochs": 1, "checkpoint": ckpt})
    assert (first["epochs_completed"], first["resumed_from_epoch"], len(first["loss_curve"])) == (1, 0, 1)
    on = train_child({**payload, "rung_epochs": 3, "checkpoint": ckpt})
    assert (on["epochs_completed"], on["resumed_from_epoch"]) == (3, 1)
    straight = train_child(payload)
    assert on["loss_curve"] == straight["loss_curve"] and on["val_accuracy"] == straight["val_accuracy"]
    again = train_child({**payload, "rung_epochs": 3, "checkpoint": ckpt})
    assert again["resumed_from_epoch"] == 3 and again["val_accuracy"] == on["val_accuracy"]
    for bad, message in (({"rung_epochs": 2}, "past rung_epochs 2"), ({"seed": 4}, "holds another child"),
                         ({"rung_epochs": 4}, "'rung_epochs' must be an epoch in 1..3")):
        with pytest.raises(NasnetError, match=message):
            train_child({**payload, "rung_epochs": 3, "checkpoint": ckpt, **bad})


@pytest.mark.slow
def test_real_children_continue_from_checkpoints_through_sigkills(tmp_path, cli):
    """The training child on a digits subset, rungs 1, 2, 3 with eta 2; the driver SIGKILLed twice (the
    second time in the middle of a promotion), then continued: no rung result is lost, every finished
    rung's epochs were trained exactly once, each promotion continued from its own checkpoint, and the
    best trial equals a child trained straight through."""
    data = write_digits_npz(tmp_path / "digits.npz")
    run_dir, log = tmp_path / "run", tmp_path / "exec.log"
    args = ["search", "--run-dir", str(run_dir), "--child", "asha_helpers:logged_train_child", "--data", data,
            "--children", "5", "--early-stop", "asha", "--rungs", "1,2,3", "--eta", "2", "--strategy", "random",
            "--executor", "serial", "--normal-cells", "1", "--filters", "4", "--child-set", "train.threads=1",
            "--child-set", f'log="{log}"', "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}

    def run_until(condition):
        proc = subprocess.Popen([sys.executable, "-m", "nasnet", *args], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline, met = time.time() + 180, False
        while time.time() < deadline and proc.poll() is None and not met:
            time.sleep(0.05)
            try:
                met = (run_dir / "trials.db").exists() and bool(condition())   # (opening it would create it)
            except sqlite3.Error:
                continue
        assert met and proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        # catches a test that stops testing: the kill landed (the driver did not exit on its own)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()

    run_until(lambda: len(trial_rows(run_dir, "SELECT id FROM trials WHERE status='done'")) >= 2)
    assert len(trial_rows(run_dir, "SELECT id FROM trials WHERE status='done'")) < 5     # killed before the end
    promoting = "SELECT * FROM rungs WHERE rung > 0 AND status='running'"
    run_until(lambda: trial_rows(run_dir, promoting))
    assert trial_rows(run_dir, promoting)                  # killed in the middle of a promotion
    res = cli(*args, env=env)
    assert res.returncode == 0, res.stderr
    trials = trial_rows(run_dir)
    rows = trial_rows(run_dir, "SELECT * FROM rungs ORDER BY rowid")
    rungs = (1, 2, 3)
    assert len(trials) == 5 and all(t["status"] == "done" for t in trials)
    assert {r["status"] for r in rows} == {"done"} and max(r["rung"] for r in rows) == 2
    standings = [(r["trial_id"], r["rung"], r["status"], r["reward"]) for r in rows]
    assert next_promotion(standings, 3, 2) is None
    executions = [json.loads(line) for line in log.read_text().splitlines()]
    for r in rows:
        genotype = next(t["genotype"] for t in trials if t["id"] == r["trial_id"])
        ran = [e for e in executions if e["genotype"] == genotype and e["rung_epochs"] == r["epochs"]]
        assert ran, r
        trained = sum(e["completed"] - e["resumed"] for e in ran)
        assert trained == r["epochs"] - (rungs[r["rung"] - 1] if r["rung"] else 0), (r["trial_id"], r["rung"], ran)
        assert all(e["resumed"] in (rungs[r["rung"] - 1] if r["rung"] else 0, r["epochs"]) for e in ran)
    # the trial that reached the top rung: continuing rung by rung equals training straight through
    from nasnet.search.children.train import train_child

    top = next(t for t in trials if t["rung"] == 2)
    payload = {k: v for k, v in json.loads(top["payload"]).items() if k not in ("checkpoint", "fn", "log")}
    straight = train_child({**payload, "rung_epochs": 3})
    assert straight["val_accuracy"] == top["reward"] and straight["loss_curve"] == json.loads(top["metrics"])[
        "loss_curve"]
