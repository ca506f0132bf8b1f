"""Learning-rate schedules as pure functions of the step (paper A.6, A.7).

* cosine: single-period cosine decay from `lr` to `lr_min` over the whole run (SGDR without
  restarts, the paper's CIFAR schedule);
* exponential: `lr * rate ** floor(step / (decay_epochs * steps_per_epoch))`, TF's staircase
  exponential decay as used for the ImageNet models (0.97 every 2.4 epochs);
* constant.

An optional linear warm-up from 0 over `warmup_epochs` precedes any of them.
"""

from __future__ import annotations

import math

from .config import TrainConfig


def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Learning rate for optimizer step `step` (0-based) of a run of cfg.epochs * steps_per_epoch steps."""
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
