"""Data-parallel training on PyTorch's own engine: the process group and the few collectives the
training loop needs (paper A.7: synchronous SGD over many workers; docs/training.md, "Data-parallel
training", says what K processes share and how they stay equal).

`init_from_env` joins the group torchrun's environment describes (RANK, WORLD_SIZE, LOCAL_RANK, ...):
gloo on a CPU-only machine; with CUDA one group that sends CUDA tensors over NCCL and CPU tensors
over gloo, each process on the GPU of its local rank. Every collective has the group's timeout, so a
process that stops answering ends the job with an error instead of a hang. `data_parallel` wraps
the model in DistributedDataParallel; `average_buffers` averages BatchNorm statistics at an epoch's
end; `shard_indices` and `gather_indexed` let evaluation count every example once; `shutdown`
releases the group and its threads before the interpreter exits.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..errors import NasnetError

DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str
    run_id: str
    restart_count: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise NasnetError(f"environment variable {name} is not set (start the processes with torchrun)")
        return default
    try:
        return int(value)
    except ValueError:
        raise NasnetError(f"environment variable {name}={value!r} is not an integer") from None


def init_from_env(timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """Join the process group described by torchrun's environment variables."""
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise NasnetError(f"local rank {local_rank} has no GPU: this node runs {local_world} processes but has "
                              f"{count} GPU(s) (start at most {count} per node, or use `device=cpu`)")
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    restart = _env_int("TORCHELASTIC_RESTART_COUNT", 0)
    if not dist.is_initialized():
        # imported before the group exists: its default arguments would otherwise keep the group (see `shutdown`)
        importlib.import_module("torch.distributed.nn")

        timeout = timedelta(seconds=timeout_s)
        dist.init_process_group(backend=backend, timeout=timeout, rank=rank, world_size=world,
                                store=_attempt_store(rank, world, restart, timeout))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world,
                       backend=backend, run_id=os.environ.get("TORCHELASTIC_RUN_ID", ""),
                       restart_count=restart)


def _attempt_store(rank: int, world: int, restart: int, timeout: timedelta) -> dist.Store:
    """The key-value store the processes meet in, with a prefix of its own for every restart.

    torchrun keeps one store (hosted by its agent) for the whole job and, in this PyTorch, no
    longer separates restarts in it: after an elastic restart a process could read the address a
    process of the previous attempt published and fail with "connection refused". The prefix
    makes each attempt start from an empty namespace. Without torchrun's agent (the variables set
    by hand), rank 0 hosts the store, as with init_method="env://".
    """
    addr = os.environ.get("MASTER_ADDR")
    port = _env_int("MASTER_PORT")
    if not addr:
        raise NasnetError("environment variable MASTER_ADDR is not set (start the processes with torchrun)")
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(addr, port, world, is_master=not agent and rank == 0, timeout=timeout,
                          multi_tenant=not agent)
    return dist.PrefixStore(f"nasnet/attempt_{restart}", store)


def lost_peer(err: BaseException) -> bool:
    """Whether `err` is a collective failing because another process went away (closed connection,
    timeout), as opposed to a failure of this process's own."""
    if isinstance(err, dist.DistError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("gloo/transport" in text or "Connection closed by peer" in text
                                              or "Connection reset by peer" in text)


def shutdown() -> None:
    """Leave the process group and release it, with its threads, before the interpreter exits.

    Called by every process on every path, after the training objects are out of scope: the group is
    destroyed, then a collection frees what still refers to it (a DistributedDataParallel wrapper in
    a reference cycle), and the group's destructor joins its threads.

    Why: a gloo thread (its event loop, its two workers) still alive when the interpreter finalizes,
    destroying a finished collective whose tensors Python created, takes the GIL to release them;
    CPython ends a thread that asks for the GIL during finalization with pthread_exit, whose unwinding
    through that C++ destructor calls std::terminate: the rank dies by SIGABRT after a run that
    succeeded. `destroy_process_group` alone does not stop the threads while anything still holds the
    group, and `torch.distributed.nn` holds it for the life of the interpreter when first imported
    after the group exists (its functions take `group=group.WORLD` as a default argument, and
    DistributedDataParallel's constructor imports it through torch._dynamo): `init_from_env` imports
    it first."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def group_threads() -> list[str]:
    """Names of this process's threads that belong to a gloo process group (Linux; [] elsewhere):
    none may be left after `shutdown`."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    names = []
    for task in tasks.glob("*") if tasks.is_dir() else ():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if "gloo" in name:
            names.append(name)
    return sorted(names)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """`obj` from rank `src` on every rank (pickled; sent over gloo, CPU side)."""
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=torch.device("cpu"))
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum `t` over all processes, in place (returned for convenience)."""
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


@torch.no_grad()
def average_buffers(module: torch.nn.Module) -> None:
    """Average the floating-point buffers (BatchNorm running mean and variance) over all processes."""
    bufs = [b for b in module.buffers() if b.dtype.is_floating_point]
    if not bufs:
        return
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for b in bufs:
        by_device.setdefault(b.device, []).append(b)
    world = dist.get_world_size()
    for group in by_device.values():
        flat = torch.cat([b.reshape(-1).double() for b in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world
        offset = 0
        for b in group:
            n = b.numel()
            b.copy_(flat[offset:offset + n].view_as(b))
            offset += n


def no_forward_buffer_sync(ddp_class: type | None = None) -> dict[str, bool]:
    """DistributedDataParallel's keyword that stops it broadcasting rank 0's buffers before every
    forward, in the spelling the installed PyTorch accepts (feature-tested on the signature):
    `forward_sync_buffers=False` where it exists (it replaced `broadcast_buffers`, which now warns),
    else `broadcast_buffers=False`. The older spelling also skips the buffers' broadcast at
    construction; that changes nothing here, since every process builds its model from the same seed
    (and a resume loads the same checkpoint everywhere), so the buffers already agree."""
    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature((ddp_class or DistributedDataParallel).__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


def data_parallel(model: torch.nn.Module, device: torch.device, ddp_class: type | None = None,
                  **options: Any) -> torch.nn.Module:
    """`model` wrapped in DistributedDataParallel on `device` (its GPU, or the CPU over gloo), without
    the per-forward buffer broadcast (BatchNorm statistics stay per process and are averaged at the
    end of each epoch, `average_buffers`); `options` go to DistributedDataParallel as they are."""
    if ddp_class is None:
        from torch.nn.parallel import DistributedDataParallel as ddp_class
    return ddp_class(model, device_ids=[device.index] if device.type == "cuda" else None,
                     **no_forward_buffer_sync(ddp_class), **options)


def shard_indices(n: int, rank: int, world_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The examples rank `rank` of `world_size` evaluates: every world_size-th from `rank` (no padding)."""
    return torch.arange(rank, n, world_size, device=device)


def gather_indexed(index: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """Per-example `values` (rows, any trailing shape) of all processes, ordered by example index.

    Each process holds the rows of the examples in `index`; shards of unequal length are padded
    for the exchange and the padding (index -1) is dropped. Rows of an index that several
    processes hold are kept once; an index in [0, n) that nobody holds is an error, so a metric
    computed from the result counts every example exactly once.
    """
    world = dist.get_world_size()
    device = values.device
    count = torch.tensor([len(index)], device=device, dtype=torch.long)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(int(c) for c in counts))
    pad_index = torch.full((longest,), -1, dtype=torch.long, device=device)
    pad_index[:len(index)] = index.to(device)
    pad_values = torch.zeros((longest, *values.shape[1:]), dtype=values.dtype, device=device)
    pad_values[:len(values)] = values
    all_index = [torch.empty_like(pad_index) for _ in range(world)]
    all_values = [torch.empty_like(pad_values) for _ in range(world)]
    dist.all_gather(all_index, pad_index)
    dist.all_gather(all_values, pad_values)
    idx, vals = torch.cat(all_index), torch.cat(all_values)
    keep = idx >= 0
    idx, vals = idx[keep], vals[keep]
    out = torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=device)
    seen = torch.zeros(n, dtype=torch.bool, device=device)
    out[idx] = vals
    seen[idx] = True
    if not bool(seen.all()):
        missing = int((~seen).sum())
        raise RuntimeError(f"distributed evaluation lost {missing} of {n} examples (shards do not cover the split)")
    return out
