"""Model size and cost: parameters, BatchNorm statistics and mult-adds (docs/reference-configs.md).

Conventions, those of the numbers the paper and the reference implementations report:
* parameters: trainable parameters, without the auxiliary head;
* "+ BN stats" adds each BatchNorm's running mean and variance (Keras and the paper count them);
* mult-adds: multiply-accumulates of every convolution and linear layer for one image at the
  model's image size, auxiliary head excluded. Pooling, BN, ReLU and additions are not counted.

Counting runs on PyTorch's "meta" device when given a config, so even NASNet-A Large is counted in
a moment without allocating its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .network import ModelConfig, NASNet


@dataclass(frozen=True)
class ModelCounts:
    params: int
    params_with_bn_stats: int
    mult_adds: int


def _main_modules(model: NASNet):
    aux = set(model.aux_head.modules()) if model.aux_head is not None else set()
    return [m for m in model.modules() if m not in aux]


def count_params(model: NASNet) -> int:
    """Trainable parameters, auxiliary head excluded."""
    return sum(p.numel() for m in _main_modules(model) for p in m.parameters(recurse=False) if p.requires_grad)


def count_bn_stats(model: NASNet) -> int:
    """BatchNorm running means and variances, auxiliary head excluded."""
    return sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in _main_modules(model)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )


def count_mult_adds(model: NASNet, image_size: int | None = None) -> int:
    """Conv and linear multiply-accumulates for one image (auxiliary head excluded)."""
    cfg = model.config
    size = image_size or cfg.image_size
    total = 0

    def conv_hook(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += mod.in_features * mod.out_features

    hooks, skipped = [], []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            # BatchNorm counts nothing and keeps the shape; on the meta device PyTorch runs it through
            # Python decompositions, two thirds of the time of counting NASNet-A Large
            m.forward = _same
            skipped.append(m)
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, cfg.in_chans, size, size, device=device))
    finally:
        for h in hooks:
            h.remove()
        for m in skipped:
            del m.forward
        model.train(was_training)
    return total


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def count(model_or_config: NASNet | ModelConfig) -> ModelCounts:
    """All three numbers for a model, or for a config (built on the meta device, no weights allocated)."""
    if isinstance(model_or_config, ModelConfig):
        with torch.device("meta"):
            model = NASNet(model_or_config)
    else:
        model = model_or_config
    params = count_params(model)
    return ModelCounts(params, params + count_bn_stats(model), count_mult_adds(model))
