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


# --- the reference's Inception crop and colour distortion ---------------------------------------------

def _boxes(out: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(area fraction, aspect ratio) of the boxes random_resized_crop took from a coordinate image."""
    xs, ys = out[:, 0], out[:, 1]
    scale = size / (size - 1)         # sampled at pixel centres: the outermost are half a pixel inside
    w = (xs.amax((1, 2)) - xs.amin((1, 2))) * scale
    h = (ys.amax((1, 2)) - ys.amin((1, 2))) * scale
    return w * h, w / h


def test_inception_crop_follows_the_reference_sampler():
    n, side, size = 2000, 64, 16
    coords = torch.stack(torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="xy"))
    x = coords.expand(n, 2, side, side)                      # channel 0: column position, 1: row position
    area, aspect = _boxes(random_resized_crop(x, size, _gen(), flip=False), size)
    # TF-Slim: area range [0.05, 1], but a crop must cover 10% of the whole-image box; aspect 0.75-1.33
    assert area.min() > 0.1 * 0.93 and area.max() <= 1.05
    assert (area < 0.13).sum() > 10                       # the smallest crops are there: ~10%, not 8% or 5%
    assert aspect.min() > 0.75 * 0.95 and aspect.max() < 1.33 * 1.05
    assert 0.3 < area.median() < 0.6                       # heights uniform, not areas
    # reproducible from the generator; a different seed, different boxes
    again = random_resized_crop(x[:8], size, _gen(5))
    assert torch.equal(again, random_resized_crop(x[:8], size, _gen(5)))
    assert not torch.equal(again, random_resized_crop(x[:8], size, _gen(6)))


def test_hsv_round_trip_matches_colorsys():
    import colorsys

    from nasnet.data.augment import hsv_to_rgb, rgb_to_hsv

    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    hsv = rgb_to_hsv(x)
    for b, i, j in [(0, 0, 0), (1, 4, 6), (0, 2, 3)]:
        ref = colorsys.rgb_to_hsv(*x[b, :, i, j].tolist())
        assert torch.allclose(hsv[b, :, i, j], torch.tensor(ref, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-9)


def test_color_distortion_parameters_are_the_references():
    from nasnet.data.augment import BRIGHTNESS_DELTA, distort_color

    # grey images: saturation and hue change nothing, so "fast" is a brightness shift of at most 32/255
    grey = torch.rand(500, 1, 1, 1).expand(500, 3, 4, 4) * 0.5 + 0.25
    out = distort_color(grey, "fast", _gen())
    shift = (out - grey).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= BRIGHTNESS_DELTA + 1e-6 and shift.abs().max() > 0.9 * BRIGHTNESS_DELTA
    # each op alone: saturation x0.5-1.5, hue +-0.2 turn, contrast x0.5-1.5 about the channel means
    from nasnet.data.augment import _distort, rgb_to_hsv

    colour = torch.tensor([0.6, 0.45, 0.3]).view(1, 3, 1, 1).expand(3, 3, 2, 2)
    ends = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(rgb_to_hsv(_distort(colour, "S", ends))[:, 1, 0, 0] / 0.5, torch.tensor([0.5, 1, 1.5]))
    hue = (rgb_to_hsv(_distort(colour, "H", ends))[:, 0, 0, 0] - rgb_to_hsv(colour)[:, 0, 0, 0] + 0.5) % 1 - 0.5
    assert torch.allclose(hue, torch.tensor([-0.2, 0.0, 0.2]), atol=1e-6)
    ramp = torch.linspace(0.2, 0.8, 4).view(1, 1, 2, 2).expand(3, 3, 2, 2)
    assert torch.allclose(_distort(ramp, "C", ends) - 0.5, (ramp - 0.5) * torch.tensor([0.5, 1, 1.5]).view(3, 1, 1, 1))
    # full mode adds hue (+-0.2 turn) and contrast; the result stays in [0, 1]; reproducible; any ordering
    rgb = torch.rand(400, 3, 6, 6)
    full = distort_color(rgb, "full", _gen(2))
    assert full.min() >= 0 and full.max() <= 1 and torch.equal(full, distort_color(rgb, "full", _gen(2)))
    hue_moved = (rgb_to_hsv(full)[:, 0] - rgb_to_hsv(rgb)[:, 0]).abs().mean() > 0.02
    assert hue_moved and not torch.equal(full, distort_color(rgb, "fast", _gen(2)))
    assert torch.equal(distort_color(rgb, "none", _gen()), rgb)


def test_imagenet_recipe_distorts_colour_on_the_batch():
    from nasnet.train.config import PRESETS

    cfg = PRESETS["imagenet"]
    assert (cfg.crop_scale_min, cfg.crop_min_covered, cfg.color_distort) == (0.05, 0.1, "fast")
    aug = cfg.augment_for(16)
    x = torch.randint(0, 256, (6, 3, 20, 20), dtype=torch.uint8)
    plain = Augment(kind="inception", normalize="unit", image_size=16, cutout=0)
    assert aug.color == "fast" and not torch.equal(aug.train_batch(x, _gen()), plain.train_batch(x, _gen()))
    assert torch.equal(aug.eval_batch(x), plain.eval_batch(x))      # evaluation is never distorted


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


# --- train and eval normalise alike, as NumPy computes it ---------------------------------------------

def _whitened(x_uint8: np.ndarray) -> np.ndarray:
    """TensorFlow's per_image_standardization of x / 255, image by image, in float64 NumPy."""
    a = x_uint8.astype(np.float64) / 255
    flat = a.reshape(len(a), -1)
    std = np.maximum(flat.std(axis=1), 1 / math.sqrt(flat.shape[1]))
    return ((flat - flat.mean(axis=1, keepdims=True)) / std[:, None]).reshape(a.shape)


def _flipped_or_not(train: torch.Tensor, ref: torch.Tensor) -> list[bool]:
    """For each image: whether train is ref mirrored (True) or ref as it is (False); fails if neither."""
    out = []
    for t, r in zip(train, ref):
        same, mirrored = torch.allclose(t, r, atol=1e-5), torch.allclose(t, r.flip(2), atol=1e-5)
        assert same or mirrored
        out.append(mirrored and not same)
    return out


def test_train_and_eval_whiten_alike_and_as_numpy_does():
    # catches: whitening with other statistics at training than at evaluation (per batch, per channel,
    # with the std's correction), /255 forgotten on one side, an eval path that skips normalisation
    x = torch.randint(0, 256, (12, 3, 10, 10), dtype=torch.uint8, generator=_gen(10))
    x[0] = 77                                     # a constant image: TF divides by 1/sqrt(n), not 0
    aug = Augment(kind="crop_flip", normalize="whiten", image_size=10, pad=0, cutout=0)
    ev = aug.eval_batch(x)
    assert np.allclose(ev.numpy(), _whitened(x.numpy()), atol=1e-5)
    flips = _flipped_or_not(aug.train_batch(x, _gen(1)), ev)   # pad 0, no cutout: only the flip is random
    assert any(flips) and not all(flips)


def test_padding_is_the_whitened_mean():
    # catches: padding before whitening (the zeros would enter the statistics) or padding with raw 0
    # after a normalisation that does not centre: each training image must be a window of the eval
    # image padded with zeros
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=_gen(11))
    aug = Augment(kind="crop_flip", normalize="whiten", image_size=8, pad=2, cutout=0)
    ev = torch.from_numpy(_whitened(x.numpy())).float()
    padded = torch.nn.functional.pad(ev, (2, 2, 2, 2))
    for t, p in zip(aug.train_batch(x, _gen(2)), padded):
        windows = [p[:, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.allclose(t, w, atol=1e-5) or torch.allclose(t, w.flip(2), atol=1e-5) for w in windows)


def test_resizing_is_the_same_in_training_and_evaluation_and_matches_pil():
    # catches: training resized one way (e.g. without antialiasing) and evaluation another
    from PIL import Image

    x = torch.randint(0, 256, (6, 3, 20, 20), dtype=torch.uint8, generator=_gen(12))
    aug = Augment(kind="crop_flip", normalize="none", image_size=12, pad=0, cutout=0)
    ev = aug.eval_batch(x)
    _flipped_or_not(aug.train_batch(x, _gen(3)), ev)
    # PIL's bilinear resize (antialiased when reducing) of each channel as a float image, / 255
    ref = np.stack([[np.asarray(Image.fromarray(ch.astype(np.float32), "F").resize((12, 12), Image.BILINEAR))
                     for ch in img] for img in x.numpy()]) / 255
    assert np.abs(ev.numpy() - ref).max() < 1e-4


def test_inception_eval_is_the_central_crop_in_unit_range():
    # catches: a crop fraction or offset other than the central 87.5%, [0, 1] instead of [-1, 1]
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=_gen(13))
    aug = Augment(kind="inception", normalize="unit", image_size=14, cutout=0)   # round(16 * 0.875) = 14
    want = x.numpy()[:, :, 1:15, 1:15].astype(np.float64) / 255 * 2 - 1
    assert np.allclose(aug.eval_batch(x).numpy(), want, atol=1e-6)
