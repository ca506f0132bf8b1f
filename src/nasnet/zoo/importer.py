"""One importer for the weight files people keep: detect the format, choose and check the zoo model,
convert, attach the preprocessing.

`convert_weights(source, model)` turns a file (or a loaded PyTorch dict) into a `Converted`: our
config, our state dict (checked key by key), the preprocessing and an `ImportInfo` saying what was
found. Nothing is built or written until the conversion is complete, so a failed import leaves
nothing behind. `import_weights` builds the model from it (eval mode); `nasnet import-weights`
prints the ImportInfo and writes a model file; `load_model` / `create_model(checkpoint=...)` read
every format through it. The formats (docs/formats.md; detection by content: weights/formats.py):

    pytorch        a model file or training checkpoint ("model_config" + "model"); published weights
                   in the pretrainedmodels / timm layout (weights/reference.py); a plain state dict of
                   our layout, when the model is named
    safetensors    the same three layouts, our config read from the file's metadata (what
                   `nasnet export --safetensors` writes); a Hugging Face hub cache folder
    tf-checkpoint  TF-Slim's NASNet-A release (weights/tf_slim.py, read by weights/tensor_bundle.py)
    keras-h5       Keras Applications' NASNet files (weights/keras_h5.py)

`model` is a zoo name, a ModelConfig (for files of other sizes), or None: then the file's own config,
or the zoo model whose structure (stem width, F0, N) the shapes show. The weights layer knows
layouts and formats; which zoo model a file is, and its preprocessing, are decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import NasnetError
from ..model.network import ModelConfig, NASNet
from ..model.preprocessing import Preprocessing
from ..registry import known
from ..weights.formats import KERAS_H5, PYTORCH, SAFETENSORS, TF_CHECKPOINT, detect_format
from ..weights.io import as_state_dict, check_state_dict, read_checkpoint
from ..weights.mapping import ImportInfo, describe_structure, head_classes, structure
from ..weights.model_file import FIXED_BY_WEIGHTS, build_with_weights, is_model_file, read_model_file
from ..weights.reference import (
    REFERENCE_MODELS,
    convert_reference_state_dict,
    detect_reference_model,
    is_reference_layout,
)
from .table import get_entry, list_models, model_config

# timm's architecture names (config.json) of the published weights' zoo models.
TIMM_ARCHITECTURES = {"nasnetalarge": "nasnet_a_large", "nasnetamobile": "nasnet_a_mobile"}
MODEL_FILE_LAYOUT = "nasnet model file"
PLAIN_LAYOUT = "nasnet state dict (no config)"
SAFETENSORS_LAYOUT = "nasnet (config in the metadata)"
Model = str | ModelConfig | None


@dataclass(frozen=True)
class Converted:
    """A weight file converted, not yet built: what `build_with_weights` takes, plus what was found."""

    config: ModelConfig
    state: dict[str, torch.Tensor]
    preprocessing: Preprocessing | None
    info: ImportInfo


# --------------------------------------------------------------------------------------------
# The zoo's side: names, configs, preprocessing
# --------------------------------------------------------------------------------------------
def reference_config(model_name: str, num_classes: int = 1000) -> ModelConfig:
    """The zoo config the published weights load into: no auxiliary head (the ports dropped it)."""
    _check_reference(model_name)
    return model_config(model_name, aux_head=False, num_classes=num_classes)


def _check_reference(model_name: str) -> None:
    if model_name not in REFERENCE_MODELS:
        raise NasnetError(f"no published-weights layout for {model_name!r} {known(REFERENCE_MODELS)}")


def zoo_preprocessing(config: ModelConfig) -> Preprocessing | None:
    """The preprocessing of the zoo entry with this architecture, if any (for files that lack one)."""
    for name in list_models():
        entry = get_entry(name)
        if all(getattr(entry.config, f) == getattr(config, f) for f in FIXED_BY_WEIGHTS):
            return entry.preprocessing
    return None


def zoo_match(found: tuple[int, int, int, int]) -> list[str]:
    """Zoo models on the ImageNet skeleton with this structure (stem width, F0, N, reductions)."""
    return [name for name in list_models()
            if get_entry(name).config.skeleton == "imagenet" and structure(get_entry(name).config) == found]


def _named(model: Model) -> tuple[str | None, ModelConfig | None]:
    if isinstance(model, ModelConfig):
        return None, model
    if model is None:
        return None, None
    return model, model_config(model)


def _target(found: tuple[int, int, int, int], model: Model, where: str, kind: str) -> tuple[str | None, ModelConfig]:
    """The zoo model (or given config) a foreign file goes into: as named, or found by its structure."""
    name, config = _named(model)
    if config is not None:
        return name, config   # the converter checks the structure against it
    matches = zoo_match(found)
    if len(matches) != 1:
        which = "no zoo model" if not matches else "several zoo models: " + ", ".join(matches)
        raise NasnetError(f"{where}: a {kind} with {describe_structure(found)} matches {which}; name the model "
                          "(--model) or give its ModelConfig")
    return matches[0], model_config(matches[0])


def check_expected(config: ModelConfig, expect: Model, where: str) -> None:
    """A model file's config must be the expected zoo model's (or config's) in everything the weights fix."""
    name, zoo = _named(expect)
    if zoo is None:
        return
    differ = [f for f in FIXED_BY_WEIGHTS if getattr(config, f) != getattr(zoo, f)]
    if differ:
        raise NasnetError(f"{where} holds a {config.skeleton} {config.name} model that is not {name or 'that config'} "
                          f"(differs in {', '.join(differ)}); load it with nasnet.load_model(path)")


def plain_config(state: Mapping[str, torch.Tensor], model: Model, where: str = "the state dict") -> ModelConfig:
    """The named model's config with num_classes, aux_head and in_chans as a plain state dict of our layout
    has them (``classifier.weight`` rows, none: no classifier; ``aux_head.*`` keys; the stem's input channels)."""
    name, config = _named(model)
    if config is None:
        raise NasnetError(f"{where} holds our key layout without a model config; name the model (e.g. --model "
                          "nasnet_a_mobile)")
    head = state.get("classifier.weight")
    classes = int(head.shape[0]) if head is not None and head.dim() == 2 else 0
    aux = any(k.startswith("aux_head.") for k in state)
    aux_head = state.get("aux_head.classifier.weight")
    if aux and aux_head is not None and aux_head.dim() == 2 and aux_head.shape[0] != classes:
        raise NasnetError(f"{where}: the auxiliary head has {aux_head.shape[0]} classes, the classifier {classes}")
    stem = state.get("stem.conv.weight")
    in_chans = int(stem.shape[1]) if stem is not None and stem.dim() == 4 else config.in_chans
    return config.replace(num_classes=classes, aux_head=aux, in_chans=in_chans)


def convert_reference(state: Mapping[str, torch.Tensor], model: Model = None, keep_background: bool = False
                      ) -> tuple[ModelConfig, dict[str, torch.Tensor], ImportInfo]:
    """Published weights in the reference layout -> (their zoo config, our state dict, ImportInfo).

    `model` (nasnet_a_large / nasnet_a_mobile) is checked against the checkpoint; None detects it."""
    state = as_state_dict(state)
    detected = detect_reference_model(state)
    classes = head_classes(state["last_linear.weight"].shape[0], keep_background)
    if isinstance(model, ModelConfig):  # a config, not a zoo name: the info names no zoo model
        config = model.replace(num_classes=classes)
        ours, info = convert_reference_state_dict(state, config)
        return config, ours, replace(info, model=None)
    if model is not None and model != detected:
        _check_reference(model)
        raise NasnetError(f"the checkpoint is {detected} (its stem has {state['conv0.conv.weight'].shape[0]} "
                          f"filters), not {model}")
    config = reference_config(detected, classes)
    ours, info = convert_reference_state_dict(state, config, detected)
    return config, ours, info


# --------------------------------------------------------------------------------------------
# One converter per format
# --------------------------------------------------------------------------------------------
def _with_where(where: str, fn, *args, **kwargs):
    """Run a converter whose errors do not name the file (the reference layout's), prefixing them with it."""
    from ..weights.io import CheckpointMismatch

    try:
        return fn(*args, **kwargs)
    except CheckpointMismatch as err:
        raise CheckpointMismatch(f"{where}: {err}", err.missing, err.unexpected, err.wrong_shape) from None
    except NasnetError as err:
        raise NasnetError(f"{where}: {err}") from None


def _state_dict(state: Mapping[str, torch.Tensor], model: Model, keep_background: bool, where: str, fmt: str,
                hub: Mapping[str, Any] | None = None) -> Converted:
    """A state dict without a config: the published layout, or ours (plain) when the model is named."""
    if is_reference_layout(state):
        notes: tuple[str, ...] = ()
        if hub:
            from ..weights.safetensors_io import check_label_offset, hub_facts

            facts = hub_facts(hub, where)
            named = TIMM_ARCHITECTURES.get(facts["architecture"] or "")
            if named and isinstance(model, str) and model != named:
                raise NasnetError(f"{where}: config.json says {facts['architecture']} ({named}), not {model}")
            model = model or named
            notes = check_label_offset(facts["label_offset"], state["last_linear.weight"].shape[0], where)
        config, ours, info = _with_where(where, convert_reference, state, model, keep_background)
        return Converted(config, ours, None, replace(info, format=fmt, notes=info.notes + notes))
    if "stem.conv.weight" in state:
        name, _ = _named(model)
        config = plain_config(state, model, where)
        with torch.device("meta"):
            expected = NASNet(config).state_dict()
        check_state_dict(expected, state, f"{where} does not fit {name or 'the given config'}")
        counters = sum(1 for k in expected if k not in state)
        info = ImportInfo(name, config.num_classes, config.num_classes, False, len(state), counters, PLAIN_LAYOUT, fmt)
        return Converted(config, dict(state), None, info)
    shown = ", ".join(sorted(state)[:5])
    raise NasnetError(f"{where} is neither a nasnet model file (a dict with 'model_config' and 'model') nor "
                      "NASNet-A weights in a layout we know (the published conv0.conv.weight ... last_linear.weight, "
                      f"or ours: stem.conv.weight ...); its first keys: {shown}")


def _from_pytorch(obj: Any, model: Model, keep_background: bool, weights_key: str, where: str) -> Converted:
    if is_model_file(obj):
        config, state, prep = read_model_file(obj, where, weights_key)
        check_expected(config, model, where)
        name, _ = _named(model)
        info = ImportInfo(name, config.num_classes, config.num_classes, False, len(state), 0, MODEL_FILE_LAYOUT,
                          PYTORCH)
        return Converted(config, state, prep, info)
    return _state_dict(as_state_dict(obj, where=where), model, keep_background, where, PYTORCH)


def _from_safetensors(path: Path, model: Model, keep_background: bool) -> Converted:
    from ..weights.safetensors_io import is_our_layout, read_hub_config, read_model_metadata, read_safetensors, resolve

    file, config_json = resolve(path)
    where = repr(str(path if path.is_file() else file))
    tensors, metadata = read_safetensors(file)
    config, prep = read_model_metadata(metadata, where)
    if config is not None and is_our_layout(tensors, metadata):
        check_expected(config, model, where)
        name, _ = _named(model)
        info = ImportInfo(name, config.num_classes, config.num_classes, False, len(tensors), 0, SAFETENSORS_LAYOUT,
                          SAFETENSORS)
        return Converted(config, tensors, prep, info)
    return _state_dict(tensors, model, keep_background, where, SAFETENSORS, read_hub_config(config_json))


def _from_tf_slim(path: Path, model: Model, keep_background: bool, aux_head: bool | None) -> Converted:
    from ..weights.tensor_bundle import open_bundle
    from ..weights.tf_slim import convert_tf_slim, describe

    where = repr(str(path))
    with open_bundle(path) as bundle:
        name, config = _target(describe(bundle, where)["structure"], model, where, "TF-Slim NASNet")
        config, state, info = convert_tf_slim(bundle, config, keep_background, aux_head, where, name)
    return Converted(config, state, None, info)


def _from_keras(path: Path, model: Model, padding: str | None) -> Converted:
    from ..weights.keras_h5 import convert_keras, describe, read_keras_h5

    where = repr(str(path))
    weights, _ = read_keras_h5(path)
    name, config = _target(describe(weights, where)["structure"], model, where, "Keras NASNet")
    if padding is not None:
        config = config.replace(padding=padding)
    config, state, info = convert_keras(weights, config, where, name)
    if config.padding == "keras":
        info = replace(info, notes=info.notes + ("padding 'keras': strided pools count zero padding, as Keras's do",))
    return Converted(config, state, None, info)


def convert_weights(source: str | Path | Mapping[str, Any], model: Model = None, *, keep_background: bool = False,
                    aux_head: bool | None = None, padding: str | None = None, weights_key: str = "model"
                    ) -> Converted:
    """Any weight file we read (or a loaded PyTorch dict) -> `Converted` (config, state dict, preprocessing, info).

    keep_background: keep a 1001-class head's background class 0 (published, TF-Slim and timm files).
    aux_head: TF-Slim checkpoints only - None keeps their auxiliary head, False leaves it out.
    padding: Keras files only - "same" (default: TensorFlow's arithmetic, as the zoo's models) or
    "keras" (Keras's zero-padded strided pools: Keras's own outputs).
    weights_key: the entry of a model file or training checkpoint that holds the weights.
    """
    if isinstance(source, Mapping):
        fmt, where, path = PYTORCH, "<checkpoint>", None
    else:
        path = Path(source).expanduser()
        fmt, where = detect_format(path), repr(str(source))
    if aux_head is not None and fmt != TF_CHECKPOINT:
        raise NasnetError(f"{where} is a {fmt} file: leaving out the auxiliary head applies to TF-Slim checkpoints")
    if padding is not None and fmt != KERAS_H5:
        raise NasnetError(f"{where} is a {fmt} file: choosing Keras's padding applies to Keras .h5 files")
    if fmt == PYTORCH:
        obj = source if path is None else read_checkpoint(path)
        converted = _from_pytorch(obj, model, keep_background, weights_key, where)
    elif fmt == SAFETENSORS:
        converted = _from_safetensors(path, model, keep_background)
    elif fmt == TF_CHECKPOINT:
        converted = _from_tf_slim(path, model, keep_background, aux_head)
    else:
        converted = _from_keras(path, model, padding)
    config, info = converted.config, converted.info
    prep = converted.preprocessing
    if prep is None:
        prep = get_entry(info.model).preprocessing if info.model else zoo_preprocessing(config)
    if prep is not None and prep.input_size != config.image_size:
        prep = replace(prep, input_size=config.image_size)
    return replace(converted, preprocessing=prep)


def import_weights(source: str | Path | Mapping[str, Any], model: Model = None, *, keep_background: bool = False,
                   aux_head: bool | None = None, padding: str | None = None, weights_key: str = "model"
                   ) -> tuple[NASNet, ImportInfo]:
    """Any weight file we read -> (the model holding its weights, in eval mode, with its preprocessing; what
    was found). See `convert_weights` for the arguments."""
    c = convert_weights(source, model, keep_background=keep_background, aux_head=aux_head, padding=padding,
                        weights_key=weights_key)
    where = "<checkpoint>" if isinstance(source, Mapping) else repr(str(source))
    net = build_with_weights(c.config, c.state, where).eval()
    net.preprocessing = c.preprocessing
    return net, c.info


def import_reference_model(state_or_path: Mapping[str, torch.Tensor] | str | Path, model: str | None = None,
                           keep_background: bool = False) -> tuple[NASNet, ImportInfo]:
    """Published weights in the reference layout (a state dict or a .pth file) -> (the zoo model holding
    them, in eval mode, with its preprocessing; ImportInfo)."""
    state = read_checkpoint(state_or_path) if isinstance(state_or_path, (str, Path)) else state_or_path
    config, converted, info = convert_reference(state, model, keep_background)
    net = build_with_weights(config, converted).eval()
    net.preprocessing = get_entry(info.model).preprocessing
    return net, info
