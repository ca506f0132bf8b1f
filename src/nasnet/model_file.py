"""Model files: a network's config and weights in one file that loads without running code (issue 5).

A model file is a dict saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``::

    {"format": "nasnet-model", "version": 1,
     "model_config": ModelConfig.to_dict(),     # plain values; the genotype in its text form
     "model": state_dict,                       # our key layout
     "preprocessing": Preprocessing.to_dict() or None,
     "source": {...}}                           # provenance, e.g. what `nasnet import-weights` read

Only "model_config" and "model" are required: any checkpoint that holds those two keys - a training
checkpoint adds its optimizer and schedule state beside them - loads, exports and transfers the same
way. ``load_model_file`` also accepts published weights in the reference layout (pretrained.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from .atomic import replacing
from .errors import NasnetError
from .network import ModelConfig, NASNet
from .pretrained import as_state_dict, convert_reference_state_dict, is_reference_layout, read_checkpoint

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


def _check_expected(config: ModelConfig, expect: str | None, path: Path) -> None:
    if expect is None:
        return
    from .zoo import model_config

    zoo = model_config(expect)
    differ = [f for f in FIXED_BY_WEIGHTS if getattr(config, f) != getattr(zoo, f)]
    if differ:
        raise NasnetError(f"{str(path)!r} holds a {config.skeleton} {config.name} model that is not {expect} "
                          f"(differs in {', '.join(differ)}); load it with nasnet.model_file.load_model_file(path)")


def _apply_overrides(config: ModelConfig, overrides: dict[str, Any]) -> tuple[ModelConfig, int | None]:
    fixed = sorted(k for k in overrides if k in FIXED_BY_WEIGHTS and overrides[k] != getattr(config, k))
    if fixed:
        raise NasnetError(f"cannot override {', '.join(fixed)} when loading weights: the checkpoint fixes them")
    overrides = dict(overrides)
    num_classes = overrides.pop("num_classes", None)
    return (config.replace(**overrides) if overrides else config), num_classes


def load_model_file(source: str | Path | Mapping[str, Any], expect: str | None = None, weights_key: str = "model",
                    **overrides: Any) -> NASNet:
    """A NASNet with its weights, in eval mode, from a model file, a training checkpoint or published weights.

    expect: a zoo name the checkpoint must be (`create_model(name, checkpoint=...)`); for published
    weights it picks the layout.
    weights_key: the entry holding the state dict in a model file or training checkpoint ("model";
    e.g. "ema" for averaged weights kept beside it).
    overrides: ModelConfig fields that do not change the weights (image_size, dropout,
    drop_path_keep, bn_momentum, aux_head - a new aux head starts untrained - and num_classes,
    which replaces the classifier with a new one, for transfer).
    """
    from .zoo import Preprocessing, get_entry

    path = Path(source) if not isinstance(source, Mapping) else Path("<checkpoint>")
    obj = read_checkpoint(path) if not isinstance(source, Mapping) else source
    preprocessing = None
    if is_model_file(obj):
        if not isinstance(obj["model_config"], Mapping):
            raise NasnetError(f"{str(path)!r}: 'model_config' is not a dict of config fields")
        config = ModelConfig.from_dict(dict(obj["model_config"]))
        if obj.get(weights_key) is None:
            keys = ", ".join(sorted(str(k) for k, v in obj.items() if v is not None))
            raise NasnetError(f"{str(path)!r} has no {weights_key!r} weights (it has: {keys})")
        state = as_state_dict(obj[weights_key], where=f"{str(path)!r} ({weights_key!r})")
        if isinstance(obj.get("preprocessing"), Mapping):
            preprocessing = Preprocessing.from_dict(dict(obj["preprocessing"]))
        _check_expected(config, expect, path)
    else:
        state = as_state_dict(obj, where=repr(str(path)))
        if not is_reference_layout(state):
            raise NasnetError(
                f"{str(path)!r} is neither a nasnet model file (a dict with 'model_config' and 'model') nor "
                "published NASNet-A weights in the reference layout (conv0.conv.weight, ..., last_linear.weight)")
        config, state, _ = convert_reference_state_dict(state, model=expect)
    config, num_classes = _apply_overrides(config, overrides)

    model = build_with_weights(config, state, path)
    if num_classes is not None and num_classes != config.num_classes:
        model.reset_classifier(num_classes)
    if preprocessing is None and expect is None:
        preprocessing = _zoo_preprocessing(config)
    elif preprocessing is None:
        preprocessing = get_entry(expect).preprocessing
    if preprocessing is not None and preprocessing.input_size != model.config.image_size:
        from dataclasses import replace

        preprocessing = replace(preprocessing, input_size=model.config.image_size)
    model.preprocessing = preprocessing
    return model.eval()


def _zoo_preprocessing(config: ModelConfig):
    """The preprocessing of the zoo entry with this architecture, if any (for files that lack it)."""
    from .zoo import get_entry, list_models

    for name in list_models():
        entry = get_entry(name)
        if all(getattr(entry.config, f) == getattr(config, f) for f in FIXED_BY_WEIGHTS):
            return entry.preprocessing
    return None


def build_with_weights(config: ModelConfig, state: Mapping[str, torch.Tensor], path: Path | str = "<checkpoint>"
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
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros((), dtype=v.dtype)
    missing = sorted(k for k in expected if k not in state)
    fresh_aux = bool(missing) and config.aux_head and all(k.startswith("aux_head.") for k in missing)
    if fresh_aux:
        model.aux_head.to_empty(device="cpu")
        for m in model.aux_head.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        state |= {f"aux_head.{k}": v for k, v in model.aux_head.state_dict().items()}
        missing = []
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(f"{k} {tuple(state[k].shape)} (model expects {tuple(v.shape)})"
                   for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape))
    if missing or unexpected or wrong:
        from .pretrained import CheckpointMismatch, _listed

        parts = [f"{len(missing)} missing key(s): {_listed(missing)}"] if missing else []
        parts += [f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}"] if unexpected else []
        parts += [f"{len(wrong)} key(s) with the wrong shape: {_listed(wrong, 20)}"] if wrong else []
        raise CheckpointMismatch(f"{str(path)!r} does not fit its model config: " + "; ".join(parts),
                                 missing, unexpected, wrong)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_model(spec: str | Path, weights_key: str = "model", **overrides: Any) -> tuple[NASNet, str]:
    """A zoo name (fresh weights) or a checkpoint path -> (model in eval mode, a description)."""
    from .zoo import create_model, list_models

    if isinstance(spec, str) and spec in list_models() and not Path(spec).exists():
        return create_model(spec, **overrides).eval(), f"zoo model {spec} (untrained weights)"
    path = Path(spec)
    if not path.exists():
        raise NasnetError(f"{str(spec)!r} is neither a file nor a zoo model (known: {', '.join(list_models())})")
    described = f"checkpoint {path}" + (f" ({weights_key!r} weights)" if weights_key != "model" else "")
    return load_model_file(path, weights_key=weights_key, **overrides), described
