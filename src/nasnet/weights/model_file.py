"""Model files: a network's config and weights in one file that loads without running code.

A model file is a dict saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``::

    {"format": "nasnet-model", "version": 1,
     "model_config": ModelConfig.to_dict(),     # plain values; the genotype in its text form
     "model": state_dict,                       # our key layout
     "preprocessing": Preprocessing.to_dict() or None,
     "source": {...}}                           # provenance, e.g. what `nasnet import-weights` read

Only "model_config" and "model" are required: any checkpoint that holds those two keys - a training
checkpoint adds its optimizer and schedule state beside them - loads, exports and transfers the same
way. Loading by zoo name, published layouts and the choice of preprocessing for files without one
are the zoo's (`nasnet.zoo.importer`, `nasnet.zoo.factory`); this module reads and writes the format.
The same model travels without pickle as safetensors (`nasnet.weights.safetensors_io.save_safetensors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..atomic import replacing
from ..errors import NasnetError
from ..model.network import ModelConfig, NASNet
from ..model.preprocessing import Preprocessing
from .io import COUNTER, as_state_dict, check_state_dict

FORMAT = "nasnet-model"
VERSION = 1

# Fields that fix the weights' shapes or their numerics: a checkpoint decides them, overrides may not.
FIXED_BY_WEIGHTS = ("genotype", "skeleton", "normal_cells", "filters", "num_reductions", "stem_multiplier",
                    "skip_reduction_input", "in_chans", "padding", "bn_eps")


def save_model_file(model: NASNet, path: str | Path, source: Mapping[str, Any] | None = None) -> Path:
    """Write `model` (config, weights, preprocessing) atomically: a crash never leaves half a file."""
    path = Path(path)
    prep = getattr(model, "preprocessing", None)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "preprocessing": prep.to_dict() if prep is not None else None,
        "source": dict(source or {}),
    }
    with replacing(path) as tmp:
        torch.save(payload, tmp)
    return path


def is_model_file(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "model_config" in obj and "model" in obj


def read_model_file(obj: Mapping[str, Any], where: str, weights_key: str = "model"
                    ) -> tuple[ModelConfig, dict[str, torch.Tensor], Preprocessing | None]:
    """(config, state dict, preprocessing or None) of a loaded model file or training checkpoint.

    weights_key: the entry holding the state dict ("model"; e.g. "ema" for averaged weights kept beside it).
    """
    if not isinstance(obj["model_config"], Mapping):
        raise NasnetError(f"{where}: 'model_config' is not a dict of config fields")
    config = ModelConfig.from_dict(dict(obj["model_config"]))
    if obj.get(weights_key) is None:
        keys = ", ".join(sorted(str(k) for k, v in obj.items() if v is not None))
        raise NasnetError(f"{where} has no {weights_key!r} weights (it has: {keys})")
    state = as_state_dict(obj[weights_key], where=f"{where} ({weights_key!r})")
    prep = obj.get("preprocessing")
    return config, state, Preprocessing.from_dict(dict(prep)) if isinstance(prep, Mapping) else None


def apply_overrides(config: ModelConfig, overrides: Mapping[str, Any]) -> tuple[ModelConfig, int | None]:
    """Overrides that do not change the weights, applied; returns (config, num_classes asked or None).

    A `num_classes` override is returned apart: the caller replaces the classifier (transfer)."""
    fixed = sorted(k for k in overrides if k in FIXED_BY_WEIGHTS and overrides[k] != getattr(config, k))
    if fixed:
        raise NasnetError(f"cannot override {', '.join(fixed)} when loading weights: the checkpoint fixes them")
    overrides = dict(overrides)
    num_classes = overrides.pop("num_classes", None)
    return (config.replace(**overrides) if overrides else config), num_classes


def build_with_weights(config: ModelConfig, state: Mapping[str, torch.Tensor], where: str = "<checkpoint>"
                       ) -> NASNet:
    """NASNet(config) holding exactly `state` (strict: missing, unexpected and misshapen keys are listed).

    BN counters missing from older checkpoints start at 0. When the config has an aux head the
    checkpoint lacks (switched on for fine-tuning), the aux head alone starts from a fresh init.
    The model is built on the meta device and takes the tensors over, so no time goes into an
    initialisation that would be overwritten.
    """
    state = dict(state)
    with torch.device("meta"):
        model = NASNet(config)
    expected = model.state_dict()
    for k, v in expected.items():
        if k.endswith(COUNTER) and k not in state:
            state[k] = torch.zeros((), dtype=v.dtype)
    missing = [k for k in expected if k not in state]
    if missing and config.aux_head and all(k.startswith("aux_head.") for k in missing):
        model.aux_head.to_empty(device="cpu")
        for m in model.aux_head.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        state |= {f"aux_head.{k}": v for k, v in model.aux_head.state_dict().items()}
    check_state_dict(expected, state, f"{where} does not fit its model config")
    model.load_state_dict(state, strict=True, assign=True)
    return model
