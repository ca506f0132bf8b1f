"""Building layers shared by the ops and cells: padding-aware convs and pools, BN, factorized reduction,
and ScheduledDropPath (paper §4, A.5; docs/nasnet-a.md).

`LayerStyle` carries the conventions of a released model: BatchNorm's momentum and epsilon, and
the padding, one of ``"symmetric"`` (PyTorch's usual), ``"same"`` (TensorFlow's "SAME", which the
published NASNet-A checkpoints were trained with) and ``"keras"`` (Keras Applications' NASNet,
whose strided pools pool over explicit zero padding). docs/reference-configs.md ("Padding") says
where they differ; under "symmetric" and "same" average pooling never counts padded pixels and max
pooling never sees them. ScheduledDropPath's keep probability is a pure function of the cell's place
and the training progress (`drop_path_keep`, docs/nasnet-a.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NasnetError

PADDINGS = ("symmetric", "same", "keras")
SAME_CONVS = ("same", "keras")  # paddings whose convolutions follow TF "SAME"


@dataclass(frozen=True)
class LayerStyle:
    """Conventions every layer of one model shares: padding and BatchNorm settings.

    ``bn_momentum`` is PyTorch's (1 - TensorFlow's decay): TF decay 0.9997 is momentum 0.0003.
    """

    padding: str = "symmetric"
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        if self.padding not in PADDINGS:
            raise NasnetError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF "SAME" padding (before, after) along one axis.

    ``int(size)`` keeps the result a plain integer when a tracer (TorchScript / ONNX export) hands
    the spatial size over as a tensor: exported graphs have a fixed image size, only the batch varies.
    """
    size = int(size)
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2d(nn.Conv2d):
    """nn.Conv2d whose padding follows a LayerStyle; the parameters are those of nn.Conv2d."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, dilation=1, groups=1,
                 style: LayerStyle = LayerStyle(), padding: int | tuple[int, int] | None = None):
        kh, kw = _pair(kernel)
        dh, dw = _pair(dilation)
        self.tf_same = style.padding in SAME_CONVS and padding is None
        if padding is None:
            padding = ((kh - 1) * dh // 2, (kw - 1) * dw // 2)
        super().__init__(c_in, c_out, (kh, kw), stride, 0 if self.tf_same else padding, dilation, groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tf_same:
            return super().forward(x)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom = same_pads(x.shape[-2], kh, sh, dh)
        left, right = same_pads(x.shape[-1], kw, sw, dw)
        if top == bottom and left == right:
            return F.conv2d(x, self.weight, None, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


class Pool2d(nn.Module):
    """Max or average pooling with "symmetric" or TF "SAME" padding (padding never enters a result), or
    Keras's zero-padded strided pools (padding="keras": the zeros count; docs/reference-configs.md)."""

    def __init__(self, kind: str, kernel: int, stride: int, style: LayerStyle = LayerStyle()):
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(kind)
        self.kind, self.kernel, self.stride = kind, kernel, stride
        self.tf_same = style.padding in SAME_CONVS
        self.zero_padded = style.padding == "keras" and stride > 1

    def extra_repr(self) -> str:
        return (f"{self.kind}, kernel={self.kernel}, stride={self.stride}, same={self.tf_same}"
                + (", zero-padded" if self.zero_padded else ""))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel, self.stride
        if self.zero_padded:
            # Keras's NASNet: ZeroPadding2D by the "SAME" amounts, then a "valid" pool.
            top, bottom = same_pads(x.shape[-2], k, s)
            left, right = same_pads(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
            return F.max_pool2d(x, k, s) if self.kind == "max" else F.avg_pool2d(x, k, s)
        if self.tf_same:
            # TF "SAME" puts the odd padding pixel on the bottom/right. PyTorch's ceil_mode lets the
            # last window run past the bottom/right edge, and out-of-range pixels are neither maxed nor
            # counted, so symmetric padding = the top/left amount plus ceil_mode is exactly "SAME"
            # (checked against explicit padding in tests/test_export.py) - no extra pad copy, and it
            # exports to ONNX with static shapes.
            pad, ceil = (same_pads(x.shape[-2], k, s)[0], same_pads(x.shape[-1], k, s)[0]), True
        else:
            pad, ceil = (k // 2, k // 2), False
        if _pool_channels_last(x):
            # PyTorch's CPU pooling kernels vectorise over channels only in channels-last layout: there
            # a 3x3 pool on a NASNet-sized map runs 3-6x faster, the two layout copies included
            # (bench/model_speed.py; measured for inference only - in training the backward pass
            # gains little, so the layout is left alone there). Same numbers either way.
            x = x.contiguous(memory_format=torch.channels_last)
            return self._pool(x, k, s, pad, ceil).contiguous()
        return self._pool(x, k, s, pad, ceil)

    def _pool(self, x: torch.Tensor, k: int, s: int, pad: tuple[int, int], ceil: bool) -> torch.Tensor:
        if self.kind == "max":
            return F.max_pool2d(x, k, s, pad, ceil_mode=ceil)
        return F.avg_pool2d(x, k, s, pad, ceil_mode=ceil, count_include_pad=False)


def _pool_channels_last(x: torch.Tensor) -> bool:
    """Pool through channels-last: CPU inference on an NCHW tensor, outside tracing and compilation."""
    return (x.device.type == "cpu" and x.dim() == 4 and not (torch.is_grad_enabled() and x.requires_grad)
            and x.shape[1] > 1 and x.is_contiguous() and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling())


def batch_norm(channels: int, style: LayerStyle) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=style.bn_eps, momentum=style.bn_momentum)


class ConvBN(nn.Sequential):
    """conv -> BN. The ReLU in front (paper A.4: ReLU, conv, BN) is applied by the caller."""

    def __init__(self, c_in: int, c_out: int, kernel=1, stride=1, dilation=1, style: LayerStyle = LayerStyle(),
                 padding: int | None = None):
        super().__init__()
        self.conv = Conv2d(c_in, c_out, kernel, stride, dilation, style=style, padding=padding)
        self.bn = batch_norm(c_out, style)


class FactorizedReduce(nn.Module):
    """TF's factorized_reduction: shrink by `stride` without losing pixels to striding (docs/nasnet-a.md).

    stride 1: 1x1 conv -> BN. stride s > 1: two 1x1 convs, one on the pixels at (0, 0) mod s and one
    on the input shifted by one pixel (zero-padded on the bottom/right), each giving half the
    channels (the second takes the odd one), concatenated, then BN. No ReLU: callers add it.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, style: LayerStyle = LayerStyle()):
        super().__init__()
        self.stride = stride
        if stride == 1:
            self.conv = Conv2d(c_in, c_out, 1, style=style)
        else:
            if c_out < 2:
                raise NasnetError(f"factorized reduction needs at least 2 output channels, got {c_out}")
            self.conv_1 = Conv2d(c_in, c_out // 2, 1, style=style)
            self.conv_2 = Conv2d(c_in, c_out - c_out // 2, 1, style=style)
        self.bn = batch_norm(c_out, style)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if s == 1:
            return self.bn(self.conv(x))
        path1 = self.conv_1(x[:, :, ::s, ::s])
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        path2 = self.conv_2(shifted[:, :, ::s, ::s])
        return self.bn(torch.cat([path1, path2], dim=1))


# -- ScheduledDropPath (paper §4, A.5) -------------------------------------------------------
def drop_path_keep(cell_index: int, num_cells: int, progress: float | torch.Tensor, keep_prob: float):
    """The keep probability of cell `cell_index` (0-based) of `num_cells` at training `progress` = step / steps.

    As in the reference code, the drop probability grows with the cell's depth and with training::

        k_cell = 1 - (i + 1) / T * (1 - k0)          # cell i of T cells: deeper cells drop more
        k      = 1 - min(1, s / S) * (1 - k_cell)     # step s of S: from 1 at the start to k_cell

    The training loop passes ``progress = s / S`` to the model's forward, which evaluates this per
    cell; nothing about the schedule is stored in the model. `progress` may be a tensor (a compiled
    forward gets one, so that its graph is not specialised to every new value).
    """
    cell_keep = 1.0 - (cell_index + 1) / num_cells * (1.0 - keep_prob)
    if isinstance(progress, torch.Tensor):
        ratio = progress.clamp(max=1.0)
    else:
        ratio = min(1.0, float(progress))
    return 1.0 - ratio * (1.0 - cell_keep)


def drop_path_divisors(paths: int, x: torch.Tensor, keep_prob: torch.Tensor | float) -> torch.Tensor:
    """ScheduledDropPath's masks for `paths` paths of a cell at once, from one draw: (paths, B, 1, 1, 1)
    divisors, `keep_prob` for a kept example and inf for a dropped one, so `x / d` (`drop_path_apply`)
    is a path's output with dropped examples zeroed and kept ones rescaled (App. A.5), in one kernel.

    The uniforms are float32 whatever x's dtype (bfloat16 ones, under bf16 autocast, would keep a
    path with a probability a few tenths of a percent off keep_prob), drawn from the global generator
    in the order the paths are listed; on the CPU one draw of paths x B numbers is the same stream as
    a draw of B per path, so the masks are those `drop_path` gives path by path."""
    u = torch.rand((paths, x.shape[0], 1, 1, 1), device=x.device)
    wide = torch.promote_types(x.dtype, torch.float32)
    return (u < keep_prob).to(wide).reciprocal_().mul_(keep_prob)       # 1 / 1 * k = k; 1 / 0 * k = inf


def drop_path_apply(x: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
    """One path's drop path with its row of `drop_path_divisors`: x / keep_prob for kept examples and
    zero (of x's sign) for dropped ones, computed in at least float32 and returned in x's dtype: the
    numbers of x * mask / keep_prob."""
    out = x / divisor
    return out if out.dtype == x.dtype else out.to(x.dtype)


def drop_path(x: torch.Tensor, keep_prob: torch.Tensor | float) -> torch.Tensor:
    """Drop whole examples of a path with probability 1 - keep_prob; rescale the kept ones (App. A.5).
    One path alone; a cell draws the masks of all its paths at once (`drop_path_divisors`)."""
    return drop_path_apply(x, drop_path_divisors(1, x, keep_prob)[0])
