"""Training: the recipes (config.py), LR schedules (schedule.py), optimizers and L2 (optim.py), the
weight EMA (ema.py), atomic checkpoints (checkpoint.py), run-directory files (run_files.py) and the
loop (loop.py). Paper A.6 (CIFAR, and child training during the search) and A.7 (ImageNet)."""

from .config import PRESETS, TrainConfig, preset
from .schedule import lr_at

__all__ = ["PRESETS", "TrainConfig", "lr_at", "preset"]
