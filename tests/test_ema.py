"""The weight average used for evaluation (paper A.7: decay 0.9999) against the closed form of
TensorFlow's ExponentialMovingAverage with num_updates, computed here in float64 NumPy."""

import numpy as np
import pytest
import torch
from torch import nn

from nasnet.train.ema import ModelEMA


def _tf_ema(initial: np.ndarray, values: list[np.ndarray], decay: float) -> np.ndarray:
    """shadow_n = d_n * shadow_{n-1} + (1 - d_n) * value_n with d_n = min(decay, (1 + n) / (10 + n)),
    n = 1, 2, ... the update count, starting from the weights the average was made from."""
    shadow = initial.astype(np.float64)
    for n, v in enumerate(values, start=1):
        d = min(decay, (1 + n) / (10 + n))
        shadow = d * shadow + (1 - d) * v.astype(np.float64)
    return shadow


@pytest.mark.parametrize("decay", [0.9999, 0.5])
def test_the_average_follows_tensorflows_closed_form(decay):
    # catches: the plain decay from the first step (no num_updates warm-up), the warm-up counted from
    # 0 or off by one, decay and 1 - decay swapped, BatchNorm statistics left out, the integer
    # counter averaged instead of copied
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3))
    ema = ModelEMA(model, decay)
    start = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    seen = {k: [] for k in start}
    rng = np.random.default_rng(1)
    for _ in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.from_numpy(rng.normal(0, 1, tuple(p.shape))).float())
        model.train()
        model(torch.from_numpy(rng.normal(0, 1, (4, 2, 5, 5))).float())   # moves the BN running stats
        for k, v in model.state_dict().items():
            seen[k].append(v.detach().numpy().copy())
        ema.update(model)
    averaged = ema.module.state_dict()
    for key in ("0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        want = _tf_ema(start[key], seen[key], decay)
        assert np.allclose(averaged[key].numpy(), want, rtol=1e-5, atol=1e-6), key
        assert not np.allclose(want, seen[key][-1])          # the average is not the live weights
    assert int(averaged["1.num_batches_tracked"]) == 6 and ema.num_updates == 6
    # decay 0.9999 is still inside the warm-up after 6 updates: d_6 = 7/16, not 0.9999
    if decay == 0.9999:
        d6 = 7 / 16
        prev = _tf_ema(start["0.weight"], seen["0.weight"][:5], decay)
        assert np.allclose(averaged["0.weight"].numpy(), d6 * prev + (1 - d6) * seen["0.weight"][5], atol=1e-6)


def test_the_average_survives_a_checkpoint():
    # catches: num_updates not saved (a resumed run would restart the warm-up)
    model = nn.Linear(3, 2)
    ema = ModelEMA(model, 0.9)
    for _ in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        ema.update(model)
    again = ModelEMA(nn.Linear(3, 2), 0.5)
    again.load_state_dict(ema.state_dict())
    assert again.num_updates == 3 and again.decay == 0.9
    for a, b in zip(ema.module.state_dict().values(), again.module.state_dict().values()):
        assert torch.equal(a, b)
