"""Executors: where children run. Each runs a named function on a JSON payload and hands back an
`Outcome`; only JSON crosses the boundary, so they are interchangeable (see `base`).

`EXECUTORS` names them (nasnet.registry): serial (in the driver's process, one after another),
process (W local worker processes, the default) and ray (Ray tasks on a local instance or a
cluster); each class builds itself from an ExecutorConfig (`from_config`). Entries are imported
when first used, so naming ray imports nothing of Ray until a run uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...registry import Registry
from .base import Executor, Outcome, resolve, run_payload
from .process import ProcessExecutor
from .serial import SerialExecutor

EXECUTORS = Registry("executor", lazy=True)
EXECUTORS.register("serial", "nasnet.search.executors.serial:SerialExecutor", help="this process")
EXECUTORS.register("process", "nasnet.search.executors.process:ProcessExecutor", help="local worker processes")
EXECUTORS.register("ray", "nasnet.search.executors.ray:RayExecutor", help="Ray tasks, on this machine or a cluster")

__all__ = ["EXECUTORS", "Executor", "Outcome", "ProcessExecutor", "SerialExecutor", "make_executor", "resolve",
           "run_payload"]


def make_executor(config, record: Path | None = None, log: Callable[[str], None] | None = None) -> Executor:
    """The executor an `ExecutorConfig` names; `record` is where a local Ray instance lists its processes;
    `log` receives what an executor has to tell the user."""
    return EXECUTORS.lookup(config.name).from_config(config, record, log)
