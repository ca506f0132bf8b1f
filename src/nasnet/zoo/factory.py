"""Building models by name or from files: `create_model` and `load_model`, the two ways in.

The zoo's table (`nasnet.zoo.table`) names configurations; this module turns a name, or a weights
file, into a model:

* `create_model(name, checkpoint=None, **overrides)`: the zoo model `name` (timm's idiom), fresh or
  with weights from a file that must hold that model;
* `load_model(spec, **overrides)`: a zoo name (fresh weights), or a file of any kind we read - a
  model file, a training checkpoint, published NASNet-A weights in the PyTorch reference layout
  (their configuration comes from the zoo) - or such a file already loaded (a dict);
* `reference_config(name)` / `import_reference_model(state)`: the published weights' own model.

Files are read with `nasnet.weights.io.read_checkpoint` (weights_only=True): nothing is executed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import NasnetError
from ..model.features import Backbone
from ..model.network import ModelConfig, NASNet
from ..model.preprocessing import Preprocessing
from ..weights.io import as_state_dict, read_checkpoint
from ..weights.model_file import FIXED_BY_WEIGHTS, apply_overrides, build_with_weights, is_model_file, read_model_file
from ..weights.reference import (
    REFERENCE_MODELS,
    ImportInfo,
    convert_reference_state_dict,
    detect_reference_model,
    head_classes,
    is_reference_layout,
)
from .table import get_entry, list_models, model_config


def create_model(name: str, checkpoint: str | Path | None = None, *, features_only: bool = False,
                 out_indices: Sequence[int] | None = None, **overrides: Any):
    """Build the zoo model `name`; keyword arguments override ModelConfig fields (e.g. num_classes=10).

    checkpoint: a file to load weights from - a `nasnet import-weights` output or a training
    checkpoint (any dict with "model_config" and "model"), or, for nasnet_a_large / nasnet_a_mobile,
    published weights in the reference layout (1001-class files lose their background class).
    With a checkpoint, a `num_classes` override replaces the loaded classifier (for transfer).
    features_only: return a `nasnet.model.features.Backbone` (multi-scale features, no classifier)
    over the taps `out_indices` (default: the stage outputs).
    """
    entry = get_entry(name)
    if checkpoint is not None:
        model = load_model(checkpoint, expect=name, **overrides)
    else:
        model = NASNet(model_config(name, **overrides))
        if entry.preprocessing is not None:
            model.preprocessing = replace(entry.preprocessing, input_size=model.config.image_size)
    return Backbone(model, out_indices) if features_only else model


def reference_config(model_name: str, num_classes: int = 1000) -> ModelConfig:
    """The zoo config the published weights load into: no auxiliary head (the ports dropped it)."""
    if model_name not in REFERENCE_MODELS:
        raise NasnetError(f"no published-weights layout for {model_name!r} (known: {', '.join(REFERENCE_MODELS)})")
    return model_config(model_name, aux_head=False, num_classes=num_classes)


def convert_reference(state: Mapping[str, torch.Tensor], model: str | None = None, keep_background: bool = False
                      ) -> tuple[ModelConfig, dict[str, torch.Tensor], ImportInfo]:
    """Published weights in the reference layout -> (their zoo config, our state dict, ImportInfo).

    `model` (nasnet_a_large / nasnet_a_mobile) is checked against the checkpoint; None detects it."""
    state = as_state_dict(state)
    detected = detect_reference_model(state)
    if model is not None and model != detected:
        if model not in REFERENCE_MODELS:
            raise NasnetError(f"no published-weights layout for {model!r} (known: {', '.join(REFERENCE_MODELS)})")
        raise NasnetError(f"the checkpoint is {detected} (its stem has {state['conv0.conv.weight'].shape[0]} "
                          f"filters), not {model}")
    config = reference_config(detected, head_classes(state["last_linear.weight"].shape[0], keep_background))
    ours, info = convert_reference_state_dict(state, config, detected)
    return config, ours, info


def import_reference_model(state_or_path: Mapping[str, torch.Tensor] | str | Path, model: str | None = None,
                           keep_background: bool = False) -> tuple[NASNet, ImportInfo]:
    """Build the zoo model, load published weights into it, attach its preprocessing; eval mode."""
    state = read_checkpoint(state_or_path) if isinstance(state_or_path, (str, Path)) else state_or_path
    config, converted, info = convert_reference(state, model, keep_background)
    net = build_with_weights(config, converted).eval()
    net.preprocessing = get_entry(info.model).preprocessing
    return net, info


def _check_expected(config: ModelConfig, expect: str, where: str) -> None:
    zoo = model_config(expect)
    differ = [f for f in FIXED_BY_WEIGHTS if getattr(config, f) != getattr(zoo, f)]
    if differ:
        raise NasnetError(f"{where} holds a {config.skeleton} {config.name} model that is not {expect} "
                          f"(differs in {', '.join(differ)}); load it with nasnet.load_model(path)")


def zoo_preprocessing(config: ModelConfig) -> Preprocessing | None:
    """The preprocessing of the zoo entry with this architecture, if any (for files that lack one)."""
    for name in list_models():
        entry = get_entry(name)
        if all(getattr(entry.config, f) == getattr(config, f) for f in FIXED_BY_WEIGHTS):
            return entry.preprocessing
    return None


def load_model(spec: str | Path | Mapping[str, Any], *, expect: str | None = None, weights_key: str = "model",
               **overrides: Any) -> NASNet:
    """A NASNet in eval mode from a zoo name (untrained weights) or from weights: a model file, a training
    checkpoint, or published weights in the reference layout (a path, or the file's loaded dict).

    expect: a zoo name the file must hold (`create_model(name, checkpoint=...)`); for published
    weights it picks the layout.
    weights_key: the entry holding the state dict in a model file or training checkpoint ("model";
    e.g. "ema" for averaged weights kept beside it).
    overrides: ModelConfig fields that do not change the weights (image_size, dropout,
    drop_path_keep, bn_momentum, aux_head - a new aux head starts untrained - and num_classes,
    which replaces the classifier with a new one, for transfer).
    """
    if isinstance(spec, str) and expect is None and spec in list_models() and not Path(spec).exists():
        return create_model(spec, **overrides).eval()
    if not isinstance(spec, Mapping) and not Path(spec).expanduser().exists():
        raise NasnetError(f"{str(spec)!r} is neither a file nor a zoo model (known: {', '.join(list_models())})")
    where = "<checkpoint>" if isinstance(spec, Mapping) else repr(str(spec))
    obj = spec if isinstance(spec, Mapping) else read_checkpoint(spec)
    if is_model_file(obj):
        config, state, preprocessing = read_model_file(obj, where, weights_key)
        if expect is not None:
            _check_expected(config, expect, where)
    else:
        state = as_state_dict(obj, where=where)
        if not is_reference_layout(state):
            raise NasnetError(
                f"{where} is neither a nasnet model file (a dict with 'model_config' and 'model') nor "
                "published NASNet-A weights in the reference layout (conv0.conv.weight, ..., last_linear.weight)")
        config, state, _ = convert_reference(state, model=expect)
        preprocessing = None
    config, num_classes = apply_overrides(config, overrides)
    model = build_with_weights(config, state, where)
    if num_classes is not None and num_classes != config.num_classes:
        model.reset_classifier(num_classes)
    if preprocessing is None:
        preprocessing = get_entry(expect).preprocessing if expect is not None else zoo_preprocessing(config)
    if preprocessing is not None and preprocessing.input_size != model.config.image_size:
        preprocessing = replace(preprocessing, input_size=model.config.image_size)
    model.preprocessing = preprocessing
    return model.eval()
