"""Seven ops and the normalising combiners against compositions written out here with plain
torch.nn.functional (paper A.4: ReLU -> conv -> BN; App. B: add + LayerNorm / InstanceNorm).

Every padding convention the ops support is recomputed by hand: PyTorch's symmetric (k - 1) * d / 2;
TensorFlow's "SAME" (output ceil(n / s), the odd pixel of padding at the bottom/right, never seen
by a max); and Keras's, which is "SAME" except that a strided pool pads explicit zeros that take
part in the maximum. BatchNorm is evaluated in inference mode with random running statistics and
affine parameters, written as its formula, so that a missing, misplaced or doubled BN shows.

As in a cell, an op whose `relu_input` is set is handed relu(x); the reference starts from x itself.
Each test names the bug it catches (a mutation of the source that makes it fail)."""

import math

import pytest
import torch
import torch.nn.functional as F

from nasnet.model.cells import Combine
from nasnet.model.layers import LayerStyle
from nasnet.model.ops import make_op

PADDINGS = ("symmetric", "same", "keras")


def pads(size: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    """(before, after) along one axis. TF "SAME": out = ceil(size / s) and total padding
    (out - 1) * s + (k - 1) * d + 1 - size, the odd pixel after."""
    if padding == "symmetric":
        return (k - 1) * d // 2, (k - 1) * d // 2
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def conv(x, weight, stride, dilation, padding):
    (kh, kw), (sh, sw), (dh, dw) = weight.shape[2:], stride, dilation
    top, bottom = pads(x.shape[2], kh, sh, dh, padding)
    left, right = pads(x.shape[3], kw, sw, dw, padding)
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=stride, dilation=dilation)


def bn(x, m):
    """Inference-mode BatchNorm as its formula: (x - mean) / sqrt(var + eps) * gamma + beta."""
    shape = (1, -1, 1, 1)
    scale = m.weight / torch.sqrt(m.running_var + m.eps)
    return (x - m.running_mean.view(shape)) * scale.view(shape) + m.bias.view(shape)


def max_pool(x, k, s, padding):
    """Max over k x k windows; padding that never wins a maximum (-inf), except Keras's strided pools,
    whose zero padding does."""
    top, bottom = pads(x.shape[2], k, s, 1, padding)
    left, right = pads(x.shape[3], k, s, 1, padding)
    fill = 0.0 if padding == "keras" and s > 1 else float("-inf")
    return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=fill), k, s)


def conv_bn(x, unit, stride, dilation, padding):
    return bn(conv(x, unit.conv.weight, stride, dilation, padding), unit.bn)


def reference(name, op, x, s, padding):
    """The op written out: which convolutions, in which order, with which ReLUs and BNs."""
    if name in ("conv_1x7_7x1", "conv_1x3_3x1"):
        k = 7 if name == "conv_1x7_7x1" else 3
        assert op.conv_1.conv.weight.shape[2:] == (1, k) and op.conv_2.conv.weight.shape[2:] == (k, 1)
        y = conv_bn(F.relu(x), op.conv_1, (1, s), (1, 1), padding)          # 1xk strides along the width
        return conv_bn(F.relu(y), op.conv_2, (s, 1), (1, 1), padding)       # kx1 along the height
    if name in ("conv_1x1", "conv_3x3", "dil_conv_3x3"):
        k, d = {"conv_1x1": (1, 1), "conv_3x3": (3, 1), "dil_conv_3x3": (3, 2)}[name]
        assert op.conv.weight.shape[2:] == (k, k)
        return conv_bn(F.relu(x), op, (s, s), (d, d), padding)
    k = 5 if name == "max_pool_5x5" else 7
    y = max_pool(x, k, s, padding)                                          # no ReLU before a pool
    return y if op.project is None else conv_bn(y, op.project, (1, 1), (1, 1), padding)


def randomise_bn(op, gen):
    for m in op.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", ["conv_1x7_7x1", "conv_1x3_3x1", "dil_conv_3x3", "conv_1x1", "conv_3x3",
                                  "max_pool_5x5", "max_pool_7x7"])
def test_op_equals_its_reference_composition(name, stride, padding):
    """On an even (10) and an odd (9) input, 6 -> 4 channels (and 4 -> 4: a pool without projection).

    Catches: BN before the conv, a missing or extra ReLU (a pool with one, a 1xk without the middle
    one), 1xk and kx1 swapped or both strided along the same axis, dilation 1 instead of 2, symmetric
    padding where "SAME" is asked (the odd pixel at the top/left), Keras's zero padding not taking
    part in a strided max (or taking part in an unstrided one), a pool's projection given a ReLU."""
    style = LayerStyle(padding=padding)
    gen = torch.Generator().manual_seed(0)
    for c_in, c_out in ((6, 4), (4, 4)):
        torch.manual_seed(1)
        op = make_op(name, c_in, c_out, stride, style)
        with torch.no_grad():
            randomise_bn(op, gen)
        op.eval()
        for size in (10, 9):
            x = torch.randn(2, c_in, size, size, generator=gen) * 2 - 1.0
            with torch.no_grad():
                got = op(F.relu(x) if op.relu_input else x)
                want = reference(name, op, x, stride, padding)
            assert got.shape == (2, c_out, math.ceil(size / stride), math.ceil(size / stride))
            assert torch.allclose(got, want, atol=1e-5), (c_in, size, (got - want).abs().max())


def _reference_norm(x, gamma, beta, dims):
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)                       # biased, as every norm layer
    return (x - mean) / torch.sqrt(var + 1e-5) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


@pytest.mark.parametrize("kind, dims", [("add_ln", (1, 2, 3)), ("add_in", (2, 3))])
def test_normalising_combiners_add_then_normalise(kind, dims):
    """add_ln: a + b, normalised over (C, H, W) of each example (layer norm); add_in: over (H, W) of
    each example and channel (instance norm); each with a per-channel scale and shift, the same in
    training and evaluation mode (no running statistics).

    Catches: LayerNorm and InstanceNorm swapped (GroupNorm(1, C) vs per-channel groups), the norm
    applied to one input before the sum, running statistics used in evaluation mode, no affine."""
    gen = torch.Generator().manual_seed(0)
    combine = Combine(kind, 5)
    with torch.no_grad():
        combine.norm.weight.copy_(torch.rand(5, generator=gen) + 0.5)
        combine.norm.bias.copy_(torch.randn(5, generator=gen))
    a = torch.randn(3, 5, 6, 6, generator=gen) * 3 + 1
    b = torch.randn(3, 5, 6, 6, generator=gen)
    want = _reference_norm(a + b, combine.norm.weight.detach(), combine.norm.bias.detach(), dims)
    for mode in (True, False):
        combine.train(mode)
        with torch.no_grad():
            got = combine(a, b)
        assert torch.allclose(got, want, atol=1e-5), (kind, mode)


def test_add_and_concat_combiners():
    """Catches: concat in the wrong order, or along the wrong axis; add that is not a plain sum."""
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.equal(Combine("add", 3)(a, b), a + b)
    cat = Combine("concat", 3)(a, b)
    assert cat.shape == (2, 6, 4, 4) and torch.equal(cat[:, :3], a) and torch.equal(cat[:, 3:], b)
