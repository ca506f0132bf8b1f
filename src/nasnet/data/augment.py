"""Preprocessing and augmentation on whole batches of tensors (paper A.1, A.7).

Every function takes a batch (B, C, H, W) on any device and draws its randomness from an explicit
`torch.Generator`, so a run is reproducible from (seed, epoch). The random parameters (offsets,
flips, boxes: a few numbers per image) are drawn on the generator's device, the CPU for a plain
`torch.Generator()`, and applied to the batch on its own device: augmentation runs on the GPU when
training runs there, and a seed gives the same crops, flips and cutouts on either device (CUDA's
generators produce other streams than the CPU's for the same seed).

* `per_image_standardize`: TensorFlow's per-image whitening, (x - mean) / max(std, 1/sqrt(n)).
* `pad_crop`: zero-pad by `pad` pixels and take a random crop of the original size (CIFAR: 40x40
  -> 32x32, A.1). Applied after whitening, so the padding is the image mean, as in the reference.
* `hflip`: random horizontal flip with probability 1/2.
* `cutout`: zero a size x size square (clipped at the border) centred at a random pixel
  (DeVries & Taylor 2017, the paper's "+ cutout" results).
* `random_resized_crop`: Inception-style crop, area in [scale_min, 1] of the image and aspect ratio
  in [3/4, 4/3], resized bilinearly to the output size, with a random flip (A.7, [60]).
* `center_crop`: the central `fraction` of the image resized to the output size (Inception
  evaluation crops 87.5%).

`Augment` chains them from a TrainConfig: `train_batch(x_uint8, generator)` and
`eval_batch(x_uint8)` map uint8 images to the float network input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTS = ("crop_flip", "inception", "none")
NORMALIZE = ("whiten", "unit", "none")


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 0..1."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def per_image_standardize(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's tf.image.per_image_standardization on every image of the batch."""
    n = x[0].numel()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
    return (x - mean) / std.clamp(min=1.0 / math.sqrt(n))


def normalize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """'whiten' (per-image standardisation), 'unit' (Inception's [-1, 1]) or 'none' ([0, 1])."""
    if mode == "whiten":
        return per_image_standardize(x)
    if mode == "unit":
        return x * 2.0 - 1.0
    if mode == "none":
        return x
    raise ValueError(f"normalize must be one of {NORMALIZE}, got {mode!r}")


def _params_device(generator: torch.Generator | None) -> torch.device:
    """Where random parameters are drawn: on the generator's device (the CPU without one)."""
    return generator.device if generator is not None else torch.device("cpu")


def pad_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad every side by `pad`, then crop each image at its own random offset to the original size."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=_params_device(generator)).to(x.device)
    rows = off[0, :, None] + torch.arange(h, device=x.device)            # (B, H)
    cols = off[1, :, None] + torch.arange(w, device=x.device)            # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]   # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def hflip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=generator, device=_params_device(generator)) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a size x size square (clipped to the image) centred at a uniformly random pixel of each image."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=generator, device=_params_device(generator)).to(x.device)
    cx = torch.randint(0, w, (b,), generator=generator, device=_params_device(generator)).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - size // 2)     # (B, H)
    xs = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - size // 2)
    inside = ((ys >= 0) & (ys < size))[:, :, None] & ((xs >= 0) & (xs < size))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def random_resized_crop(x: torch.Tensor, size: int, generator: torch.Generator | None = None,
                        scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        flip: bool = True) -> torch.Tensor:
    """Inception-style crop: a random box of area fraction in `scale` and aspect ratio in `ratio`
    (log-uniform), clipped to fit the image, resized bilinearly to size x size; random flip.

    Done as one batched affine resampling, so it runs on the device the batch is on (the box
    parameters are drawn and computed on the generator's device).
    """
    b = x.shape[0]
    at = _params_device(generator)       # the box is computed where it is drawn, then moved
    u = torch.rand(4, b, generator=generator, device=at)
    area = scale[0] + (scale[1] - scale[0]) * u[0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1]
    aspect = torch.exp(log_r)  # width / height of the box
    bw = torch.sqrt(area * aspect).clamp(max=1.0)   # box width as a fraction of the image width
    bh = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (u[2] * 2 - 1) * (1 - bw)                  # box centre in [-1, 1] normalised coordinates
    cy = (u[3] * 2 - 1) * (1 - bh)
    sx = bw
    if flip:
        sign = torch.where(torch.rand(b, generator=generator, device=at) < 0.5, -1.0, 1.0)
        sx = sx * sign
    theta = torch.zeros(b, 2, 3, device=at, dtype=torch.float32)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = bh, cy
    theta = theta.to(x.device)
    grid = F.affine_grid(theta, (b, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def center_crop(x: torch.Tensor, size: int, fraction: float = 0.875) -> torch.Tensor:
    """The central `fraction` of each image, resized (bilinear, antialiased) to size x size."""
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    x = x[..., top:top + ch, left:left + cw]
    if (ch, cw) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


@dataclass(frozen=True)
class Augment:
    """The input pipeline of one run: uint8 stored images -> float network input.

    `crop_flip` (CIFAR, A.1): normalise, pad-and-crop, flip, cutout. `inception` (ImageNet, A.7):
    random-resized-crop + flip, normalise, cutout; evaluation center-crops `eval_crop` of the image.
    `none`: normalise only. Images are resized to `image_size` when it differs from the stored size.
    """

    kind: str = "crop_flip"
    normalize: str = "whiten"
    image_size: int = 32
    pad: int = 4
    cutout: int = 0
    scale_min: float = 0.08
    eval_crop: float = 0.875

    def train_batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = to_float(x)
        if self.kind == "inception":
            x = normalize(random_resized_crop(x, self.image_size, generator, (self.scale_min, 1.0)), self.normalize)
        else:
            x = normalize(self._resize(x), self.normalize)
            if self.kind == "crop_flip":
                x = hflip(pad_crop(x, self.pad, generator), generator)
        return cutout(x, self.cutout, generator)

    def eval_batch(self, x: torch.Tensor) -> torch.Tensor:
        x = to_float(x)
        if self.kind == "inception":
            x = center_crop(x, self.image_size, self.eval_crop)
        else:
            x = self._resize(x)
        return normalize(x, self.normalize)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.image_size and x.shape[-2] == self.image_size:
            return x
        return F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                             antialias=True)
