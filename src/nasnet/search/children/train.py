"""Child training, the search's reward (paper §3, A.1, A.6): a ChildPayload in, a ChildResult out.

`train_child(payload)` trains one sampled architecture the paper's way and scores it on the held-out
validation split; what each payload and result key means is nasnet.search.contract's. This child
takes a genotype's text form, its JSON object or a name ("nasnet-a"); `data` defaults to "digits",
`seed` to 0, `device` to "auto"; `model` overrides the child network below, `train` the "child"
recipe (docs/training.md, "Recipes"). With ASHA's `rung_epochs` and `checkpoint` it trains to that
epoch of a schedule spanning train.epochs, continuing from the checkpoint when it holds this same
child (at an epoch no later than rung_epochs) and writing it atomically when done; a rung already
trained is reported again without training. It fills every result key; reward = val_accuracy. With
`test` true it also scores the trained child on the data's test split (test_accuracy), which no
selection reads: a benchmark's held-out measure.

The child network: the CIFAR skeleton, N = 2 normal cells per stage, F0 = 32, stem multiplier 3, no
auxiliary head, no ScheduledDropPath, no dropout; classes, channels and image size come from the
data. `nasnet search` on the built-in digits uses a much cheaper child (docs/search.md).

Bad payloads raise NasnetError; other exceptions (out of memory, ...) propagate: the search's
executor records them as failed trials. Loaded datasets are cached per process, so a worker that
trains many children reads its data once; importing this module does not import torch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ...arch.genotype import Genotype
from ...data import load_dataset
from ...errors import NasnetError
from ..contract import ChildPayload, ChildResult

CHILD_MODEL_DEFAULTS: dict[str, Any] = dict(skeleton="cifar", normal_cells=2, filters=32, stem_multiplier=3.0,
                                            aux_head=False, drop_path_keep=1.0, dropout=0.0)


def child_setup(payload: dict[str, Any]):
    """(ModelConfig, TrainConfig, Dataset) for a payload; raises NasnetError on a bad one."""
    from ...model.network import ModelConfig
    from ...train.config import resolve

    if not isinstance(payload, dict):
        raise NasnetError(f"child payload must be a JSON object, got {type(payload).__name__}")
    if "genotype" not in payload:
        raise NasnetError("child payload: 'genotype' is required")
    genotype = payload["genotype"]
    if not isinstance(genotype, (str, dict)):
        raise NasnetError("child payload: 'genotype' must be the text form (or its JSON object)")
    genotype = Genotype.from_dict(genotype) if isinstance(genotype, dict) else Genotype.load(genotype)
    model_over = payload.get("model") or {}
    train_over = payload.get("train") or {}
    for key, value in (("model", model_over), ("train", train_over)):
        if not isinstance(value, dict):
            raise NasnetError(f"child payload: '{key}' must be an object of field overrides")
    seed = payload.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise NasnetError(f"child payload: 'seed' must be an integer, got {seed!r}")
    data = payload.get("data", "digits")
    if not isinstance(data, str):
        raise NasnetError("child payload: 'data' must be a data spec string such as 'digits'")
    device = payload.get("device", "auto")
    if not isinstance(payload.get("test", False), bool):
        raise NasnetError(f"child payload: 'test' must be true or false, got {payload['test']!r}")

    if "genotype" in model_over:
        raise NasnetError("child payload: give the genotype as payload['genotype'], not in 'model'")
    dataset = load_dataset(data)
    dataset.split("val")  # the reward needs a validation split: fail early, with the data named
    if payload.get("test"):
        dataset.split("test")  # the same for the test accuracy asked for
    run = resolve(dataset, "child", {"seed": seed, "device": device, **train_over},
                  ModelConfig(genotype=genotype, **CHILD_MODEL_DEFAULTS), model_over, "child")
    return run.model, run.train, run.dataset


def check_child_settings(config) -> None:
    """A search's settings for this child (a SearchConfig's `child`), checked before the search starts
    (before its run directory is written): the overrides, then the data (it exists, is read, has a
    validation split and a training split at least one batch long; the model fits its classes).
    Other child functions are not this module's business."""
    from ..choices import DEFAULT_CHILD_FN

    if config.child.fn == DEFAULT_CHILD_FN:
        check_overrides(config.child.model, config.child.train)
        check_child_data(config.child)


def check_child_data(child) -> None:
    """The child's data (a ChildConfig's), read and resolved as every child will: one line instead of a
    search whose children all fail on it."""
    from ...train.config import training_data

    payload = {"genotype": "nasnet-a", "model": child.model, "train": child.train, "data": child.data}
    try:
        _, train_cfg, dataset = child_setup(payload)
    except NasnetError as err:
        raise NasnetError(f"the children's data {child.data!r}: {err}") from None
    images = len(training_data(dataset, train_cfg).split("train"))
    if train_cfg.batch_size > images:
        raise NasnetError(f"the children's data {child.data!r} has {images:,} training images, fewer than a batch "
                          f"of the child's {train_cfg.batch_size:,}: set `child.train.batch_size` to at most "
                          f"{images:,}, or give more data")


def check_overrides(model: dict[str, Any], train: dict[str, Any]) -> None:
    """Refuse, before a search starts, child settings every child would fail on (0 epochs, an infinite lr,
    an unknown field): one line instead of a search whose children all fail. The message names the
    config's fields (the command line names its flags)."""
    from ...arch.genotype import NASNET_A
    from ...model.network import ModelConfig
    from ...train.config import preset

    try:
        preset("child", **train)
        ModelConfig(genotype=NASNET_A, **CHILD_MODEL_DEFAULTS).replace(**model)
    except (NasnetError, TypeError) as err:
        raise NasnetError("child settings (`child.train.epochs`, `child.model.normal_cells`, `child.model.filters`, "
                          f"`child.options`): {err}") from None


def _device_name(device) -> str:
    """'cpu', or the GPU as 'cuda:INDEX' (its index among the GPUs this process sees)."""
    if device.type == "cuda" and device.index is None:
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def _rung(payload: dict[str, Any], epochs: int) -> int:
    stop = payload.get("rung_epochs", epochs)
    if not isinstance(stop, int) or isinstance(stop, bool) or not 1 <= stop <= epochs:
        raise NasnetError(f"child payload: 'rung_epochs' must be an epoch in 1..{epochs}, got {stop!r}")
    return stop


def _resume(trainer, path: Path, stop: int) -> int:
    """Load a rung checkpoint of this very child into `trainer`; returns the epochs it holds."""
    from ...weights.io import read_checkpoint

    state = read_checkpoint(path)
    config = state.get("config") if isinstance(state, dict) else None
    mine = {"model": trainer.model_config.to_dict(), "train": trainer.cfg.to_dict(), "data": trainer.dataset.spec}
    if config != mine:
        raise NasnetError(f"{path}: the checkpoint holds another child (its model, training or data config differs)")
    if int(state["epoch"]) > stop:
        raise NasnetError(f"{path}: the checkpoint is at epoch {state['epoch']}, past rung_epochs {stop}")
    trainer.load_state_dict(state)
    return trainer.epoch


def train_child(payload: ChildPayload) -> ChildResult:
    """Train one child network and return its reward and metrics (see the module docstring)."""
    start = time.perf_counter()
    from ...model.counting import count
    from ...train.loop import Diverged, Trainer
    from ...train.run_dir import save_checkpoint

    model_cfg, train_cfg, dataset = child_setup(payload)
    stop = _rung(payload, train_cfg.epochs)
    checkpoint = Path(payload["checkpoint"]) if payload.get("checkpoint") else None
    counts = count(model_cfg)
    trainer = Trainer(model_cfg, train_cfg, dataset)
    resumed = _resume(trainer, checkpoint, stop) if checkpoint is not None and checkpoint.is_file() else 0
    status, error = "done", None
    try:
        trainer.fit(until=stop)
    except Diverged as err:
        status, error = "diverged", str(err)
    if checkpoint is not None and status == "done" and trainer.epoch > resumed:
        save_checkpoint(checkpoint, trainer.state_dict())
    history = trainer.history
    last = history[-1] if history else {}
    trained = history[resumed:]
    train_seconds = sum(r["epoch_seconds"] for r in trained)
    trained_images = sum(r["images"] for r in trained)
    done = status == "done"
    test = trainer.evaluate("test")["top1"] if done and payload.get("test") else None
    return {
        "status": status,
        "reward": last.get("val_top1") if done else None,
        "val_accuracy": last.get("val_top1") if done else None,
        "val_loss": last.get("val_loss") if done else None,
        "test_accuracy": test,
        "loss_curve": [r["train_loss"] for r in history],
        "params": counts.params,
        "mult_adds": counts.mult_adds,
        "wall_seconds": time.perf_counter() - start,
        "images_per_second": trained_images / train_seconds if train_seconds > 0 else None,
        "epochs_completed": len(history),
        "resumed_from_epoch": resumed,
        "device": _device_name(trainer.device),
        "error": error,
    }
