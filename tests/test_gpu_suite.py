"""The GPU suite (bench/gpu_suite.py, issue 14): its CPU smoke run, so the suite cannot rot while no
GPU is at hand, and the checks it makes on CUDA as tests (marked `gpu`, skipped visibly without CUDA)."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))


@pytest.mark.slow
def test_smoke_run_writes_every_part_with_sane_values(tmp_path):
    out = tmp_path / "smoke.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_suite.py"), "--device", "cpu", "--smoke",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "passed in" in proc.stdout and "wrote" in proc.stdout          # the table's verdict line
    rep = json.loads(out.read_text())
    assert rep["passed"] and not rep["errors"] and not rep["checks_failed"] and rep["mode"] == "smoke"
    m = rep["machine"]
    assert m["torch"] == torch.__version__ and "cuda" in m and m["python"] and m["logical_cpus"] >= 1
    parts = rep["parts"]
    assert set(parts) == {"peak", "ops", "cells", "models", "bf16_step", "augmentation", "torchrun", "search",
                          "child_cost", "packing", "model_speed", "compiled"}
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
    assert aug["passed"] and len(aug["cases"]) == 3 and aug["cases"][0]["error"] == 0.0
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
    try:
        import timm  # noqa: F401
    except ImportError:                                      # skipped, and said so
        assert all("timm is not installed" in r["skipped"] for r in speed if r["model"] == "timm nasnetalarge")
    assert any("CUDA graphs need CUDA" in s for s in rep["skipped"])
    assert {"children_per_gpu_hour", "large_training_vs_timm_best", "packing_gain"} <= set(rep["targets"])


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
    assert rep["passed"] and rep["cases"][0]["error"] == 0.0


@pytest.mark.gpu
def test_sync_batch_norm_kernels_match_batch_norm(tmp_path):
    import gpu_checks

    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("nccl", store=store, rank=0, world_size=1)
    try:
        assert all(r["passed"] for r in gpu_checks.check_sync_bn_kernels(torch.device("cuda")))
    finally:
        torch.distributed.destroy_process_group()
