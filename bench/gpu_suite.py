"""The GPU suite: every CUDA code path checked against the CPU, and what a search child, packing
and the models cost on the GPU, in one command and one JSON file.

    PYTHONPATH=src python3 bench/gpu_suite.py --out DIR/gpu-suite.json    # a CUDA machine: at most 8 minutes
    PYTHONPATH=src python3 bench/gpu_suite.py --plan                       # what it would run, and for how long
    PYTHONPATH=src python3 bench/gpu_suite.py --device cpu --smoke --out DIR/smoke.json   # tiny shapes (CI)

It runs from the source tree on the PyTorch it finds (2.11 and later), without installing anything:
an optional package that is missing (Ray, timm, matplotlib, h5py, safetensors, onnx) is recorded,
and what needs it is skipped with the reason.

Parts, in the order they run (the first three are checks that pass or fail, the rest measurements):

1. correctness on the device against the CPU, fp32 (TF32 off): every op (stride 1 and 2, every
   padding), NASNet-A's normal and reduction cells, the CIFAR and Mobile networks, forward and
   backward; a few training steps in bf16 autocast + channels_last against fp32; augmentation of
   a batch on the device against the same batch on the CPU, same seed;
2. torchrun: a one-process run (NCCL with sync_bn on CUDA, gloo on a CPU) wrapped in DDP, with
   SyncBatchNorm's kernels checked;
3. search: `nasnet search` end to end on a CIFAR-shaped npz written at run time, children sharing
   the GPU (--gpus-per-child 0.25; on a CPU 0), with the process executor and, where Ray is
   installed, the Ray executor;
4. child cost: the paper's search child (CIFAR skeleton, N = 2, F0 = 32, 32x32x3, batch 128),
   timed per epoch and extrapolated to 20 epochs of 45,000 images, eager fp32 -> bf16 +
   channels_last -> + torch.compile -> + CUDA graphs; images/s and the share of the bf16
   matrix-multiply rate measured at the start of the run;
5. packing: 1, 2, 4 and 8 children at once as processes of the search's process executor on
   the one GPU; children per GPU-hour and the gain over one at a time;
6. model speed: nasnet_a_mobile, nasnet_a_large and timm's nasnetalarge (skipped, and said so,
   where timm is missing), inference and training, fp32 and bf16, eager; then
7. compiled: the compiled child variants and model rows (each cell compiled: cells of one shape
   share a graph), in one subprocess, most wanted first, ours and timm's of a setting side by side.

Time: `--budget-s` (default 460 s) is shared out by a plan (`--plan` prints it): each part may take
its share plus what earlier parts left; every subprocess's timeout is what its part has left, rows
stop starting when their part's time is up (listed as skipped), and a watchdog stops the run
`grace_s` after the budget, whatever hangs. Nothing is lost on the way: the JSON file (`--out`) is
rewritten, atomically, after every part, and every row records its own error instead of stopping
the others. Ours and timm's are compared only in settings both measured.

In --smoke mode (CPU, tiny shapes, one thread, about a minute on two idle cores) torch.compile
uses dynamo's "eager" backend (inductor's C++ build takes minutes on a CPU), the CUDA-only parts
run their CPU equivalents (gloo, --gpus-per-child 0, no CUDA graphs) and the subprocess parts run
beside the in-process ones; its numbers only show that the code runs.

Output: a table on stdout and one JSON file (default bench/results/gpu/<GPU>-<date>.json) with the
machine, torch, CUDA, cuDNN and NCCL versions. Exit status 1 when a check failed or a part broke.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import common  # noqa: F401  (puts src/ on sys.path)
import gpu_table
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
    # most wanted first, ours and timm's of one setting side by side (a ratio needs both)
    "compiled_speed": [("nasnet_a_large", "training", "bf16"), ("timm nasnetalarge", "training", "bf16"),
                       ("nasnet_a_large", "inference", "bf16"), ("timm nasnetalarge", "inference", "bf16"),
                       ("nasnet_a_mobile", "training", "bf16"), ("nasnet_a_mobile", "inference", "bf16"),
                       ("nasnet_a_large", "training", "fp32"), ("timm nasnetalarge", "training", "fp32"),
                       ("nasnet_a_large", "inference", "fp32"), ("timm nasnetalarge", "inference", "fp32"),
                       ("nasnet_a_mobile", "training", "fp32"), ("nasnet_a_mobile", "inference", "fp32")],
    "compile_kwargs": {},
    "budget_s": 460,
    # the most each part may take, in the order they run (s); a part may also use what earlier ones left
    "plan": {"peak": 10, "correctness": 60, "torchrun": 60, "search": 75, "child_cost": 45, "packing": 60,
             "model_speed": 60, "compiled": 90},
    "grace_s": 40,               # the watchdog stops the run this long after the budget
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
    "plan": {"peak": 5, "correctness": 60, "torchrun": 120, "search": 150, "child_cost": 30, "packing": 45,
             "model_speed": 60, "compiled": 150},
    "grace_s": 60,
    "overlap": True,             # the subprocess parts run beside the in-process ones (timings mean nothing)
}



PARTS = {"correctness": ("ops", "cells", "models", "bf16_step", "augmentation"), "torchrun": ("torchrun",),
         "search": ("search",), "child_cost": ("child_cost",), "packing": ("packing",),
         "model_speed": ("model_speed",), "compiled": ("compiled",)}
MEASURING = ("child_cost", "packing", "model_speed", "compiled")    # the parts whose shares divide by the peak


def selected_groups(parts: list[str] | None) -> list[str]:
    """The parts to run, in order; the peak rate first when a part that measures speed runs."""
    groups = [g for g in PARTS if parts is None or g in parts]
    return (["peak"] if any(g in MEASURING for g in groups) else []) + groups


class Suite:
    def __init__(self, device: torch.device, sizes: dict, smoke: bool, budget_s: float, workdir: Path,
                 out: Path, parts: list[str] | None = None):
        self.device, self.sizes, self.smoke, self.workdir, self.out = device, sizes, smoke, workdir, out
        self.groups = selected_groups(parts)
        self.selected = {name for group in self.groups for name in PARTS.get(group, (group,))}
        self.start = time.time()
        self.deadline = self.start + budget_s
        self.lock = threading.RLock()
        self.finished = threading.Event()
        self.running: list[str] = []
        self.plan = {p["part"]: p["at_most_s"] for p in gpu_table.plan_rows(sizes, self.groups, budget_s)}
        self.report: dict = {
            "suite": "nasnet GPU suite (bench/gpu_suite.py)", "mode": "smoke" if smoke else "full",
            "device": str(device), "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "budget_s": budget_s, "machine": common.machine_info(device), "command": " ".join(sys.argv),
            "plan": gpu_table.plan_rows(sizes, self.groups, budget_s),
            "optional_packages": gpu_table.optional_packages(),
            "state": "running", "parts": {}, "skipped": [], "errors": [],
        }

    def left(self, group: str | None = None) -> float:
        """Seconds left: to the budget's end, or for `group`: to the end of its share (the budget less
        what the later parts may take; in smoke mode, where parts overlap, the budget's end)."""
        end = self.deadline
        if group is not None and not self.smoke:
            names = list(self.plan)
            end -= sum(self.plan[g] for g in names[names.index(group) + 1:]) if group in names else 0.0
        return end - time.time()

    def part(self, name: str, fn, *args, **kwargs):
        """Run one part and save the report; an exception is recorded (the suite goes on) and fails the run."""
        if name not in self.selected:
            return None
        print(f"[{time.time() - self.start:5.0f} s] {name} ...", flush=True)
        start = time.time()
        with self.lock:
            self.running.append(name)
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - one broken part must not hide the others
            tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-4:])
            result = {"error": f"{type(err).__name__}: {err}", "traceback": tail}
            with self.lock:
                self.report["errors"].append(f"{name}: {type(err).__name__}: {err}")
            print(tail, file=sys.stderr, flush=True)
        if isinstance(result, dict):
            result.setdefault("seconds", time.time() - start)
        with self.lock:
            self.running.remove(name)
            self.report["parts"][name] = result
        self.save()
        return result

    def save(self, state: str | None = None) -> None:
        """Summarise what has run and write the JSON file atomically (after every part)."""
        with self.lock:
            if state:
                self.report["state"] = state
            gpu_table.summarize(self.report, time.time() - self.start)
            common.write_json(self.out, self.report)

    def watchdog(self) -> None:
        """Stop the run `grace_s` after the budget, whatever part hangs: the subprocesses are killed, the
        report says where it stopped, the file is written and the process exits (status 1)."""
        if self.finished.wait(max(0.0, self.left()) + self.sizes["grace_s"]):
            return
        with self.lock:
            where = ", ".join(self.running) or "between parts"
            self.report["errors"].append(f"watchdog: still running {self.sizes['grace_s']:g} s after the "
                                         f"{self.report['budget_s']:g} s budget, in {where}; stopped")
        for proc in list(common.RUNNING):
            common.kill_group(proc)
        self.save("stopped by the watchdog")
        print(f"gpu_suite: stopped by the watchdog in {where}; wrote {self.out}", file=sys.stderr, flush=True)
        os._exit(1)

    # -- the parts ---------------------------------------------------------------------------
    def run(self) -> dict:
        import gpu_checks

        s, dev = self.sizes, self.device
        threading.Thread(target=self.watchdog, daemon=True, name="gpu-suite-watchdog").start()
        self.report["settings"] = {**gpu_checks.precision_flags(),
                                   "cudnn_benchmark": "on in training, evaluation and speed rows, off elsewhere",
                                   "tolerances": gpu_checks.TOL}
        self.save()
        peak = self.part("peak", lambda: {"bf16_matmul_tflops": common.bf16_matmul_tflops(dev, s["peak_n"]),
                                          "n": s["peak_n"], "what": "bf16 n x n x n matrix products, mean of 10"})
        self.peak = (peak or {}).get("bf16_matmul_tflops")
        subprocess_parts = [("torchrun", self.torchrun), ("search", self.search)]
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
        self.part("packing", self.packing)
        self.part("model_speed", self.model_speed)
        if overlap is None:
            self.part("compiled", self.compiled)
        else:
            for job in jobs:
                job.result()
            overlap.shutdown()
        self.finished.set()
        self.save("finished")
        return self.report

    def torchrun(self) -> dict:
        import gpu_checks

        left = self.left("torchrun")
        if left < 20:
            return {"name": "one-process torchrun", "passed": None, "skipped": f"time budget ({left:.0f} s left)"}
        return gpu_checks.check_ddp(self.device, self.sizes["ddp"], self.workdir, left)

    def search(self) -> dict:
        import gpu_checks

        checks = []
        for ex in self.sizes["search"]["executors"]:
            left = self.left("search")
            if left < 20:
                checks.append({"name": f"nasnet search, {ex} executor", "passed": None,
                               "skipped": f"time budget ({left:.0f} s left)"})
            else:
                checks.append(gpu_checks.check_search(self.device, ex, self.sizes["search"], self.workdir, left))
        return {"checks": checks}

    def child_cost(self) -> dict:
        import gpu_speed

        rows = []
        for variant in ("eager fp32", "bf16 + channels_last"):
            left = self.left("child_cost")
            row = {"variant": variant}
            rows.append({**row, "skipped": f"time budget ({left:.0f} s left)"} if left < 5 else gpu_speed.guarded(
                row, gpu_speed.time_child, str(self.device), variant, self.sizes["child"], self.peak))
        return {"rows": rows, "child": {k: self.sizes["child"][k] for k in ("normal_cells", "filters", "batch")},
                "extrapolated_to": gpu_speed.PAPER_CHILD, "peak_bf16_tflops": self.peak,
                "note": "compiled variants: see the 'compiled' part (run last, in a subprocess)"}

    def packing(self) -> dict:
        import gpu_speed

        return gpu_speed.measure_packing(str(self.device), self.sizes["packing"], self.workdir,
                                         time.time() + self.left("packing"))

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
                    left = self.left("model_speed")
                    if name == gpu_speed.TIMM_LARGE and timm_missing:
                        rows.append({**row, "skipped": timm_missing})
                    elif left < (2 if self.smoke else 15):
                        rows.append({**row, "skipped": f"time budget ({left:.0f} s left for this part)"})
                    else:
                        rows.append(gpu_speed.guarded(row, gpu_speed.speed_row, name, overrides, mode, precision,
                                                      False, batches[mode], str(self.device), spec["warmup"],
                                                      spec["repeats"]))
        return {"rows": rows, "timm": timm_missing or "present",
                "note": "fp32 rows run with PyTorch's defaults (TF32 in cuDNN convolutions: see settings), NCHW; "
                        "bf16 rows under autocast in channels_last"}

    def compiled(self) -> dict:
        """The compiled rows in one subprocess, stopped at the budget: rows it did not reach are skipped."""

        plan = compile_plan(self.sizes, self.device)
        out = self.workdir / "compiled.jsonl"
        timeout = self.left() - 10
        if timeout < 30:
            return {"rows": [], "skipped": [{**p, "skipped": f"time budget ({self.left():.0f} s left)"} for p in plan]}
        cmd = [sys.executable, str(Path(__file__)), "--worker", "compile", "--device", str(self.device),
               "--worker-out", str(out), "--peak", str(self.peak or 0)] + (["--smoke"] if self.smoke else [])
        r = common.run_subprocess(cmd, timeout, threads=None)
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
            with self.lock:
                self.report["errors"].append(f"compiled: the subprocess exited with status {r['returncode']}")
        return result


# -- worker processes ------------------------------------------------------------------------------

def compile_plan(sizes: dict, device: torch.device) -> list[dict]:
    """The compiled rows, most wanted first: the compiled child, the Large pairs in bf16 (ours and
    timm's: the targets), the child with CUDA graphs (on CUDA), then the rest of the model rows."""
    speed = [{"part": "speed", "model": m, "mode": mode, "precision": p} for m, mode, p in sizes["compiled_speed"]]
    graphs = [{"part": "child", "variant": "+ CUDA graphs"}] if device.type == "cuda" else []
    return [{"part": "child", "variant": "+ torch.compile"}] + speed[:4] + graphs + speed[4:]


def compile_worker(args) -> None:
    """The compiled rows (bench/gpu_suite.py --worker compile), each appended to --worker-out as it is
    done, each with its own error if it fails."""
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
            row = gpu_speed.guarded({"variant": item["variant"]}, gpu_speed.time_child, args.device, item["variant"],
                                    sizes["child"], args.peak or None)
            if args.smoke:
                row["compile_backend"] = "eager (dynamo only)"
        else:
            name, mode, precision = item["model"], item["mode"], item["precision"]
            overrides, batches = sizes["speed"]["models"][name]
            row = {"model": name, "mode": mode, "precision": precision, "compiled": True}
            if name == gpu_speed.TIMM_LARGE and timm_missing:
                row["skipped"] = timm_missing
            else:
                row = gpu_speed.guarded(row, gpu_speed.speed_row, name, overrides, mode, precision, True,
                                        batches[mode], args.device, sizes["speed"]["warmup"],
                                        sizes["speed"]["repeats"], sizes["compile_kwargs"])
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        torch._dynamo.reset()


def default_out(device: torch.device, smoke: bool) -> Path:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
    stamp = "smoke" if smoke else datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return common.ROOT / "bench" / "results" / "gpu" / f"{slug}-{stamp}.json"


def parse_args(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, every part (CPU: about a minute)")
    ap.add_argument("--budget-s", type=float, help="the time the parts share (default: 460 full, 300 smoke)")
    ap.add_argument("--out", help="the JSON file, rewritten after every part "
                                  "(default bench/results/gpu/<GPU>-<date>.json)")
    ap.add_argument("--plan", action="store_true", help="print the parts and the time each may take, then exit")
    ap.add_argument("--grace-s", type=float, help="how long past the budget the watchdog waits before it stops "
                                                   "the run (default: 40 full, 60 smoke)")
    ap.add_argument("--threads", type=int, help="torch threads in this process (default: torch's)")
    ap.add_argument("--parts", help=f"only these parts, comma-separated ({', '.join(PARTS)}; default all)")
    ap.add_argument("--worker", choices=("ddp", "compile"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--peak", type=float, help=argparse.SUPPRESS)
    for name in ("normal-cells", "filters", "batch", "steps", "epochs"):
        ap.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.parts = args.parts.split(",") if args.parts else None
    unknown = sorted(set(args.parts or ()) - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)})")
    if args.budget_s is not None and args.budget_s <= 0:
        ap.error("--budget-s must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.grace_s is not None:
        sizes = {**sizes, "grace_s": args.grace_s}
    budget = args.budget_s or sizes["budget_s"]
    if args.plan:
        gpu_table.print_plan(sizes, selected_groups(args.parts), budget)
        return 0
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
    out = Path(args.out) if args.out else default_out(device, args.smoke)
    with tempfile.TemporaryDirectory(prefix="nasnet-gpu-suite-") as tmp:
        suite = Suite(device, sizes, args.smoke, budget, Path(tmp), out, args.parts)
        print(f"machine: {common.describe(suite.report['machine'])}")
        print(f"mode: {suite.report['mode']} on {device}; budget {budget:.0f} s; writing {out} after every part",
              flush=True)
        report = suite.run()
    gpu_table.print_table(report)
    print(f"\n{'passed' if report['passed'] else 'FAILED: ' + ', '.join(report['checks_failed'] + report['errors'])}"
          f" in {report['seconds']:.0f} s; wrote {out}")
    for line in report["skipped"]:
        print(f"skipped: {line}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
