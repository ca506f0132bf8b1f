"""Learning-rate schedules as pure functions of the step (paper A.6, A.7; docs/training.md, "Recipes").

* cosine: single-period cosine decay from `lr` to `lr_min` over the whole run (SGDR without
  restarts, the paper's CIFAR schedule);
* exponential: `lr * rate ** floor(step / (decay_epochs * steps_per_epoch))`, TF's staircase
  exponential decay as used for the ImageNet models (0.97 every 2.4 epochs);
* constant.

An optional linear warm-up from 0 over `warmup_epochs` precedes any of them. With K data-parallel
processes and `lr_scaling="linear"` every value (lr and lr_min, hence the whole curve) is K times
larger (Goyal et al., 2017: the global batch is K times larger).
"""

from __future__ import annotations

import math

from .config import TrainConfig


def lr_scale(cfg: TrainConfig, world_size: int = 1) -> int:
    """The factor `lr_scaling` applies with `world_size` processes: K for "linear", else 1."""
    return world_size if cfg.lr_scaling == "linear" else 1


def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: int, world_size: int = 1) -> float:
    """Learning rate for optimizer step `step` (0-based) of a run of cfg.epochs * steps_per_epoch steps,
    run by `world_size` processes (see `lr_scale`)."""
    return _unscaled_lr(step, cfg, steps_per_epoch) * lr_scale(cfg, world_size)


def _unscaled_lr(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "exponential":
        period = max(1, int(cfg.lr_decay_epochs * steps_per_epoch))
        return cfg.lr * cfg.lr_decay_rate ** ((step - warmup) // period)
    span = max(1, total - warmup)
    t = min(1.0, (step - warmup) / span)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * t))
