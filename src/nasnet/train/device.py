"""Where and how a run computes: the device, bf16 autocast, torch.compile's mode, cuDNN's autotuner.

Policy kept apart from the training loop so that evaluation, the benchmarks and the GPU suite apply
the same rules. `cudnn.benchmark` is a process-wide switch of PyTorch's: `cudnn_autotune` turns it
on only around the code that wants it (a training epoch, an evaluation: fixed shapes that run many
times) and puts back what was there, so it never leaks into the rest of a process (another part of
a benchmark, a caller's own code).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..errors import NasnetError


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA when there is one, else the CPU), 'cpu', 'cuda' or 'cuda:N'; refuses CUDA where there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NasnetError(f"device {name!r} requested but CUDA is not available (use --device cpu)")
    return torch.device(name)


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
