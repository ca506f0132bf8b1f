"""The executor contract: run a named function on a JSON payload somewhere, hand back an Outcome (paper §3).

An executor knows nothing about architecture search. It receives `(key, payload)` pairs, where the
payload is a JSON object naming its function in "fn" ("module:function"), runs
``function(payload) -> dict`` somewhere, and hands back an `Outcome` per key. Only JSON crosses the
boundary (payloads and results are sent as JSON text), so a trial can be re-run by hand from its
payload, and the serial executor and a Ray cluster are interchangeable.

Failures are sorted into two kinds:
- ``error``: the function raised (a bad genotype, a bug, a crash inside the child). Re-running
  would raise again, so the caller records it and moves on.
- ``infra``: the work did not get done for reasons outside the function: its worker process or node
  died (SIGKILL, segfault, Ray's memory monitor), its result was lost, or it ran out of memory
  (MemoryError, CUDA OOM — with fractional GPUs usually caused by a neighbour). The caller may retry.
A child that hits its timeout is cancelled and reported as ``error``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import NasnetError


@dataclass
class Outcome:
    key: Any
    kind: str                       # "result" | "error" | "infra"
    result: dict | None = None      # the function's JSON result when kind == "result"
    error: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None


def resolve(fn: str) -> Callable[[dict], dict]:
    """The function a payload names ("package.module:function")."""
    module, _, name = str(fn).partition(":")
    if not module or not name:
        raise NasnetError(f"child function must read 'module:function', got {fn!r}")
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise NasnetError(f"cannot import the child module {module!r} ({err})") from None
    func = mod
    for part in name.split("."):
        func = getattr(func, part, None)
        if func is None:
            raise NasnetError(f"the child module {module!r} has no function {name!r}")
    if not callable(func):
        raise NasnetError(f"the child {fn!r} is not callable")
    return func


def _json_clean(x: Any) -> Any:
    """Non-finite floats become null: results must be strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    return x


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_payload(payload_json: str, worker: str | None = None) -> str:
    """Run one payload where this is called; JSON text in, JSON text out; never raises for the child.

    Returns {"kind": "result"|"error"|"infra", "result", "error", "worker", "started_at",
    "finished_at"}; a raising child gives kind "error" with the traceback's last lines, an OOM
    gives "infra". `worker` names where it ran (default: host:pid).
    """
    started = time.time()
    out: dict[str, Any] = {"worker": worker or worker_name(), "started_at": started}
    try:
        payload = json.loads(payload_json)
        result = resolve(payload["fn"])(payload)
        if not isinstance(result, dict):
            raise TypeError(f"the child returned {type(result).__name__}, not a JSON object")
        out.update(kind="result", result=_json_clean(result), error=None, finished_at=time.time())
        return json.dumps(out, allow_nan=False)
    except Exception as err:   # noqa: BLE001 - the child's failure is data, not the driver's
        tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:]).strip()
        kind = "infra" if _is_oom(err) else "error"
        out.update(kind=kind, result=None, error=f"{type(err).__name__}: {err}\n{tail}", finished_at=time.time())
        return json.dumps(out)


def outcome_from_json(key: Any, text: str) -> Outcome:
    """The Outcome of `run_payload`'s JSON text, for `key`."""
    d = json.loads(text)
    return Outcome(key, d["kind"], d.get("result"), d.get("error"), d.get("worker"), d.get("started_at"),
                   d.get("finished_at"))


class Executor:
    """Interface: `submit`, `wait`, `cancel_all`, `close`; `capacity` children can run at once.

    Implementations: serial (this process), process (local worker processes), ray (a Ray instance
    or cluster); `nasnet.search.executors.make_executor` picks one from an ExecutorConfig."""

    name = "executor"
    capacity = 1

    def submit(self, key: Any, payload: dict) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Outcomes that are ready, waiting up to `timeout` seconds for at least one."""
        raise NotImplementedError

    def cancel_all(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
