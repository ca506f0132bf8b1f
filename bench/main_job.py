"""The main job, timed: `nasnet search` with no arguments (the README's first set-up command).

Runs it in a fresh run directory and records its wall time, the CPU time of all its processes (the
driver and its worker processes, from the kernel's accounting of finished children), the machine's
load before it started, and what the search printed as JSON: children, the best reward, whether its
later children scored better than its first ones. The default search is evolution on the quick
digits child (docs/search.md), 40 children and a top-3 stage.

Usage: python bench/main_job.py [--out bench/results/main_job.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine_info, subprocess_env, write_json


def run_main_job(run_dir: Path) -> dict:
    """`nasnet search --json --quiet` in `run_dir`: its summary, wall seconds and CPU seconds."""
    env = subprocess_env()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nasnet", "search", "--run-dir", str(run_dir), "--json", "--quiet"],
                         env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": "nasnet search", "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "load_average_before": round(load, 2), "summary": json.loads(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "main_job.json"), help="the JSON to write")
    p.add_argument("--keep", metavar="DIR", help="run in DIR (a new folder) and keep it; default: a temporary one")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        result = run_main_job(run_dir)
    result["summary"]["run_dir"] = None if not args.keep else str(run_dir)
    write_json(args.out, {"machine": machine_info(), **result})
    s = result["summary"]
    print(f"nasnet search: {result['wall_seconds']} s wall, {result['cpu_seconds']} s CPU over all processes "
          f"(load average {result['load_average_before']} before); best {s['best_reward']:.4f}; "
          f"samples {s.get('samples')}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
