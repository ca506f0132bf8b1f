"""Checkpoints: written atomically, read without executing anything.

A checkpoint is a dict of tensors and plain containers (numbers, strings, lists, dicts), so
`torch.load(path, weights_only=True)` reads it: the resolved configs are stored as plain dicts, the
genotype as its text form, RNG states as uint8 tensors. Files are written to a temporary file in
the same folder, flushed to disk and renamed over the target (os.replace), so a crash leaves
either the old checkpoint or the new one, never a torn file.

Keys: format, model, optimizer, ema (or None), epoch (completed epochs), step, rng, config
({"model": ..., "train": ..., "data": ...}), model_config (= config["model"]), genotype, history
(per-epoch metrics), best. With "model_config" and "model" a checkpoint is also a model file
(nasnet.model_file): `nasnet export`, `create_model(checkpoint=...)` and `load_model_file` read it,
and `weights_key="ema"` picks the averaged weights. world_size and rng_ranks (every data-parallel
process's RNG state) make a resume with the same number of processes exact.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_bytes
from ..errors import NasnetError, first_line

FORMAT = "nasnet-train/1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file (or a run directory's checkpoint.pt) with weights_only=True."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / "checkpoint.pt"
        if not candidate.is_file():
            raise NasnetError(f"{path}: no checkpoint.pt in this folder (is it a `nasnet train` run directory?)")
        path = candidate
    if not path.is_file():
        raise NasnetError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # any failure to parse the file (torch raises many kinds)
        raise NasnetError(f"{path}: not a readable nasnet checkpoint ({first_line(err)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise NasnetError(f"{path}: not a nasnet training checkpoint (format {FORMAT} expected)")
    return state


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
