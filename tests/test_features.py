"""Features for backbones: multi-scale taps on both skeletons, and the Backbone wrapper."""

import pytest
import torch

from nasnet import NasnetError, SearchSpace
from nasnet.model.features import Backbone
from nasnet.model.network import ModelConfig, NASNet
from nasnet.zoo import create_model


@pytest.mark.parametrize("name, size, channels, strides, sizes", [
    # published models at their own sizes: strides 8/16/32 (TF "SAME" rounds up: 331 -> 42, 21, 11)
    ("nasnet_a_large", 331, [1008, 2016, 4032], [8, 16, 32], [42, 21, 11]),
    ("nasnet_a_mobile", 224, [264, 528, 1056], [8, 16, 32], [28, 14, 7]),
    # the CIFAR skeleton has no stride-2 stem: strides 1/2/4
    ("nasnet_a_cifar", 32, [192, 384, 768], [1, 2, 4], [32, 16, 8]),
])
def test_stage_shapes_of_the_zoo_models(name, size, channels, strides, sizes):
    with torch.device("meta"):
        model = create_model(name)
        feats = model.forward_stages(torch.zeros(2, 3, size, size))
    stages = [f for f in model.feature_info if f.kind == "stage"]
    assert [f.channels for f in stages] == channels and [f.stride for f in stages] == strides
    assert [tuple(t.shape) for t in feats] == [(2, c, s, s) for c, s in zip(channels, sizes)]


def test_imagenet_taps_include_the_stem_levels():
    with torch.device("meta"):
        model = create_model("nasnet_a_mobile")
        feats = model.forward_stages(torch.zeros(1, 3, 224, 224), indices=range(5))
    assert [f.name for f in model.feature_info] == ["stem", "stem_cell_0", "stage_0", "stage_1", "stage_2"]
    assert [f.stride for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert [tuple(t.shape[1:]) for t in feats] == [(32, 111, 111), (44, 56, 56), (264, 28, 28), (528, 14, 14),
                                                    (1056, 7, 7)]


@pytest.mark.parametrize("skeleton, size", [("imagenet", 64), ("cifar", 32)])
def test_taps_are_the_cell_outputs_the_network_computes(skeleton, size):
    torch.manual_seed(0)
    model = NASNet(ModelConfig(skeleton=skeleton, normal_cells=2, filters=8, image_size=size)).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        feats = model.forward_stages(x, indices=range(len(model.feature_info)))
        cells = model.cell_outputs(x)
        assert torch.equal(feats[-1], model.forward_features(x))
    for info, feat in zip(model.feature_info[1:], feats[1:]):
        assert torch.equal(feat, torch.relu(cells[info.cell]))
        assert feat.shape[1] == info.channels and size // feat.shape[-1] == info.stride


def test_backbone_wrapper_for_a_detector():
    """What a detection framework needs: an ordered dict of maps, their widths, only used parameters."""
    torch.manual_seed(0)
    model = create_model("nasnet_a_tiny_imagenet").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.forward_stages(x, indices=[1, 2, 3])
    backbone = Backbone(model, out_indices=[1, 2, 3]).eval()
    assert backbone.names == ["stem_cell_0", "stage_0", "stage_1"]
    assert backbone.out_channels == [8, 48, 96] and backbone.strides == [4, 8, 16]
    assert not any(k.startswith(("body.classifier", "body.aux_head")) for k in backbone.state_dict())
    assert len(backbone.body.cells) == 5  # the last stage's reduction and normal cell are cut
    out = backbone(x)
    assert list(out) == backbone.names
    assert all(torch.equal(a, b) for a, b in zip(out.values(), expected))
    # training: every remaining parameter gets a gradient (no unused parameters for DDP)
    backbone.train()
    sum(t.mean() for t in backbone(x, drop_path_progress=0.5).values()).backward()
    assert all(p.grad is not None for p in backbone.parameters())


def test_features_only_from_the_zoo_and_searched_cells():
    bb = create_model("nasnet_a_tiny_cifar", features_only=True)
    assert bb.out_channels == [48, 96, 192] and bb.strides == [1, 2, 4]
    g = SearchSpace().sample(5)
    model = NASNet(ModelConfig(genotype=g, skeleton="imagenet", normal_cells=1, filters=8, image_size=64))
    feats = model.forward_stages(torch.randn(1, 3, 64, 64))
    assert [t.shape[1] for t in feats] == [f.channels for f in model.feature_info if f.kind == "stage"]
    assert [t.shape[-1] for t in feats] == [8, 4, 2]
    with pytest.raises(NasnetError, match="feature index 9 out of range"):
        model.forward_stages(torch.randn(1, 3, 64, 64), indices=[9])
