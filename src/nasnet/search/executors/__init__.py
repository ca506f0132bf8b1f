"""Executors: where children run. Each runs a named function on a JSON payload and hands back an
`Outcome`; only JSON crosses the boundary, so they are interchangeable (see `base`).

    serial    in the driver's process, one after another
    process   W local worker processes (the default)
    ray       Ray tasks on a local instance or a cluster
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...errors import NasnetError
from .base import Executor, Outcome, resolve, run_payload
from .process import ProcessExecutor
from .serial import SerialExecutor

EXECUTORS = ("serial", "process", "ray")

__all__ = ["EXECUTORS", "Executor", "Outcome", "ProcessExecutor", "SerialExecutor", "make_executor", "resolve",
           "run_payload"]


def make_executor(config, record: Path | None = None, log: Callable[[str], None] | None = None) -> Executor:
    """The executor an `ExecutorConfig` names; `record` is where a local Ray instance lists its processes;
    `log` receives what an executor has to tell the user."""
    if config.name == "serial":
        return SerialExecutor(config.workers or 1)
    if config.name == "process":
        return ProcessExecutor(config.workers, config.cpus_per_child, config.child_timeout, config.gpus_per_child)
    if config.name == "ray":
        from .ray import RayExecutor  # imports ray only when it is used

        return RayExecutor(config.workers, config.ray_address, config.cpus_per_child, config.gpus_per_child,
                           config.child_timeout, record, log=log)
    raise NasnetError(f"unknown executor {config.name!r} (known: {', '.join(EXECUTORS)})")
