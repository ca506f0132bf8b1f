"""Local worker processes: W children at once on this machine, each in its own process (paper A.3).

The paper's pool of child workers, on one machine and without Ray. Each worker is a spawned Python
process that runs payloads it receives over a pipe (`nasnet.search.executors.run_payload`: JSON
text in and out). A child that crashes its process — a segfault, the kernel's OOM killer, SIGKILL —
takes only that worker down: its trial comes back as an infrastructure failure and a fresh worker
replaces it. Workers limit their math libraries to `cpus_per_child` threads (tiny child networks
run much faster on one thread each than on several competing ones), ignore Ctrl-C (the driver
stops them), and die with the driver (Linux PR_SET_PDEATHSIG).

GPUs: with `gpus_per_child` g > 0 every worker is given GPUs through CUDA_VISIBLE_DEVICES, as Ray
gives its tasks theirs: with g <= 1, floor(1/g) workers share each GPU (0.25: four children per
GPU); with g > 1, each worker gets ceil(g) GPUs of its own. A worker that is replaced keeps its
slot, and so its GPU. With g = 0 (the default) workers see every GPU the driver sees.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections import deque
from multiprocessing import connection, get_context
from typing import Any

from ...errors import NasnetError
from ..contract import OutcomeKind
from .base import Executor, Outcome, outcome_from_json, run_payload

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass                               # not Linux: the closed pipe ends the worker instead


def _worker_main(conn, threads: int, cuda_devices: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    if cuda_devices is not None:           # before anything imports torch
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_devices
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            conn.send(run_payload(message))
        except (BrokenPipeError, OSError):
            return


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (indices or UUIDs)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and not d.strip().startswith("-")]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def gpu_slots(gpus_per_child: float, gpus: list[str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each worker slot: floor(1/g) slots per GPU, or ceil(g) GPUs per slot."""
    if gpus_per_child <= 1:
        per_gpu = max(1, math.floor(1 / gpus_per_child + 1e-9))
        return [gpu for gpu in gpus for _ in range(per_gpu)]
    need = math.ceil(gpus_per_child - 1e-9)
    return [",".join(gpus[i:i + need]) for i in range(0, len(gpus) - need + 1, need)]


class _Worker:
    def __init__(self, ctx, threads: int, slot: int = 0, cuda_devices: str | None = None):
        self.slot, self.cuda_devices = slot, cuda_devices
        self.conn, child_end = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child_end, threads, cuda_devices), daemon=True,
                                   name="nasnet-child-worker")
        self.process.start()
        child_end.close()
        self.key: Any = None
        self.started = 0.0

    def stop(self, timeout: float = 2.0) -> None:
        if self.process.is_alive() and self.key is None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


class ProcessExecutor(Executor):
    """`workers` local processes (0: one per `cpus_per_child` CPUs of this machine, and no more than
    the GPUs hold with `gpus_per_child` > 0). `gpus` lists the GPUs to share out (default: the
    visible ones)."""

    name = "process"

    @classmethod
    def from_config(cls, config, record=None, log=None) -> "ProcessExecutor":
        """The executor an ExecutorConfig describes."""
        return cls(config.workers, config.cpus_per_child, config.child_timeout, config.gpus_per_child)

    def __init__(self, workers: int = 0, cpus_per_child: float = 1.0, child_timeout: float | None = None,
                 gpus_per_child: float = 0.0, gpus: list[str] | None = None):
        cpus = os.cpu_count() or 1
        self.capacity = int(workers) if workers else max(1, int(cpus / cpus_per_child + 1e-9))
        self.slots: list[str] | None = None
        if gpus_per_child > 0:
            gpus = visible_gpus() if gpus is None else list(gpus)
            self.slots = gpu_slots(gpus_per_child, gpus)
            if not self.slots:
                raise NasnetError(f"`executor.gpus_per_child` {gpus_per_child:g}: this machine has {len(gpus)} "
                                  "visible GPU(s), too few for one child (use `executor.gpus_per_child` 0 to train "
                                  "on the CPU)")
            if workers and workers > len(self.slots):
                needed = math.ceil(workers * gpus_per_child - 1e-9)
                raise NasnetError(f"`executor.workers` {workers} with `executor.gpus_per_child` {gpus_per_child:g} "
                                  f"needs {needed} GPU(s); {len(gpus)} visible, room for {len(self.slots)} children "
                                  "at once")
            self.capacity = min(self.capacity, len(self.slots))
        self.threads = max(1, math.floor(cpus_per_child))
        self.child_timeout = child_timeout
        self._ctx = get_context("spawn")          # fork is unsafe once torch has started threads
        self._workers: list[_Worker] = []
        self._queue: deque[tuple[Any, str]] = deque()

    def _idle(self) -> _Worker | None:
        for w in self._workers:
            if w.key is None:
                return w
        if len(self._workers) < self.capacity:
            slot = min(set(range(self.capacity)) - {w.slot for w in self._workers})
            w = _Worker(self._ctx, self.threads, slot, self.slots[slot] if self.slots else None)
            self._workers.append(w)
            return w
        return None

    def _dispatch(self) -> None:
        while self._queue:
            w = self._idle()
            if w is None:
                return
            key, text = self._queue[0]
            try:
                w.conn.send(text)
            except OSError:                # the idle worker has died (e.g. the OOM killer): replace it
                self._replace(w)
                continue
            self._queue.popleft()
            w.key, w.started = key, time.time()

    def submit(self, key, payload):
        import json

        self._queue.append((key, json.dumps(payload, allow_nan=False)))
        self._dispatch()

    def _replace(self, w: _Worker) -> None:
        w.key = None
        w.stop(timeout=0.5)
        self._workers.remove(w)

    def wait(self, timeout=None):
        self._dispatch()
        busy = [w for w in self._workers if w.key is not None]
        if not busy:
            return []
        if self.child_timeout:
            first_deadline = min(w.started for w in busy) + self.child_timeout - time.time()
            timeout = max(0.0, first_deadline if timeout is None else min(timeout, first_deadline))
        handles = {w.conn: w for w in busy} | {w.process.sentinel: w for w in busy}
        ready = connection.wait(list(handles), timeout)
        outcomes, seen = [], set()
        for handle in ready:
            w = handles[handle]
            if id(w) in seen or w.key is None:
                continue
            seen.add(id(w))
            key = w.key
            try:
                text = w.conn.recv() if w.conn.poll() else None
            except (EOFError, OSError):
                text = None
            if text is not None:
                w.key = None
                outcomes.append(outcome_from_json(key, text))
                continue
            w.process.join(0.5)
            outcomes.append(Outcome(key, OutcomeKind.INFRA, error=f"worker process {w.process.pid} "
                                    f"{_exit_reason(w.process.exitcode)}", worker=f"local:{w.process.pid}",
                                    started_at=w.started, finished_at=time.time()))
            self._replace(w)
        if self.child_timeout:
            now = time.time()
            for w in [w for w in self._workers if w.key is not None and now - w.started > self.child_timeout]:
                outcomes.append(Outcome(w.key, OutcomeKind.ERROR, error=f"TimeoutError: stopped after the "
                                        f"{self.child_timeout:g} s child timeout", worker=f"local:{w.process.pid}",
                                        started_at=w.started, finished_at=now))
                self._replace(w)
        self._dispatch()
        return outcomes

    def cancel_all(self):
        self._queue.clear()
        for w in list(self._workers):
            if w.key is not None:
                self._replace(w)

    def close(self):
        self._queue.clear()
        for w in self._workers:
            w.stop()                       # idle workers are asked to exit, busy ones are killed
        self._workers.clear()
