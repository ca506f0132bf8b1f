"""What the search machinery costs beside the children it trains (paper §3, A.2-A.3).

Measures, in one run:
1. the controller: sample 20 architectures + one update on them (a minibatch), for PPO (4 epochs)
   and REINFORCE, on one thread (how the strategies run it) against torch's default thread count;
2. the driver: a whole serial search with an analytic (free) child, per child, minus the
   controller: the trial store's commits, payloads, bookkeeping;
3. executors: per-child overhead of local processes and of Ray against the serial executor on a
   no-op child, their start-up times, and the speed-up of 2 workers over serial on a child that sleeps.

Usage: PYTHONPATH=src python bench/search_overhead.py [--children 200] [--sleep 0.2] [--no-ray]
CPU, float32, controller minibatch 20. Timings on a shared machine are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from nasnet.arch.space import get_space  # noqa: E402
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search  # noqa: E402
from nasnet.search.executors import SerialExecutor  # noqa: E402
from nasnet.search.executors.process import ProcessExecutor  # noqa: E402
from nasnet.search.strategies import make_strategy  # noqa: E402

ANALYTIC = "nasnet.search.children.analytic:analytic_child"


def controller_minibatch(name: str, threads_default: bool, repeats: int = 5) -> tuple[float, float]:
    """Median seconds to sample 20 architectures and to run one update on them."""
    sizes = get_space("nasnet-a").decision_sizes()
    s = make_strategy(sizes, StrategyConfig(name=name, learning_rate=0.001), seed=0)
    if threads_default:       # undo the strategies' single-thread context for the comparison
        import contextlib

        import nasnet.search.controller as ctl

        saved = ctl.single_thread
        ctl.single_thread = contextlib.nullcontext
    sample_t, update_t = [], []
    try:
        for r in range(repeats + 1):
            t0 = time.perf_counter()
            props = [s.ask() for _ in range(20)]
            t1 = time.perf_counter()
            for i, p in enumerate(props):
                s.tell(p, 0.5 + 0.01 * i)
            t2 = time.perf_counter()
            if r:                                   # the first round warms up
                sample_t.append(t1 - t0)
                update_t.append(t2 - t1)
    finally:
        if threads_default:
            ctl.single_thread = saved
    return statistics.median(sample_t), statistics.median(update_t)


def serial_search_per_child(children: int) -> float:
    d = tempfile.mkdtemp(prefix="nasnet-bench-")
    try:
        cfg = SearchConfig(children=children, child=ChildConfig(fn=ANALYTIC), executor=ExecutorConfig(name="serial"))
        run_search(cfg.replace(children=2), Path(d) / "warm-up")      # one-time imports out of the timing
        t = time.perf_counter()
        run_search(cfg, Path(d) / "run")
        return (time.perf_counter() - t) / children
    finally:
        shutil.rmtree(d, ignore_errors=True)


def executor_per_child(executor, n: int, sleep: float) -> float:
    payload = {"fn": ANALYTIC, "genotype": "nasnet-a", "sleep": sleep}
    t = time.perf_counter()
    submitted, done = 0, 0
    while done < n:
        while submitted < n and submitted - done < executor.capacity:
            executor.submit(submitted, payload)
            submitted += 1
        for o in executor.wait(timeout=1.0):
            assert o.kind == "result", o.error
            done += 1
    return (time.perf_counter() - t) / n


def executor_overhead(make, args: argparse.Namespace, warm_in_startup: bool) -> tuple[float, float, float]:
    """An executor's start-up seconds, and its seconds per no-op child and per child that sleeps `args.sleep`.
    Four no-op children warm it up first; with `warm_in_startup` they count in the start-up (the process
    executor's workers start with its first children), else the start-up is the constructor alone (Ray's)."""
    t = time.perf_counter()
    executor = make()
    startup = time.perf_counter() - t
    executor_per_child(executor, 4, 0.0)
    if warm_in_startup:
        startup = time.perf_counter() - t
    noop = executor_per_child(executor, args.tasks, 0.0)
    sleep = executor_per_child(executor, max(10, args.tasks // 10), args.sleep)
    executor.close()
    return startup, noop, sleep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, default=200, help="children for the driver measurement")
    ap.add_argument("--tasks", type=int, default=100, help="no-op tasks per executor measurement")
    ap.add_argument("--sleep", type=float, default=0.2, help="seconds a 'training' child sleeps")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, default threads {torch.get_num_threads()}; float32; minibatch 20")
    print("(timings on a shared machine are indicative)\n")
    out: dict = {}

    print("1. controller: sample 20 architectures + 1 update (nasnet-a space, 100 decisions, LSTM 100)")
    for name in ("ppo", "reinforce"):
        s1, u1 = controller_minibatch(name, threads_default=False)
        sd, ud = controller_minibatch(name, threads_default=True)
        out[name] = {"sample_s": s1, "update_s": u1, "sample_default_threads_s": sd, "update_default_threads_s": ud}
        print(f"   {name:9s}  1 thread: sample {s1 * 1e3:7.1f} ms + update {u1 * 1e3:7.1f} ms = "
              f"{(s1 + u1) * 1e3:7.1f} ms per minibatch ({(s1 + u1) / 20 * 1e3:.1f} ms per child);  "
              f"default threads: {(sd + ud) * 1e3:7.1f} ms  (ratio default/1 thread {(sd + ud) / (s1 + u1):.2f}x)")

    per_child = serial_search_per_child(args.children)
    ctl = (out["ppo"]["sample_s"] + out["ppo"]["update_s"]) / 20
    out["driver_per_child_s"] = per_child
    print(f"\n2. serial PPO search, analytic child, {args.children} children: {per_child * 1e3:.1f} ms per child, "
          f"of which controller {ctl * 1e3:.1f} ms, driver (store, payloads, bookkeeping) "
          f"{max(0.0, per_child - ctl) * 1e3:.1f} ms")

    serial = SerialExecutor(1)
    s_noop = executor_per_child(serial, args.tasks, 0.0)
    s_sleep = executor_per_child(serial, max(10, args.tasks // 10), args.sleep)
    out["serial_noop_s"], out["serial_sleep_s"] = s_noop, s_sleep
    print(f"\n3. executors, {args.tasks} no-op children:")
    print(f"   serial: {s_noop * 1e3:8.2f} ms per no-op child; {s_sleep:.3f} s per {args.sleep} s child")
    p_start, p_noop, p_sleep = executor_overhead(lambda: ProcessExecutor(workers=2), args, warm_in_startup=True)
    out.update(process_startup_s=p_start, process_noop_s=p_noop, process_sleep_s=p_sleep)
    print(f"   process (2 workers): start-up {p_start:.1f} s; {p_noop * 1e3:8.2f} ms per no-op child "
          f"(overhead vs serial {(p_noop - s_noop) * 1e3:.2f} ms, ratio {p_noop / s_noop:.0f}x); "
          f"{p_sleep:.3f} s per {args.sleep} s child -> speed-up over serial {s_sleep / p_sleep:.2f}x")
    if not args.no_ray:
        ray_overhead(args, out, s_noop, s_sleep)
    print("\n" + json.dumps(out))
    return 0


def ray_overhead(args: argparse.Namespace, out: dict, s_noop: float, s_sleep: float) -> None:
    """Step 3 for a local Ray instance with 2 workers, against the serial executor's `s_noop` and `s_sleep`."""
    try:
        from nasnet.search.executors.ray import RayExecutor
    except ImportError:
        print("   ray: not installed")
        return
    startup, r_noop, r_sleep = executor_overhead(lambda: RayExecutor(workers=2, cpus_per_child=1), args,
                                                 warm_in_startup=False)
    out.update(ray_startup_s=startup, ray_noop_s=r_noop, ray_sleep_s=r_sleep)
    print(f"   ray (local, 2 workers): start-up {startup:.1f} s; {r_noop * 1e3:8.2f} ms per no-op child "
          f"(overhead vs serial {(r_noop - s_noop) * 1e3:.2f} ms per child, ratio {r_noop / s_noop:.0f}x); "
          f"{r_sleep:.3f} s per {args.sleep} s child -> speed-up over serial {s_sleep / r_sleep:.2f}x "
          "(2 workers: ideal 2x)")


if __name__ == "__main__":
    sys.exit(main())
