"""The model zoo: named configurations of NASNet-A, with the paper's sizes beside them (SPEC §2, §3).

The zoo is a table of configs, not classes. `create_model(name, **overrides)` builds one, with any
ModelConfig field overridden; `create_model(name, checkpoint=PATH)` loads weights into it (a
`nasnet import-weights` file, a training checkpoint, or published weights in the reference layout -
see model_file.py and pretrained.py); `list_models()` names them. The ImageNet entries carry their
input preprocessing (`Preprocessing`: size, mean/std, interpolation, crop). Reference settings per SPEC §2:

    name                   N @ F     F0   stem  image  classes  notes
    nasnet_a_cifar         6 @ 768   32   3     32     10       drop-path k0 0.6, BN 0.1/1e-5
    nasnet_a_cifar_large   7 @ 2304  96   3     32     10
    nasnet_a_mobile        4 @ 1056  44   1     224    1000     TF padding, BN 3e-4/1e-3, dropout 0.5
    nasnet_a_large         6 @ 4032  168  3     331    1000     + skip-reduction input, k0 0.7
    nasnet_a_5_1538        5 @ 1536  64   3     299    1000     paper's 5 @ 1538 (not a multiple of 24)
    nasnet_a_7_1920        7 @ 1920  80   3     299    1000
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from .errors import NasnetError
from .network import NASNet, ModelConfig

INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocessing:
    """How images are prepared for a model: resize the shorter side to ``input_size / crop_pct``
    (``interpolation``), center-crop ``input_size``, scale to [0, 1], then ``(x - mean) / std``.

    The published NASNet-A weights expect TensorFlow's Inception preprocessing: RGB in [-1, 1]
    (mean = std = 0.5) and, at evaluation, a central crop of 87.5% resized bilinearly to the input
    size (TF-slim's eval pipeline, used for the paper's numbers; timm's own metadata for the same Large
    weights uses crop 0.911 with bicubic resizing).
    """

    input_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.interpolation not in INTERPOLATIONS:
            raise NasnetError(f"preprocessing: interpolation must be one of {', '.join(INTERPOLATIONS)}")
        if not 0 < self.crop_pct <= 1 or self.input_size < 1 or min(self.std) <= 0:
            raise NasnetError("preprocessing: need 0 < crop_pct <= 1, input_size >= 1 and std > 0")

    @property
    def resize_size(self) -> int:
        """The shorter side before the center crop."""
        return math.floor(self.input_size / self.crop_pct)

    def to_dict(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "crop_pct": self.crop_pct}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(**{k: data[k] for k in ("input_size", "mean", "std", "interpolation", "crop_pct") if k in data})

    def __call__(self, image) -> "Any":
        """A PIL image -> a (3, input_size, input_size) float tensor, ready for the model."""
        import numpy as np
        import torch
        from PIL import Image

        image = image.convert("RGB")
        w, h = image.size
        scale = self.resize_size / min(w, h)
        size = (max(self.input_size, round(w * scale)), max(self.input_size, round(h * scale)))
        resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
        image = image.resize(size, resample)
        left, top = (size[0] - self.input_size) // 2, (size[1] - self.input_size) // 2
        image = image.crop((left, top, left + self.input_size, top + self.input_size))
        x = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std


@dataclass(frozen=True)
class ZooEntry:
    name: str
    config: ModelConfig
    description: str
    paper_params: int | None = None      # as printed in the paper (rounded)
    paper_mult_adds: int | None = None
    paper_top1: float | None = None      # ImageNet top-1 (%) the paper reports; quoted, never claimed
    preprocessing: Preprocessing | None = None  # None: no published weights / per-dataset (CIFAR)


_ZOO: dict[str, ZooEntry] = {}


def register_model(entry: ZooEntry) -> ZooEntry:
    if entry.name in _ZOO:
        raise NasnetError(f"model {entry.name!r} is already registered")
    _ZOO[entry.name] = entry
    return entry


def list_models() -> list[str]:
    return list(_ZOO)


def get_entry(name: str) -> ZooEntry:
    if name not in _ZOO:
        raise NasnetError(f"unknown model {name!r} (known: {', '.join(_ZOO)})")
    return _ZOO[name]


def model_config(name: str, **overrides: Any) -> ModelConfig:
    cfg = get_entry(name).config
    return cfg.replace(**overrides) if overrides else cfg


def create_model(name: str, checkpoint: str | Path | None = None, *, features_only: bool = False,
                 out_indices: Sequence[int] | None = None, **overrides: Any):
    """Build the zoo model `name`; keyword arguments override ModelConfig fields (e.g. num_classes=10).

    checkpoint: a file to load weights from - a `nasnet import-weights` output or a training
    checkpoint (any dict with "model_config" and "model"), or, for nasnet_a_large / nasnet_a_mobile,
    published weights in the reference key layout (1001-class files lose their background class).
    With a checkpoint, a `num_classes` override replaces the loaded classifier (for transfer).
    features_only: return a `nasnet.features.Backbone` (multi-scale features, no classifier) over the
    taps `out_indices` (default: the stage outputs).
    """
    entry = get_entry(name)
    if checkpoint is not None:
        from .model_file import load_model_file

        model = load_model_file(checkpoint, expect=name, **overrides)
    else:
        model = NASNet(model_config(name, **overrides))
        if entry.preprocessing is not None:
            size = model.config.image_size
            model.preprocessing = replace(entry.preprocessing, input_size=size)
    if features_only:
        from .features import Backbone

        return Backbone(model, out_indices)
    return model


_CIFAR = dict(skeleton="cifar", num_classes=10, image_size=32, stem_multiplier=3.0, aux_head=True,
              drop_path_keep=0.6, bn_eps=1e-5, bn_momentum=0.1)
# The published ImageNet checkpoints: TF "SAME" padding, BN decay 0.9997 (momentum 3e-4), eps 1e-3.
_IMAGENET = dict(skeleton="imagenet", num_classes=1000, aux_head=True, dropout=0.5, padding="same",
                 bn_eps=1e-3, bn_momentum=0.0003)

_INCEPTION = Preprocessing(input_size=224)  # input_size is set from each entry's image_size below

for _entry in (
    ZooEntry("nasnet_a_cifar", ModelConfig(normal_cells=6, filters=32, **_CIFAR),
             "NASNet-A 6 @ 768 for CIFAR-10 (paper Table 1)", 3_300_000),
    ZooEntry("nasnet_a_cifar_large", ModelConfig(normal_cells=7, filters=96, **_CIFAR),
             "NASNet-A 7 @ 2304 for CIFAR-10 (paper Table 1)", 27_600_000),
    ZooEntry("nasnet_a_mobile", ModelConfig(normal_cells=4, filters=44, image_size=224, stem_multiplier=1.0,
                                            drop_path_keep=1.0, **_IMAGENET),
             "NASNet-A Mobile 4 @ 1056, 224x224 (paper Table 3)", 5_300_000, 564_000_000, 74.0),
    ZooEntry("nasnet_a_large", ModelConfig(normal_cells=6, filters=168, image_size=331, stem_multiplier=3.0,
                                           drop_path_keep=0.7, skip_reduction_input=True, **_IMAGENET),
             "NASNet-A Large 6 @ 4032, 331x331 (paper Table 2)", 88_900_000, 23_800_000_000, 82.7),
    ZooEntry("nasnet_a_5_1538", ModelConfig(normal_cells=5, filters=64, image_size=299, stem_multiplier=3.0,
                                            drop_path_keep=0.7, skip_reduction_input=True, **_IMAGENET),
             "NASNet-A 5 @ 1538, 299x299 (paper Table 2; built as 5 @ 1536, F0 = 64)", 10_900_000, 2_350_000_000,
             78.6),
    ZooEntry("nasnet_a_7_1920", ModelConfig(normal_cells=7, filters=80, image_size=299, stem_multiplier=3.0,
                                            drop_path_keep=0.7, skip_reduction_input=True, **_IMAGENET),
             "NASNet-A 7 @ 1920, 299x299 (paper Table 2)", 22_600_000, 4_930_000_000, 80.8),
    # Tiny configurations for tests and quick experiments.
    ZooEntry("nasnet_a_tiny_cifar", ModelConfig(normal_cells=1, filters=8, **_CIFAR),
             "NASNet-A 1 @ 192 on the CIFAR skeleton, for tests"),
    ZooEntry("nasnet_a_tiny_imagenet", ModelConfig(normal_cells=1, filters=8, image_size=64, stem_multiplier=1.0,
                                                   **{**_IMAGENET, "num_classes": 10}),
             "NASNet-A 1 @ 192 on the ImageNet skeleton at 64x64, for tests"),
):
    if _entry.config.skeleton == "imagenet":
        _entry = replace(_entry, preprocessing=replace(_INCEPTION, input_size=_entry.config.image_size))
    register_model(_entry)
