"""The GPU suite (bench/gpu_suite.py): its CPU smoke run, so the suite cannot rot while no GPU is at
hand, with the optional packages hidden as on a machine without them; a run killed midway keeps the
parts it finished; the plan fits the time; and the checks it makes on CUDA as tests (marked `gpu`,
skipped visibly without CUDA)."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

HIDDEN = ("ray", "timm", "matplotlib", "h5py", "safetensors", "onnx")


def _suite(tmp_path, *args, hide=(), **popen):
    """bench/gpu_suite.py ARGS as the device runs it (PYTHONPATH=src), with the packages in `hide`
    made unimportable (a package of that name that raises ImportError, first on the path)."""
    stubs = tmp_path / "hidden"
    for name in hide:
        (stubs / name).mkdir(parents=True, exist_ok=True)
        (stubs / name / "__init__.py").write_text(f"raise ImportError('{name} is hidden by the test')\n")
    path = os.pathsep.join([str(stubs), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, str(ROOT / "bench" / "gpu_suite.py"), *args]
    return cmd, dict(os.environ, PYTHONPATH=path), popen


@pytest.mark.slow
def test_smoke_run_writes_every_part_with_sane_values(tmp_path):
    out = tmp_path / "smoke.json"
    cmd, env, _ = _suite(tmp_path, "--device", "cpu", "--smoke", "--out", str(out), hide=HIDDEN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "passed in" in proc.stdout and "wrote" in proc.stdout          # the table's verdict line
    rep = json.loads(out.read_text())
    assert rep["passed"] and not rep["errors"] and not rep["checks_failed"] and rep["mode"] == "smoke"
    assert rep["state"] == "finished" and not rep["row_errors"]
    m = rep["machine"]
    assert m["torch"] == torch.__version__ and "cuda" in m and m["python"] and m["logical_cpus"] >= 1
    for name in HIDDEN:                       # recorded, never an import error
        assert "is hidden by the test" in rep["optional_packages"][name]["missing"]
    parts = rep["parts"]
    assert set(parts) == set(rep["parts_done"]) == {"peak", "ops", "cells", "models", "bf16_step", "augmentation",
                                                    "torchrun", "search", "child_cost", "packing", "model_speed",
                                                    "compiled"}
    assert [p["part"] for p in rep["plan"]] == ["peak", "correctness", "torchrun", "search", "child_cost", "packing",
                                                "model_speed", "compiled"]
    assert parts["peak"]["bf16_matmul_tflops"] > 0

    # correctness: every op at both strides and every padding, both cells, both networks; stated tolerances
    from nasnet.model.layers import PADDINGS

    assert parts["ops"]["passed"] and parts["ops"]["checked"] == 13 * 2 * len(PADDINGS) == 78
    assert parts["ops"]["tolerance"] > 0
    for name, count in (("cells", 2), ("models", 2)):
        checks = parts[name]["checks"]
        assert len(checks) == count and all(c["passed"] and 0 <= c["error"] <= c["tolerance"] for c in checks)
    assert {c["name"] for c in parts["models"]["checks"]} == {"nasnet_a_cifar", "nasnet_a_mobile"}
    step = parts["bf16_step"]
    assert step["passed"] and step["finite"] and step["first_update_cosine"] >= step["cosine_at_least"]
    assert all(math.isfinite(v) for losses in step["losses"].values() for v in losses)
    aug = parts["augmentation"]
    assert aug["passed"] and len(aug["cases"]) == 3 and aug["cases"][0]["bytes_equal"]
    assert aug["cases"][0]["error"] == 0.0                 # the CPU against itself
    ddp = parts["torchrun"]
    assert ddp["passed"] and ddp["backend"] == "gloo" and ddp["wrapped"] == "DistributedDataParallel"
    (search,) = parts["search"]["checks"]                 # the process executor (Ray: full runs only)
    assert search["passed"] and search["gpus_per_child"] == 0 and search["most_at_once"] == 2
    assert all(search["conditions"].values()) and search["devices"] == ["cpu"]

    # measurements: positive throughputs, finite ratios, the compiled child and a compiled model row
    child = parts["child_cost"]["rows"] + [r for r in parts["compiled"]["rows"] if "variant" in r]
    assert [r["variant"] for r in child] == ["eager fp32", "bf16 + channels_last", "+ torch.compile"]
    for r in child:
        assert r["images_per_second"] > 0 and r["child_seconds_paper"] > 0 and 0 < r["share_of_bf16_peak"] < 10
    assert child[-1]["compile_seconds"] >= 0
    assert [r["children"] for r in parts["packing"]["rows"]] == [1, 2]
    for r in parts["packing"]["rows"]:
        assert r["images_per_second"] > 0 and math.isfinite(r["gain_vs_one"]) and r["children_per_hour"] > 0
    speed = parts["model_speed"]["rows"]
    ours = [r for r in speed if r["model"] != "timm nasnetalarge"]
    assert len(ours) == 8 and all(r["images_per_second"] > 0 for r in ours)
    compiled = [r for r in parts["compiled"]["rows"] if "model" in r]
    assert compiled and all(r["compiled"] and r["images_per_second"] > 0 and r["regions"] > 0 for r in compiled)
    assert all("timm is not installed" in r["skipped"] for r in speed if r["model"] == "timm nasnetalarge")
    assert any("CUDA graphs need CUDA" in s for s in rep["skipped"])
    assert {"children_per_gpu_hour", "large_training_vs_timm_best", "packing_gain"} <= set(rep["targets"])


@pytest.mark.slow
def test_a_run_killed_midway_keeps_the_parts_it_finished(tmp_path):
    out = tmp_path / "partial.json"
    cmd, env, _ = _suite(tmp_path, "--device", "cpu", "--smoke", "--parts", "correctness", "--out", str(out))
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        done: list = []
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and len(done) < 3:
            time.sleep(0.2)
            if out.is_file():
                done = json.loads(out.read_text())["parts_done"]      # written atomically: always whole
        assert len(done) >= 3 and proc.poll() is None, f"no kill midway: {done}, exit {proc.poll()}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    rep = json.loads(out.read_text())
    assert rep["state"] == "running" and rep["passed"] is None and len(rep["parts_done"]) < 5
    assert rep["parts_done"][:3] == ["ops", "cells", "models"]        # no peak: nothing here divides by it
    assert rep["parts"]["ops"]["passed"] and rep["parts"]["ops"]["checked"] == 78
    assert all(c["passed"] for c in rep["parts"]["cells"]["checks"])


def test_the_watchdog_stops_a_run_past_its_budget_and_says_where(tmp_path):
    out = tmp_path / "stopped.json"
    cmd, env, _ = _suite(tmp_path, "--device", "cpu", "--smoke", "--parts", "correctness", "--budget-s", "1",
                         "--grace-s", "1", "--out", str(out))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "stopped by the watchdog" in proc.stderr, proc.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert rep["state"] == "stopped by the watchdog" and rep["passed"] is False
    assert any(e.startswith("watchdog: still running 1 s after the 1 s budget, in ") for e in rep["errors"])


def test_the_plan_fits_eight_minutes_and_a_window():
    import gpu_suite
    import gpu_table

    for sizes in (gpu_suite.FULL, gpu_suite.SMOKE):
        rows = gpu_table.plan_rows(sizes, gpu_suite.selected_groups(None), sizes["budget_s"])
        assert [r["part"] for r in rows] == ["peak", *gpu_suite.PARTS]
        assert rows[-1]["ends_by_s"] == pytest.approx(sizes["budget_s"], abs=0.5)
    full = gpu_suite.FULL
    assert full["budget_s"] <= 480 and full["budget_s"] + full["grace_s"] <= 540   # a command may take 600 s
    assert gpu_suite.selected_groups(["correctness", "search"]) == ["correctness", "search"]
    some = gpu_table.plan_rows(full, gpu_suite.selected_groups(["correctness", "compiled"]), 100)
    assert [r["part"] for r in some] == ["peak", "correctness", "compiled"] and some[-1]["ends_by_s"] == 100
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_suite.py"), "--plan"], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert r.returncode == 0 and "budget 460 s" in r.stdout and "compiled" in r.stdout, r.stderr


def test_ours_and_timms_are_compared_only_in_settings_both_measured():
    import gpu_speed

    def row(model, mode, precision, compiled, ips):
        return {"model": model, "mode": mode, "precision": precision, "compiled": compiled, "images_per_second": ips}

    timm = gpu_speed.TIMM_LARGE
    rows = [row("nasnet_a_large", "training", "bf16", False, 100.0), row(timm, "training", "bf16", False, 80.0),
            row("nasnet_a_large", "training", "bf16", True, 300.0),                 # timm's compiled row failed:
            {"model": timm, "mode": "training", "precision": "bf16", "compiled": True, "error": "RuntimeError: OOM"},
            row("nasnet_a_large", "inference", "bf16", True, 500.0), row(timm, "inference", "bf16", True, 400.0),
            row("nasnet_a_large", "inference", "fp32", False, 90.0), row(timm, "inference", "fp32", False, 120.0)]
    s = gpu_speed.summarize_speed(rows)
    assert s["best"]["large training: ours / timm, each at its best"] == pytest.approx(100 / 80)   # not 300 / 80
    assert s["best"]["large inference: ours / timm, each at its best"] == pytest.approx(500 / 400)
    assert s["compared_settings"]["training"] == [{"precision": "bf16", "compiled": False}]
    assert s["best"]["nasnet_a_large training"]["images_per_second"] == 300.0     # the fastest, listed apart
    assert {(x["mode"], x["precision"], x["compiled"]) for x in s["same_setting"]} == {
        ("training", "bf16", False), ("inference", "bf16", True), ("inference", "fp32", False)}


def test_a_failing_row_records_its_error_and_the_others_go_on():
    import gpu_speed

    def boom():
        raise RuntimeError("CUDA out of memory (a stand-in)")

    rows = [gpu_speed.guarded({"model": "a"}, boom),
            gpu_speed.guarded({"model": "b"}, lambda: {"images_per_second": 2})]
    assert rows[0]["error"] == "RuntimeError: CUDA out of memory (a stand-in)" and "boom" in rows[0]["traceback"]
    assert rows[1] == {"model": "b", "images_per_second": 2}


# -- the suite's checks on CUDA, as tests ---------------------------------------------------------

@pytest.mark.gpu
def test_ops_cells_and_networks_match_the_cpu_on_cuda():
    import gpu_checks
    import gpu_suite

    dev = torch.device("cuda")
    s = gpu_suite.FULL
    assert gpu_checks.check_ops(dev, **s["ops"])["passed"]
    assert all(c["passed"] for c in gpu_checks.check_cells(dev, **s["cells"]))
    assert all(c["passed"] for c in gpu_checks.check_models(dev, s["models"]))


@pytest.mark.gpu
def test_bf16_channels_last_training_matches_fp32_on_cuda():
    import gpu_checks
    import gpu_suite

    assert gpu_checks.check_bf16_step(torch.device("cuda"), **gpu_suite.FULL["bf16_step"])["passed"]


@pytest.mark.gpu
def test_augmentation_on_cuda_equals_the_cpus():
    import gpu_checks

    rep = gpu_checks.check_augmentation(torch.device("cuda"), 256)
    assert rep["passed"] and rep["cases"][0]["bytes_equal"] and rep["cases"][0]["error"] <= 2**-24


@pytest.mark.gpu
def test_sync_batch_norm_kernels_match_batch_norm(tmp_path):
    import gpu_checks

    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("nccl", store=store, rank=0, world_size=1)
    try:
        assert all(r["passed"] for r in gpu_checks.check_sync_bn_kernels(torch.device("cuda")))
    finally:
        torch.distributed.destroy_process_group()
