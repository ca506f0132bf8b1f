"""Batch augmentation: whitening, pad-and-crop, flip, cutout, Inception crops (paper A.1, A.7)."""

import math

import numpy as np
import pytest
import torch

from nasnet.data.augment import (
    Augment,
    center_crop,
    cutout,
    hflip,
    pad_crop,
    per_image_standardize,
    random_resized_crop,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_per_image_standardize_matches_tensorflow():
    x = torch.rand(4, 3, 6, 6)
    x[1] = 0.5  # a constant image: TF divides by 1/sqrt(N), not by 0
    out = per_image_standardize(x)
    a = x.numpy().reshape(4, -1)
    adjusted = np.maximum(a.std(axis=1, keepdims=True), 1 / math.sqrt(a.shape[1]))
    ref = (a - a.mean(axis=1, keepdims=True)) / adjusted
    assert np.allclose(out.numpy().reshape(4, -1), ref, atol=1e-5)
    assert torch.equal(out[1], torch.zeros_like(out[1]))


def test_pad_crop_takes_a_window_of_the_zero_padded_image():
    x = torch.rand(16, 2, 8, 8) + 1.0
    out = pad_crop(x, 4, _gen())
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(16):
        hits = [(dy, dx) for dy in range(9) for dx in range(9)
                if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 4  # offsets differ per image
    assert torch.equal(pad_crop(x, 4, _gen(3)), pad_crop(x, 4, _gen(3)))  # reproducible from the generator


def test_hflip_flips_about_half():
    x = torch.rand(200, 1, 4, 4)
    out = hflip(x, _gen())
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 60 < sum(flipped) < 140


def test_cutout_zeros_one_clipped_square():
    x = torch.ones(64, 3, 32, 32)
    out = cutout(x, 16, _gen())
    for img in out:
        zero = (img[0] == 0).nonzero()
        assert torch.equal(img[0] == 0, img[2] == 0)  # same square in every channel
        h = int(zero[:, 0].max() - zero[:, 0].min() + 1)
        w = int(zero[:, 1].max() - zero[:, 1].min() + 1)
        assert 8 <= h <= 16 and 8 <= w <= 16 and len(zero) == h * w
    assert (out == 0).float().mean() < 0.25


def test_random_resized_crop_full_box_is_identity():
    x = torch.rand(3, 3, 10, 10)
    same = random_resized_crop(x, 10, _gen(), scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    assert torch.allclose(same, x, atol=1e-5)
    out = random_resized_crop(x, 7, _gen())
    assert out.shape == (3, 3, 7, 7) and out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6


def test_random_resized_crop_zooms():
    # a left-to-right ramp: a crop of small area spans a narrower range of values than the whole image
    ramp = torch.linspace(0, 1, 64).expand(1, 1, 64, 64).repeat(32, 1, 1, 1)
    out = random_resized_crop(ramp, 16, _gen(), scale=(0.1, 0.1), flip=False)
    spans = out[:, 0, 8].max(1).values - out[:, 0, 8].min(1).values
    assert (spans < 0.5).all() and (spans > 0.15).all()


def test_center_crop():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert torch.equal(center_crop(x, 4, 0.5), x[..., 2:6, 2:6])
    assert center_crop(x, 3, 0.875).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("kind", ["crop_flip", "inception", "none"])
def test_augment_pipeline_shapes_and_eval_is_deterministic(kind):
    aug = Augment(kind=kind, normalize="whiten" if kind != "inception" else "unit", image_size=24, pad=3, cutout=6)
    x = torch.randint(0, 256, (5, 3, 28, 28), dtype=torch.uint8)
    t = aug.train_batch(x, _gen())
    e1, e2 = aug.eval_batch(x), aug.eval_batch(x)
    assert t.shape == e1.shape == (5, 3, 24, 24) and t.dtype == torch.float32
    assert torch.equal(e1, e2)
    if kind == "inception":
        assert e1.min() >= -1 and e1.max() <= 1


def test_random_parameters_are_drawn_on_the_generators_device():
    """A batch on another device (here 'meta', standing in for a GPU) takes its crops, flips, cutouts
    and boxes from the CPU generator it is given, drawing exactly what a CPU batch draws: a seed gives
    the same augmentation on every device (CUDA's generators produce other streams than the CPU's)."""
    x = torch.rand(6, 3, 12, 12)
    meta = torch.empty_like(x, device="meta")
    for fn in (lambda t, g: pad_crop(t, 2, g), hflip, lambda t, g: cutout(t, 4, g),
               lambda t, g: random_resized_crop(t, 8, g),
               lambda t, g: Augment(kind="crop_flip", pad=2, cutout=4, image_size=12).train_batch(t, g)):
        g_cpu, g_meta = _gen(11), _gen(11)
        fn(x, g_cpu)
        out = fn(meta, g_meta)
        assert out.device.type == "meta"
        assert torch.equal(g_cpu.get_state(), g_meta.get_state())   # the same draws, on the CPU
