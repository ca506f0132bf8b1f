"""The Ray executor: two workers on this machine, worker deaths, and a SIGKILLed driver (paper A.3)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, trial_rows

pytest.importorskip("ray")

FAULTY = "nasnet.search.children.analytic:faulty_child"


def recorded_alive(run_dir):
    """Processes of a local Ray instance recorded for this run that are still alive."""
    from nasnet.search.executors.ray import _proc_start

    path = Path(run_dir) / "ray_processes.json"
    if not path.exists():
        return []
    return [pid for pid, start in json.loads(path.read_text()) if _proc_start(pid) == start]


@pytest.fixture
def no_leftovers():
    """Whatever happens in the test, remove the Ray processes its drivers recorded."""
    run_dirs = []
    yield run_dirs
    from nasnet.search.executors.ray import kill_stale_ray

    for d in run_dirs:
        kill_stale_ray(Path(d) / "ray_processes.json")


def test_ray_two_workers_worker_deaths_and_a_sigkilled_driver(tmp_path, cli, no_leftovers):
    """--executor ray --workers 2 on this machine; workers SIGKILLed (retried); the driver SIGKILLed
    mid-run and the run continued: exactly --children done trials, each architecture trained once
    unless it was retried."""
    run_dir = tmp_path / "run"
    no_leftovers.append(run_dir)
    log = tmp_path / "exec.log"
    args = ["search", "--run-dir", str(run_dir), "--executor", "ray", "--workers", "2", "--children", "18",
            "--batch-size", "6", "--child", FAULTY, "--quiet", "--child-set", "sleep=0.25",
            "--child-set", f'executions_log="{log}"', "--child-set", "fault_kill=0.2",
            "--child-set", f'fault_dir="{tmp_path / "kills"}"']
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "nasnet", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    done = 0
    while time.time() < deadline and done < 6:
        time.sleep(0.1)
        try:
            done = len(trial_rows(run_dir, "SELECT id FROM trials WHERE status='done'"))
        except sqlite3.Error:
            pass
    assert done >= 6, "the search did not get going"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    orphans = recorded_alive(run_dir)   # Ray's agents outlive a SIGKILLed driver for a minute or more
    before = trial_rows(run_dir)
    assert len(before) < 18 and any(t["status"] == "running" for t in before)
    res = cli(*args, timeout=300)
    assert res.returncode == 0, res.stderr
    trials = trial_rows(run_dir)
    assert [t["id"] for t in trials] == list(range(1, 19))
    assert all(t["status"] == "done" for t in trials)
    assert len({t["genotype"] for t in trials}) == 18
    runs = [json.loads(line)["genotype"] for line in log.read_text().splitlines()]
    for t in trials:               # each architecture trained once, unless it was retried
        assert 1 <= runs.count(t["genotype"]) <= t["attempts"]
    crashed = {t["id"] for t in trials if t["error"] and "WorkerCrashedError" in t["error"]}
    assert crashed, "workers were SIGKILLed: their trials show the infrastructure failure"
    assert len(list((tmp_path / "kills").iterdir())) >= len(crashed)
    interrupted = {t["id"] for t in before if t["status"] == "running"}
    assert {t["id"] for t in trials if t["attempts"] > 1} <= interrupted | crashed
    workers = {t["worker"] for t in trials}
    assert len(workers) >= 2                     # children really ran in separate worker processes
    def gone(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
        except OSError:
            return True

    assert all(gone(pid) for pid in orphans)    # the resumed driver removed them
    assert not (run_dir / "ray_processes.json").exists()


def test_asha_promotions_on_ray(tmp_path, no_leftovers):
    """ASHA on two Ray workers: promotions continue from checkpoints written by other processes."""
    from asha_helpers import check_asha
    from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig
    from nasnet.search.config import EarlyStopConfig
    from nasnet.search.loop import run_search

    no_leftovers.append(tmp_path)
    cfg = SearchConfig(children=12, early_stop=EarlyStopConfig("asha", (1, 2, 4), 2),
                       child=ChildConfig(fn="nasnet.search.children.analytic:analytic_child",
                                         options={"epoch_scale": 2.0, "epoch_sleep": 0.01}),
                       executor=ExecutorConfig(name="ray", workers=2))
    summary = run_search(cfg, tmp_path)
    trials, rows = check_asha(tmp_path, (1, 2, 4), 2, serial=False)
    assert summary.promotions == sum(r["rung"] > 0 for r in rows) >= 5
    assert len({r["worker"] for r in rows}) >= 2
