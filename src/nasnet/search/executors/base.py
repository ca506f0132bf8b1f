"""The executor contract: run a named function on a JSON payload somewhere, hand back an Outcome (paper §3).

An executor knows nothing about architecture search. It receives `(key, payload)` pairs, runs
``payload["fn"](payload) -> dict`` somewhere through `run_payload` (JSON text in and out: the
payload and the result are checked there against nasnet.search.contract), and hands back one
`Outcome` per key, of an `OutcomeKind`: RESULT, ERROR (the function raised, broke the contract or
hit its timeout: recorded, not retried) or INFRA (its worker or node died, its result was lost, it
ran out of memory: the driver may retry). docs/search.md says how the search treats each.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import NasnetError
from ..contract import ChildResult, OutcomeKind, check_payload, check_result, finite_or_none


@dataclass
class Outcome:
    """How the job `key` ended: its kind, the child's checked result (RESULT) or the error text, where it
    ran (host:pid) and when (unix seconds)."""

    key: Any
    kind: OutcomeKind
    result: ChildResult | None = None
    error: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def __post_init__(self) -> None:
        self.kind = OutcomeKind(self.kind)


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


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_payload(payload_json: str, worker: str | None = None) -> str:
    """Run one payload where this is called; JSON text in, JSON text out; never raises for the child.

    Returns {"kind", "result", "error", "worker", "started_at", "finished_at"} (`outcome_from_json`
    reads it): a payload or a result that breaks the contract (nasnet.search.contract), or a raising
    child, gives kind "error" with the traceback's last lines; an OOM gives "infra". `worker` names
    where it ran (default: host:pid).
    """
    started = time.time()
    out: dict[str, Any] = {"worker": worker or worker_name(), "started_at": started}
    try:
        payload = check_payload(json.loads(payload_json))
        result = check_result(finite_or_none(resolve(payload["fn"])(payload)))
        out.update(kind=OutcomeKind.RESULT.value, result=result, error=None, finished_at=time.time())
        return json.dumps(out, allow_nan=False)
    except Exception as err:   # noqa: BLE001 - the child's failure is data, not the driver's
        tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:]).strip()
        kind = (OutcomeKind.INFRA if _is_oom(err) else OutcomeKind.ERROR).value
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
