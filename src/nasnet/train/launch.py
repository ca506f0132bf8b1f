"""Starting K data-parallel training processes through torchrun (paper A.7; docs/training.md,
"Data-parallel training").

`launch` runs `torchrun [options] -m nasnet train ARGS` inside the calling process
(`torch.distributed.run`, PyTorch's elastic launcher), so `nasnet train --nproc K` and torchrun from
outside behave the same: standalone rendezvous on one machine, c10d on several (`LaunchOptions`).
When a process fails, torchrun stops the others at once; `describe_failure` says which rank failed
and how in one line (its recorded exception, or the signal that killed it), leaving out the ranks
that only lost contact with it and torchrun's own log lines about the same failure.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from ..errors import NasnetError

LAUNCH_ENV = "NASNET_TRAIN_LAUNCHER"   # set for processes started by `nasnet train --nproc`
DEFAULT_RDZV_ID = "nasnet-train"
LOST_PEER_STATUS = 3   # a process whose collective failed because another process went away
# signals a process raises on itself when native code fails: it printed the reason on its stderr
CRASH_SIGNALS = {"SIGABRT", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL"}
# torchrun's logger of the processes it starts and stops: its warnings and errors repeat what `launch` says
_TORCHRUN_PROCS_LOGGER = "torch.distributed.elastic.multiprocessing.api"


def under_torchrun() -> bool:
    """True in a process started by torchrun (or given its environment by hand)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class LaunchOptions:
    nproc: str = "1"                 # processes on this machine: an integer, or "gpu" (one per GPU)
    nnodes: str = "1"                # machines: N or MIN:MAX
    rdzv_endpoint: str | None = None  # HOST[:PORT] of the rendezvous, for several machines
    rdzv_id: str | None = None       # the job's name, the same on every machine
    max_restarts: int = 0

    def __post_init__(self) -> None:
        if not (self.nproc == "gpu" or (self.nproc.isdigit() and int(self.nproc) >= 1)):
            raise NasnetError(f"`nproc` {self.nproc!r}: give a number of processes >= 1, or 'gpu' (one per GPU)")
        if not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", self.nnodes):
            raise NasnetError(f"`nnodes` {self.nnodes!r}: give a number of machines, or MIN:MAX for an elastic job")
        lo, _, hi = self.nnodes.partition(":")
        if hi and int(hi) < int(lo):
            raise NasnetError(f"`nnodes` {self.nnodes}: MIN must not exceed MAX")
        if self.multi_node and not self.rdzv_endpoint:
            raise NasnetError("several machines need `rdzv_endpoint` HOST:PORT (a machine every node can reach; "
                              "run the same command on each)")
        if self.max_restarts < 0:
            raise NasnetError("`max_restarts` must be >= 0")

    @property
    def multi_node(self) -> bool:
        return self.nnodes != "1"

    def torchrun_args(self) -> list[str]:
        """torchrun's options (the command line before `-m nasnet train ...`)."""
        argv = ["--nproc-per-node", self.nproc, "--max-restarts", str(self.max_restarts)]
        if self.multi_node or self.rdzv_endpoint:
            argv += ["--nnodes", self.nnodes, "--rdzv-backend", "c10d", "--rdzv-endpoint", str(self.rdzv_endpoint),
                     "--rdzv-id", self.rdzv_id or DEFAULT_RDZV_ID]
        else:
            argv += ["--standalone"]
        return argv

    def command(self, worker_argv: list[str]) -> str:
        """The equivalent torchrun command, for the log."""
        import shlex

        return shlex.join(["torchrun", *self.torchrun_args(), "-m", "nasnet", *worker_argv])


@dataclass(frozen=True)
class LaunchEnd:
    """How a launch ended: `status`, the exit status for the command (0 when every process finished);
    `failure`, one line saying which process failed and how ("" when none did, or when the processes
    said it themselves); `signal`, the name of the signal that stopped the launcher itself (or None)."""

    status: int
    failure: str = ""
    signal: str | None = None


def launch(opts: LaunchOptions, worker_argv: list[str]) -> LaunchEnd:
    """Run torchrun here with `worker_argv` (the `nasnet` command line every process runs) and wait for it.

    Raises NasnetError for `nproc=gpu` on a machine without CUDA."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    if opts.nproc == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise NasnetError("`nproc=gpu` starts one process per GPU, but CUDA is not available (give a number)")
        local = torch.cuda.device_count()
    else:
        local = int(opts.nproc)
    os.environ[LAUNCH_ENV] = "1"
    # torchrun would give every process 1 thread (with a warning); share this machine's cores instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // local)))
    args = get_args_parser().parse_args([*opts.torchrun_args(), "-m", "nasnet"])
    # set after parsing: torchrun's parser would read the worker's --nproc as its own --nproc-per-node
    args.training_script_args = list(worker_argv)
    procs_log = logging.getLogger(_TORCHRUN_PROCS_LOGGER)
    level = procs_log.level
    if "LOGLEVEL" not in os.environ:  # torchrun's own setting: asked for, its log is shown
        procs_log.setLevel(logging.CRITICAL)
    try:
        torchrun(args)
    except ChildFailedError as err:
        return LaunchEnd(*describe_failure(err.failures))
    except SignalException as err:
        return LaunchEnd(128 + int(err.sigval), signal=err.sigval.name)
    finally:
        procs_log.setLevel(level)
    return LaunchEnd(0)


def _recorded_message(message) -> str:
    if isinstance(message, dict):  # written by torchrun's error handler: {"message": "Type: text", ...}
        message = message.get("message", "")
    text = str(message or "").strip()
    if not text or text.startswith("To enable traceback"):
        return ""
    return text.splitlines()[0]


def describe_failure(failures: dict) -> tuple[int, str]:
    """(exit status, one line) for torchrun's failures {global rank: ProcessFailure}.

    Processes that only lost contact with a failed one (status LOST_PEER_STATUS) or that torchrun
    stopped itself after the first failure (SIGTERM) are not the cause and are left out when another
    failure explains the stop. Processes that exited with status 2
    printed their own `nasnet train: error:` line (a user mistake, or a divergence every rank saw);
    when all failures are of that kind, nothing is added."""
    if all(f.exitcode == 2 for f in failures.values()):
        return 2, ""
    causes = {r: f for r, f in failures.items()
              if f.exitcode not in (2, LOST_PEER_STATUS) and f.signal_name() != "SIGTERM"}
    parts = []
    for rank, f in sorted((causes or failures).items()):
        where = f"rank {rank} (local rank {f.local_rank}, pid {f.pid})"
        if f.exitcode < 0:
            crash = " (a crash in native code: its last lines above say where)" if f.signal_name() in CRASH_SIGNALS \
                else ""
            parts.append(f"{where} was killed by {f.signal_name()}{crash}")
        else:
            text = _recorded_message(f.message)
            parts.append(f"{where} exited with status {f.exitcode}" + (f": {text}" if text else ""))
    return 1, "; ".join(parts) + ("; torchrun stopped the other processes" if len(failures) < 2 or causes else "")
