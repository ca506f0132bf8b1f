"""Horizontal flips follow the data: never on digits (a mirrored digit is no digit, or another one),
on photographs as the paper's CIFAR recipe (A.1); a recipe's `flip` overrides the data."""

import numpy as np
import pytest
import torch

from nasnet.data import Dataset, Split, load_dataset
from nasnet.errors import NasnetError
from nasnet.train.config import resolve
from nasnet.train.loop import Trainer


def _photos(n=128, size=8, seed=0) -> Dataset:
    """Random images standing in for photographs (the default: a mirror image keeps its label)."""
    rng = np.random.default_rng(seed)
    split = Split(rng.integers(0, 256, (n, 1, size, size), dtype=np.uint8), rng.integers(0, 10, n))
    return Dataset("photos", "npz", {"train": split, "val": split, "test": Split(split.x[:0], split.y[:0])}, 10)


def _mirrored(dataset: Dataset, preset: str, **train) -> tuple[int, int]:
    """(images mirrored, images left as they are) in one training batch of the run's real pipeline.

    crop_pad 0 makes the crop the identity, and whitening does not see a mirror, so each augmented
    image must equal the plainly normalised one or its mirror image (computed here with numpy)."""
    run = resolve(dataset, preset, {"crop_pad": 0, "device": "cpu", **train},
                  model={"normal_cells": 1, "filters": 4})
    trainer = Trainer(run.model, run.train, run.dataset)
    x = torch.from_numpy(dataset.split("train").x[:64])
    out = trainer.augment.train_batch(x, torch.Generator().manual_seed(3)).numpy()
    plain = trainer.augment.eval_batch(x).numpy()
    same = [np.allclose(o, p, atol=1e-5) for o, p in zip(out, plain)]
    flipped = [np.allclose(o, p[..., ::-1], atol=1e-5) for o, p in zip(out, plain)]
    assert all(s or f for s, f in zip(same, flipped))           # nothing else happened to an image
    return sum(f and not s for s, f in zip(same, flipped)), sum(s for s in same)


@pytest.mark.parametrize("preset", ["child", "digits"])   # the search's child and `nasnet train`'s recipe
def test_digits_are_never_mirrored(preset):
    digits = load_dataset("digits")
    assert not digits.mirror_safe
    mirrored, kept = _mirrored(digits, preset)
    assert mirrored == 0 and kept == 64


def test_photographs_are_mirrored_about_half_the_time():
    mirrored, kept = _mirrored(_photos(), "child")
    assert 20 <= mirrored <= 44 and mirrored + kept == 64       # Binomial(64, 1/2): 32 +- 3 sd


def test_a_recipe_overrides_the_data():
    assert _mirrored(load_dataset("digits"), "child", flip=True)[0] >= 20
    assert _mirrored(_photos(), "child", flip=False) == (0, 64)
    with pytest.raises(NasnetError, match="flip"):
        resolve(_photos(), "child", {"flip": "yes"})


def test_final_training_on_the_validation_images_keeps_the_datas_choice():
    digits = load_dataset("digits")
    assert digits.default_holdout and not digits.with_val_trained().mirror_safe
