"""The GPU suite: every CUDA code path checked against the CPU, and what a search child, packing
and the models cost on the GPU, in one command and one JSON file (issue 14).

    PYTHONPATH=src python bench/gpu_suite.py                        # a CUDA machine: about 8 minutes
    PYTHONPATH=src python bench/gpu_suite.py --device cpu --smoke   # every part on tiny shapes (CI)

Parts, in the order they run (the first two are checks that pass or fail, the rest measurements):

1. correctness on the device against the CPU, fp32 (TF32 off): every op (stride 1 and 2, every
   padding), NASNet-A's normal and reduction cells, the CIFAR and Mobile networks, forward and
   backward; a few training steps in bf16 autocast + channels_last against fp32; augmentation of
   a batch on the device against the same batch on the CPU, same seed;
2. the distributed and search paths: a one-process torchrun run (NCCL with sync_bn on CUDA, gloo
   on a CPU) wrapped in DDP, with SyncBatchNorm's kernels checked; `nasnet search` end to end on a
   CIFAR-shaped npz written at run time, children sharing the GPU (--gpus-per-child 0.25; on a
   CPU 0), with the process executor and, where Ray is installed, the Ray executor;
3. child cost: the paper's search child (CIFAR skeleton, N = 2, F0 = 32, 32x32x3, batch 128),
   timed per epoch and extrapolated to 20 epochs of 45,000 images, eager fp32 -> bf16 +
   channels_last -> + torch.compile -> + CUDA graphs; images/s and the share of the bf16
   matrix-multiply rate measured at the start of the run;
4. packing: 1, 2, 4 and 8 children at once as processes of the search's process executor on
   the one GPU; children per GPU-hour and the gain over one at a time;
5. model speed: nasnet_a_mobile, nasnet_a_large and timm's nasnetalarge (skipped, and said so,
   where timm is missing), inference and training, fp32 and bf16, eager and compiled (each cell
   compiled: cells of one shape share a graph);

Compiled rows run last, in one subprocess stopped at the time budget (--budget-s): what did not
fit is listed as skipped. In --smoke mode (CPU, tiny shapes, one thread, under a minute on two
cores) torch.compile uses dynamo's "eager" backend (inductor's C++ build takes minutes on a CPU),
the CUDA-only parts run their CPU equivalents (gloo, --gpus-per-child 0, no CUDA graphs) and the
subprocess parts run beside the in-process ones; its numbers only show that the code runs.

Output: a table on stdout and one JSON file (default bench/results/gpu/<GPU>-<date>.json) with the
machine, torch, CUDA, cuDNN and NCCL versions. Exit status 1 when a check failed or a part broke.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import common  # noqa: F401  (puts src/ on sys.path)
import torch

FULL = {
    "peak_n": 8192,
    "ops": dict(channels=32, size=16, batch=8),
    "cells": dict(filters=32, size=8, batch=8),
    "models": {"nasnet_a_cifar": ({}, 8), "nasnet_a_mobile": ({}, 4)},
    "bf16_step": dict(normal_cells=2, filters=32, batch=128, steps=4),
    "augment_images": 512,
    "ddp": dict(normal_cells=2, filters=32, batch=64, steps=8, epochs=2),
    "search": dict(children=4, workers=4, gpus_per_child=0.25, epochs=1, batch=128, n_train=2048, n_val=512,
                   executors=("process", "ray")),
    "child": dict(normal_cells=2, filters=32, batch=128, steps=30, timed_epochs=3, n_val=5000),
    "packing": dict(children=(1, 2, 4, 8), normal_cells=2, filters=32, batch=128, steps=10, window_s=8.0,
                    min_seconds=40),
    "speed": {"models": {"nasnet_a_mobile": ({}, {"inference": 256, "training": 128}),
                         "nasnet_a_large": ({}, {"inference": 64, "training": 32}),
                         "timm nasnetalarge": ({}, {"inference": 64, "training": 32})},
              "precisions": ("bf16", "fp32"), "warmup": 3, "repeats": 10},
    "compiled_speed": [("nasnet_a_large", "training", "bf16"), ("timm nasnetalarge", "training", "bf16"),
                       ("nasnet_a_large", "inference", "bf16"), ("timm nasnetalarge", "inference", "bf16"),
                       ("nasnet_a_mobile", "training", "bf16"), ("nasnet_a_mobile", "inference", "bf16"),
                       ("nasnet_a_large", "training", "fp32"), ("timm nasnetalarge", "training", "fp32"),
                       ("nasnet_a_large", "inference", "fp32"), ("timm nasnetalarge", "inference", "fp32"),
                       ("nasnet_a_mobile", "training", "fp32"), ("nasnet_a_mobile", "inference", "fp32")],
    "compile_kwargs": {},
    "budget_s": 460,
    "compiled_reserve_s": 150,   # packing and the eager speed rows stop starting rows when less is left
}
TINY = dict(normal_cells=1, filters=4)
TINY_IMAGENET = dict(normal_cells=1, filters=8, image_size=64)   # the ImageNet skeleton's stem cells need F0 >= 8
SMOKE = {
    "peak_n": 256,
    "ops": dict(channels=8, size=8, batch=2),
    "cells": dict(filters=4, size=4, batch=2),
    "models": {"nasnet_a_cifar": (TINY, 2), "nasnet_a_mobile": (TINY_IMAGENET, 2)},
    "bf16_step": dict(normal_cells=1, filters=4, batch=16, steps=3),
    "augment_images": 32,
    "ddp": dict(normal_cells=1, filters=4, batch=8, steps=2, epochs=2),
    "search": dict(children=2, workers=2, gpus_per_child=0.25, epochs=1, batch=16, n_train=64, n_val=32,
                   extra=["--normal-cells", "1", "--filters", "4"], executors=("process",)),
    "child": dict(**TINY, batch=16, steps=2, timed_epochs=1, n_val=32),
    "packing": dict(children=(1, 2), **TINY, batch=16, steps=2, window_s=1.0, min_seconds=5),
    "speed": {"models": {"nasnet_a_mobile": (TINY_IMAGENET, {"inference": 2, "training": 2}),
                         "nasnet_a_large": (TINY_IMAGENET, {"inference": 2, "training": 2}),
                         "timm nasnetalarge": ({}, {"inference": 2, "training": 2})},
              "precisions": ("bf16", "fp32"), "warmup": 1, "repeats": 2},
    "compiled_speed": [("nasnet_a_mobile", "inference", "fp32")],
    "compile_kwargs": {"backend": "eager"},
    "budget_s": 300,
    "compiled_reserve_s": 0,
}


PARTS = {"correctness": ("ops", "cells", "models", "bf16_step", "augmentation"), "torchrun": ("torchrun",),
         "search": ("search",), "child_cost": ("child_cost",), "packing": ("packing",),
         "model_speed": ("model_speed",), "compiled": ("compiled",)}


class Suite:
    def __init__(self, device: torch.device, sizes: dict, smoke: bool, budget_s: float, workdir: Path,
                 parts: list[str] | None = None):
        self.device, self.sizes, self.smoke, self.workdir = device, sizes, smoke, workdir
        self.selected = {"peak"} | {name for group in (parts or PARTS) for name in PARTS[group]}
        self.start = time.time()
        self.deadline = self.start + budget_s
        self.report: dict = {
            "suite": "nasnet GPU suite (bench/gpu_suite.py)", "mode": "smoke" if smoke else "full",
            "device": str(device), "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "budget_s": budget_s, "machine": common.machine_info(device), "command": " ".join(sys.argv),
            "parts": {}, "skipped": [], "errors": [],
        }

    def left(self) -> float:
        return self.deadline - time.time()

    def part(self, name: str, fn, *args, **kwargs):
        """Run one part; an exception is recorded (the suite goes on) and fails the run."""
        if name not in self.selected:
            return None
        print(f"[{time.time() - self.start:5.0f} s] {name} ...", flush=True)
        start = time.time()
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - one broken part must not hide the others
            tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-4:])
            result = {"error": f"{type(err).__name__}: {err}", "traceback": tail}
            self.report["errors"].append(f"{name}: {type(err).__name__}: {err}")
            print(tail, file=sys.stderr, flush=True)
        if isinstance(result, dict):
            result.setdefault("seconds", time.time() - start)
        self.report["parts"][name] = result
        return result

    # -- the parts ---------------------------------------------------------------------------
    def run(self) -> dict:
        import gpu_checks
        import gpu_speed

        s, dev = self.sizes, self.device
        self.report["settings"] = {**gpu_checks.precision_flags(), "cudnn_benchmark": "on in training (Trainer)",
                                   "tolerances": gpu_checks.TOL}
        peak = self.part("peak", lambda: {"bf16_matmul_tflops": common.bf16_matmul_tflops(dev, s["peak_n"]),
                                          "n": s["peak_n"], "what": "bf16 n x n x n matrix products, mean of 10"})
        self.peak = peak.get("bf16_matmul_tflops")
        subprocess_parts = [
            ("torchrun", gpu_checks.check_ddp, dev, s["ddp"], self.workdir, min(300.0, max(60.0, self.left()))),
            ("search", lambda: {"checks": [
                gpu_checks.check_search(dev, ex, s["search"], self.workdir, min(300.0, max(60.0, self.left())))
                for ex in s["search"]["executors"]]})]
        overlap = None
        if self.smoke:
            # a smoke run's timings mean nothing: its subprocesses run beside the in-process parts (here
            # one thread each), so that the run fits in CI's time; a full run does one thing at a time
            from concurrent.futures import ThreadPoolExecutor

            overlap = ThreadPoolExecutor(max_workers=2)
            jobs = [overlap.submit(lambda: [self.part(*p) for p in subprocess_parts]),
                    overlap.submit(self.part, "compiled", self.compiled)]
        self.part("ops", gpu_checks.check_ops, dev, **s["ops"])
        self.part("cells", lambda: {"checks": gpu_checks.check_cells(dev, **s["cells"])})
        self.part("models", lambda: {"checks": gpu_checks.check_models(dev, s["models"])})
        self.part("bf16_step", gpu_checks.check_bf16_step, dev, **s["bf16_step"])
        self.part("augmentation", gpu_checks.check_augmentation, dev, s["augment_images"])
        if overlap is None:
            for p in subprocess_parts:
                self.part(*p)
        self.part("child_cost", self.child_cost)
        self.part("packing", gpu_speed.measure_packing, str(dev), s["packing"], self.workdir,
                  self.deadline - s["compiled_reserve_s"])
        self.part("model_speed", self.model_speed)
        if overlap is None:
            self.part("compiled", self.compiled)
        else:
            for job in jobs:
                job.result()
            overlap.shutdown()
        self.finish()
        return self.report

    def child_cost(self) -> dict:
        import gpu_speed

        rows = [gpu_speed.time_child(str(self.device), v, self.sizes["child"], self.peak)
                for v in ("eager fp32", "bf16 + channels_last")]
        return {"rows": rows, "child": {k: self.sizes["child"][k] for k in ("normal_cells", "filters", "batch")},
                "extrapolated_to": gpu_speed.PAPER_CHILD, "peak_bf16_tflops": self.peak,
                "note": "compiled variants: see the 'compiled' part (run last, in a subprocess)"}

    def model_speed(self) -> dict:
        import gpu_speed

        spec = self.sizes["speed"]
        timm_missing = gpu_speed.timm_available()
        rows = []
        for precision in spec["precisions"]:            # bf16 first: the settings the targets are about
            for name in ("nasnet_a_large", gpu_speed.TIMM_LARGE, "nasnet_a_mobile"):
                overrides, batches = spec["models"][name]
                for mode in ("training", "inference"):
                    row = {"model": name, "mode": mode, "precision": precision, "compiled": False}
                    left = self.left() - self.sizes["compiled_reserve_s"]
                    if name == gpu_speed.TIMM_LARGE and timm_missing:
                        rows.append({**row, "skipped": timm_missing})
                    elif left < 20:
                        rows.append({**row, "skipped": f"time budget ({self.left():.0f} s left, kept for compiling)"})
                    else:
                        rows.append(gpu_speed.speed_row(name, overrides, mode, precision, False, batches[mode],
                                                        str(self.device), spec["warmup"], spec["repeats"]))
        return {"rows": rows, "timm": timm_missing or "present",
                "note": "fp32 rows run with PyTorch's defaults (TF32 in cuDNN convolutions: see settings), NCHW; "
                        "bf16 rows under autocast in channels_last"}

    def compiled(self) -> dict:
        """The compiled rows in one subprocess, stopped at the budget: rows it did not reach are skipped."""
        import gpu_checks

        plan = compile_plan(self.sizes, self.device)
        out = self.workdir / "compiled.jsonl"
        timeout = self.left() - 10
        if timeout < 30:
            return {"rows": [], "skipped": [{**p, "skipped": f"time budget ({self.left():.0f} s left)"} for p in plan]}
        cmd = [sys.executable, str(Path(__file__)), "--worker", "compile", "--device", str(self.device),
               "--worker-out", str(out), "--peak", str(self.peak or 0)] + (["--smoke"] if self.smoke else [])
        r = gpu_checks.run_subprocess(cmd, timeout, threads=None)
        rows = []
        for line in out.read_text().splitlines() if out.is_file() else []:
            try:
                rows.append(json.loads(line))
            except ValueError:      # a row cut off when the subprocess was stopped
                break
        skipped = [{**p, "skipped": "time budget: the compile subprocess was stopped"
                    if r["returncode"] is None else "not reached"} for p in plan[len(rows):]]
        if self.device.type != "cuda":
            skipped.append({"part": "child", "variant": "+ CUDA graphs", "skipped": "CUDA graphs need CUDA"})
        result = {"rows": rows, "skipped": skipped, "returncode": r["returncode"], "seconds": r["seconds"]}
        if r["returncode"] not in (0, None):
            result["error"] = r["tail"]
            self.report["errors"].append(f"compiled: the subprocess exited with status {r['returncode']}")
        return result

    # -- the verdict and the table -----------------------------------------------------------
    def finish(self) -> None:
        parts = self.report["parts"]
        checks = []
        for name in ("ops", "cells", "models", "bf16_step", "augmentation", "torchrun", "search"):
            part = parts.get(name, {})
            checks += [{"name": name, **c} for c in part.get("checks", [part])]
        failed = [c["name"] for c in checks if c.get("passed") is False or isinstance(c.get("error"), str)]
        self.report["checks_failed"] = failed
        self.report["skipped"] = [f"{c['name']}: {c['skipped']}" for c in checks if c.get("skipped")]
        self.report["skipped"] += [f"model speed {r['model']} {r['mode']} {r['precision']}: {r['skipped']}"
                                   for r in parts.get("model_speed", {}).get("rows", []) if r.get("skipped")]
        self.report["skipped"] += [f"compiled {_plan_name(r)}: {r['skipped']}"
                                   for r in parts.get("compiled", {}).get("skipped", [])]
        self.report["targets"] = targets(parts, self.report["mode"])
        self.report["passed"] = not failed and not self.report["errors"]
        self.report["seconds"] = time.time() - self.start


def _plan_name(p: dict) -> str:
    return p.get("variant") or f"{p.get('model')} {p.get('mode')} {p.get('precision')}"


def targets(parts: dict, mode: str) -> dict:
    """The issue's three targets, as measured (None where the rows are missing)."""
    import gpu_speed

    packing = parts.get("packing", {}).get("best") or {}
    compiled = parts.get("compiled", {}).get("rows", [])
    speed_rows = parts.get("model_speed", {}).get("rows", []) + [r for r in compiled if r.get("model")]
    summary = gpu_speed.summarize_speed([r for r in speed_rows if "images_per_second" in r])
    best = summary["best"]
    return {
        "shapes": "the paper's child and the zoo models" if mode == "full" else "smoke: tiny shapes, not the targets",
        "child_gpu_seconds_with_packing": packing.get("gpu_seconds_per_child"),
        "children_per_gpu_hour": packing.get("children_per_hour"), "target_children_per_gpu_hour": 120,
        "large_training_vs_timm_best": best.get("large training: ours / timm, each at its best"),
        "target_training_vs_timm": 1.5,
        "large_inference_vs_timm_best": best.get("large inference: ours / timm, each at its best"),
        "target_inference_vs_timm": 1.0,
        "packing_gain": packing.get("gain_vs_one"),
        "idle_share_of_one_child": parts.get("packing", {}).get("idle_share_of_one_child"),
        "model_speed_summary": summary,
    }


def _fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def print_table(report: dict) -> None:
    rows: list[tuple[str, str, str, str, str]] = []
    parts = report["parts"]
    peak = parts.get("peak", {})
    if "bf16_matmul_tflops" in peak:
        rows.append(("peak", f"bf16 matmul {peak['n']}^3", f"{peak['bf16_matmul_tflops']:.3g} TFLOP/s", "-",
                     "the shares of peak below divide by this"))

    def check(part, c):
        if c.get("skipped"):
            rows.append((part, c["name"], "-", "-", "skipped: " + c["skipped"]))
        elif "error" in c and not isinstance(c["error"], (int, float)):
            rows.append((part, c.get("name", part), "-", "-", "ERROR " + str(c["error"])[:60]))
        else:
            tol = c.get("tolerance")
            verdict = "ok" if c.get("passed") else "FAIL"
            rows.append((part, c["name"], _fmt(c.get("error")), "-" if tol is None else f"<= {tol:g}",
                         verdict + (f"  {c['summary']}" if c.get("summary") else "")))

    for name in ("ops", "bf16_step", "augmentation", "torchrun"):
        if "name" in parts.get(name, {}):
            check("correct" if name != "torchrun" else "torchrun", parts[name])
        elif parts.get(name):
            rows.append((name, name, "-", "-", "ERROR " + parts[name].get("error", "?")[:60]))
    for name in ("cells", "models", "search"):
        for c in parts.get(name, {}).get("checks", []):
            check("search" if name == "search" else "correct", c)
        if "error" in parts.get(name, {}):
            rows.append((name, name, "-", "-", "ERROR " + parts[name]["error"][:60]))
    child = parts.get("child_cost", {}).get("rows", []) + [
        r for r in parts.get("compiled", {}).get("rows", []) if r.get("variant")]
    base = child[0]["images_per_second"] if child else None
    for r in child:
        extra = f"20-ep child {r['child_seconds_paper']:.0f} s; {_fmt(r.get('share_of_bf16_peak'), '.1%')} of bf16 peak"
        if "compile_seconds" in r:
            extra += f"; compile {r['compile_seconds']:.0f} s"
        rows.append(("child", f"{r['variant']} (batch {r['batch']})", f"{r['images_per_second']:,.0f} img/s",
                     f"x{r['images_per_second'] / base:.2f}", extra))
    for r in parts.get("packing", {}).get("rows", []):
        if "images_per_second" in r:
            rows.append(("packing", f"{r['children']} at once", f"{r['images_per_second']:,.0f} img/s",
                         f"x{_fmt(r['gain_vs_one'], '.2f')}",
                         f"{_fmt(r['children_per_hour'])} children/GPU-h, {_fmt(r['gpu_seconds_per_child'])} s each"))
        else:
            rows.append(("packing", f"{r['children']} at once", "-", "-", r.get("skipped") or r.get("error", "")[:60]))
    speed = parts.get("model_speed", {}).get("rows", []) + [
        r for r in parts.get("compiled", {}).get("rows", []) if r.get("model")]
    for r in speed:
        what = f"{r['model']} {r['mode']} {r['precision']}{' compiled' if r.get('compiled') else ''}"
        if "images_per_second" in r:
            extra = f"batch {r['batch']} @ {r['image_size']}px" + (
                f"; compile {r['compile_seconds']:.0f} s" if "compile_seconds" in r else "")
            rows.append(("speed", what, f"{r['images_per_second']:,.1f} img/s", "-", extra))
        else:
            rows.append(("speed", what, "-", "-", "skipped: " + str(r.get("skipped", r.get("error")))[:70]))
    for r in parts.get("compiled", {}).get("skipped", []):
        rows.append(("compiled", _plan_name(r), "-", "-", "skipped: " + r["skipped"]))
    for item, ratio in (report.get("targets", {}).get("model_speed_summary", {}).get("best", {})).items():
        if isinstance(ratio, float):
            rows.append(("speed", item, f"x{ratio:.2f}", "-", ""))
    widths = [max(len(r[i]) for r in rows + [("part", "item", "value", "vs", "")]) for i in range(4)]
    print()
    for r in [("part", "item", "value", "vs / tol", "")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])


# -- worker processes ------------------------------------------------------------------------------

def compile_plan(sizes: dict, device: torch.device) -> list[dict]:
    """The compiled rows, most wanted first: the child's compiled variants (CUDA graphs where they
    apply: on CUDA), then model speed."""
    variants = ("+ torch.compile", "+ CUDA graphs") if device.type == "cuda" else ("+ torch.compile",)
    return [{"part": "child", "variant": v} for v in variants] + [
        {"part": "speed", "model": m, "mode": mode, "precision": p} for m, mode, p in sizes["compiled_speed"]]


def compile_worker(args) -> None:
    """The compiled rows (bench/gpu_suite.py --worker compile), each appended to --worker-out as it is done."""
    import gpu_speed

    sizes = SMOKE if args.smoke else FULL
    gpu_speed.raise_recompile_limits()
    if args.smoke:  # dynamo only: inductor's C++ build of even a tiny NASNet takes minutes on a CPU
        real_compile = torch.compile
        torch.compile = lambda fn=None, **kw: real_compile(
            fn, backend="eager", **{k: v for k, v in kw.items() if k not in ("backend", "mode", "options")})
    timm_missing = gpu_speed.timm_available()
    out = Path(args.worker_out)
    for item in compile_plan(sizes, torch.device(args.device)):
        if item["part"] == "child":
            row = gpu_speed.time_child(args.device, item["variant"], sizes["child"], args.peak or None)
            if args.smoke:
                row["compile_backend"] = "eager (dynamo only)"
        else:
            name, mode, precision = item["model"], item["mode"], item["precision"]
            overrides, batches = sizes["speed"]["models"][name]
            if name == gpu_speed.TIMM_LARGE and timm_missing:
                row = {"model": name, "mode": mode, "precision": precision, "compiled": True, "skipped": timm_missing}
            else:
                row = gpu_speed.speed_row(name, overrides, mode, precision, True, batches[mode], args.device,
                                          sizes["speed"]["warmup"], sizes["speed"]["repeats"], sizes["compile_kwargs"])
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        torch._dynamo.reset()


def default_out(report: dict) -> Path:
    gpu = report["machine"].get("gpu") or "cpu"
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
    stamp = "smoke" if report["mode"] == "smoke" else datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return common.ROOT / "bench" / "results" / "gpu" / f"{slug}-{stamp}.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, every part (CPU: under a minute)")
    ap.add_argument("--budget-s", type=float, help="stop starting expensive rows after this many seconds "
                                                   "(default: 460 full, 300 smoke)")
    ap.add_argument("--out", help="the JSON file (default bench/results/gpu/<GPU>-<date>.json)")
    ap.add_argument("--threads", type=int, help="torch threads in this process (default: torch's)")
    ap.add_argument("--parts", help=f"only these parts, comma-separated ({', '.join(PARTS)}; default all)")
    ap.add_argument("--worker", choices=("ddp", "compile"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--peak", type=float, help=argparse.SUPPRESS)
    for name in ("normal-cells", "filters", "batch", "steps", "epochs"):
        ap.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.smoke and args.device == "cpu" and not args.threads and not args.worker:
        # tiny shapes: one thread each, here and in every subprocess (several threads only wait for
        # each other on such shapes, and badly so on a busy machine)
        args.threads = 1
        os.environ["OMP_NUM_THREADS"] = "1"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker == "ddp":
        import gpu_checks

        gpu_checks.ddp_worker(args)
        return 0
    if args.worker == "compile":
        compile_worker(args)
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_suite: error: CUDA is not available here (use --device cpu --smoke for the CPU smoke run)",
              file=sys.stderr)
        return 2
    sizes = SMOKE if args.smoke else FULL
    with tempfile.TemporaryDirectory(prefix="nasnet-gpu-suite-") as tmp:
        parts = args.parts.split(",") if args.parts else None
        unknown = sorted(set(parts or ()) - set(PARTS))
        if unknown:
            ap.error(f"unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)})")
        suite = Suite(device, sizes, args.smoke, args.budget_s or sizes["budget_s"], Path(tmp), parts)
        print(f"machine: {common.describe(suite.report['machine'])}")
        print(f"mode: {suite.report['mode']} on {device}; budget {suite.deadline - suite.start:.0f} s", flush=True)
        report = suite.run()
    out = Path(args.out) if args.out else default_out(report)
    common.write_json(out, report)
    print_table(report)
    print(f"\n{'passed' if report['passed'] else 'FAILED: ' + ', '.join(report['checks_failed'] + report['errors'])}"
          f" in {report['seconds']:.0f} s; wrote {out}")
    for line in report["skipped"]:
        print(f"skipped: {line}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
