"""The state of torch's global random generators: captured into a checkpoint, restored on resume.

ScheduledDropPath and dropout draw from torch's global generators (the CPU's, and the current CUDA
device's when a run trains there); data order and augmentation do not (their generators are seeded
by `seeding.derive_seed` from the run's seed and the epoch). Storing these states in every
checkpoint and restoring them makes a resumed run redo an epoch exactly (docs/training.md, "Run
directory and resume"). A state is a dict of uint8 tensors, so a checkpoint holding one is read with
weights_only=True. Kept apart from `seeding`, which imports no torch (the search driver and the
command line's help use it).
"""

from __future__ import annotations

import torch


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """{"torch": the CPU generator's state} plus {"cuda": `device`'s generator state} on CUDA."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore a state `rng_state` captured (from any device: the tensors are moved to the CPU first). The
    CUDA part is restored on `device` when it is CUDA and the state has one; otherwise it is ignored."""
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
