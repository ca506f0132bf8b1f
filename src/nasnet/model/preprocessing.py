"""How images become a model's input: the preprocessing a model file, an export and the zoo carry.

A `Preprocessing` says how a PIL image is turned into the float tensor a model expects: resize the
shorter side, center-crop, scale to [0, 1], normalise. The published NASNet-A weights expect
TensorFlow's Inception preprocessing (paper A.7): RGB in [-1, 1] and an 87.5% central crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import NasnetError

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
