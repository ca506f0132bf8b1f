"""Where and how a run computes: the device, bf16 autocast, torch.compile's mode, cuDNN's autotuner,
and the dataset's copy on the device.

The policy is kept apart from the training loop so that the loop, evaluation (`nasnet eval`), the
benchmarks and the GPU suite apply the same rules (docs/training.md, "Devices"). `cudnn.benchmark`
is a process-wide switch of PyTorch's: `cudnn_autotune` turns it on only around the code that wants
it (a training epoch, an evaluation: fixed shapes that run many times) and puts back what was there.
Under data parallelism on CUDA every process computes on the GPU of its local rank
(`data_parallel_device`). The splits are copied to a device once per process (`device_splits`).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Iterator

import torch

from ..data import Dataset
from ..errors import NasnetError


def resolve_device(name: str) -> torch.device:
    """The device `name` means: 'auto' (CUDA when there is one, else the CPU), 'cpu', 'cuda' or 'cuda:N'.

    Raises NasnetError for CUDA on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NasnetError(f"device {name!r} requested but CUDA is not available (use `device=cpu`)")
    return torch.device(name)


def data_parallel_device(device: torch.device, world_size: int) -> torch.device:
    """The device a data-parallel process computes on: on CUDA the GPU of its local rank (the current
    device, which `distributed.init_from_env` sets), else `device` unchanged.

    Raises NasnetError when several processes are asked to share one named GPU (`device` cuda:N)."""
    if device.type != "cuda":
        return device
    if device.index is not None and world_size > 1:
        raise NasnetError(f"device {str(device)!r} names one GPU, but every process uses the GPU of its local rank "
                          "(choose GPUs with CUDA_VISIBLE_DEVICES and use `device=cuda`)")
    return torch.device("cuda", torch.cuda.current_device())


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether a run autocasts to bf16. auto: on CUDA yes, on CPU no (tiny children are ~3x slower in
    bf16 there); an explicit bf16 is honoured on CPU too, where large models gain
    (bench/model_speed.py: x1.1-1.25 forward+backward)."""
    return precision == "bf16" or (device.type == "cuda" and precision == "auto")


def compile_mode(compile: bool | str) -> str | None:
    """torch.compile's mode for TrainConfig.compile: None for True (the default mode) or False."""
    return compile if isinstance(compile, str) else None


@contextlib.contextmanager
def cudnn_autotune(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """cuDNN's autotuner (`torch.backends.cudnn.benchmark`) on inside the block when `device` is CUDA
    and `enabled`: every new input shape is timed once against cuDNN's algorithms and the fastest is
    kept, which pays when the same shapes run for a whole epoch. The previous setting is restored on
    leaving; on a CPU nothing changes."""
    if device.type != "cuda" or not enabled:
        yield
        return
    backend = torch.backends.cudnn
    saved = backend.benchmark
    backend.benchmark = True
    try:
        yield
    finally:
        backend.benchmark = saved


_DEVICE_DATA: "weakref.WeakKeyDictionary[Dataset, dict]" = weakref.WeakKeyDictionary()


def device_splits(dataset: Dataset, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The dataset's splits as (uint8 images, int64 labels) tensors on `device`: copied there once per
    process and kept while the dataset lives, so the epochs of a run, its evaluations and a worker's
    successive children share one copy."""
    per_device = _DEVICE_DATA.setdefault(dataset, {})
    key = str(device)
    if key not in per_device:
        per_device[key] = {
            name: (torch.from_numpy(s.x).to(device), torch.from_numpy(s.y).to(device))
            for name, s in dataset.splits.items()
        }
    return per_device[key]
