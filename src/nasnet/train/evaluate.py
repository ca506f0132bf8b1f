"""Scoring a model: loss, top-1 and top-5 on a split, in one process or sharded over K (paper A.7).

`evaluate_model` is the one evaluation: the training loop's `Trainer.evaluate`, `nasnet eval` and the
benchmarks use it. `evaluate_checkpoint` is what `nasnet eval` runs: a training checkpoint (or run
directory) is scored with its own configuration, model and input pipeline, the weight EMA when the
run kept one (as the paper evaluates its ImageNet models); other weights `nasnet.load_model` reads
are scored on the data given, with the model's preprocessing or the data kind's default recipe.
docs/training.md ("Run directory and resume") says what `nasnet eval` accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import load_dataset
from ..data.augment import Augment
from ..errors import NasnetError
from ..model.network import NASNet
from ..weights.formats import PYTORCH, detect_format
from ..weights.io import read_checkpoint
from ..zoo.factory import load_model
from . import distributed
from .config import TrainConfig, default_preset, preset, training_data
from .device import cudnn_autotune, device_splits, resolve_device, uses_bf16
from .run_dir import CHECKPOINT_FILE, FORMAT, load_checkpoint


def evaluate_checkpoint(path: str | Path, data: str | None = None, split: str = "test", batch_size: int | None = None,
                        device: str = "auto", use_ema: bool = True, model: str | None = None) -> dict[str, Any]:
    """{"checkpoint", "data", "split", "epoch", "ema", "loss", "top1", "top5", "images"} for a checkpoint
    file (checkpoint.pt / best.pt), a run directory, or other weights (`model`: the zoo model they are,
    needed for a plain state dict; `data` is then required)."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise NasnetError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    dev = resolve_device(device)
    state = _training_checkpoint(path)
    if not (isinstance(state, dict) and state.get("format") == FORMAT):
        return _evaluate_weights(path, state, model, data, split, batch_size, dev)
    config = state["config"]
    train_cfg = TrainConfig.from_dict(config["train"])
    ema = use_ema and state.get("ema") is not None
    model = load_model(state, weights_key="ema" if ema else "model")
    cfg = model.config
    dataset = training_data(load_dataset(data or config["data"]), train_cfg)  # the splits the run used
    if dataset.num_classes != cfg.num_classes or dataset.channels != cfg.in_chans:
        raise NasnetError(f"{dataset.spec} has {dataset.num_classes} classes of {dataset.channels}-channel images; "
                          f"the checkpoint's model expects {cfg.num_classes} of {cfg.in_chans}")
    dataset.split(split)
    model = model.to(dev).to(memory_format=torch.channels_last)
    x, y = device_splits(dataset, dev)[split]
    metrics = evaluate_model(model, x, y, train_cfg.augment_for(cfg.image_size),
                             batch_size or train_cfg.eval_batch_size, dev, uses_bf16(train_cfg.precision, dev))
    return {"checkpoint": str(path), "data": dataset.spec, "split": split, "epoch": state.get("epoch"), "ema": ema,
            "data_image_size": dataset.image_size, "model_image_size": cfg.image_size, **metrics}


def _training_checkpoint(path: str | Path) -> Any:
    """The loaded PyTorch file at `path` (a run directory: its checkpoint.pt), or None for other formats.
    Files of no known format go to the training-checkpoint reader, whose error says what they are not."""
    p = Path(path).expanduser()
    if p.is_dir() and (p / CHECKPOINT_FILE).is_file():
        return load_checkpoint(p)
    try:
        fmt = detect_format(p)
    except NasnetError:
        return load_checkpoint(p)
    return read_checkpoint(p) if fmt == PYTORCH else None


def _eval_augment(model: NASNet, kind: str) -> Augment:
    """Evaluation preprocessing for weights without a training config: the model's own, else the recipe's."""
    size = model.config.image_size
    prep = getattr(model, "preprocessing", None)
    if prep is None:
        return preset(default_preset(kind, size)).augment_for(size)
    modes = {((0.5,) * 3, (0.5,) * 3): "unit", ((0.0,) * 3, (1.0,) * 3): "none"}
    if (prep.mean, prep.std) not in modes:
        raise NasnetError(f"nasnet eval scales inputs to [-1, 1] or [0, 1]; this model's preprocessing has mean "
                          f"{list(prep.mean)} and std {list(prep.std)}")
    return Augment(kind="inception", normalize=modes[prep.mean, prep.std], image_size=size, eval_crop=prep.crop_pct)


def _evaluate_weights(path: str | Path, loaded: Any, model: str | None, data: str | None, split: str,
                      batch_size: int | None, dev: torch.device) -> dict[str, Any]:
    if data is None:
        raise NasnetError(f"{str(path)!r} holds weights, not a training run: give the data to score them on (`data`)"
                          + ("" if model else ", and `model` for a plain state dict"))
    net = load_model(loaded if loaded is not None else path, expect=model)
    cfg = net.config
    dataset = load_dataset(data)
    if dataset.num_classes != cfg.num_classes or dataset.channels != cfg.in_chans:
        raise NasnetError(f"{dataset.spec} has {dataset.num_classes} classes of {dataset.channels}-channel images; "
                          f"the model expects {cfg.num_classes} of {cfg.in_chans}")
    dataset.split(split)
    augment = _eval_augment(net, dataset.kind)
    net = net.to(dev).to(memory_format=torch.channels_last)
    x, y = device_splits(dataset, dev)[split]
    metrics = evaluate_model(net, x, y, augment, batch_size or TrainConfig().eval_batch_size, dev)
    return {"checkpoint": str(path), "data": dataset.spec, "split": split, "epoch": None, "ema": False,
            "data_image_size": dataset.image_size, "model_image_size": cfg.image_size, **metrics}


@torch.no_grad()
def evaluate_model(model: NASNet, x_all: torch.Tensor, y_all: torch.Tensor, augment: Augment, batch_size: int,
                   device: torch.device, bf16: bool = False, channels_last: bool = True, *,
                   rank: int = 0, world_size: int = 1) -> dict[str, float]:
    """Loss, top-1 and top-5 of `model` on uint8 images (evaluation preprocessing, no augmentation).

    With world_size > 1 (a collective: every process calls it with the same model) each process
    scores every world_size-th example and the per-example results are gathered with their indices,
    so each example of the split counts exactly once and the result equals one process's."""
    with cudnn_autotune(device):
        return _evaluate(model, x_all, y_all, augment, batch_size, device, bf16, channels_last, rank, world_size)


def _evaluate(model: NASNet, x_all: torch.Tensor, y_all: torch.Tensor, augment: Augment, batch_size: int,
              device: torch.device, bf16: bool, channels_last: bool, rank: int, world_size: int) -> dict[str, float]:
    """evaluate_model's body, run with cuDNN's autotuner on (on CUDA)."""
    was_training = model.training
    model.eval()
    n_all = len(y_all)
    index = distributed.shard_indices(n_all, rank, world_size, y_all.device) if world_size > 1 else None
    if index is not None:
        x_all, y_all = x_all[index], y_all[index]
    rows = []
    k = min(5, model.config.num_classes)
    try:
        for i in range(0, len(y_all), batch_size):
            x = augment.eval_batch(x_all[i:i + batch_size])
            x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            y = y_all[i:i + batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)
            logits = logits.float()
            topk = logits.topk(k, dim=1).indices
            rows.append(torch.stack([F.cross_entropy(logits, y, reduction="none").double(),
                                     (topk[:, 0] == y).double(), (topk == y[:, None]).any(1).double()], 1))
    finally:
        model.train(was_training)
    per_example = torch.cat(rows) if rows else torch.zeros((0, 3), dtype=torch.float64, device=y_all.device)
    if index is not None:
        per_example = distributed.gather_indexed(index, per_example, n_all)
    n = len(per_example)
    if n == 0:
        return {"loss": float("nan"), "top1": float("nan"), "top5": float("nan"), "images": 0}
    loss, top1, top5 = per_example.mean(0).tolist()
    return {"loss": loss, "top1": top1, "top5": top5, "images": n}
