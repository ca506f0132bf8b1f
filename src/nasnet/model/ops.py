"""The 13 operations of the NASNet search space (paper §3, A.4), in one literal table.

Every op is built by ``OPS_TABLE[name](c_in, c_out, stride, style) -> nn.Module`` and maps a state
of ``c_in`` channels to ``c_out`` (the cell's F) channels, at any stride. The table is written out
entry by entry, so searching for an op's name finds its constructor. What each op computes (ReLU ->
conv -> BN without bias, separable convolutions applied twice, pooling without ReLU, identity
unless it must stride or change width) follows TensorFlow's released code and is written once, in
docs/nasnet-a.md ("How a cell is wired"). The leading ReLU of an op is not inside its module: ops
with ``relu_input = True`` are handed the ReLU of their input by the cell, which computes it once
per state however many ops read it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..arch.genotype import OPS
from .layers import Conv2d, ConvBN, LayerStyle, Pool2d, batch_norm

OpFactory = Callable[[int, int, int, LayerStyle], nn.Module]


def make_op(name: str, c_in: int, c_out: int, stride: int, style: LayerStyle) -> nn.Module:
    op = OPS_TABLE[name](c_in, c_out, stride, style)
    op.op_name = name
    return op


class Identity(nn.Module):
    relu_input = False
    is_identity = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Projection(ConvBN):
    """Identity that must stride or change width: (ReLU) -> 1x1 conv (strided) -> BN."""

    relu_input = True
    is_identity = True


class ReLUConvBN(ConvBN):
    """A plain convolution op: (ReLU) -> conv -> BN."""

    relu_input = True
    is_identity = False


class FactorizedConv(nn.Module):
    """1xk then kx1: (ReLU) -> 1xk conv -> BN -> ReLU -> kx1 conv -> BN."""

    relu_input = True
    is_identity = False

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, style: LayerStyle):
        super().__init__()
        self.conv_1 = ConvBN(c_in, c_out, (1, k), (1, stride), style=style)
        self.conv_2 = ConvBN(c_out, c_out, (k, 1), (stride, 1), style=style)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_2(torch.relu(self.conv_1(x)))


class SepConv(nn.Module):
    """Depthwise-separable conv applied twice: (ReLU) dw-pw-BN, ReLU, dw-pw-BN (paper A.4)."""

    relu_input = True
    is_identity = False

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, style: LayerStyle):
        super().__init__()
        self.depthwise_1 = Conv2d(c_in, c_in, k, stride, groups=c_in, style=style)
        self.pointwise_1 = Conv2d(c_in, c_out, 1, style=style)
        self.bn_1 = batch_norm(c_out, style)
        self.depthwise_2 = Conv2d(c_out, c_out, k, 1, groups=c_out, style=style)
        self.pointwise_2 = Conv2d(c_out, c_out, 1, style=style)
        self.bn_2 = batch_norm(c_out, style)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_1(self.pointwise_1(self.depthwise_1(x)))
        return self.bn_2(self.pointwise_2(self.depthwise_2(torch.relu(x))))


class PoolOp(nn.Module):
    """Pooling, then 1x1 conv + BN when the width changes (no ReLU, as in the reference)."""

    relu_input = False
    is_identity = False

    def __init__(self, kind: str, k: int, c_in: int, c_out: int, stride: int, style: LayerStyle):
        super().__init__()
        self.pool = Pool2d(kind, k, stride, style)
        self.project = ConvBN(c_in, c_out, 1, style=style) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return x if self.project is None else self.project(x)


def _identity(c_in: int, c_out: int, stride: int, style: LayerStyle) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return Identity()
    return Projection(c_in, c_out, 1, stride, style=style)


# name -> constructor(c_in, c_out, stride, style); the keys are exactly nasnet.arch.genotype.OPS.
OPS_TABLE: dict[str, OpFactory] = {
    "identity": _identity,
    "conv_1x7_7x1": lambda c_in, c_out, stride, style: FactorizedConv(c_in, c_out, 7, stride, style),
    "avg_pool_3x3": lambda c_in, c_out, stride, style: PoolOp("avg", 3, c_in, c_out, stride, style),
    "max_pool_5x5": lambda c_in, c_out, stride, style: PoolOp("max", 5, c_in, c_out, stride, style),
    "conv_1x1": lambda c_in, c_out, stride, style: ReLUConvBN(c_in, c_out, 1, stride, 1, style),
    "sep_conv_3x3": lambda c_in, c_out, stride, style: SepConv(c_in, c_out, 3, stride, style),
    "sep_conv_7x7": lambda c_in, c_out, stride, style: SepConv(c_in, c_out, 7, stride, style),
    "conv_1x3_3x1": lambda c_in, c_out, stride, style: FactorizedConv(c_in, c_out, 3, stride, style),
    "dil_conv_3x3": lambda c_in, c_out, stride, style: ReLUConvBN(c_in, c_out, 3, stride, 2, style),
    "max_pool_3x3": lambda c_in, c_out, stride, style: PoolOp("max", 3, c_in, c_out, stride, style),
    "max_pool_7x7": lambda c_in, c_out, stride, style: PoolOp("max", 7, c_in, c_out, stride, style),
    "conv_3x3": lambda c_in, c_out, stride, style: ReLUConvBN(c_in, c_out, 3, stride, 1, style),
    "sep_conv_5x5": lambda c_in, c_out, stride, style: SepConv(c_in, c_out, 5, stride, style),
}
assert tuple(OPS_TABLE) == OPS, "the op table and nasnet.arch.genotype.OPS must name the same ops, in order"
