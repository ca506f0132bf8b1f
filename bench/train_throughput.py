"""Child-training throughput: eager baseline vs the optimised path, measured in one run.

    python bench/train_throughput.py                 # CPU: digits child + CIFAR-shaped search child
    python bench/train_throughput.py --concurrent 2  # also K children training at once, 1 thread each
    python bench/train_throughput.py --compile       # also try torch.compile (slow to build on CPU)

What is measured (the training loop of nasnet.train.loop.Trainer, augmentation included):

* the digits child: NASNet-A, N = 2, F0 = 16, 8x8x1 images, batch 128;
* the search child: NASNet-A, N = 2, F0 = 32, CIFAR-shaped 32x32x3 data (synthetic uint8), batch 128;
* a whole 10-epoch digits child through nasnet.search.children.train.train_child (target: at most 10 s on 2 cores);
* on CUDA, seconds per 20-epoch CIFAR search child in bf16 (45,000 training images per epoch plus
  one pass over the 5,000 validation images), alone and with K children sharing the GPU.

Baseline ("eager"): NCHW, fp32, eager PyTorch. Optimised: channels_last (oneDNN's depthwise
kernels on CPU), bf16 autocast on CUDA, optionally torch.compile. Ratios are against the baseline
measured in the same run. The numbers are indicative on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import SHAPES, child_trainer, describe, eval_images_per_second, machine_info, sync

from nasnet.train.loop import Trainer


def make_trainer(shape: str, optimised: bool, device: str, batch: int, steps: int, compile_: bool = False) -> Trainer:
    s = SHAPES[shape]
    return child_trainer(device, batch, steps, n_val=min(500, batch * 4), normal_cells=2, filters=s["filters"],
                         channels=s["channels"], size=s["size"], channels_last=optimised,
                         precision="auto" if optimised else "fp32", compile=compile_ and optimised)


def train_ips(trainers: dict[str, Trainer], repeats: int) -> dict[str, float]:
    """Median training images/s of each trainer over `repeats` epochs after a warm-up epoch. The
    trainers take turns epoch by epoch, so a change in the machine's load hits them alike."""
    for t in trainers.values():
        t.train_epoch(0)
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for r in range(repeats):
        for name, t in trainers.items():
            sync(t.device)
            start = time.perf_counter()
            stats = t.train_epoch(r + 1)
            sync(t.device)
            rates[name].append(stats["images"] / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in rates.items()}


def eval_ips(trainer: Trainer, batch: int) -> float:
    return eval_images_per_second(trainer, batch)


def machine(device: torch.device) -> str:
    return describe(machine_info(device))


def worker(args) -> None:
    """One of K concurrent children (subprocess): prints its training images/s as JSON."""
    t = make_trainer(args.worker, True, args.device, args.batch, args.steps)
    print(json.dumps({"ips": train_ips({"one": t}, args.repeats)["one"]}))


def concurrent(shape: str, k: int, args, threads: int, steps: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--worker", shape, "--device", args.device, "--batch", str(args.batch),
           "--steps", str(steps), "--repeats", str(args.repeats), "--threads", str(threads)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(k)]
    outs = [p.communicate()[0] for p in procs]
    return sum(json.loads(o.strip().splitlines()[-1])["ips"] for o in outs)


CATEGORIES = (("convolution", ("convolution", "conv2d", "mkldnn_conv", "slow_conv")),
              ("batch norm", ("batch_norm",)), ("relu", ("relu", "threshold", "clamp_min")),
              ("pooling", ("pool",)), ("optimizer / L2 / clipping", ("foreach", "optimizer", "sgd")),
              ("concat / add / copy / fill", ("cat", "add", "copy", "fill", "mul", "div", "where", "index")))


def profile_digits(args) -> None:
    """Where one epoch of the optimised digits child spends its time (torch.profiler, CPU self time)."""
    from torch.profiler import ProfilerActivity, profile

    trainer = make_trainer("digits", True, args.device, args.batch, args.steps or 10)
    trainer.train_epoch(0)
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.train_epoch(1)
    wall = time.perf_counter() - t
    events = [e for e in prof.key_averages() if e.key.startswith("aten::") or "Optimizer" in e.key]
    total_ms = sum(e.self_cpu_time_total for e in events) / 1e3
    share: dict[str, float] = {}
    for e in events:
        name = e.key.lower()
        cat = next((c for c, keys in CATEGORIES if any(k in name for k in keys)), "other")
        share[cat] = share.get(cat, 0.0) + e.self_cpu_time_total / 1e3
    print(f"profile of one digits-child epoch ({trainer.steps_per_epoch} steps, {wall:.2f} s wall with the profiler; "
          f"{torch.get_num_threads()} threads):")
    for cat, ms in sorted(share.items(), key=lambda kv: -kv[1]):
        print(f"  {cat:28s} {ms:8.0f} ms  {ms / total_ms:5.1%}")
    calls = sum(e.count for e in events)
    print(f"  {calls / trainer.steps_per_epoch:.0f} aten calls per step; op self time {total_ms:.0f} ms of "
          f"{wall * 1e3 * torch.get_num_threads():.0f} thread-ms\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))


def digits_child(device: str) -> dict:
    """The whole digits search child (N=2, F0=16, 10 epochs) through train_child, timed after a warm-up epoch."""
    from nasnet.search.children.train import train_child

    payload = {"genotype": "nasnet-a", "model": {"filters": 16}, "train": {"epochs": 10}, "data": "digits",
               "device": device}
    train_child({**payload, "train": {"epochs": 1}})  # load the data and warm up outside the timing
    t = time.perf_counter()
    r = train_child(payload)
    wall = time.perf_counter() - t
    print(f"digits search child (N=2, F0=16, 10 epochs) via train_child: {wall:.1f} s (target 10 s, "
          f"x{wall / 10:.1f}); reward {r['reward']:.3f}, {r['images_per_second']:.0f} training images/s")
    return {"digits_child_seconds": wall, "digits_child_reward": r["reward"]}


def cifar_child_seconds(rows: dict, eval_ips_500: float, concurrent: int) -> dict:
    """A 20-epoch CIFAR search child's GPU seconds at the measured rates: alone, and with `concurrent` children
    sharing the GPU (20 epochs of 45,000 images, then one validation pass of 5,000)."""
    per_child = 20 * 45_000 / rows["optimised"] + 5_000 / eval_ips_500
    print(f"  20-epoch CIFAR search child in bf16: {per_child:.0f} s alone (target 30 s)")
    out = {}
    if concurrent:
        shared = 20 * 45_000 / rows[f"{concurrent} concurrent"] + 5_000 / eval_ips_500
        print(f"  with {concurrent} children sharing the GPU: {shared:.0f} s of GPU time per child")
        out["cifar_child_seconds_shared"] = shared
    out["cifar_child_seconds"] = per_child
    return out


def _parser() -> argparse.ArgumentParser:
    """The benchmark's flags, and the hidden one its concurrent workers are started with."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=0, help="steps per timed epoch (default: 10 digits, 3 CIFAR on CPU)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also measure torch.compile on the optimised path")
    p.add_argument("--concurrent", type=int, default=0, help="also run K children at once (1 thread each on CPU)")
    p.add_argument("--skip-child", action="store_true", help="skip the whole 10-epoch digits child")
    p.add_argument("--profile", action="store_true", help="profile one epoch of the optimised digits child")
    p.add_argument("--json", default=None, help="write the numbers to this JSON file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def main() -> None:
    args = _parser().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)

    from nasnet.train.device import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    print(f"machine: {machine(device)}")
    print(f"batch {args.batch}; eager = NCHW fp32; optimised = channels_last"
          f"{' + bf16 autocast' if cuda else ' fp32'}{' (+ torch.compile row)' if args.compile else ''}")
    print("timings are indicative when other work shares the machine\n")
    results: dict = {"machine": machine(device), "batch": args.batch, "device": str(device)}

    for shape in ("digits", "cifar"):
        steps = args.steps or (10 if shape == "digits" or cuda else 3)
        trainers = {"eager": make_trainer(shape, False, args.device, args.batch, steps),
                    "optimised": make_trainer(shape, True, args.device, args.batch, steps)}
        if args.compile:
            t0 = time.perf_counter()
            comp = make_trainer(shape, True, args.device, args.batch, steps, compile_=True)
            comp.train_epoch(0)
            results[f"{shape}_compile_build_seconds"] = time.perf_counter() - t0
            trainers["optimised + compile"] = comp
        rows = train_ips(trainers, args.repeats)
        opt = trainers["optimised"]
        s = SHAPES[shape]
        print(f"{shape} child (N=2, F0={s['filters']}, {s['channels']}x{s['size']}x{s['size']}): training images/s")
        for name, ips in rows.items():
            print(f"  {name:22s} {ips:9.1f}   x{ips / rows['eager']:.2f}")
        if args.compile:
            print(f"  (torch.compile build + first epoch: {results[f'{shape}_compile_build_seconds']:.0f} s)")
        e128, e500 = eval_ips(opt, 128), eval_ips(opt, 500)
        print(f"  evaluation images/s: batch 128 {e128:.0f}, batch 500 {e500:.0f} (x{e500 / e128:.2f})")
        if args.concurrent and (shape == "digits" or cuda):  # the CIFAR child is too slow for this on CPU
            k = args.concurrent
            threads = 1 if not cuda else torch.get_num_threads()
            total = concurrent(shape, k, args, threads, steps)
            print(f"  {k} children at once ({threads} thread(s) each): {total:.1f} images/s in total, "
                  f"x{total / rows['optimised']:.2f} vs one")
            rows[f"{k} concurrent"] = total
        results[shape] = rows
        if shape == "cifar" and cuda:
            results.update(cifar_child_seconds(rows, e500, args.concurrent))
        print()

    if args.profile:
        profile_digits(args)
    if not args.skip_child:
        results.update(digits_child(args.device))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
