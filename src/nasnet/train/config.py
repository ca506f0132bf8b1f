"""TrainConfig, the named recipes, and the one resolution of a run (paper A.1, A.6, A.7).

A frozen dataclass holds every training choice and checks it when built; a recipe (`PRESETS`:
child, cifar, imagenet, imagenet-large, digits) is a named TrainConfig whose every field can be
overridden (`preset("cifar", epochs=10)`). docs/training.md, "Recipes", says what each recipe is,
where each of its values comes from and how the fields that size augmentation follow the image.
`resolve` turns a recipe, a model and data into the `RunConfig` a run trains (`nasnet train`, the
search's child and Python callers alike); `training_data` is the data as a recipe uses it.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..arch.genotype import Genotype
from ..data import Dataset, load_dataset
from ..data.augment import AUGMENTS, COLOR_DISTORTIONS, NORMALIZE, Augment
from ..errors import NasnetError
from ..model.network import ModelConfig, filters_from_penultimate
from ..options import replace_fields
from ..registry import Registry
from ..zoo.table import get_entry, list_models

OPTIMIZERS = ("momentum", "rmsprop")
LR_SCHEDULES = ("cosine", "exponential", "constant")
LR_SCALINGS = ("none", "linear")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


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
    crop_scale_min: float = 0.05     # Inception crops: smallest area fraction sampled (TF-Slim: 0.05) ...
    crop_min_covered: float = 0.1    # ... and kept (TF-Slim: a crop covers >= 10% of the image)
    color_distort: str = "none"      # none | fast (brightness, saturation) | full (+ hue, contrast)
    flip: bool | None = None         # random horizontal flips; None: where the data allows (not digits)
    eval_crop: float = 0.875
    image_size: int | None = None    # None: the dataset's stored size
    # data: False trains on the validation images a source would hold out by default (final training);
    # a spec's explicit val= still holds them out
    holdout_val: bool = True
    # evaluation and bookkeeping
    eval_every: int = 1              # epochs between validation passes; 0 = only after the last epoch
    seed: int = 0
    # execution
    device: str = "auto"
    precision: str = "auto"          # auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on either
    channels_last: bool = True
    compile: bool | str = False     # torch.compile the forward: true, or a mode (reduce-overhead: CUDA graphs)
    threads: int = 0                 # torch intra-op threads; 0 = leave as is

    def __post_init__(self) -> None:
        def pos_int(name):
            v = getattr(self, name)
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        for f in dataclasses.fields(self):  # every number a real, finite one (--lr inf, nan, "0.1" from JSON)
            v = getattr(self, f.name)
            if "float" in str(f.type) and v is not None and (
                    isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise NasnetError(f"train config: {f.name} must be a finite number, got {v!r}")

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
            (0 < self.crop_scale_min <= 1 and 0 <= self.crop_min_covered <= 1 and 0 < self.eval_crop <= 1,
             "crop_scale_min and eval_crop must be in (0, 1], crop_min_covered in [0, 1]"),
            (self.color_distort in COLOR_DISTORTIONS, f"color_distort must be one of {', '.join(COLOR_DISTORTIONS)}"),
            (isinstance(self.holdout_val, bool), "holdout_val must be true or false"),
            (self.flip is None or isinstance(self.flip, bool), "flip must be true, false or null (the data's choice)"),
            (self.image_size is None or (isinstance(self.image_size, int) and self.image_size >= 1),
             "image_size must be an integer >= 1"),
            (isinstance(self.eval_every, int) and self.eval_every >= 0, "eval_every must be an integer >= 0"),
            (isinstance(self.seed, int) and not isinstance(self.seed, bool), "seed must be an integer"),
            (self.device in DEVICES or str(self.device).startswith("cuda:"),
             f"device must be one of {', '.join(DEVICES)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (isinstance(self.compile, bool) or self.compile in COMPILE_MODES,
             f"compile must be true, false or a torch.compile mode ({', '.join(COMPILE_MODES)})"),
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
        return replace_fields(self, "train config", overrides)

    def pad_for(self, image_size: int) -> int:
        return image_size // 8 if self.crop_pad is None else self.crop_pad

    def cutout_for(self, image_size: int) -> int:
        return image_size // 2 if self.cutout is None else self.cutout

    def augment_for(self, image_size: int, mirror_safe: bool = True) -> Augment:
        """The recipe's input pipeline at the model's image size (training and evaluation alike).
        `mirror_safe` is the data's (Dataset.mirror_safe): flips follow it unless the recipe sets `flip`."""
        return Augment(kind=self.augment, normalize=self.normalize, image_size=image_size,
                       pad=self.pad_for(image_size), cutout=self.cutout_for(image_size),
                       scale_min=self.crop_scale_min, min_covered=self.crop_min_covered, eval_crop=self.eval_crop,
                       color=self.color_distort, flip=mirror_safe if self.flip is None else self.flip)


# The recipes. Each value's source (the paper's section, TF-Slim's release, or ours) and the paper's
# value where it gives one: docs/training.md, "Recipes" (tests/test_recipes.py checks that table
# against these values).
_CHILD = dict(epochs=20, batch_size=128, lr=0.1, momentum=0.9, lr_schedule="cosine", weight_decay=5e-4,
              drop_path_keep=1.0, dropout=0.0, eval_every=0)
_CIFAR = dict(epochs=600, batch_size=32, lr=0.025, momentum=0.9, lr_schedule="cosine", weight_decay=5e-4,
              cutout=None, drop_path_keep=0.6, aux_weight=0.4, grad_clip=5.0, holdout_val=False)
_IMAGENET = dict(           # NASNet-A Mobile's; imagenet-large changes what Large's notes change
    epochs=312, batch_size=32, lr=0.04, optimizer="rmsprop", rmsprop_decay=0.9, rmsprop_eps=1.0, momentum=0.9,
    lr_schedule="exponential", lr_decay_rate=0.97, lr_decay_epochs=2.4, label_smoothing=0.1, ema_decay=0.9999,
    aux_weight=0.4, dropout=0.5, weight_decay=4e-5, grad_clip=10.0, augment="inception", crop_scale_min=0.05,
    crop_min_covered=0.1, color_distort="fast", normalize="unit", holdout_val=False,
)
_IMAGENET_LARGE = dict(batch_size=16, lr=0.015, weight_decay=5e-5)
_DIGITS = dict(epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, lr_schedule="cosine",
               drop_path_keep=0.8, aux_weight=0.4, grad_clip=5.0)

PRESETS: Registry[TrainConfig] = Registry("training preset", {
    "child": TrainConfig(**_CHILD),
    "cifar": TrainConfig(**_CIFAR),
    "imagenet": TrainConfig(**_IMAGENET),
    "imagenet-large": TrainConfig(**{**_IMAGENET, **_IMAGENET_LARGE}),
    "digits": TrainConfig(**_DIGITS),
})


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The recipe `name` (PRESETS) with `overrides`; an unknown name is a NasnetError listing the known ones."""
    cfg = PRESETS.lookup(name)
    return cfg.replace(**overrides) if overrides else cfg


_TRAINED_VAL: "weakref.WeakKeyDictionary[Dataset, Dataset]" = weakref.WeakKeyDictionary()


def training_data(dataset: Dataset, cfg: TrainConfig) -> Dataset:
    """The dataset as a recipe uses it: with `holdout_val=False` (final training) the validation images a
    source holds out by default are trained on too (CIFAR-10: all 50,000, as the paper's Table 1
    models); a val= in the spec, or a source's own val split, is kept. Cached per dataset."""
    if cfg.holdout_val or not dataset.default_holdout:
        return dataset
    if dataset not in _TRAINED_VAL:
        _TRAINED_VAL[dataset] = dataset.with_val_trained()
    return _TRAINED_VAL[dataset]


# -- resolving a run: recipe + model + data -> the configs a Trainer takes ---------------------------
def default_preset(kind: str, image_size: int, model_name: str | None = None) -> str:
    """The recipe a dataset gets when none is named: digits -> digits, small images -> cifar, else imagenet;
    a zoo model with a reference recipe of its own refines the last (nasnet_a_large -> imagenet-large)."""
    if kind == "digits":
        return "digits"
    if image_size <= 64:
        return "cifar"
    own = zoo_recipe(model_name)
    return own if own and own.startswith("imagenet") else "imagenet"


def zoo_recipe(model_name: str | None) -> str | None:
    """The preset the reference trains a zoo model with, when it has one of its own (ZooEntry.recipe)."""
    if not model_name or model_name not in list_models():
        return None
    return get_entry(model_name).recipe


def model_config_for(base: ModelConfig, cfg: TrainConfig, dataset: Dataset) -> ModelConfig:
    """Fit a model config to a dataset and a recipe: classes, channels, image size, aux head,
    ScheduledDropPath k0 and dropout (the last three from the recipe when it sets them).

    The image size is the recipe's, else the stored size; with Inception crops it defaults to the
    evaluation crop of the stored size (256 -> 224), so evaluation needs no resizing."""
    size = cfg.image_size or dataset.image_size
    if cfg.image_size is None and cfg.augment == "inception":
        size = max(1, round(dataset.image_size * cfg.eval_crop))
    over: dict[str, Any] = dict(num_classes=dataset.num_classes, in_chans=dataset.channels,
                                image_size=size, aux_head=cfg.aux_weight > 0)
    if cfg.drop_path_keep is not None:
        over["drop_path_keep"] = cfg.drop_path_keep
    if cfg.dropout is not None:
        over["dropout"] = cfg.dropout
    return base.replace(**over)


def base_model(dataset: Dataset, model: str | None = None, genotype: str | Genotype | None = None,
               normal_cells: int | None = None, filters: int | None = None, penultimate: int | None = None,
               skeleton: str | None = None, note: Callable[[str], None] | None = None) -> tuple[ModelConfig, str]:
    """(the model before the recipe and the data are applied, its name for the log).

    `model` is a zoo name; without one, NASNet-A (or `genotype`) at the dataset's default size: the
    CIFAR model for CIFAR, a small 2 @ 384-style model for other images up to 64 pixels, the Mobile
    skeleton (symmetric padding) for larger ones. `normal_cells` / `filters` / `penultimate` (the N,
    F0 and F of the paper's "N @ F") and `skeleton` resize it. `note` receives the one line said when
    `penultimate` is not a multiple of the widths the genotype can build (default: a UserWarning).

    Raises NasnetError for both `filters` and `penultimate`, or a width below 1."""
    if model:
        cfg = get_entry(model).config
        name = model
        if genotype:
            cfg = cfg.replace(genotype=Genotype.load(genotype))
            name += " with the given genotype"
    else:
        arch = Genotype.load(genotype or "nasnet-a")
        if dataset.kind in ("cifar10", "cifar100"):
            cfg = get_entry("nasnet_a_cifar").config.replace(genotype=arch)
        elif dataset.image_size <= 64:
            cfg = ModelConfig(genotype=arch, skeleton="cifar", normal_cells=2, filters=16)
        else:
            cfg = get_entry("nasnet_a_mobile").config.replace(genotype=arch, padding="symmetric")
        name = "NASNet-A" if not genotype else "genotype"
    over: dict[str, Any] = {}
    if normal_cells is not None:
        over["normal_cells"] = normal_cells
    if filters is not None and penultimate is not None:
        raise NasnetError("give the width either as `filters` (first-stage filters) or as `penultimate` "
                          "(penultimate), not both")
    if filters is not None:
        over["filters"] = filters
    if penultimate is not None:
        over["filters"] = _filters_for(cfg, penultimate, note)
    if skeleton is not None:
        over["skeleton"] = skeleton
    return (cfg.replace(**over) if over else cfg), name


def _filters_for(cfg: ModelConfig, penultimate: int, note: Callable[[str], None] | None) -> int:
    """F0 for the paper's "N @ F": F / (normal-cell output width x 2**reductions), said when inexact."""
    if penultimate < 1:
        raise NasnetError(f"`penultimate` must be a positive width, got {penultimate}")
    f0 = filters_from_penultimate(cfg.genotype, penultimate, cfg.num_reductions)
    built = cfg.replace(filters=f0).penultimate_filters
    if built != penultimate:
        message = (f"`penultimate` {penultimate} is not a multiple of {built // f0}; building F0 = {f0} "
                   f"(penultimate width {built})")
        if note is None:
            warnings.warn(message, stacklevel=3)
        else:
            note(message)
    return f0


@dataclass(frozen=True)
class RunConfig:
    """A resolved run: what a `Trainer` takes, plus the dataset and plain facts for the log."""

    model: ModelConfig
    train: TrainConfig
    dataset: Dataset = field(compare=False, repr=False)
    meta: dict = field(default_factory=dict)    # {"preset": ..., "model_name": ...}


def check_classes(model: ModelConfig, dataset: Dataset) -> None:
    """Refuse a model with fewer outputs than the data's labels need (a label beyond the last output would stop
    training at its first batch), before anything of a run is written."""
    n = dataset.num_classes
    if model.num_classes < n:
        what = "no classifier (features only)" if model.num_classes == 0 else f"{model.num_classes} outputs"
        raise NasnetError(f"model.num_classes={model.num_classes} gives the model {what}, but the labels of "
                          f"{dataset.spec} run 0..{n - 1} ({n} classes): drop the override or give at least {n}")


def resolve(data: str | Dataset = "digits", preset_name: str | None = None, train: Mapping[str, Any] | None = None,
            base: ModelConfig | None = None, model: Mapping[str, Any] | None = None,
            model_name: str | None = None) -> RunConfig:
    """The one resolution of a run, for `nasnet train`, the search's child and Python users.

    data: a --data spec or a loaded Dataset. preset_name: a recipe (default: the dataset's,
    `default_preset`). train: TrainConfig overrides on the recipe. base: the model before the recipe
    and data are applied (default: `base_model(dataset)`). model: ModelConfig overrides applied last
    (they win over what the recipe and the data set)."""
    dataset = load_dataset(data) if isinstance(data, str) else data
    name = preset_name or default_preset(dataset.kind, dataset.image_size, model_name)
    train_cfg = preset(name, **dict(train or {}))
    if base is None:
        base, model_name = base_model(dataset)
    model_cfg = model_config_for(base, train_cfg, dataset)
    if model:
        if "genotype" in model:
            raise NasnetError("give the genotype as the base model's, not as a model override")
        model_cfg = model_cfg.replace(**model)
    if model_cfg.skeleton == "imagenet" and model_cfg.image_size < 32:
        raise NasnetError(f"the imagenet skeleton needs images of 32 pixels or more; {dataset.spec} has "
                          f"{model_cfg.image_size} (use `skeleton=cifar`)")
    check_classes(model_cfg, dataset)
    return RunConfig(model_cfg, train_cfg, dataset, {"preset": name, "model_name": model_name or "custom"})
