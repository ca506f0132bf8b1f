"""The op registry and the layers under it: shapes, strides, padding conventions and ScheduledDropPath."""

import pytest
import torch
import torch.nn.functional as F

from nasnet import OPS
from nasnet.model.layers import Conv2d, FactorizedReduce, LayerStyle, Pool2d, drop_path, same_pads
from nasnet.model.ops import OPS_TABLE, Identity, PoolOp, Projection, SepConv, make_op

SYM, SAME = LayerStyle(), LayerStyle(padding="same")


def test_registry_names_the_13_ops():
    assert set(OPS_TABLE) == set(OPS)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in", [8, 16])
@pytest.mark.parametrize("style", [SYM, SAME], ids=["symmetric", "same"])
def test_every_op_any_stride_any_width(name, stride, c_in, style):
    op = make_op(name, c_in, 8, stride, style)
    for size in (9, 10):
        x = torch.randn(2, c_in, size, size)
        y = op(torch.relu(x) if op.relu_input else x)
        expect = -(-size // stride)
        assert y.shape == (2, 8, expect, expect), (name, stride, c_in, size)
        assert torch.isfinite(y).all()


def test_identity_and_projection():
    assert isinstance(make_op("identity", 8, 8, 1, SYM), Identity)
    proj = make_op("identity", 8, 8, 2, SYM)
    assert isinstance(proj, Projection) and proj.is_identity and proj.relu_input
    assert proj.conv.stride == (2, 2) and proj.conv.kernel_size == (1, 1)
    assert isinstance(make_op("identity", 16, 8, 1, SYM), Projection)


def test_separable_is_applied_twice_stride_in_first_only():
    op = make_op("sep_conv_5x5", 12, 8, 2, SYM)
    assert isinstance(op, SepConv)
    assert op.depthwise_1.stride == (2, 2) and op.depthwise_2.stride == (1, 1)
    assert op.depthwise_1.groups == 12 and op.depthwise_2.groups == 8
    # depthwise(12x5x5) + pointwise(12->8) + BN(8) + depthwise(8x5x5) + pointwise(8->8) + BN(8)
    expected = 12 * 25 + 12 * 8 + 16 + 8 * 25 + 8 * 8 + 16
    assert sum(p.numel() for p in op.parameters()) == expected
    # no BN or ReLU between the depthwise and pointwise parts
    children = [name for name, _ in op.named_children()]
    assert children == ["depthwise_1", "pointwise_1", "bn_1", "depthwise_2", "pointwise_2", "bn_2"]


def test_pooling_has_no_relu_and_projects_when_width_changes():
    x = -torch.rand(1, 8, 6, 6) - 1.0  # all negative: a ReLU would zero it
    assert (make_op("max_pool_3x3", 8, 8, 1, SYM)(x) < 0).all()
    assert (make_op("avg_pool_3x3", 8, 8, 1, SYM)(x) < 0).all()
    op = make_op("avg_pool_3x3", 16, 8, 1, SYM)
    assert isinstance(op, PoolOp) and op.project is not None and not op.relu_input


def test_convs_have_no_bias():
    for name in OPS:
        for m in make_op(name, 8, 8, 2, SYM).modules():
            if isinstance(m, torch.nn.Conv2d):
                assert m.bias is None, name


def test_same_pads_match_tensorflow():
    # TF SAME: out = ceil(n / s); the odd pixel goes bottom/right
    assert same_pads(10, 3, 2) == (0, 1)
    assert same_pads(11, 3, 2) == (1, 1)
    assert same_pads(10, 5, 2) == (1, 2)
    assert same_pads(42, 7, 2) == (2, 3)
    assert same_pads(9, 3, 1) == (1, 1)


def test_same_conv_equals_explicit_tf_padding():
    torch.manual_seed(0)
    conv = Conv2d(4, 6, 3, stride=2, style=SAME)
    x = torch.randn(1, 4, 10, 10)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.allclose(conv(x), ref, atol=1e-6)
    # odd input size: symmetric, equal to PyTorch's usual padding
    x = torch.randn(1, 4, 11, 11)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight, stride=2, padding=1), atol=1e-6)


def test_pools_never_count_padding():
    x = torch.full((1, 2, 10, 10), 3.0)
    for style in (SYM, SAME):
        for stride in (1, 2):
            out = Pool2d("avg", 3, stride, style)(x)
            assert torch.allclose(out, torch.full_like(out, 3.0))
    x = -torch.ones(1, 1, 10, 10)
    assert (Pool2d("max", 3, 2, SAME)(x) == -1).all()


def test_factorized_reduction():
    fr = FactorizedReduce(6, 8, 2)
    y = fr(torch.randn(2, 6, 11, 11))
    assert y.shape == (2, 8, 6, 6)
    # the two paths see the even and the odd pixels: a map that is non-zero only on odd pixels
    # reaches path 2 only
    x = torch.zeros(1, 6, 8, 8)
    x[:, :, 1::2, 1::2] = 1.0
    with torch.no_grad():
        p1 = fr.conv_1(x[:, :, ::2, ::2])
    assert p1.abs().sum() == 0
    assert FactorizedReduce(6, 7, 2).conv_2.out_channels == 4  # odd widths: the second path takes one more


def test_drop_path_rescales_kept_examples():
    torch.manual_seed(0)
    x = torch.ones(4000, 1, 1, 1)
    y = drop_path(x, 0.25)
    assert set(torch.unique(y).tolist()) == {0.0, 4.0}
    assert abs(y.mean().item() - 1.0) < 0.1


@pytest.mark.parametrize("keep", [0.9, 0.6])
def test_drop_path_keeps_keep_prob_of_bf16_paths(keep):
    """Under bf16 autocast the paths are bf16: the keep mask must still be drawn in float32 (bf16
    uniforms keep 0.9 -> 0.8984, 0.6 -> 0.6017: 7 and more standard errors off on 4M draws)."""
    torch.manual_seed(0)
    x = torch.ones(4_000_000, 1, 1, 1, dtype=torch.bfloat16)
    out = drop_path(x, keep)
    assert out.dtype == torch.bfloat16
    assert abs((out != 0).float().mean().item() - keep) < 1e-3      # 1e-3: 4 standard errors at 0.6
    assert abs(out.float().mean().item() - 1.0) < 2e-3 / keep        # kept paths are rescaled by 1 / keep
