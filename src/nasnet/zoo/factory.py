"""Building models by name or from files: `create_model` and `load_model`, the two ways in.

The zoo's table (`nasnet.zoo.table`) names configurations; this module turns a name, or a weights
file, into a model:

* `create_model(name, checkpoint=None, **overrides)`: the zoo model `name` (timm's idiom), fresh or
  with weights from a file that must hold that model;
* `load_model(spec, **overrides)`: a zoo name (fresh weights), or a file of any kind we read (the
  formats of `nasnet.zoo.importer`: model files and training checkpoints, published PyTorch weights,
  safetensors, TF-Slim checkpoints, Keras .h5 files, plain state dicts when the model is named), or
  a PyTorch file already loaded (a dict).

Files are read without executing anything: PyTorch files with `nasnet.weights.io.read_checkpoint`
(weights_only=True), the others with their own non-pickle readers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import NasnetError
from ..model.features import Backbone
from ..model.network import NASNet
from ..registry import known
from ..weights.model_file import apply_overrides, build_with_weights
from .importer import convert_weights
from .table import get_entry, list_models, model_config


def create_model(name: str, checkpoint: str | Path | None = None, *, features_only: bool = False,
                 out_indices: Sequence[int] | None = None, **overrides: Any):
    """Build the zoo model `name`; keyword arguments override ModelConfig fields (e.g. num_classes=10).

    checkpoint: a file to load weights from, which must hold this model - a `nasnet import-weights`
    output, a training checkpoint (any dict with "model_config" and "model"), a safetensors file of
    `nasnet export --safetensors`, a plain state dict of our layout (``torch.save(model.state_dict())``,
    its classes and aux head as the file has them), or, for the zoo models with published weights,
    the published files themselves (PyTorch, timm safetensors, TF-Slim, Keras .h5; 1001-class heads
    lose their background class). With a checkpoint, a `num_classes` override replaces the loaded
    classifier (for transfer).
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


def load_model(spec: str | Path | Mapping[str, Any], *, expect: str | None = None, weights_key: str = "model",
               **overrides: Any) -> NASNet:
    """A NASNet in eval mode from a zoo name (untrained weights) or from weights: any file
    `nasnet.zoo.importer.convert_weights` reads (a path), or a loaded PyTorch model file or state dict.

    expect: a zoo name the file must hold (`create_model(name, checkpoint=...)`); for published
    weights it picks the layout, for a plain state dict it gives the architecture.
    weights_key: the entry holding the state dict in a model file or training checkpoint ("model";
    e.g. "ema" for averaged weights kept beside it).
    overrides: ModelConfig fields that do not change the weights (image_size, dropout,
    drop_path_keep, bn_momentum, aux_head - a new aux head starts untrained - and num_classes,
    which replaces the classifier with a new one, for transfer).
    """
    if isinstance(spec, str) and expect is None and spec in list_models() and not Path(spec).exists():
        return create_model(spec, **overrides).eval()
    if not isinstance(spec, Mapping) and not _exists(Path(spec).expanduser()):
        raise NasnetError(f"{str(spec)!r} is neither a file nor a zoo model {known(list_models())}")
    where = "<checkpoint>" if isinstance(spec, Mapping) else repr(str(spec))
    converted = convert_weights(spec, expect, weights_key=weights_key)
    config, num_classes = apply_overrides(converted.config, overrides)
    state = converted.state
    if converted.config.aux_head and not config.aux_head:  # asked to leave the auxiliary head out
        state = {k: v for k, v in state.items() if not k.startswith("aux_head.")}
    model = build_with_weights(config, state, where)
    if num_classes is not None and num_classes != config.num_classes:
        model.reset_classifier(num_classes)
    preprocessing = converted.preprocessing
    if preprocessing is not None and preprocessing.input_size != model.config.image_size:
        preprocessing = replace(preprocessing, input_size=model.config.image_size)
    model.preprocessing = preprocessing
    return model.eval()


def _exists(path: Path) -> bool:
    """A file or folder, or a TensorFlow checkpoint's prefix (``model.ckpt`` of ``model.ckpt.index``)."""
    return path.exists() or path.with_name(path.name + ".index").is_file()
