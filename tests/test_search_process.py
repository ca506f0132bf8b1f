"""The local process executor: crashes isolated, timeouts, Ctrl-C (paper A.3)."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ROOT, default_sigint, trial_rows
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.executors import make_executor

FAULTY = "nasnet.search.children.analytic:faulty_child"


def _planned(genotype_text: str, fault: str, probability: float) -> bool:
    """Whether faulty_child injects `fault` into this architecture: its plan is a hash of the genotype's
    text (see its module), recomputed here rather than asked of the child."""
    digest = hashlib.sha256(f"{fault}|{genotype_text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < probability


def test_worker_deaths_are_retried_and_hangs_time_out(tmp_path):
    # The timeout runs from dispatch, which includes starting a fresh worker process (spawn + imports):
    # 5 s leaves a loaded machine room for that, so only the children that really hang are stopped.
    timeout = 5.0
    child = ChildConfig(fn=FAULTY, options={"fault_kill": 0.2, "fault_dir": str(tmp_path / "kills"),
                                            "fault_raise": 0.1, "fault_hang": 0.05, "hang_seconds": 3600})
    cfg = SearchConfig(children=24, child=child, strategy=StrategyConfig(batch_size=6),
                       executor=ExecutorConfig(name="process", workers=2, max_retries=1, child_timeout=timeout))
    t = time.time()
    summary = run_search(cfg, tmp_path / "run")
    trials = trial_rows(tmp_path / "run")
    planned_hangs = {t["id"] for t in trials if _planned(t["genotype"], "hang", 0.05)}
    # the hanging children were stopped: at most their timeouts, two at a time, plus a margin
    assert time.time() - t < 60 + timeout * len(planned_hangs) / 2
    assert len(trials) == 24 and summary.counts["queued"] == summary.counts["running"] == 0
    killed = [t for t in trials if t["error"] and "killed by SIGKILL" in t["error"]]
    assert killed and len(killed) == len(list((tmp_path / "kills").iterdir()))
    assert all(t["attempts"] == 2 for t in killed)          # retried on a fresh worker process
    hung = [t for t in trials if t["error"] and "child timeout" in t["error"]]
    # catches: a child stopped that did not hang (a timeout shorter than claimed, or counted from the
    # wrong moment), or a hang never stopped
    assert planned_hangs and {t["id"] for t in hung} == planned_hangs
    # a hanging child is stopped and recorded at its first run (a second run only after a kill of its worker)
    assert all(t["status"] == "failed" and t["attempts"] == 1 + ("killed by SIGKILL" in t["error"])
               for t in hung)
    assert any("the child raised" in (t["error"] or "") for t in trials)
    assert len({t["worker"] for t in trials if t["status"] == "done"}) >= 2     # separate processes


def report_env(payload):
    """A child that reports its worker's environment."""
    time.sleep(payload.get("sleep", 0))
    return {"threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid(),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _outcomes(ex, n: int, limit: float = 60.0) -> list:
    """The next `n` outcomes of executor `ex`, waiting at most `limit` seconds in all (a lost child fails
    the test instead of hanging it)."""
    deadline, out = time.monotonic() + limit, []
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(out)} of {n} outcomes after {limit:g} s"
        out += ex.wait(min(5.0, left))
    return out


def test_workers_use_one_thread_each_and_auto_width():
    ex = make_executor(ExecutorConfig(name="process", workers=0))
    try:
        assert ex.capacity == os.cpu_count()
        ex.submit("env", {"fn": "test_search_process:report_env"})
        ex.submit("bad", {"fn": "os:getenv"})                   # os.getenv(dict) raises TypeError
        out = {o.key: o for o in _outcomes(ex, 2)}
        assert out["env"].kind == "result" and out["env"].result["threads"] == "1"
        assert out["env"].result["pid"] != os.getpid()
        assert out["bad"].kind == "error" and "TypeError" in out["bad"].error   # recorded; the worker lives on
        ex.submit("again", {"fn": "test_search_process:report_env"})
        again = _outcomes(ex, 1)
        assert again[0].result["pid"] in {out["env"].result["pid"], int(out["bad"].worker.split(":")[1])}
    finally:
        ex.close()


def test_ctrl_c_stops_cleanly_and_the_run_continues(tmp_path, cli):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "nasnet", "search", "--run-dir", str(run_dir), "--child", FAULTY,
            "--children", "40", "--executor", "process", "--workers", "2", "--quiet", "--child-set", "sleep=0.2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


def test_gpus_per_child_shares_out_gpus_through_cuda_visible_devices(monkeypatch):
    """--gpus-per-child with the process executor: 0.5 puts two workers on each GPU, 2 gives each
    worker two GPUs of its own (as Ray does for its tasks); without GPUs, or with more workers than
    they hold, it is refused in one line naming the config's fields (the command line names its flags)."""
    from nasnet.errors import NasnetError
    from nasnet.search.executors.process import ProcessExecutor, gpu_slots

    assert gpu_slots(0.25, ["0"]) == ["0"] * 4
    assert gpu_slots(0.5, ["0", "1"]) == ["0", "0", "1", "1"]
    assert gpu_slots(2, ["a", "b", "c", "d", "e"]) == ["a,b", "c,d"]
    assert gpu_slots(1 / 3, ["0"]) == ["0"] * 3                      # floor(1 / g), rounding kept exact
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,7")                 # the driver's own list is shared out
    ex = make_executor(ExecutorConfig(name="process", workers=4, gpus_per_child=0.5))
    try:
        assert ex.slots == ["3", "3", "7", "7"] and ex.capacity == 4
        for i in range(4):
            ex.submit(i, {"fn": "test_search_process:report_env", "sleep": 0.5})
        out = _outcomes(ex, 4)
        assert sorted(o.result["gpus"] for o in out) == ["3", "3", "7", "7"]
        assert len({o.result["pid"] for o in out}) == 4
    finally:
        ex.close()
    assert ProcessExecutor(workers=0, gpus_per_child=0.25, gpus=["0"]).capacity == min(4, os.cpu_count())
    with pytest.raises(NasnetError, match="0 visible GPU"):
        ProcessExecutor(gpus_per_child=0.25, gpus=[])
    with pytest.raises(NasnetError, match="`executor.workers` 8 with `executor.gpus_per_child` 0.25 needs 2 GPU"):
        ProcessExecutor(workers=8, gpus_per_child=0.25, gpus=["0"])
