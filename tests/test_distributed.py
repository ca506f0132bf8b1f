"""Data-parallel `nasnet train` on torchrun / DDP with gloo on CPU: launch, resume, failures, clean endings.

Real processes throughout: `nasnet train --nproc 2` (torchrun inside), one thread per process."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_cli

TINY = ["-N", "1", "--filters", "8", "--set", "model.stem_multiplier=1", "--no-progress", "--threads", "1",
        "--no-tensorboard"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Sizes no shard divides evenly: 2 processes drop one training example per epoch (and the last
    partial batch) but must score each of the 63 test images exactly once."""
    from digits_subset import write_digits_npz

    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits.npz", n_train=513, n_val=50, n_test=63)


def _args(data):
    # 513 // 2 = 256 examples per process, 32 steps of 8 per epoch: long enough to kill a rank mid-epoch
    return ["--data", data, *TINY, "--epochs", "2", "--batch-size", "8", "--seed", "3", "--set", "aux_weight=0.4",
            "--set", "cutout=2"]


def _epochs(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """An uninterrupted 2-process run."""
    run_dir = tmp_path_factory.mktemp("ddp") / "ref"
    r = run_cli("train", *_args(data), "--run-dir", str(run_dir), "--nproc", "2")
    assert r.returncode == 0, r.stderr
    return run_dir, r


def test_two_processes_report_once_and_the_checkpoint_loads_in_one(reference, data):
    run_dir, r = reference
    out = r.stdout.splitlines()
    assert sum(line.startswith("test: top-1") for line in out) == 1          # rank 0 alone prints
    assert [line.split()[1] for line in out if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert "32 steps of 8 per process x 2 processes = 16" in r.stdout
    assert _epochs(run_dir) == [1, 2]                                          # one metrics row per epoch
    results = json.loads((run_dir / "results.json").read_text())
    assert results["processes"] == 2 and results["global_batch"] == 16 and results["steps"] == 64
    assert results["test"]["images"] == 63 and results["val"]["images"] == 50  # every example once
    config = json.loads((run_dir / "config.json").read_text())
    assert config["distributed"]["world_size"] == 2 and config["distributed"]["backend"] == "gloo"
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    assert not any(k.startswith("module.") for k in state["model"])           # the bare model, not the DDP wrapper

    # one process scores the checkpoint exactly as the two processes did
    e = run_cli("eval", str(run_dir), "--json")
    assert e.returncode == 0, e.stderr
    ev = json.loads(e.stdout)
    assert ev["images"] == 63 and ev["top1"] == pytest.approx(results["test"]["top1"])
    assert ev["loss"] == pytest.approx(results["test"]["loss"], rel=1e-5)

    from nasnet import load_model
    from nasnet.model.network import ModelConfig, NASNet

    model = load_model(run_dir / "checkpoint.pt")
    direct = NASNet(ModelConfig.from_dict(state["config"]["model"])).eval()
    direct.load_state_dict(state["model"])
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), direct(x))


def test_first_step_gradients_equal_one_process_on_the_concatenated_batch(tmp_path, data):
    """The first optimizer step of the real loop (BN frozen, aux loss, L2 and clipping on): the gradients
    that 2 processes of batch 8 average equal 1 process's on the batch of 16 holding both halves."""
    from ddp_grad_setup import capture_first_step, configs
    from nasnet.data import load_dataset
    from nasnet.train.loop import Trainer

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(ROOT / "tests" / "ddp_grad_worker.py"), data, str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    ddp = [torch.load(tmp_path / f"grads_rank{k}.pt", weights_only=True) for k in (0, 1)]

    dataset = load_dataset(data)
    model_cfg, train_cfg = configs(dataset, batch_size=16)
    single = capture_first_step(Trainer(model_cfg, train_cfg, dataset))

    assert set(single) == set(ddp[0]) == set(ddp[1])
    unused = sorted(k for k, g in single.items() if g is None)
    assert unused and all(".preprocess.1." in k for k in unused)  # an input the reduction cells never read
    assert sorted(k for k, g in ddp[0].items() if g is None) == unused
    assert any(g is not None and k.startswith("aux_head.") and g.abs().sum() > 0 for k, g in single.items())
    for name, g in single.items():
        if g is None:
            continue
        assert torch.equal(ddp[0][name], ddp[1][name]), name              # both processes step alike
        torch.testing.assert_close(ddp[0][name], g, rtol=1e-4, atol=1e-6, msg=name)


GROUP_THREADS_DRIVER = """
import json, sys
from nasnet.data import load_dataset
from nasnet.model.network import ModelConfig
from nasnet.train import distributed
from nasnet.train.config import model_config_for, preset
from nasnet.train.job import run_worker
from nasnet.train.loop import Trainer

seen = {}


class Job:  # what run_worker needs of a TrainJob: a real DDP-wrapped training run, then success or a crash
    def shareable(self):
        return self

    def run(self, ctx, **_):
        dataset = load_dataset(sys.argv[1])
        cfg = preset("child", epochs=1, batch_size=32, device="cpu")
        model_cfg = model_config_for(ModelConfig(normal_cells=1, filters=8), cfg, dataset)
        trainer = Trainer(model_cfg, cfg, dataset, ddp=True)
        trainer.fit()
        seen.update(ddp=type(trainer.ddp).__name__, during=distributed.group_threads())
        if sys.argv[2] == "crash":
            raise RuntimeError("a crash while the model is alive")


try:
    seen["status"] = run_worker(lambda ctx: Job(), 60)
    seen["after"] = distributed.group_threads()
except RuntimeError as err:  # looked at with the exception alive, as when it ends the process
    seen["status"] = str(err)
    seen["after"] = distributed.group_threads()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("ending", ["success", "crash"])
def test_the_process_group_and_its_threads_are_gone_when_a_worker_ends(data, ending):
    """A gloo thread alive when the interpreter finalizes can abort a rank, even one whose run succeeded
    (SIGABRT, "terminate called without an active exception"; see nasnet.train.distributed). After a
    DDP-wrapped training run, `run_worker` leaves none, whether the run succeeded or raised (the
    traceback's frames hold the model). In a fresh process: the leak depends on what the process had
    imported before its group existed."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", RANK="0", WORLD_SIZE="1",
               LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for name in ("TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_RUN_ID",
                 "TORCHELASTIC_ERROR_FILE"):
        env.pop(name, None)
    r = subprocess.run([sys.executable, "-c", GROUP_THREADS_DRIVER, data, ending], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["ddp"] == "DistributedDataParallel"
    assert got["status"] == (0 if ending == "success" else "a crash while the model is alive")
    # what is looked for: gloo's two worker threads (and from torch 2.13 its event loop, gloo_tcp_loop;
    # torch 2.11 leaves that thread unnamed)
    assert got["during"].count("pt_gloo_runloop") == 2, got
    assert got["after"] == [], got


def _wait_for(condition, what, timeout, proc=None):
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds, or at once if `proc`
    (the launcher) has ended meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.01)


def _worker_pid(launcher_pid, rank, timeout=120):
    """The pid of the torchrun worker with RANK=rank among the launcher's children (Linux /proc)."""
    found = []

    def appeared():
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != launcher_pid:
                    continue
                env = (stat.parent / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if f"RANK={rank}".encode() in env:
                found.append(int(stat.parent.name))
                return True
        return False

    _wait_for(appeared, f"a worker with RANK={rank} appeared", timeout)
    return found[0]


def _recorded_epochs(run_dir):
    return _epochs(run_dir) if (run_dir / "metrics.csv").exists() else []


def _start_and_kill_rank1(data, run_dir, *extra):
    """Start a 2-process run, SIGKILL rank 1 while epoch 2 of 2 runs; return the launcher process.

    The kill is checked to have landed in the middle of the run: rank 1 still alive (not a zombie that
    had finished) just before it, and only epoch 1 of 2 recorded just after it. Epoch 2's row needs rank 1
    (its evaluation is shared), so a kill that came too late would show it here rather than pass."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "nasnet", "train", *_args(data), "--run-dir", str(run_dir),
                             "--nproc", "2", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        victim = _worker_pid(proc.pid, 1)
        _wait_for(lambda: _recorded_epochs(run_dir) == [1], "epoch 1 was recorded", 300, proc)
        state = Path(f"/proc/{victim}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state not in ("Z", "X"), "rank 1 had already finished: the kill would not land"
        os.kill(victim, signal.SIGKILL)
        done = _recorded_epochs(run_dir)
        assert done == [1], f"epochs {done} of 2 were done when the kill landed (it must land during epoch 2)"
        assert not (run_dir / "results.json").exists()
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


def test_killed_rank_brings_the_job_down_then_resume_finishes_exactly(tmp_path, data, reference):
    run_dir = tmp_path / "killed"
    proc = _start_and_kill_rank1(data, run_dir)
    out, err = proc.communicate(timeout=120)                # no hang: torchrun stops rank 0
    assert proc.returncode == 1, err
    assert "rank 1 (local rank 1" in err and "killed by SIGKILL" in err
    assert "closing signal" not in err and "failed (exitcode" not in err    # torchrun's log does not repeat it
    assert f"nasnet train --run-dir {run_dir} --resume --nproc 2" in err
    assert _epochs(run_dir) == [1]

    r = run_cli("train", "--run-dir", str(run_dir), "--resume", "--nproc", "2", "--threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch 1" in r.stdout
    assert _epochs(run_dir) == [1, 2]
    ref, got = _weights(reference[0]), _weights(run_dir)      # the same run as never interrupted
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_elastic_restart_resumes_by_itself(tmp_path, data, reference):
    run_dir = tmp_path / "elastic"
    proc = _start_and_kill_rank1(data, run_dir, "--max-restarts", "1")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "restart 1 of this launch: resuming after epoch 1" in out
    assert _epochs(run_dir) == [1, 2]
    assert sum(line.startswith("test: top-1") for line in out.splitlines()) == 1
    ref, got = _weights(reference[0]), _weights(run_dir)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_launcher_mistakes_are_one_line_before_anything_starts(tmp_path, capsys):
    from nasnet.cli import main

    existing = tmp_path / "run"
    existing.mkdir()
    (existing / "config.json").write_text("{}")
    cases = [
        (["--nproc", "0"], "--nproc '0'"),
        (["--nproc", "2", "--nnodes", "2"], "--rdzv-endpoint HOST:PORT"),
        (["--nproc", "2", "--nnodes", "3:2"], "MIN must not exceed MAX"),
        (["--max-restarts", "1"], "--max-restarts has no effect without --nproc K"),
        (["--nproc", "2", "--run-dir", str(existing)], "already holds a run"),
        (["--nproc", "2", "--resume"], "--resume needs --run-dir"),
    ]
    for argv, message in cases:
        assert main(["train", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_sync_bn_is_refused_on_cpu(data):
    from nasnet.data import load_dataset
    from nasnet.errors import NasnetError
    from nasnet.model.network import ModelConfig
    from nasnet.train.config import model_config_for, preset
    from nasnet.train.loop import Trainer

    cfg = preset("child", sync_bn=True, device="cpu")
    dataset = load_dataset(data)
    model_cfg = model_config_for(ModelConfig(normal_cells=1, filters=8), cfg, dataset)
    with pytest.raises(NasnetError, match="sync_bn needs CUDA"):
        Trainer(model_cfg, cfg, dataset, world_size=2)
    with pytest.raises(NasnetError, match="sync_bn needs CUDA"):   # one process wrapped in DDP (the GPU suite's run)
        Trainer(model_cfg, cfg, dataset, world_size=1, ddp=True)
    assert not Trainer(model_cfg, cfg, dataset).sync_bn               # one process, no DDP: plain BatchNorm


def test_failures_are_described_in_one_line(tmp_path):
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from nasnet.train.launch import LOST_PEER_STATUS, describe_failure

    killed = ProcessFailure(local_rank=1, pid=4242, exitcode=-9, error_file="/nonexistent")
    stopped = ProcessFailure(local_rank=0, pid=4241, exitcode=-15, error_file="/nonexistent")
    status, text = describe_failure({0: stopped, 1: killed})
    assert status == 1 and text == "rank 1 (local rank 1, pid 4242) was killed by SIGKILL; torchrun stopped the " \
                                   "other processes"
    # a rank that aborted in native code (exit status -6) printed the reason itself: the line points there
    aborted = ProcessFailure(local_rank=1, pid=4243, exitcode=-6, error_file="/nonexistent")
    status, text = describe_failure({1: aborted})
    assert status == 1 and text == "rank 1 (local rank 1, pid 4243) was killed by SIGABRT (a crash in native code: " \
                                   "its last lines above say where); torchrun stopped the other processes"
    # an exception recorded by torchrun's @record (the error file torchrun gives every process)
    error_file = tmp_path / "error.json"
    error_file.write_text(json.dumps({"message": {"message": "RuntimeError: CUDA out of memory\nmore",
                                                  "extraInfo": {"py_callstack": "...", "timestamp": "1"}}}))
    crashed = ProcessFailure(local_rank=1, pid=7, exitcode=1, error_file=str(error_file))
    lost = ProcessFailure(local_rank=0, pid=6, exitcode=LOST_PEER_STATUS, error_file="/nonexistent")
    status, text = describe_failure({0: lost, 1: crashed})
    assert status == 1 and text.startswith("rank 1 (local rank 1, pid 7) exited with status 1: RuntimeError: CUDA "
                                           "out of memory;")
    mistake = ProcessFailure(local_rank=0, pid=1, exitcode=2, error_file="/nonexistent")
    assert describe_failure({0: mistake, 1: mistake}) == (2, "")   # the ranks printed their own error line
