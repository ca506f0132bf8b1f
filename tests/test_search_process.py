"""The local process executor: crashes isolated, timeouts, Ctrl-C (paper A.3)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import ROOT, trial_rows
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.executors import make_executor

FAULTY = "nasnet.search.children.analytic:faulty_child"


def test_worker_deaths_are_retried_and_hangs_time_out(tmp_path):
    child = ChildConfig(fn=FAULTY, options={"fault_kill": 0.2, "fault_dir": str(tmp_path / "kills"),
                                            "fault_raise": 0.1, "fault_hang": 0.1, "hang_seconds": 60})
    cfg = SearchConfig(children=24, child=child, strategy=StrategyConfig(batch_size=6),
                       executor=ExecutorConfig(name="process", workers=2, max_retries=1, child_timeout=2.0))
    t = time.time()
    summary = run_search(cfg, tmp_path / "run")
    assert time.time() - t < 60                   # the hanging children were stopped
    trials = trial_rows(tmp_path / "run")
    assert len(trials) == 24 and summary.counts["queued"] == summary.counts["running"] == 0
    killed = [t for t in trials if t["error"] and "killed by SIGKILL" in t["error"]]
    assert killed and len(killed) == len(list((tmp_path / "kills").iterdir()))
    assert all(t["attempts"] == 2 for t in killed)          # retried on a fresh worker process
    hung = [t for t in trials if t["error"] and "child timeout" in t["error"]]
    # a hanging child is stopped and recorded at its first run (a second run only after a kill of its worker)
    assert hung and all(t["status"] == "failed" and t["attempts"] == 1 + ("killed by SIGKILL" in t["error"])
                        for t in hung)
    assert any("the child raised" in (t["error"] or "") for t in trials)
    assert len({t["worker"] for t in trials if t["status"] == "done"}) >= 2     # separate processes


def report_env(payload):
    """A child that reports its worker's environment."""
    return {"threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()}


def test_workers_use_one_thread_each_and_auto_width():
    ex = make_executor(ExecutorConfig(name="process", workers=0))
    try:
        assert ex.capacity == os.cpu_count()
        ex.submit("env", {"fn": "test_search_process:report_env"})
        ex.submit("bad", {"fn": "os:getenv"})                   # os.getenv(dict) raises TypeError
        out = {}
        while len(out) < 2:
            out.update({o.key: o for o in ex.wait(5)})
        assert out["env"].kind == "result" and out["env"].result["threads"] == "1"
        assert out["env"].result["pid"] != os.getpid()
        assert out["bad"].kind == "error" and "TypeError" in out["bad"].error   # recorded; the worker lives on
        ex.submit("again", {"fn": "test_search_process:report_env"})
        again = []
        while not again:
            again = ex.wait(5)
        assert again[0].result["pid"] in {out["env"].result["pid"], int(out["bad"].worker.split(":")[1])}
    finally:
        ex.close()


def test_ctrl_c_stops_cleanly_and_the_run_continues(tmp_path, cli):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "nasnet", "search", "--run-dir", str(run_dir), "--child", FAULTY,
            "--children", "40", "--executor", "process", "--workers", "2", "--quiet", "--child-set", "sleep=0.2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and done < 4:
        time.sleep(0.1)
        try:
            done = len(trial_rows(run_dir, "SELECT id FROM trials WHERE status='done'"))
        except sqlite3.Error:
            pass
    os.killpg(proc.pid, signal.SIGINT)           # a terminal's Ctrl-C reaches the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Continue it with: nasnet search --run-dir" in err and "Traceback" not in err
    trials = trial_rows(run_dir)
    assert {t["status"] for t in trials} <= {"done", "queued"} and len(trials) < 40
    assert (run_dir / "trials.csv").is_file() and (run_dir / "controller.pt").is_file()
    res = cli("search", "--run-dir", str(run_dir), "--json", "--child-set", "sleep=0.2")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["counts"]["done"] == 40
