"""Networks from genotypes: golden counts, reference shapes, random-genotype sweeps."""

import random

import pytest
import torch

import nasnet
from nasnet import NASNET_A, Genotype, ModelConfig, NASNet
from nasnet.arch.genotype import OPS, make_cell
from nasnet.arch.space import NASNET_SPACES, SPACES
from nasnet.model.counting import count, count_params
from nasnet.model.layers import drop_path_keep
from nasnet.model.network import filters_from_penultimate
from nasnet.zoo import create_model, list_models, model_config

# docs/reference-configs.md: measured on the public reference implementations (1000 classes, no auxiliary head).
GOLDEN = {
    "nasnet_a_mobile": (5_289_978, 5_326_716, 563.6e6),
    "nasnet_a_large": (88_753_150, 88_949_818, 23_783.4e6),
    "nasnet_a_cifar": (3_346_538, 3_383_786, 544.3e6),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_counts(name):
    params, with_bn, mult_adds = GOLDEN[name]
    c = count(model_config(name))
    assert c.params == params
    assert c.params_with_bn_stats == with_bn
    assert abs(c.mult_adds - mult_adds) / mult_adds < 1e-3


def test_aux_head_is_not_counted_but_exists():
    cfg = model_config("nasnet_a_cifar")
    with torch.device("meta"):
        with_aux = NASNet(cfg)
        without = NASNet(cfg.replace(aux_head=False))
    assert with_aux.aux_head is not None and without.aux_head is None
    assert count_params(with_aux) == count_params(without)


def test_cifar_6_768_layer_shapes_match_reference():
    with torch.device("meta"):
        model = create_model("nasnet_a_cifar")
        x = torch.zeros(1, 3, 32, 32)
        stem = model.stem(x)
        outs = model.cell_outputs(x)
    assert tuple(stem.shape[1:]) == (96, 32, 32)
    kinds = model.cell_kinds
    assert kinds == ["normal"] * 6 + ["reduce"] + ["normal"] * 6 + ["reduce"] + ["normal"] * 6
    assert tuple(outs[0].shape[1:]) == (192, 32, 32)
    assert tuple(outs[6].shape[1:]) == (256, 16, 16)
    assert tuple(outs[13].shape[1:]) == (512, 8, 8)
    assert tuple(outs[-1].shape[1:]) == (768, 8, 8)


def test_imagenet_skeletons_shapes_and_aux():
    with torch.device("meta"):
        large = create_model("nasnet_a_large")
        large.train()
        logits, aux = large(torch.zeros(2, 3, 331, 331), drop_path_progress=0.5, return_aux=True)
        outs = large.cell_outputs(torch.zeros(1, 3, 331, 331))
    assert logits.shape == (2, 1000) and aux.shape == (2, 1000)
    assert large.cell_kinds[:2] == ["stem", "stem"]
    sizes = [o.shape[-1] for o in outs]
    assert sizes[:2] == [83, 42] and sizes[2] == 42 and sizes[-1] == 11
    assert outs[-1].shape[1] == 4032
    # aux head after the last normal cell before the second reduction (2/3 of the way up)
    assert large.cell_kinds[large.aux_index + 1] == "reduce"
    assert large.aux_index == 2 + 6 + 1 + 6 - 1


def test_skip_reduction_input_wiring():
    with torch.device("meta"):
        large = create_model("nasnet_a_large")
        mobile = create_model("nasnet_a_mobile")
    # first normal cell after the first body reduction (cell index 2 + N + 1)
    i = 2 + 6 + 1
    assert large.cell_kinds[i - 1] == "reduce"
    assert large._wiring[i] == [(1, 0), (3, 0)]  # input 1 from before the reduction's input 0
    j = 2 + 4 + 1
    assert mobile._wiring[j] == [(1, 0), (2, 0)]


def test_n_at_f_notation():
    assert filters_from_penultimate(NASNET_A, 1056) == 44
    assert filters_from_penultimate(NASNET_A, 4032) == 168
    assert filters_from_penultimate(NASNET_A, 768) == 32
    assert filters_from_penultimate(NASNET_A, 1538) == 64
    assert model_config("nasnet_a_mobile").penultimate_filters == 1056
    assert model_config("nasnet_a_large").name == "6 @ 4032"


def test_zoo_registry():
    names = list_models()
    for required in ("nasnet_a_mobile", "nasnet_a_large", "nasnet_a_cifar", "nasnet_a_cifar_large",
                     "nasnet_a_5_1538", "nasnet_a_7_1920"):
        assert required in names
    with pytest.raises(nasnet.NasnetError, match="unknown model 'nasnet_z'.*nasnet_a_mobile"):
        create_model("nasnet_z")
    m = create_model("nasnet_a_tiny_cifar", num_classes=3)
    assert m.classifier.out_features == 3
    with pytest.raises(nasnet.NasnetError, match="unknown field"):
        create_model("nasnet_a_tiny_cifar", colour="blue")


def test_config_round_trips_and_validates():
    cfg = model_config("nasnet_a_large")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(nasnet.NasnetError, match="skeleton"):
        ModelConfig(skeleton="mnist")
    with pytest.raises(nasnet.NasnetError, match="raise F0"):
        ModelConfig(skeleton="imagenet", filters=4)


def _every_op_genotype(op: str, combiner: str) -> Genotype:
    """Both cells use `op` on both cell inputs (stride 2 in the reduction cell) and on block outputs."""
    blocks = [(0, op, 1, op, combiner), (2, op, 0, op, combiner), (3, op, 2, op, "add")]
    cell = make_cell(blocks, concat=(1, 3, 4))
    return Genotype(cell, make_cell(blocks))


def _check_train_step(model: NASNet, image: int, channels: int = 3):
    model.train()
    x = torch.randn(2, channels, image, image)
    logits, aux = model(x, drop_path_progress=0.7, return_aux=True)
    loss = logits.logsumexp(1).mean() + (aux.logsumexp(1).mean() if aux is not None else 0)
    loss.backward()
    assert logits.shape == (2, model.config.num_classes)
    assert torch.isfinite(logits).all() and torch.isfinite(loss)
    for p in model.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("skeleton", ["cifar", "imagenet"])
def test_every_op_in_both_skeletons(op, skeleton):
    g = _every_op_genotype(op, "concat")
    size = 16 if skeleton == "cifar" else 40
    cfg = ModelConfig(genotype=g, skeleton=skeleton, normal_cells=1, filters=8, num_classes=5, image_size=size,
                      aux_head=True, drop_path_keep=0.5, stem_multiplier=1)
    model = NASNet(cfg)
    outs = model.cell_outputs(torch.zeros(1, 3, size, size))
    assert [o.shape[-1] for o in outs] == cfg.feature_sizes()[1:]
    _check_train_step(model, size)


@pytest.mark.parametrize("space", sorted(NASNET_SPACES))
@pytest.mark.parametrize("seed", range(6))
def test_random_genotypes_build_and_train(space, seed):
    rng = random.Random(seed)
    g = SPACES[space].sample(rng)
    skeleton = ["cifar", "imagenet"][seed % 2]
    size = 16 if skeleton == "cifar" else 36
    cfg = ModelConfig(genotype=g, skeleton=skeleton, normal_cells=1 + seed % 2, filters=8, num_classes=4,
                      image_size=size, aux_head=True, drop_path_keep=0.6, stem_multiplier=1,
                      skip_reduction_input=bool(seed % 3 == 0), padding=["symmetric", "same"][seed % 2])
    model = NASNet(cfg)
    assert model(torch.zeros(1, 3, size, size)).shape == (1, 4)
    _check_train_step(model, size)


def test_single_channel_small_images():
    model = NASNet(ModelConfig(normal_cells=1, filters=8, in_chans=1, image_size=8, num_classes=10, aux_head=True))
    _check_train_step(model, 8, channels=1)


# --- ScheduledDropPath (paper A.5) ---------------------------------------------------------------

def test_drop_path_schedule_values():
    T, k0 = 20, 0.6
    assert all(drop_path_keep(i, T, 0.0, k0) == 1.0 for i in range(T))
    end = [drop_path_keep(i, T, 1.0, k0) for i in range(T)]
    assert end == pytest.approx([1 - (i + 1) / T * (1 - k0) for i in range(T)])
    assert end[-1] == pytest.approx(k0)
    assert all(a > b for a, b in zip(end, end[1:]))  # deeper cells drop more
    assert drop_path_keep(T - 1, T, 2.0, k0) == pytest.approx(k0)  # progress past the end is clamped
    assert drop_path_keep(T - 1, T, 0.5, k0) == pytest.approx(1 - 0.5 * (1 - k0))
    t = drop_path_keep(T - 1, T, torch.tensor(0.5), k0)
    assert torch.is_tensor(t) and float(t) == pytest.approx(1 - 0.5 * (1 - k0))


def _one_block_model(op: str) -> NASNet:
    cell = make_cell([(0, op, 0, op, "add")], concat=(2,))
    cfg = ModelConfig(genotype=Genotype(cell, cell), normal_cells=1, filters=8, num_classes=0, image_size=8,
                      drop_path_keep=0.05, stem_multiplier=1)
    return NASNet(cfg)


def test_identity_ops_are_never_dropped():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    model = _one_block_model("identity").train()
    a, b = model(x, drop_path_progress=1.0), model(x, drop_path_progress=1.0)
    assert torch.equal(a, b)
    model = _one_block_model("conv_3x3").train()
    a, b = model(x, drop_path_progress=1.0), model(x, drop_path_progress=1.0)
    assert not torch.equal(a, b)


def test_evaluation_is_deterministic_with_drop_path():
    torch.manual_seed(0)
    model = _one_block_model("conv_3x3").eval()
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(model(x, drop_path_progress=1.0), model(x))


def test_kept_paths_are_rescaled_in_training():
    # Each example of a path is kept with probability k and then divided by k, so the expected
    # output equals the input (App. A.5); dropped examples are zero.
    from nasnet.model.layers import drop_path

    torch.manual_seed(0)
    x = torch.full((40_000, 2, 1, 1), 3.0)
    y = drop_path(x, 0.7)
    values = sorted(y.unique().tolist())
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(3.0 / 0.7)
    assert torch.equal(y[:, 0], y[:, 1])  # per example, not per element
    assert (y[:, 0] != 0).float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert y.mean().item() == pytest.approx(3.0, rel=0.02)


def test_cells_get_the_scheduled_keep_probability():
    model = NASNet(ModelConfig(normal_cells=1, filters=8, image_size=8, drop_path_keep=0.6, stem_multiplier=1))
    model.train()
    seen = {}
    for i, cell in enumerate(model.cells):
        cell.register_forward_pre_hook(lambda m, args, i=i: seen.__setitem__(i, args[1]))
    model(torch.randn(4, 3, 8, 8), drop_path_progress=0.5)
    T = len(model.cells)
    assert [seen[i] for i in range(T)] == pytest.approx([drop_path_keep(i, T, 0.5, 0.6) for i in range(T)])
    model(torch.randn(4, 3, 8, 8), drop_path_progress=0.0)
    assert all(seen[i] == 1.0 for i in range(T))
    model.eval()
    model(torch.randn(4, 3, 8, 8), drop_path_progress=0.5)
    assert all(seen[i] is None for i in range(T))  # never dropped in evaluation
