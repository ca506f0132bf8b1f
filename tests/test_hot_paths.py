"""The training step's hot paths give the numbers of the straightforward code they replace, with fewer
transfers and kernel launches: augmentation parameters moved in one copy, colour orderings chosen on
the CPU, one drop-path draw per cell, the weight average over cached tensors, ScheduledDropPath's
progress refilled in place, cuDNN's autotuner scoped to where it is used."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nasnet.arch.genotype import NASNET_A
from nasnet.data.augment import (
    Augment,
    cutout,
    distort_color,
    hflip,
    normalize,
    pack,
    pad_crop,
    random_resized_crop,
    to_float,
    unpack,
)
from nasnet.model.cells import CellModule, StateInfo
from nasnet.model.layers import LayerStyle
from nasnet.train.device import cudnn_autotune


class Calls(TorchDispatchMode):
    """Records the ATen operators run inside it, with their tensor arguments' devices."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        devices = {a.device.type for a in args if isinstance(a, torch.Tensor)}
        out_dev = out.device.type if isinstance(out, torch.Tensor) else None
        self.calls.append((func.__name__.split(".")[0], devices, out_dev))
        return out

    def transfers(self, to: str) -> int:
        return sum(1 for _, devs, out in self.calls if out == to and "cpu" in devs)

    def count(self, name: str) -> int:
        return sum(1 for n, _, _ in self.calls if n == name)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _one_by_one(aug: Augment, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Augment.train_batch as the transforms compose, each drawing and moving its own parameters."""
    x = to_float(x)
    if aug.kind == "inception":
        x = random_resized_crop(x, aug.image_size, g, (aug.scale_min, 1.0), flip=aug.flip, min_covered=aug.min_covered)
        x = normalize(distort_color(x, aug.color, g), aug.normalize)
    else:
        x = normalize(distort_color(aug._resize(x), aug.color, g), aug.normalize)
        if aug.kind == "crop_flip":
            x = pad_crop(x, aug.pad, g)
            x = hflip(x, g) if aug.flip else x
    return cutout(x, aug.cutout, g)


AUGMENTS = [Augment("crop_flip", "whiten", 32, 4, 16), Augment("crop_flip", "none", 32, 4, 0, flip=False),
            Augment("crop_flip", "whiten", 24, 3, 8, color="fast"), Augment("none", "unit", 32, cutout=5),
            Augment("inception", "unit", 24, cutout=8, color="full"), Augment("inception", "none", 20, flip=False)]


@pytest.mark.parametrize("aug", AUGMENTS, ids=lambda a: f"{a.kind}-{a.normalize}-{a.color}-cut{a.cutout}")
def test_a_batch_augments_as_its_transforms_one_by_one(aug):
    # catches: a draw moved out of order, a parameter packed or viewed back wrongly
    x = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8)
    for seed in (0, 1):
        g1, g2 = _gen(seed), _gen(seed)
        assert torch.equal(aug.train_batch(x, g1), _one_by_one(aug, x, g2))
        assert torch.equal(g1.get_state(), g2.get_state())          # the same numbers drawn


@pytest.mark.parametrize("aug", AUGMENTS, ids=lambda a: f"{a.kind}-{a.color}")
def test_a_batch_elsewhere_takes_its_parameters_in_one_transfer(aug):
    # 'meta' stands in for a GPU: its tensors have no values, so a step that looked at device memory
    # (nonzero of the colour orderings, a .item()) would fail; every parameter arrives in one copy
    x = torch.empty(24, 3, 32, 32, dtype=torch.uint8, device="meta")
    with Calls() as calls:
        out = aug.train_batch(x, _gen(0))
    assert out.device.type == "meta" and calls.transfers("meta") == 1
    one_each = Calls()
    with one_each:
        _one_by_one(aug, x, _gen(0))
    assert one_each.transfers("meta") >= 1


def test_packed_parameters_come_back_bit_for_bit():
    g = _gen(3)
    tensors = [torch.randint(0, 9, (2, 7), generator=g), torch.rand(5, generator=g) < 0.5,
               torch.rand(3, 2, 3, generator=g), torch.rand(4, 3, dtype=torch.float64, generator=g),
               torch.zeros(0, dtype=torch.int64), torch.randint(0, 9, (3,), generator=g).to(torch.uint8)]
    buf = pack(tensors)
    assert buf.dtype == torch.uint8 and buf.dim() == 1
    back = unpack(buf.clone(), tensors)
    for a, b in zip(tensors, back):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


# -- ScheduledDropPath: one draw per cell ---------------------------------------------------------

def _cell():
    torch.manual_seed(0)
    cell = CellModule(NASNET_A.normal, [StateInfo(16, 1), StateInfo(8, 0)], 8, reduction=False, style=LayerStyle())
    g = _gen(1)
    return cell.train(), [torch.randn(4, 16, 6, 6, generator=g), torch.randn(4, 8, 12, 12, generator=g)]


def _per_path_forward(cell, inputs, keep_prob):
    """The cell's forward with a mask drawn per path, x * mask / keep_prob (the reference)."""
    states = [m(torch.relu(x) if r else x) for m, r, x in zip(cell.preprocess, cell.preprocess_relu, inputs)]
    for b, blk in enumerate(cell.spec.blocks):
        branch = []
        for side, s in enumerate(blk.inputs):
            op = cell.ops[2 * b + side]
            y = op(torch.relu(states[s]) if op.relu_input else states[s])
            if not op.is_identity:
                mask = torch.rand((y.shape[0], 1, 1, 1), device=y.device) < keep_prob
                y = y * mask.to(y.dtype) / keep_prob
            branch.append(y)
        states.append(cell.combine[b](branch[0], branch[1]))
    return torch.cat([a(states[s]) for a, s in zip(cell.out_adapt, cell.spec.concat)], dim=1)


@pytest.mark.parametrize("case", ["fp32", "fp64", "bf16", "tensor keep"])
def test_drop_path_masks_every_path_of_a_cell_from_one_draw(case):
    # the same masks and the same numbers as a draw per path, on the CPU bit for bit
    cell, inputs = _cell()
    keep = torch.tensor(0.6) if case == "tensor keep" else 0.6
    if case == "fp64":
        cell, inputs = cell.double(), [x.double() for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "bf16"):
        torch.manual_seed(5)
        with Calls() as calls:
            got = cell(inputs, keep)
        torch.manual_seed(5)
        want = _per_path_forward(cell, inputs, keep)
    assert got.dtype == want.dtype and torch.equal(got, want)
    assert calls.count("rand") == 1 and cell.dropped_paths == 8    # NASNet-A's normal cell: 10 ops, 2 identities
    dropped = (got == 0).flatten(1).all(1)
    assert not dropped.all()


# -- the weight average, progress, cuDNN ----------------------------------------------------------

def test_the_weight_average_reads_the_model_once_and_updates_in_two_launches():
    from nasnet.train.ema import ModelEMA

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Linear(4, 4))
    ema = ModelEMA(model, 0.9)
    ema.update(model)
    reads = []
    real = model.state_dict
    model.state_dict = lambda *a, **k: reads.append(1) or real(*a, **k)
    with Calls() as calls:
        for _ in range(3):
            ema.update(model)
    assert not reads
    assert [n for n, _, _ in calls.calls] == ["_foreach_lerp_", "_foreach_copy_"] * 3
    assert int(ema.module[1].num_batches_tracked) == int(model[1].num_batches_tracked)


def test_drop_path_progress_under_compile_is_one_device_tensor_refilled(monkeypatch, tmp_path):
    from digits_subset import write_digits_npz

    from nasnet.data import load_dataset
    from nasnet.model.network import ModelConfig
    from nasnet.train.config import model_config_for, preset
    from nasnet.train.loop import Trainer

    seen = []

    def fake_compile(fn, **kw):
        def call(x, drop_path_progress=None, **k):
            seen.append((drop_path_progress, float(drop_path_progress)))
            return fn(x, drop_path_progress=drop_path_progress, **k)
        return call

    monkeypatch.setattr(torch, "compile", fake_compile)
    ds = load_dataset(write_digits_npz(tmp_path / "d.npz", n_train=128, n_val=16, n_test=0))
    cfg = preset("digits", epochs=2, batch_size=32, device="cpu", compile=True, drop_path_keep=0.7)
    trainer = Trainer(model_config_for(ModelConfig(normal_cells=1, filters=4, stem_multiplier=1.0), cfg, ds), cfg, ds)
    trainer.fit()
    total = trainer.total_steps
    assert len(seen) == total == 8 and all(t is seen[0][0] for t, _ in seen)
    assert seen[0][0].dim() == 0 and seen[0][0].dtype == torch.float32
    assert [v for _, v in seen] == [float(torch.tensor(s / total)) for s in range(total)]


def test_cudnn_autotune_is_on_only_inside_and_only_for_cuda():
    backend = torch.backends.cudnn
    saved = backend.benchmark
    try:
        for before in (False, True):
            backend.benchmark = before
            with cudnn_autotune(torch.device("cpu")):
                assert backend.benchmark is before
            with pytest.raises(RuntimeError):
                # a device object only: nothing is put on CUDA, so this runs (and must) without a GPU
                with cudnn_autotune(torch.device(type="cuda")):
                    assert backend.benchmark is True
                    raise RuntimeError("a failing step")
            assert backend.benchmark is before
    finally:
        backend.benchmark = saved
