"""Preprocessing and augmentation on whole batches of tensors (paper A.1 for CIFAR, A.7 for ImageNet;
docs/training.md, "Recipes" and "Devices").

`Augment` is a run's input pipeline, built from its recipe (`TrainConfig.augment_for`):
`train_batch(x_uint8, generator)` and `eval_batch(x_uint8)` map stored uint8 images to the float
network input. The transforms are the reference's (per-image whitening, pad-and-crop, flips, cutout,
Inception's random-resized crop and colour distortion, center crops). Each takes a batch
(B, C, H, W) on any device and is a draw, made from an explicit `torch.Generator` on its device (the
CPU for a plain `torch.Generator()`), and an application on the batch's device: a seed gives the same
crops, flips and cutouts on a GPU as on a CPU. `train_batch` makes every draw of a batch first and
moves them to the device in one copy that does not block (`to_device`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

AUGMENTS = ("crop_flip", "inception", "none")
CROP_RATIO = (0.75, 1.33)     # random_resized_crop: aspect ratios of the boxes
CROP_ATTEMPTS = 100           # and boxes tried per image
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


def pack(tensors: list[torch.Tensor], pin: bool = False) -> torch.Tensor:
    """The bytes of `tensors` (CPU) in one uint8 buffer, each starting at a multiple of 8 (so `unpack`
    can view them back as any dtype); `pin`: in page-locked memory, for a copy that does not block."""
    sizes = [t.numel() * t.element_size() for t in tensors]
    buf = torch.empty(max(8, sum(-(-n // 8) * 8 for n in sizes)), dtype=torch.uint8, pin_memory=pin)
    off = 0
    for t, n in zip(tensors, sizes):
        if n:
            buf[off:off + n] = t.detach().to("cpu").contiguous().view(-1).view(torch.uint8)
        off += -(-n // 8) * 8
    return buf


def unpack(buf: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views of a `pack`ed buffer (wherever it now is) with the dtypes and shapes of `like`."""
    out, off = [], 0
    for t in like:
        n = t.numel() * t.element_size()
        out.append(buf[off:off + n].view(t.dtype).view(t.shape))
        off += -(-n // 8) * 8
    return out


def to_device(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """`tensors` (drawn parameters, a few bytes each) on `device` in one transfer: packed into one
    buffer (pinned when the target is CUDA), copied without blocking, viewed back as the same dtypes
    and shapes, bit for bit. Tensors already there are returned as they are."""
    if all(t.device == device for t in tensors):
        return tensors
    return unpack(pack(tensors, pin=device.type == "cuda").to(device, non_blocking=True), tensors)


def _draw_pad_crop(b: int, pad: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    return [torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=_params_device(generator))]


def _apply_pad_crop(x: torch.Tensor, pad: int, off: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = off[0, :, None] + torch.arange(h, device=x.device)            # (B, H)
    cols = off[1, :, None] + torch.arange(w, device=x.device)            # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]   # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def pad_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad every side by `pad`, then crop each image at its own random offset to the original size."""
    if pad <= 0:
        return x
    (off,) = to_device(_draw_pad_crop(x.shape[0], pad, generator), x.device)
    return _apply_pad_crop(x, pad, off)


def _draw_hflip(b: int, generator: torch.Generator | None, p: float = 0.5) -> list[torch.Tensor]:
    return [torch.rand(b, generator=generator, device=_params_device(generator)) < p]


def _apply_hflip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def hflip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    (flip,) = to_device(_draw_hflip(x.shape[0], generator, p), x.device)
    return _apply_hflip(x, flip)


def _draw_cutout(b: int, h: int, w: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    at = _params_device(generator)
    cy = torch.randint(0, h, (b,), generator=generator, device=at)
    return [torch.stack([cy, torch.randint(0, w, (b,), generator=generator, device=at)])]


def _apply_cutout(x: torch.Tensor, size: int, centre: torch.Tensor) -> torch.Tensor:
    _, _, h, w = x.shape
    cy, cx = centre
    ys = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - size // 2)     # (B, H)
    xs = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - size // 2)
    inside = ((ys >= 0) & (ys < size))[:, :, None] & ((xs >= 0) & (xs < size))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a size x size square (clipped to the image) centred at a uniformly random pixel of each image."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    (centre,) = to_device(_draw_cutout(b, h, w, generator), x.device)
    return _apply_cutout(x, size, centre)


def random_resized_crop(x: torch.Tensor, size: int, generator: torch.Generator | None = None,
                        scale: tuple[float, float] = (0.05, 1.0), ratio: tuple[float, float] = CROP_RATIO,
                        flip: bool = True, min_covered: float = 0.1, attempts: int = CROP_ATTEMPTS) -> torch.Tensor:
    """Inception-style crop as the TF-Slim reference samples it (its `distorted_bounding_box_crop`, with
    the whole image as the object box), resized bilinearly to size x size, with a random flip.

    Per attempt: an aspect ratio (box width / height) uniform in `ratio`, a box height uniform between
    the heights that give area fractions scale[0] and scale[1] (capped so the box fits), a position
    uniform over the places it fits. An attempt is kept when its area is within `scale` and covers at
    least `min_covered` of the image (so the smallest crop is max(scale[0], min_covered) of it); the
    first kept attempt of `attempts` is used, else the whole image. Sizes are continuous, not whole
    pixels. Done as one batched affine resampling, so it runs on the device the batch is on; the box
    parameters are drawn and computed on the generator's device (the CPU without one), so a seed gives
    the same crops on any device.
    """
    (theta,) = to_device(_draw_resized_crop(x.shape[0], *x.shape[-2:], generator, scale, ratio, flip, min_covered,
                                            attempts), x.device)
    return _apply_resized_crop(x, size, theta)


def _draw_resized_crop(b: int, h: int, w: int, generator: torch.Generator | None, scale: tuple[float, float],
                       ratio: tuple[float, float], flip: bool, min_covered: float, attempts: int) -> list[torch.Tensor]:
    """The affine maps (B, 2, 3) of `random_resized_crop`'s boxes, computed where they are drawn."""
    at = _params_device(generator)       # the box is computed where it is drawn, then moved
    u = torch.rand(4, attempts, b, generator=generator, device=at, dtype=torch.float64)
    aspect = ratio[0] + (ratio[1] - ratio[0]) * u[0]                    # box width / height, in pixels
    lo = torch.sqrt(scale[0] * h * w / aspect)
    hi = torch.minimum(torch.sqrt(scale[1] * h * w / aspect), torch.minimum(w / aspect, torch.full_like(aspect, h)))
    bh = lo + (hi - lo).clamp(min=0) * u[1]                              # box height in pixels
    bw = aspect * bh
    area = bh * bw / (h * w)
    slack = 1e-6                                                         # float rounding at the range ends
    ok = (lo <= hi * (1 + slack)) & (area >= max(scale[0], min_covered) * (1 - slack)) \
        & (area <= scale[1] * (1 + slack)) & (bw <= w * (1 + slack)) & (bh <= h * (1 + slack))
    first = torch.where(ok.any(0), ok.float().argmax(0), -1)             # the first kept attempt, -1: none
    pick = first.clamp(min=0)[None]
    bw = torch.where(first >= 0, bw.gather(0, pick)[0], float(w)).clamp(max=w) / w   # fractions of the image
    bh = torch.where(first >= 0, bh.gather(0, pick)[0], float(h)).clamp(max=h) / h
    cx = (u[2].gather(0, pick)[0] * 2 - 1) * (1 - bw)                    # box centre in [-1, 1] coordinates
    cy = (u[3].gather(0, pick)[0] * 2 - 1) * (1 - bh)
    sx = bw
    if flip:
        sign = torch.where(torch.rand(b, generator=generator, device=at) < 0.5, -1.0, 1.0)
        sx = sx * sign
    theta = torch.zeros(b, 2, 3, device=at, dtype=torch.float32)
    theta[:, 0, 0], theta[:, 0, 2] = sx.float(), cx.float()
    theta[:, 1, 1], theta[:, 1, 2] = bh.float(), cy.float()
    return [theta]


def _apply_resized_crop(x: torch.Tensor, size: int, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, (x.shape[0], x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


# -- colour distortion (TF-Slim's inception_preprocessing `distort_color`) ---------------------------
# Brightness adds a delta, saturation scales HSV saturation, hue shifts HSV hue (in turns), contrast
# scales each channel's distance from its mean; nothing is clipped between them, the result is
# clipped to [0, 1]. The reference draws one of four orderings per image; its fast mode (what its
# training script uses) keeps brightness and saturation only, in the order B, S (ordering 0) or S, B.
BRIGHTNESS_DELTA = 32 / 255
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA = 0.2
CONTRAST_RANGE = (0.5, 1.5)
COLOR_DISTORTIONS = ("none", "fast", "full")
_ORDERINGS = {"full": ("BSHC", "SBCH", "CHBS", "HSCB"), "fast": ("BS", "SB", "SB", "SB")}


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> HSV, hue in turns [0, 1)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    c = v - x.min(1).values
    s = torch.where(v > 0, c / v.clamp(min=1e-12), torch.zeros_like(v))
    safe = c.clamp(min=1e-12)
    hue = torch.where(v == r, (g - b) / safe, torch.where(v == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hue = torch.where(c > 0, (hue / 6) % 1.0, torch.zeros_like(hue))
    return torch.stack([hue, s, v], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) HSV (hue in turns) -> RGB."""
    hue, s, v = x.unbind(1)
    k = torch.stack([(5 + hue * 6) % 6, (3 + hue * 6) % 6, (1 + hue * 6) % 6], 1)
    return v[:, None] - (v * s)[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _distort(x: torch.Tensor, op: str, p: torch.Tensor) -> torch.Tensor:
    """One distortion with its per-image parameter p (B,) drawn uniformly in [0, 1)."""
    col = p[:, None, None, None]
    if op == "B":
        return x + (2 * col - 1) * BRIGHTNESS_DELTA
    if op == "C":
        mean = x.mean(dim=(2, 3), keepdim=True)
        return (x - mean) * (CONTRAST_RANGE[0] + (CONTRAST_RANGE[1] - CONTRAST_RANGE[0]) * col) + mean
    if x.shape[1] != 3:      # hue and saturation need colour
        return x
    hsv = rgb_to_hsv(x)
    if op == "S":
        factor = SATURATION_RANGE[0] + (SATURATION_RANGE[1] - SATURATION_RANGE[0]) * p
        hsv[:, 1] = (hsv[:, 1] * factor[:, None, None]).clamp(0, 1)
    else:
        hsv[:, 0] = (hsv[:, 0] + ((2 * p - 1) * HUE_DELTA)[:, None, None]) % 1.0
    return hsv_to_rgb(hsv)


def _draw_color(b: int, mode: str, generator: torch.Generator | None) -> list[torch.Tensor]:
    """Per ordering of `mode` that some image drew: the images' indices and their parameters, one row
    per op of the ordering. Chosen where drawn (the CPU for a CPU generator), so applying them on a
    GPU needs no look at device memory."""
    u = torch.rand(5, b, generator=generator, device=_params_device(generator))   # order, then B, S, H, C
    choice = (u[0] * 4).long().clamp(max=3)
    out = []
    for k, ops in enumerate(_ORDERINGS[mode]):
        idx = (choice == k).nonzero().flatten()
        out += [idx, u[["_BSHC".index(op) for op in ops]][:, idx]]
    return out


def _apply_color(x: torch.Tensor, mode: str, params: list[torch.Tensor]) -> torch.Tensor:
    out = x.clone()
    for ops, idx, p in zip(_ORDERINGS[mode], params[0::2], params[1::2]):
        if idx.numel() == 0:
            continue
        part = x[idx]
        for op, p_op in zip(ops, p):
            part = _distort(part, op, p_op)
        out[idx] = part
    return out.clamp_(0.0, 1.0)


def _check_color(mode: str) -> None:
    if mode not in COLOR_DISTORTIONS:
        raise ValueError(f"color distortion must be one of {COLOR_DISTORTIONS}, got {mode!r}")


def distort_color(x: torch.Tensor, mode: str = "fast", generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness / saturation (/ hue / contrast with mode "full") of images in [0, 1], each in one
    of the reference's orderings drawn per image; clipped to [0, 1]. mode "none" returns x."""
    _check_color(mode)
    if mode == "none":
        return x
    return _apply_color(x, mode, to_device(_draw_color(x.shape[0], mode, generator), x.device))


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

    `crop_flip` (CIFAR, A.1): normalise, pad-and-crop, flip (unless `flip` is off), cutout. `inception` (ImageNet, A.7):
    random-resized-crop + flip, colour distortion (`color`: none / fast / full), normalise, cutout;
    evaluation center-crops `eval_crop` of the image.
    `none`: normalise only. Images are resized to `image_size` when it differs from the stored size.
    """

    kind: str = "crop_flip"
    normalize: str = "whiten"
    image_size: int = 32
    pad: int = 4
    cutout: int = 0
    scale_min: float = 0.05
    min_covered: float = 0.1
    eval_crop: float = 0.875
    color: str = "none"
    flip: bool = True               # random horizontal flips (off for data whose mirror image changes the label)

    def train_batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        steps = self._train_steps(x.shape[0], x.shape[-2], x.shape[-1], generator)
        params = iter(to_device([p for _, drawn in steps for p in drawn], x.device))
        x = to_float(x)
        for apply, drawn in steps:
            x = apply(x, [next(params) for _ in drawn])
        return x

    def _train_steps(self, b: int, h: int, w: int, generator: torch.Generator | None
                     ) -> list[tuple[Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor], list[torch.Tensor]]]:
        """The training transforms in order, each with its random parameters drawn now (in that order,
        as the transforms one by one would draw them)."""
        steps: list = []
        size, color = self.image_size, self.color
        _check_color(color)
        if self.kind == "inception":
            steps.append((lambda x, p: _apply_resized_crop(x, size, *p), _draw_resized_crop(
                b, h, w, generator, (self.scale_min, 1.0), CROP_RATIO, self.flip, self.min_covered, CROP_ATTEMPTS)))
        else:
            steps.append((lambda x, p: self._resize(x), []))
        if color != "none":
            steps.append((lambda x, p: _apply_color(x, color, p), _draw_color(b, color, generator)))
        steps.append((lambda x, p: normalize(x, self.normalize), []))
        if self.kind == "crop_flip" and self.pad > 0:
            steps.append((lambda x, p: _apply_pad_crop(x, self.pad, *p), _draw_pad_crop(b, self.pad, generator)))
        if self.kind == "crop_flip" and self.flip:
            steps.append((lambda x, p: _apply_hflip(x, *p), _draw_hflip(b, generator)))
        if self.cutout > 0:
            steps.append((lambda x, p: _apply_cutout(x, self.cutout, *p), _draw_cutout(b, size, size, generator)))
        return steps

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
