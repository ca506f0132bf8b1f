"""TrainConfig and the named recipes (paper A.1, A.6, A.7; SPEC §1.8, §1.9).

A frozen dataclass holds every training choice; presets are named TrainConfigs and every field of
one can be overridden (`preset("cifar", epochs=10)`, `nasnet train --set lr=0.1`).

    child     the search reward (A.6): 20 epochs, single-period cosine, momentum 0.9, L2, no extras
              (no drop path, dropout, aux head or cutout); scored on the validation split at the end
    cifar     final CIFAR training (A.6, TF reference notes): 600 epochs, batch 32, lr 0.025, cosine,
              momentum 0.9, L2 5e-4, cutout 16 (at 32x32), ScheduledDropPath k0 0.6, auxiliary loss 0.4,
              gradient clipping at global norm 5
    imagenet  final ImageNet training (A.7): RMSProp (decay 0.9, epsilon 1.0, TF semantics), lr 0.04
              per 32 images decayed x0.97 every 2.4 epochs, label smoothing 0.1, weight EMA 0.9999
              used for evaluation, auxiliary loss 0.4, dropout 0.5, L2 4e-5, clipping 10,
              Inception crops; 312 epochs = the reference's 250k steps of 50 x 32 images
    digits    the cifar recipe shrunk for the bundled 8x8 digits: a few minutes on a laptop CPU

Fields that size augmentation to the image may be None, so a recipe fits any image size:
`crop_pad` then is image_size // 8 (4 at 32x32, as in the paper), `cutout` image_size // 2 (16 at
32x32, the paper's "+ cutout"), and `image_size` the dataset's. `drop_path_keep` and `dropout`, when
set, override the model's ModelConfig fields (they are part of a recipe, not of an architecture);
`aux_weight > 0` turns the model's auxiliary head on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..augment import AUGMENTS, NORMALIZE
from ..errors import NasnetError

OPTIMIZERS = ("momentum", "rmsprop")
LR_SCHEDULES = ("cosine", "exponential", "constant")
LR_SCALINGS = ("none", "linear")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    # length and batches
    epochs: int = 20
    batch_size: int = 128
    eval_batch_size: int = 256
    # optimizer; L2 is a loss term wd/2 |w|^2 on conv and linear weights (its gradient joins
    # before clipping, as in the TF reference); BN parameters are not decayed unless decay_bn
    optimizer: str = "momentum"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1.0
    weight_decay: float = 5e-4
    decay_bn: bool = False
    # learning-rate schedule, a pure function of the step (see schedule.py)
    lr_schedule: str = "cosine"
    lr_min: float = 0.0
    warmup_epochs: float = 0.0
    lr_decay_rate: float = 0.97
    lr_decay_epochs: float = 2.4
    # data parallelism (K processes, see distributed.py): batch_size is per process, the global
    # batch K * batch_size; "linear" multiplies lr (and lr_min) by K (Goyal et al. 2017)
    lr_scaling: str = "none"
    # loss and regularisation
    label_smoothing: float = 0.0
    aux_weight: float = 0.0
    grad_clip: float = 0.0           # global gradient norm; 0 = off
    ema_decay: float = 0.0           # weight EMA used for evaluation; 0 = off
    drop_path_keep: float | None = None
    dropout: float | None = None
    # BatchNorm: sync_bn computes batch statistics over all processes (SyncBatchNorm, CUDA only);
    # freeze_bn keeps BN in inference mode while training (running statistics used, not updated)
    sync_bn: bool = False
    freeze_bn: bool = False
    # input pipeline (augment.py)
    augment: str = "crop_flip"
    normalize: str = "whiten"
    crop_pad: int | None = None      # None: image_size // 8
    cutout: int | None = 0           # square side; 0 = off, None: image_size // 2
    crop_scale_min: float = 0.08
    eval_crop: float = 0.875
    image_size: int | None = None    # None: the dataset's stored size
    # evaluation and bookkeeping
    eval_every: int = 1              # epochs between validation passes; 0 = only after the last epoch
    seed: int = 0
    # execution
    device: str = "auto"
    precision: str = "auto"          # auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on either
    channels_last: bool = True
    compile: bool = False
    threads: int = 0                 # torch intra-op threads; 0 = leave as is

    def __post_init__(self) -> None:
        def pos_int(name):
            v = getattr(self, name)
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        checks = [
            (pos_int("epochs"), "epochs must be an integer >= 1"),
            (pos_int("batch_size"), "batch_size must be an integer >= 1"),
            (pos_int("eval_batch_size"), "eval_batch_size must be an integer >= 1"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (0 < self.rmsprop_decay < 1 and self.rmsprop_eps > 0, "rmsprop_decay must be in (0, 1), rmsprop_eps > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (0 <= self.lr_min <= self.lr, "lr_min must be in [0, lr]"),
            (self.lr_scaling in LR_SCALINGS, f"lr_scaling must be one of {', '.join(LR_SCALINGS)}"),
            (isinstance(self.sync_bn, bool) and isinstance(self.freeze_bn, bool),
             "sync_bn and freeze_bn must be true or false"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (0 < self.lr_decay_rate <= 1 and self.lr_decay_epochs > 0,
             "lr_decay_rate must be in (0, 1] and lr_decay_epochs > 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.aux_weight >= 0, "aux_weight must be >= 0"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0 = off)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1) (0 = off)"),
            (self.drop_path_keep is None or 0 < self.drop_path_keep <= 1, "drop_path_keep must be in (0, 1]"),
            (self.dropout is None or 0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.augment in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}"),
            (self.normalize in NORMALIZE, f"normalize must be one of {', '.join(NORMALIZE)}"),
            (self.crop_pad is None or (isinstance(self.crop_pad, int) and self.crop_pad >= 0), "crop_pad must be >= 0"),
            (self.cutout is None or (isinstance(self.cutout, int) and self.cutout >= 0),
             "cutout must be an integer >= 0 (0 = off)"),
            (0 < self.crop_scale_min <= 1 and 0 < self.eval_crop <= 1,
             "crop_scale_min and eval_crop must be in (0, 1]"),
            (self.image_size is None or (isinstance(self.image_size, int) and self.image_size >= 1),
             "image_size must be an integer >= 1"),
            (isinstance(self.eval_every, int) and self.eval_every >= 0, "eval_every must be an integer >= 0"),
            (isinstance(self.seed, int) and not isinstance(self.seed, bool), "seed must be an integer"),
            (self.device in DEVICES or str(self.device).startswith("cuda:"),
             f"device must be one of {', '.join(DEVICES)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (isinstance(self.threads, int) and self.threads >= 0, "threads must be an integer >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise NasnetError(f"train config: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls().replace(**data)

    def replace(self, **overrides: Any) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise NasnetError(
                f"train config: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        return dataclasses.replace(self, **overrides)

    def pad_for(self, image_size: int) -> int:
        return image_size // 8 if self.crop_pad is None else self.crop_pad

    def cutout_for(self, image_size: int) -> int:
        return image_size // 2 if self.cutout is None else self.cutout


PRESETS: dict[str, TrainConfig] = {
    "child": TrainConfig(epochs=20, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, lr_schedule="cosine",
                         drop_path_keep=1.0, dropout=0.0, eval_every=0),
    "cifar": TrainConfig(epochs=600, batch_size=32, lr=0.025, momentum=0.9, weight_decay=5e-4, lr_schedule="cosine",
                         cutout=None, drop_path_keep=0.6, aux_weight=0.4, grad_clip=5.0),
    "imagenet": TrainConfig(epochs=312, batch_size=32, lr=0.04, optimizer="rmsprop", momentum=0.9, rmsprop_decay=0.9,
                            rmsprop_eps=1.0, lr_schedule="exponential", lr_decay_rate=0.97, lr_decay_epochs=2.4,
                            label_smoothing=0.1, ema_decay=0.9999, aux_weight=0.4, dropout=0.5, weight_decay=4e-5,
                            grad_clip=10.0, augment="inception", normalize="unit"),
    "digits": TrainConfig(epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, lr_schedule="cosine",
                          drop_path_keep=0.8, aux_weight=0.4, grad_clip=5.0),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    if name not in PRESETS:
        raise NasnetError(f"unknown training preset {name!r} (known: {', '.join(PRESETS)})")
    cfg = PRESETS[name]
    return cfg.replace(**overrides) if overrides else cfg
