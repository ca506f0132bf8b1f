"""Exponential moving average of the weights, used for evaluation (paper A.7: decay 0.9999).

As TensorFlow's ExponentialMovingAverage with `num_updates` (what slim's train_image_classifier
passes), the effective decay is min(decay, (1 + n) / (10 + n)) after n updates, so the average is
usable early in a run instead of being dominated by the initial weights. Floating-point buffers
(BatchNorm running statistics) are averaged too; integer buffers are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def _pairs(self, model: nn.Module):
        mine = dict(self.module.state_dict(keep_vars=True))
        return [(mine[k], v) for k, v in model.state_dict(keep_vars=True).items()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        n = self.num_updates
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        floats_ema, floats_live = [], []
        for ema_t, live in self._pairs(model):
            if ema_t.dtype.is_floating_point:
                floats_ema.append(ema_t.data)
                floats_live.append(live.detach())
            else:
                ema_t.data.copy_(live.detach())
        if floats_ema:
            torch._foreach_lerp_(floats_ema, floats_live, 1.0 - d)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
        self.decay = float(state["decay"])
