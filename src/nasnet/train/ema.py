"""Exponential moving average of the weights, used for evaluation (paper A.7: decay 0.9999; docs/training.md,
"Recipes").

As TensorFlow's ExponentialMovingAverage with `num_updates` (what slim's train_image_classifier
passes), the effective decay is min(decay, (1 + n) / (10 + n)) after n updates, so the average is
usable early in a run instead of being dominated by the initial weights. Floating-point buffers
(BatchNorm running statistics) are averaged too; integer buffers are copied.
"""

from __future__ import annotations

import copy
import weakref

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._cached: tuple[weakref.ref, tuple[list[torch.Tensor], ...]] | None = None

    def _pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], ...]:
        """(averaged, live) floating-point tensors and (copied, live) integer ones, in state-dict order;
        built on the first update and kept while `model` is the same module (its tensors are updated
        in place by training and by load_state_dict, so the lists stay valid; moving a module to another
        device replaces them, so the average is built after the model is placed)."""
        if self._cached is None or self._cached[0]() is not model:
            mine = dict(self.module.state_dict(keep_vars=True))
            lists: tuple[list[torch.Tensor], ...] = ([], [], [], [])
            for k, live in model.state_dict(keep_vars=True).items():
                kind = 0 if live.dtype.is_floating_point else 2
                lists[kind].append(mine[k].detach())
                lists[kind + 1].append(live.detach())
            self._cached = (weakref.ref(model), lists)
        return self._cached[1]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average: one multi-tensor lerp over every floating-point tensor and one
        multi-tensor copy of the integer buffers (a launch or two for the whole model on a GPU)."""
        self.num_updates += 1
        n = self.num_updates
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        floats_ema, floats_live, ints_ema, ints_live = self._pairs(model)
        if floats_ema:
            torch._foreach_lerp_(floats_ema, floats_live, 1.0 - d)
        if ints_ema:
            torch._foreach_copy_(ints_ema, ints_live)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
        self.decay = float(state["decay"])
