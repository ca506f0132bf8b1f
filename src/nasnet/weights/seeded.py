"""Deterministic weights and inputs for parity fixtures (tests/fixtures, tools/).

A parity test compares our logits with a reference implementation's for the same weights. The
reference is not installed where the tests run, so a tool run once beside it (tools/) stores the
reference's key layout and logits; the test regenerates the same weights from the layout with
`seeded_state_dict` and loads them through our importer. Weights depend only on (seed, key name,
shape), and are scaled so that a deep NASNet's activations stay of order one.
"""

from __future__ import annotations

from typing import Mapping

import torch

from ..errors import NasnetError
from ..seeding import FIXTURE, derive_seed

_COUNTER = "num_batches_tracked"


def _generator(seed: int, key: str) -> torch.Generator:
    # Per-key seeds: a key's tensor does not depend on which other keys exist or their order, so a
    # 1000- and a 1001-class layout share every weight but the classifier's.
    return torch.Generator().manual_seed(derive_seed(seed, key, FIXTURE))


def seeded_state_dict(shapes: Mapping[str, tuple[int, ...] | list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """A deterministic weight set for the given key -> shape layout, scaled so a deep NASNet stays O(1).

    Rules by key: conv/linear weights ~ N(0, gain^2 / fan_in) (gain sqrt(2) for convs, 1 for linear
    layers); BN weight ~ U(0.5, 1), bias and running_mean ~ N(0, 0.1^2), running_var ~ U(1, 2)
    (positive); linear bias ~ N(0, 0.1^2); BN counters 0. Identical on every machine for a given
    torch version (CPU generator, float32), which is what lets the fixture test run anywhere.
    """
    out: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        shape = tuple(int(s) for s in shape)
        g = _generator(seed, key)
        leaf = key.rpartition(".")[2]
        if leaf == _COUNTER:
            out[key] = torch.zeros((), dtype=torch.long)
        elif leaf == "running_var":
            out[key] = 1.0 + torch.rand(shape, generator=g)
        elif leaf == "running_mean":
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "weight" and len(shape) == 1:  # BatchNorm scale
            out[key] = 0.5 + 0.5 * torch.rand(shape, generator=g)
        elif leaf == "bias":
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "weight":
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            gain = 2.0**0.5 if len(shape) == 4 else 1.0
            out[key] = torch.randn(shape, generator=g) * (gain / fan_in**0.5)
        else:
            raise NasnetError(f"seeded_state_dict: no rule for key {key!r}")
    return out


def seeded_input(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A deterministic input batch in roughly the models' [-1, 1] input range."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).clamp_(-2.5, 2.5) * 0.4
