"""`nasnet train --nproc K`: start the K processes through torchrun (nasnet.train.launch) and say how
they ended: which process failed and how, or the signal that stopped the launcher, then the command
that continues the run (docs/training.md, "Data-parallel training").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def launch_processes(args: argparse.Namespace, run_dir: Path) -> int:
    """Run this command line in K processes (each naming `run_dir`); returns the exit status."""
    from ..train.launch import LaunchOptions, launch
    from ..train.run_dir import holds_run

    opts = LaunchOptions(nproc=str(args.nproc), nnodes=str(args.nnodes or "1"), rdzv_endpoint=args.rdzv_endpoint,
                         rdzv_id=args.rdzv_id, max_restarts=args.max_restarts or 0)
    worker_argv = list(getattr(args, "_argv", None) or sys.argv[1:])
    if not args.run_dir:  # every process (and the resume hint) must name the same directory
        worker_argv += ["--run-dir", str(run_dir)]
    end = launch(opts, worker_argv)
    hint = f"nasnet train --run-dir {run_dir} --resume --nproc {opts.nproc}"
    if opts.multi_node:
        hint += f" --nnodes {opts.nnodes} --rdzv-endpoint {opts.rdzv_endpoint}"
    if end.signal:
        print(f"nasnet train: stopped by {end.signal}; continue with: {hint}", file=sys.stderr)
    elif end.status:
        if end.failure:
            print(f"nasnet train: error: {end.failure}", file=sys.stderr)
        if holds_run(run_dir):
            print(f"nasnet train: the run is in {run_dir}; continue it with: {hint}", file=sys.stderr)
    return end.status
