"""The reward itself: top-1, top-5 and loss of `evaluate_model` on hand-set logits, and a tiny digits
child that really learns (paper §3: the reward is the child's validation accuracy).

Each test names the bug it catches (a mutation of the source that makes it fail)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nasnet.data.augment import Augment
from nasnet.search.children.train import train_child
from nasnet.train.evaluate import evaluate_model


class Lookup(torch.nn.Module):
    """Returns the logits row set for each image; image i is filled with the value i (uint8), so the
    model reads back which example it was given whatever the batching."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)
        self.config = SimpleNamespace(num_classes=table.shape[1])

    def forward(self, x):
        index = (x[:, 0, 0, 0] * 255).round().long()
        return self.table[index]


# 8 examples, 7 classes. The label's rank among the logits (1 = highest) is set by hand:
# ranks 1, 2, 5, 6, 1, 3, 7, 4 -> top-1 2/8, top-5 6/8 (the 5 lowest logits would give 1/8 and 5/8).
LOGITS = np.array([
    [5.0, 1.0, 0.0, -1.0, 2.0, 0.5, -2.0],    # label 0: rank 1
    [3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0],   # label 1: rank 2
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0],      # label 1: rank 5
    [1.0, 2.0, 3.0, 4.0, 5.0, -3.0, -4.0],    # label 5: rank 6
    [-1.0, -2.0, -3.0, 9.0, -4.0, 0.0, 1.0],  # label 3: rank 1
    [0.0, 4.0, 1.0, 2.0, 3.0, -1.0, -2.0],    # label 3: rank 3
    [2.0, 2.5, 3.0, 3.5, 4.0, 1.0, 1.5],      # label 5: rank 7
    [0.0, 1.0, 2.0, 3.0, -1.0, 4.0, 1.5],     # label 6: rank 4
])
LABELS = np.array([0, 1, 1, 5, 3, 3, 5, 6])
RANKS = [1, 2, 5, 6, 1, 3, 7, 4]


def run(table, labels, batch_size):
    n = len(labels)
    x = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 1, 2, 2).contiguous()
    return evaluate_model(Lookup(table), x, torch.tensor(labels), Augment(kind="none", normalize="none", image_size=2),
                          batch_size, torch.device("cpu"), channels_last=False)


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_top1_top5_and_loss_on_hand_set_logits(batch_size):
    """Catches: a top-1 that is off by one or always 0, a top-5 that takes the 5 lowest or counts only
    the 5th, a loss that is not the cross-entropy of the label, a mean over batches rather than over
    examples (3, 3, 2 examples with batch 3)."""
    assert [int((row > row[y]).sum()) + 1 for row, y in zip(LOGITS, LABELS)] == RANKS   # the table is as said
    out = run(LOGITS, LABELS, batch_size)
    assert out["images"] == 8
    assert out["top1"] == pytest.approx(2 / 8, abs=1e-12)
    assert out["top5"] == pytest.approx(6 / 8, abs=1e-12)
    nll = [math.log(sum(math.exp(v) for v in row)) - row[y] for row, y in zip(LOGITS, LABELS)]
    assert out["loss"] == pytest.approx(sum(nll) / 8, rel=1e-6)


def test_top5_with_fewer_than_five_classes_is_certain():
    """With 3 classes every label is among the top 5 (top-k takes k = min(5, classes)); top-1 still
    counts. Catches: top-5 over a k larger than the class count failing, or a top-5 of 0 there."""
    table = np.array([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 3.0, 2.0]])
    out = run(table, np.array([0, 2, 2, 1]), 2)
    assert (out["top1"], out["top5"]) == (pytest.approx(3 / 4), 1.0)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from digits_subset import write_digits_npz

    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits.npz")


def test_a_tiny_digits_child_learns_well_above_chance(digits):
    """The search's reward for a NASNet-A child (1 normal cell per stage, F = 8) trained 2 epochs on
    256 digits, scored on 64 held-out ones: chance is 10%; this child scores about 45-60% (fixed
    seed; thread count and CPU change the last digits). Batch 8 gives it 64 steps: with fewer
    (batch 32, 16 steps) the BatchNorm running statistics lag the weights and evaluation-mode
    accuracy stays near chance although training accuracy is about 35%.

    Catches: a reward that is always 0 or chance, labels misaligned with images, a gradient step of
    the wrong sign, an evaluation on the training split's labels."""
    threads = torch.get_num_threads()
    try:
        r = train_child({"genotype": "nasnet-a", "data": digits, "device": "cpu", "seed": 0,
                         "model": {"normal_cells": 1, "filters": 8, "stem_multiplier": 1.0},
                         "train": {"epochs": 2, "batch_size": 8, "lr": 0.05, "threads": 1}})
    finally:
        torch.set_num_threads(threads)
    assert r["status"] == "done"
    assert r["reward"] >= 0.3, r                 # 19 of 64 or more; by chance: p < 1e-4
    assert r["val_loss"] < math.log(10) - 0.5, r  # far below the loss of a uniform guess
