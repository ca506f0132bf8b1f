"""Data-parallel training throughput: plain training vs DistributedDataParallel, 1 vs K processes.

    python bench/ddp_throughput.py                  # CPU (gloo): digits child and CIFAR-shaped child
    python bench/ddp_throughput.py --shapes cifar --repeats 3
    python bench/ddp_throughput.py --nproc 4        # K processes (on CUDA: one per GPU, NCCL)

Every configuration runs in fresh processes started by torchrun (the same path as
`nasnet train --nproc K`) and trains with nasnet.train.loop.Trainer - augmentation, L2, clipping
and the per-step divergence check included - on synthetic uint8 data of the child's shape:

* plain:     1 process, no DDP (the baseline), with 1 thread and with all the cores;
* ddp:       1 process wrapped in DDP (static graph, the default) - DDP's own overhead;
* ddp-find:  1 process, DDP with find_unused_parameters=True instead of static_graph;
* ddp xK:    K processes x 1 thread (on CUDA: K GPUs), the same global batch split K ways.

The global batch is the same everywhere (default 128), so every configuration does the same
optimisation per step; images/s counts all processes' images. Configurations take turns
(round-robin over --repeats rounds) and the median is reported, with ratios against the plain
1-process run of the same round. On a shared machine the numbers are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STEPS = {"digits": 8, "cifar": 2}
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))


def worker(args) -> None:
    """One process of one configuration (under torchrun)."""
    import torch
    from common import SHAPES, synthetic

    from nasnet.model.network import ModelConfig
    from nasnet.train import distributed
    from nasnet.train.config import model_config_for, preset
    from nasnet.train.loop import Trainer

    ctx = distributed.init_from_env(timeout_s=600)
    try:
        torch.set_num_threads(args.threads)
        s = SHAPES[args.shape]
        per_process = args.batch // ctx.world_size
        dataset = synthetic(s["channels"], s["size"], per_process * args.steps * ctx.world_size)
        cfg = preset("child", batch_size=per_process, device=args.device)
        model_cfg = model_config_for(ModelConfig(normal_cells=2, filters=s["filters"]), cfg, dataset)
        use_ddp = args.mode != "plain"
        trainer = Trainer(model_cfg, cfg, dataset, rank=ctx.rank, world_size=ctx.world_size, ddp=use_ddp)
        if args.mode == "ddp-find":
            trainer.ddp = distributed.data_parallel(trainer.model, trainer.device, find_unused_parameters=True,
                                                    gradient_as_bucket_view=True)
            trainer.train_forward = trainer.ddp
        trainer.train_epoch(0)  # warm-up (and DDP's first, graph-recording step)
        times = []
        for epoch in range(1, args.epochs + 1):
            distributed.dist.barrier()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            trainer.train_epoch(epoch)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        slowest = distributed.all_gather_object(times)
        if ctx.rank == 0:
            per_epoch = [max(t[i] for t in slowest) for i in range(len(times))]
            ips = trainer.steps_per_epoch * args.batch / statistics.median(per_epoch)
            Path(args.out).write_text(json.dumps({"images_per_second": ips, "device": str(trainer.device),
                                                  "steps": trainer.steps_per_epoch, "backend": ctx.backend}))
    finally:
        distributed.shutdown()


def run_config(shape: str, mode: str, nproc: int, threads: int, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT / "src"))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               __file__, "--worker", "--shape", shape, "--mode", mode, "--threads", str(threads),
               "--batch", str(args.batch), "--steps", str(args.steps or DEFAULT_STEPS[shape]),
               "--epochs", str(args.epochs),
               "--device", args.device, "--out", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"{shape} {mode} x{nproc} failed:\n{r.stderr[-3000:]}")
        return json.loads(out.read_text())


def _parser() -> argparse.ArgumentParser:
    """The benchmark's flags, and the hidden ones its worker processes are started with."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=["digits", "cifar"])
    p.add_argument("--nproc", type=int, default=2, help="processes of the data-parallel run (default 2)")
    p.add_argument("--batch", type=int, default=128, help="global batch (split over the processes)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per timed epoch (default: 8 for digits, 2 for the slower CIFAR shape)")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per run (median)")
    p.add_argument("--repeats", type=int, default=2, help="rounds over all configurations")
    p.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    p.add_argument("--json", default=None, help="also write the results here")
    # worker side
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def main() -> None:
    args = _parser().parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    cores = os.cpu_count() or 1
    k = args.nproc
    if args.device == "cuda":
        configs = [("plain", 1, 1, "plain x1"), ("ddp", 1, 1, "ddp x1"), ("ddp-find", 1, 1, "ddp-find x1")]
        if torch.cuda.device_count() >= k > 1:
            configs.append(("ddp", k, 1, f"ddp x{k}"))
    else:
        configs = [("plain", 1, 1, "plain x1 (1 thread)"), ("plain", 1, cores, f"plain x1 ({cores} threads)"),
                   ("ddp", 1, 1, "ddp x1 (1 thread)"), ("ddp-find", 1, 1, "ddp-find x1 (1 thread)"),
                   ("ddp", k, 1, f"ddp x{k} (1 thread each)")]
    print(f"machine: {platform.processor() or platform.machine()}, {cores} CPU cores, torch {torch.__version__}, "
          f"device {args.device}; global batch {args.batch}, fp32 on CPU (bf16 autocast on CUDA), "
          f"{args.steps or '/'.join(map(str, DEFAULT_STEPS.values()))} steps x {args.epochs} timed epochs, "
          f"{args.repeats} rounds; load average "
          f"{os.getloadavg()[0]:.1f} at start")
    results: dict = {}
    for shape in args.shapes:
        rates: dict[str, list[float]] = {label: [] for *_, label in configs}
        base: list[float] = []
        for _ in range(args.repeats):
            for mode, nproc, threads, label in configs:
                r = run_config(shape, mode, nproc, threads, args)
                rates[label].append(r["images_per_second"])
            base.append(rates[configs[0][3]][-1])
        print(f"\n{shape} child (NASNet-A N=2, synthetic {'8x8x1' if shape == 'digits' else '32x32x3'}):")
        ref = statistics.median(base)
        results[shape] = {}
        for label, vals in rates.items():
            med = statistics.median(vals)
            results[shape][label] = {"images_per_second": med, "ratio": med / ref, "runs": vals}
            print(f"  {label:28s} {med:8.1f} img/s   x{med / ref:.2f} vs {configs[0][3]}")
        if args.device != "cuda":
            one, ddp1 = results[shape][configs[0][3]], results[shape]["ddp x1 (1 thread)"]
            find, many = results[shape]["ddp-find x1 (1 thread)"], results[shape][configs[-1][3]]
            allc = results[shape][configs[1][3]]
            print(f"  DDP overhead in one process: x{ddp1['images_per_second'] / one['images_per_second']:.2f}; "
                  f"find_unused vs static graph: x{find['images_per_second'] / ddp1['images_per_second']:.2f}; "
                  f"{k} processes vs 1 process on {cores} threads: "
                  f"x{many['images_per_second'] / allc['images_per_second']:.2f}")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other work on this machine skews the numbers)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
